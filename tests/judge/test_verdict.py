"""Strict verdict parsing: anything but the exact answer is unparsed with a reason."""

from __future__ import annotations

import json

import pytest

from judge.rubric import parse_rubric
from judge.verdict import parse_verdict
from tests.judge.test_rubric import rubric_text


def answer(**fields: object) -> str:
    return json.dumps({"explanation": "because", **fields})


@pytest.mark.parametrize("label,winner", [("A", "first"), ("B", "second"), ("tie", "tie")])
def test_pairwise_labels_map_to_positions(general, label, winner):
    verdict = parse_verdict(general, answer(winner=label))
    assert verdict.winner == winner
    assert verdict.explanation == "because"
    assert verdict.parse_error is None


@pytest.mark.parametrize(
    "text,finish_reason,refusal,reason",
    [
        ('{"explanation": "x", "winner": ', "stop", None, "malformed JSON"),
        ("A is better", "stop", None, "malformed JSON"),
        (answer(winner="C"), "stop", None, "label 'C' is not one of the allowed labels A, B, tie"),
        (answer(winner="a"), "stop", None, "label 'a'"),
        (answer(), "stop", None, "missing 'winner'"),
        (answer(winner="A", confidence=0.9), "stop", None, "unexpected key(s) 'confidence'"),
        ('["A"]', "stop", None, "expected a JSON object"),
        ('{"explanation": "A is bet', "length", None, "truncated"),
        ("", "refusal", None, "refusal"),
        ("", "stop", "I can't help with that.", "refusal: I can't help with that."),
        ("", "content_filter", None, "refusal"),
        ("", "stop", None, "empty answer"),
        ("   \n", "stop", None, "empty answer"),
    ],
)
def test_bad_answers_are_unparsed_with_their_reason(general, text, finish_reason, refusal, reason):
    verdict = parse_verdict(general, text, finish_reason=finish_reason, refusal=refusal)
    assert verdict.winner is None
    assert not verdict.parsed
    assert reason in verdict.parse_error


def test_truncation_wins_even_if_the_cut_off_text_happens_to_parse(general):
    verdict = parse_verdict(general, answer(winner="A"), finish_reason="length")
    assert verdict.winner is None and "truncated" in verdict.parse_error


def test_tie_is_refused_when_the_rubric_does_not_allow_ties():
    rubric = parse_rubric(rubric_text(allow_tie=False))
    verdict = parse_verdict(rubric, answer(winner="tie"))
    assert verdict.winner is None
    assert "allowed labels A, B" in verdict.parse_error


def test_one_markdown_fence_around_the_json_is_accepted(general):
    text = "```json\n" + answer(winner="B") + "\n```"
    assert parse_verdict(general, text).winner == "second"


def scores(a: dict, b: dict) -> str:
    return answer(scores={"A": a, "B": b})


FULL = {"accuracy": 5, "helpfulness": 5, "tone": 5, "format": 5}


def test_pointwise_scores_are_mapped_to_positions_and_decide_the_winner(pointwise):
    worse = {**FULL, "accuracy": 2}
    verdict = parse_verdict(pointwise, scores(worse, FULL))
    assert verdict.winner == "second"
    assert verdict.scores == {"first": worse, "second": FULL}
    assert parse_verdict(pointwise, scores(FULL, FULL)).winner == "tie"


def test_pointwise_weights_count(pointwise):
    # accuracy weighs 2, tone 1: losing 1 point of accuracy outweighs gaining 1 point of tone.
    a = {"accuracy": 4, "helpfulness": 4, "tone": 4, "format": 4}
    b = {"accuracy": 3, "helpfulness": 4, "tone": 5, "format": 4}
    assert parse_verdict(pointwise, scores(a, b)).winner == "first"


@pytest.mark.parametrize(
    "a,reason",
    [
        ({**FULL, "accuracy": 6}, "score 6 for A.accuracy is outside 1-5"),
        ({**FULL, "accuracy": 0}, "outside 1-5"),
        ({**FULL, "accuracy": 4.5}, "score 4.5"),
        ({**FULL, "accuracy": True}, "score True"),
        ({k: v for k, v in FULL.items() if k != "tone"}, "missing tone"),
        ({**FULL, "style": 3}, "unknown style"),
    ],
)
def test_pointwise_bad_scores_are_unparsed(pointwise, a, reason):
    verdict = parse_verdict(pointwise, scores(a, FULL))
    assert verdict.winner is None
    assert reason in verdict.parse_error


def test_pointwise_answer_must_score_both_responses(pointwise):
    verdict = parse_verdict(pointwise, answer(scores={"A": FULL}))
    assert verdict.winner is None and "'A' and 'B'" in verdict.parse_error


def test_pairwise_answer_to_a_pointwise_rubric_is_unparsed(pointwise):
    verdict = parse_verdict(pointwise, answer(winner="A"))
    assert verdict.winner is None and "unexpected key(s) 'winner'" in verdict.parse_error
