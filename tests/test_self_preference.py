"""Self-preference: model families from names (overridable), the judge's win-rate shift toward a
system of its own family relative to humans, its error rates, and where it is reported."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from review_app import families, stats
from review_app.cli import main
from review_app.errors import InputError
from review_app.report import render_report, report_hash
from review_app.services import calibration, data, signoff, studies, thresholds
from tests.acting import acting, looking, person, token_for
from tests.conftest import write


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("openai/gpt-4o-mini", "openai"),
        ("openai/gpt-4o-mini · general-pairwise v2", "openai"),
        ("openai/o3-mini", "openai"),
        ("gpt-4o", "openai"),
        ("anthropic/claude-3-5-haiku-latest", "anthropic"),
        ("claude-sonnet-4", "anthropic"),
        ("openai/llama-3.1-70b", "meta"),  # an OpenAI-compatible server: the model decides
        ("gemini-2.0-flash", "google"),
        ("Mixtral-8x7B", "mistral"),
        ("baseline/longest", None),
        ("jury/panel", None),
        ("finetuned", None),
        ("gptish", None),
    ],
)
def test_family_from_name(name, family):
    assert families.family_of(name) == family


def test_families_can_be_overridden_and_a_bad_setting_is_one_line():
    overrides = families.parse_overrides("finetuned=OpenAI, openai/my-judge = meta")
    assert families.family_of("finetuned", overrides) == "openai"
    assert families.family_of("openai/my-judge · r v1", overrides) == "meta"
    with pytest.raises(InputError, match="REVIEW_APP_MODEL_FAMILIES: entry 2"):
        families.parse_overrides("a=b, nonsense")


def _frames(n: int, rng: np.random.Generator, shift: float, votes: int = 3):
    """`n` comparisons of system `mine` against `other`; humans and the judge draw their verdicts
    from the same per-comparison preference p, the judge's moved by `shift` toward `mine`."""
    pairs = pd.DataFrame(
        {
            "pair_id": np.arange(n),
            "item_key": [f"i{i}" for i in range(n)],
            "category": "c",
            "system_x": "mine",
            "system_y": "other",
            "len_x": 10,
            "len_y": 10,
        }
    )
    p = rng.uniform(0.2, 0.8, n)
    vote_rows = [
        (i, f"r{r}", "x" if rng.random() < p[i] else "y", None)
        for i in range(n)
        for r in range(votes)
    ]
    judge_p = np.clip(p + shift, 0, 1)
    verdicts = pd.DataFrame(
        {
            "judge": "j",
            "pair_id": np.arange(n),
            "first": None,
            "outcome": np.where(rng.random(n) < judge_p, "x", "y"),
            "cost": 0.0,
            "latency_ms": np.nan,
        }
    )
    votes_frame = pd.DataFrame(vote_rows, columns=["pair_id", "reviewer", "outcome", "shown_left"])
    return pairs, votes_frame, verdicts


def test_false_flags_near_five_percent_without_bias_and_a_15_point_shift_is_found():
    rng = np.random.default_rng(15)
    sims = 200

    def flag_rate(shift: float) -> tuple[float, float]:
        flags, estimates = 0, []
        for s in range(sims):
            result = stats.self_preference(*_frames(150, rng, shift), "j", "mine", s, 400)
            flags += result.flagged
            estimates.append(result.shift.value)
        return flags / sims, float(np.mean(estimates))

    false_flags, mean_null = flag_rate(0.0)
    assert 0.01 <= false_flags <= 0.10  # nominal 5%
    assert abs(mean_null) < 0.02
    detected, mean_shift = flag_rate(0.15)
    assert detected >= 0.8
    assert mean_shift == pytest.approx(0.15, abs=0.03)


def test_shift_is_oriented_to_the_system_whichever_side_it_is_on():
    rng = np.random.default_rng(1)
    pairs, votes, verdicts = _frames(200, rng, 0.2)
    as_x = stats.self_preference(pairs, votes, verdicts, "j", "mine", 0, 200)
    as_y = stats.self_preference(pairs, votes, verdicts, "j", "other", 0, 200)
    assert as_x.shift.value == pytest.approx(-as_y.shift.value)
    assert as_x.judge_win_rate == pytest.approx(1 - as_y.judge_win_rate)
    assert as_x.shift.value > 0.1


OUTPUTS_HEADER = "item_id,prompt,system,output,category\n"


def _gpt_favouring_study(store, tmp_path, n: int = 60) -> None:
    """Study `s`: `tuned` against gpt-4o and claude-3-haiku; humans split evenly, the GPT judge
    always picks gpt-4o and is fair to claude."""
    rows = []
    for i in range(n):
        rows.append(f"q{i},Question {i}?,gpt-4o,Answer {i} from gpt.,c\n")
        rows.append(f"q{i},Question {i}?,claude-3-haiku,Answer {i} from claude.,c\n")
        rows.append(f"q{i},Question {i}?,tuned,Answer {i} tuned.,c\n")
    data.import_outputs(
        store, write(tmp_path / "o.csv", OUTPUTS_HEADER + "".join(rows)), "es", actor=person(store)
    )
    studies.create_study(
        store,
        "s",
        "es",
        [("tuned", "gpt-4o"), ("tuned", "claude-3-haiku")],
        reviews_per_pair=2,
        show_reference=False,
        criteria=[],
        actor=person(store),
    )
    votes, verdicts = (
        ["item_id,system_a,system_b,reviewer,winner\n"],
        ["item_id,system_a,system_b,judge,winner\n"],
    )
    for i in range(n):
        for other in ("gpt-4o", "claude-3-haiku"):
            # Humans split evenly; the GPT judge always picks gpt-4o, and is fair to claude.
            for r, winner in (("ann", "tuned"), ("bob", other)):
                votes.append(f"q{i},tuned,{other},{r},{winner}\n")
            judged = other if other == "gpt-4o" else ("tuned" if i % 2 else other)
            verdicts.append(f"q{i},tuned,{other},openai/gpt-4o,{judged}\n")
    data.import_votes(store, write(tmp_path / "v.csv", "".join(votes)), "s", actor=person(store))
    data.import_verdicts(
        store, write(tmp_path / "j.csv", "".join(verdicts)), "s", actor=person(store)
    )


def test_stats_reports_and_flags_a_judge_favouring_its_own_family(
    store, settings, tmp_path, capsys
):
    n = 60
    _gpt_favouring_study(store, tmp_path, n)
    found = calibration.self_preference(looking(store, "s", settings))
    assert [(p.judge, p.system) for p in found] == [("openai/gpt-4o", "gpt-4o")]
    (gpt,) = found
    # Before the lock only the shift shows: the win rates themselves are outcomes.
    assert gpt.judge_win_rate is None and gpt.human_win_rate is None
    assert gpt.shift.value == pytest.approx(0.5) and gpt.flagged
    assert gpt.shift.n == n  # only gpt-4o's comparisons (against another family)

    assert main(["stats", "--study", "s", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    (shown,) = document["self_preference"]
    assert shown["flagged"] is True and shown["shift"]["value"] == pytest.approx(0.5)
    # Before the lock the win rates would say which system the humans prefer.
    assert shown["judge_win_rate"] is None and shown["human_win_rate"] is None
    assert main(["stats", "--study", "s"]) == 0
    out = capsys.readouterr().out
    assert "FLAGGED: self-preference of openai/gpt-4o for gpt-4o" in out
    assert "win rates shown once the thresholds are locked" in out and "humans 0.50" not in out

    # Naming the fine-tune's family makes its comparisons count too.
    from dataclasses import replace

    named = calibration.self_preference(
        looking(
            store, "s", replace(settings, model_families="tuned=anthropic, openai/gpt-4o=anthropic")
        )
    )
    assert {(p.judge, p.system) for p in named} == {
        ("openai/gpt-4o", "tuned"),
        ("openai/gpt-4o", "claude-3-haiku"),
    }


def test_the_signoff_report_shows_self_preference_in_every_format(
    store, settings, tmp_path, capsys
):
    _gpt_favouring_study(store, tmp_path)
    thresholds.add_threshold(
        acting(store, "s", "a"),
        "human_win_rate",
        {"system_a": "tuned", "system_b": "gpt-4o"},
        ">=",
        0.5,
    )
    thresholds.lock_thresholds(acting(store, "s", "a", settings=settings), "a small test study")
    built = signoff.build_report(looking(store, "s", settings))
    # The study is interim: its win rates after the lock are a look, read in someone's name.
    as_admin = ["--token", token_for(store, "a")]
    assert main([*as_admin, "stats", "--study", "s", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["self_preference"][0]["human_win_rate"] == 0.5

    (row,) = built["self_preference"]
    assert row["judge"] == "openai/gpt-4o" and row["system"] == "gpt-4o"
    assert row["flagged"] is True
    assert row["shift"]["value"] == pytest.approx(0.5)
    low, high = row["shift"]["ci"]
    assert 0 < low <= 0.5 <= high
    assert json.loads(render_report(built, "json"))["self_preference"] == [row]

    markdown = render_report(built, "md")
    section = markdown.split("## Self-preference", 1)[1].split("\n## ", 1)[0]
    assert (
        f"| openai/gpt-4o | gpt-4o | 1.00 | 0.50 | 0.500 | [{low:.3f}, {high:.3f}] | 60 "
        "| **FLAGGED** |"
    ) in section
    assert "claude" not in section  # a judge is checked against its own family only

    page = render_report(built, "html")
    assert "<h2>Self-preference</h2>" in page
    assert "<td>openai/gpt-4o</td><td>gpt-4o</td>" in page and "<td>FLAGGED</td>" in page

    # The figures are part of what the report hash pins.
    without = {k: v for k, v in built.items() if k != "self_preference"}
    assert report_hash(without) != built["report_hash"]


def test_a_report_without_a_family_match_says_there_is_nothing_to_check(store, settings, tmp_path):
    _gpt_favouring_study(store, tmp_path)
    thresholds.add_threshold(
        acting(store, "s", "a"),
        "human_win_rate",
        {"system_a": "tuned", "system_b": "gpt-4o"},
        ">=",
        0.5,
    )
    thresholds.lock_thresholds(acting(store, "s", "a", settings=settings), "a small test study")
    from dataclasses import replace

    built = signoff.build_report(
        looking(store, "s", replace(settings, model_families="gpt-4o=other"))
    )
    assert built["self_preference"] == []
    assert "No judge shares a model family" in render_report(built, "md")
    assert "No judge shares a model family" in render_report(built, "html")
    # A report signed before the section existed renders without it.
    old = {k: v for k, v in built.items() if k != "self_preference"}
    assert "Self-preference" not in render_report(old, "md")
    assert "Self-preference" not in render_report(old, "html")
