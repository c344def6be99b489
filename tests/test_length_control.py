"""The length-controlled win rate says when it cannot tell length from quality, holds its level
where it can, and is a gate metric decided like the raw win rate (DESIGN sections 10 and 12)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from review_app import gate, ranking, report, stats
from review_app.cli import main
from review_app.errors import InputError
from review_app.services import decision as decisions
from review_app.services import scorecard
from tests.acting import looking, token_for
from tests.conftest import write

CANDIDATE, BASE = "cand", "base"
PAGES = Path(__file__).resolve().parent.parent / "review_app" / "app_pages"


def _length_study(
    rng: np.random.Generator,
    n_items: int,
    len_diff: np.ndarray,
    votes: int = 1,
    quality: float = 0.0,
    verbosity: float = 1.2,
    scale: float = 200.0,
) -> pd.DataFrame:
    """Observations of a over b whose preference follows the length (`verbosity` on the logit
    scale, through AlpacaEval's feature) plus `quality` at equal length; 10% ties."""
    p = 1 / (1 + np.exp(-(quality + verbosity * np.tanh(len_diff / scale))))
    items = np.repeat(np.arange(n_items), votes)
    p = np.repeat(p, votes)
    tie = rng.random(len(items)) < 0.1
    score = np.where(tie, 0.5, (rng.random(len(items)) < p).astype(float))
    return pd.DataFrame({"item": items, "score": score, "len_diff": np.repeat(len_diff, votes)})


# ---- the estimate ----


def test_without_overlap_the_length_controlled_win_rate_is_null_with_the_reason():
    """The candidate always 300-600 characters longer: length and quality cannot be told apart.
    (The fit used to answer 0.63 with a CI 0.10 wide that never covered the true 0.5.)"""
    rng = np.random.default_rng(7)
    obs = _length_study(rng, 100, rng.uniform(300, 600, 100))
    lc = ranking.length_controlled_win_rate(obs, n_boot=200)
    assert lc.value is None and lc.ci is None and lc.bounds is None
    assert lc.reason.startswith("lengths do not overlap: not estimable")
    assert "0 of 100 comparisons" in lc.reason and (lc.n, lc.n_comparisons) == (100, 100)


def test_the_overlap_rule_counts_comparisons_not_votes_and_equal_lengths_count():
    # 9 of 100 comparisons shorter, each with five votes: still 9%, not estimable.
    d = np.array([-50.0] * 9 + [80.0] * 91)
    assert ranking.not_estimable_reason(d).startswith(ranking.NOT_ESTIMABLE)
    obs = _length_study(np.random.default_rng(1), 100, d, votes=5)
    assert ranking.length_controlled_win_rate(obs, n_boot=50).value is None
    # Ten at equal length are where the value is read: estimable.
    assert ranking.not_estimable_reason(np.array([0.0] * 10 + [80.0] * 90)) == ""
    assert ranking.not_estimable_reason(np.array([-50.0] * 10 + [80.0] * 90)) == ""


def test_at_parity_with_overlapping_lengths_it_is_about_half_and_its_interval_covers():
    """Humans prefer the longer answer, the candidate is longer 73% of the time and no better
    at equal length: the raw win rate is ~0.6, the length-controlled one ~0.5, and its 95% CI
    and one-sided bounds hold their level (docs/statistics.md has the wider grid)."""
    rng = np.random.default_rng(11)
    sims, covered, low_err, high_err, values, raw = 120, 0, 0, 0, [], []
    for seed in range(sims):
        obs = _length_study(rng, 60, rng.normal(120, 200, 60))
        lc = ranking.length_controlled_win_rate(obs, seed=seed, n_boot=300)
        assert lc.value is not None, lc.reason
        values.append(lc.value)
        raw.append(obs.score.mean())
        covered += lc.ci[0] <= 0.5 <= lc.ci[1]
        low_err += lc.bounds[0] > 0.5
        high_err += lc.bounds[1] < 0.5
    assert np.mean(raw) > 0.58
    assert np.mean(values) == pytest.approx(0.5, abs=0.02)
    assert covered / sims >= 0.9
    assert low_err / sims <= 0.09 and high_err / sims <= 0.09


def test_the_gate_and_the_scorecard_share_one_estimate():
    """`length_controlled_win_rates` (the gate's) gives the scorecard's figures exactly."""
    rng = np.random.default_rng(3)
    obs = _length_study(rng, 80, rng.normal(100, 200, 80)).assign(
        source="humans", system_a=BASE, system_b=CANDIDATE
    )
    ratings = pd.DataFrame(
        {"item": [0], "total": [3.0], "n": [1.0], "source": ["humans"], "system": [BASE]}
    )
    card = ranking.scorecard_statistics(
        obs, [(CANDIDATE, BASE)], ratings, ("source", "system"), "system", 80, n_boot=200
    )
    [alone] = ranking.length_controlled_win_rates(obs, [(CANDIDATE, BASE)], 80, n_boot=200)
    assert card.length_controlled == [alone]
    # Handed the gate's estimate, the scorecard shows it and the same rankings and means.
    given = ranking.scorecard_statistics(
        obs,
        [(CANDIDATE, BASE)],
        ratings,
        ("source", "system"),
        "system",
        80,
        n_boot=200,
        length_controlled=[alone],
    )
    assert given.length_controlled == [alone]
    assert given.rankings == card.rankings
    pd.testing.assert_frame_equal(given.means, card.means)
    # Read as the comparison names it: candidate over base = 1 - base over candidate.
    base_first = ranking.length_controlled_win_rate(
        obs.drop(columns=["system_a", "system_b"]), n_boot=200
    )
    assert alone.system_a == CANDIDATE
    assert alone.value == pytest.approx(1 - base_first.value)
    assert gate.orient(alone, BASE, CANDIDATE).value == pytest.approx(base_first.value)


# ---- the gate metric ----


def _inputs(*lcs: ranking.LengthControlled) -> gate.GateInputs:
    return gate.GateInputs(None, [], {}, lc_win_rates=list(lcs))


def _lc(value, bounds, n_comparisons=120, reason="", source=stats.HUMANS):
    ci = None if bounds is None else (bounds[0] - 0.02, bounds[1] + 0.02)
    return ranking.LengthControlled(
        source, CANDIDATE, BASE, value, ci, 3 * n_comparisons, bounds, n_comparisons, reason
    )


def _threshold(metric="human_lc_win_rate", a=CANDIDATE, b=BASE, comparator=">", value=0.5, **p):
    return gate.validate_threshold(metric, {"system_a": a, "system_b": b, **p}, comparator, value)


def test_the_gate_decides_the_length_controlled_win_rate_on_its_bounds():
    passing = _inputs(_lc(0.7, (0.6, 0.8)))
    [row] = gate.decide_gate([_threshold()], passing).results
    assert (row.outcome, row.value, row.bounds, row.n) == ("pass", 0.7, (0.6, 0.8), 120)
    assert "lower 95% bound 0.600" in row.reason
    # b over a is 1 - a over b: the same row read the other way fails the same bar.
    [row] = gate.decide_gate([_threshold(a=BASE, b=CANDIDATE)], passing).results
    assert row.outcome == "fail" and row.value == pytest.approx(0.3)
    assert row.bounds == pytest.approx((0.2, 0.4))
    [row] = gate.decide_gate([_threshold()], _inputs(_lc(0.52, (0.45, 0.6)))).results
    assert row.outcome == "inconclusive"
    [row] = gate.decide_gate([_threshold()], _inputs(_lc(0.7, (0.6, 0.8), 20))).results
    assert row.outcome == "inconclusive" and row.reason.startswith("20 of 30 items")


def test_without_overlap_the_gate_metric_is_unmeasurable_with_the_reason():
    reason = "lengths do not overlap: not estimable (0 of 120 comparisons ...)"
    decision = gate.decide_gate([_threshold()], _inputs(_lc(None, None, reason=reason)))
    [row] = decision.results
    assert row.outcome == "inconclusive" and row.value is None
    assert row.reason == f"not measurable: length-controlled win rate: {reason}"
    assert decision.result == "inconclusive"


def test_the_judge_metric_reads_its_judge_and_names_what_is_missing():
    inputs = _inputs(_lc(0.4, (0.3, 0.45), source="gpt-judge"))
    [row] = gate.decide_gate(
        [_threshold("judge_lc_win_rate", judge="gpt-judge", comparator=">=", value=0.5)], inputs
    ).results
    assert row.outcome == "fail"
    [row] = gate.decide_gate([_threshold()], inputs).results
    assert row.reason == f"not measurable: no humans outcomes for {CANDIDATE} vs {BASE}"
    with pytest.raises(InputError, match="needs the parameter judge"):
        _threshold("judge_lc_win_rate")


# ---- through a real study ----


def _study_files(tmp_path, name: str, len_diff: np.ndarray, p_candidate: np.ndarray, seed: int):
    """Outputs of 120 items (the candidate `len_diff` characters longer than the base) and three
    votes per comparison from three reviewers, the candidate winning with `p_candidate`."""
    rng = np.random.default_rng(seed)
    outputs, votes = ["item_id,prompt,system,output"], ["item_id,system_a,system_b,reviewer,winner"]
    for i, (d, p) in enumerate(zip(len_diff, p_candidate, strict=True)):
        base_len = 400
        outputs.append(f"{name}{i},prompt {i},{BASE},{'b' * base_len}")
        outputs.append(f"{name}{i},prompt {i},{CANDIDATE},{'c' * (base_len + int(d))}")
        for reviewer in ("ann", "bob", "cy"):
            winner = CANDIDATE if rng.random() < p else BASE
            votes.append(f"{name}{i},{CANDIDATE},{BASE},{reviewer},{winner}")
    return (
        write(tmp_path / f"{name}-outputs.csv", "\n".join(outputs) + "\n"),
        write(tmp_path / f"{name}-votes.csv", "\n".join(votes) + "\n"),
    )


def _locked_study(tmp_path, capsys, name, len_diff, p_candidate, seed=0):
    outputs, votes = _study_files(tmp_path, name, len_diff, p_candidate, seed)
    assert main(["import", "outputs", str(outputs), "--eval-set", name]) == 0
    assert main(["import", "votes", str(votes), "--study", name, "--eval-set", name]) == 0
    pair = ["--param", f"system_a={CANDIDATE}", "--param", f"system_b={BASE}"]
    for metric in ("human_win_rate", "human_lc_win_rate"):
        argv = ["thresholds", "add", "--study", name, "--metric", metric, *pair, "--value", "0.5"]
        assert main(argv) == 0
    lock = ["thresholds", "lock", "--study", name, "--reason", "a small test study"]
    assert main(lock) == 0
    capsys.readouterr()


def test_a_study_whose_candidate_is_always_longer_cannot_pass_on_length(
    store, settings, tmp_path, capsys, cli_admin
):
    """Reviewers who simply prefer the longer answer pass the raw win rate; the
    length-controlled one says it cannot tell, in the gate, the scorecard and the report."""
    n = 120
    _locked_study(tmp_path, capsys, "longer", np.full(n, 400.0), np.full(n, 0.75))
    ctx = looking(store, "longer", settings)
    decision = decisions.evaluate_gate(ctx)
    rows = {r.threshold.metric: r for r in decision.results}
    assert rows["human_win_rate"].value > 0.6 and rows["human_win_rate"].bounds[0] > 0.5
    lc = rows["human_lc_win_rate"]
    # Every comparison has its one planned vote (k comes from the import) and no threshold reads
    # the final review: the plan is in, and the row says why it cannot be decided.
    assert lc.outcome == "inconclusive" and lc.value is None
    assert "lengths do not overlap: not estimable (0 of 120 comparisons" in lc.reason
    assert decision.result == "inconclusive"

    assert main(["scorecard", "--study", "longer", "--json"]) == 0
    [row] = [w for w in json.loads(capsys.readouterr().out)["win_rates"]]
    assert row["win_rate"] > 0.6 and row["lc_win_rate"] is None and row["lc_ci"] is None
    assert row["lc_reason"].startswith("lengths do not overlap: not estimable")
    assert main(["scorecard", "--study", "longer"]) == 0
    text = capsys.readouterr().out
    assert "| lengths do not overlap: not estimable (0 of 120 comparisons" in text
    assert main(["report", "--study", "longer", "--format", "md"]) == 0
    text = capsys.readouterr().out
    lines = [x for x in text.splitlines() if "lengths do not overlap" in x]
    assert any(x.startswith(f"| {CANDIDATE} vs {BASE} | humans |") for x in lines)  # scorecard
    assert any("human_lc_win_rate" in x or "length-controlled" in x for x in lines)  # gate row
    assert not any("None" in x or "nan" in x for x in lines)
    assert main(["report", "--study", "longer", "--format", "html"]) == 0
    assert "lengths do not overlap: not estimable" in capsys.readouterr().out

    # The screen shows the reason where the number would be.
    at = AppTest.from_file(str(PAGES / "scorecard.py"), default_timeout=60)
    at.query_params["token"] = token_for(store, "sol", "signer")
    at.run()
    assert not at.exception
    [rates] = [d.value for d in at.dataframe if "length-controlled" in d.value.columns]
    cell = rates["length-controlled"].iloc[0]
    assert cell.startswith("lengths do not overlap: not estimable")
    assert rates["length-controlled 95% CI"].iloc[0] == "n/a"


def test_a_study_with_overlapping_lengths_is_decided_at_equal_length(
    store, settings, tmp_path, capsys, cli_admin
):
    """A candidate that is better at every length passes both; the gate's figure is the
    scorecard's."""
    rng = np.random.default_rng(5)
    n = 120
    len_diff = rng.normal(100, 200, n).round()
    _locked_study(tmp_path, capsys, "better", len_diff, np.full(n, 0.85), seed=1)
    ctx = looking(store, "better", settings)
    # Decided as the gate decides each threshold (the gate itself waits for the final review).
    inputs = decisions.gate_inputs(ctx, ctx.data())
    rows = {r.threshold.metric: r for r in gate.evaluate(ctx.thresholds, inputs, ctx.min_items)}
    reversed_ = _threshold(a=BASE, b=CANDIDATE)
    [against] = gate.evaluate([reversed_], inputs, ctx.min_items)
    assert against.outcome == "fail" and against.value == pytest.approx(
        1 - rows["human_lc_win_rate"].value
    )
    lc = rows["human_lc_win_rate"]
    assert lc.outcome == "pass" and lc.n == n
    assert lc.value == pytest.approx(0.85, abs=0.06) and lc.bounds[0] > 0.5
    card = scorecard.scorecard(looking(store, "better", settings))
    [row] = card["win_rates"]
    assert (row["system_a"], row["system_b"]) == (CANDIDATE, BASE)
    assert row["lc_win_rate"] == pytest.approx(lc.value) and row["lc_reason"] is None
    assert report.length_controlled_text(row) == f"{lc.value:.3f}"


# ---- judge_agreement names its ties ----


def test_judge_agreement_has_no_default_ties():
    with pytest.raises(
        InputError, match="metric judge_agreement needs the parameter ties: with, without or strict"
    ):
        gate.validate_threshold("judge_agreement", {"judge": "gpt"}, ">=", 0.8)
    with pytest.raises(InputError, match="ties must be 'with', 'without' or 'strict'"):
        gate.validate_threshold("judge_agreement", {"judge": "gpt", "ties": "some"}, ">=", 0.8)
    for ties in ("with", "without", "strict"):
        t = gate.validate_threshold("judge_agreement", {"judge": "gpt", "ties": ties}, ">=", 0.8)
        assert t.params == {"judge": "gpt", "ties": ties}
