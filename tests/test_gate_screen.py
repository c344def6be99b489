"""The Gate's evaluation table says which bound decides (one-sided) apart from the two-sided
interval, counts items and comparisons in their own columns, and gives each reason in full."""

import pytest

from review_app.services import decision
from tests.acting import lock_on_win_rate, looking
from tests.test_calibration import open_page


def test_the_gate_row_names_the_bound_it_is_decided_on(demo_store):
    lock_on_win_rate(demo_store)
    at = open_page(demo_store, "gate.py")
    assert not at.exception
    (table,) = [d.value for d in at.dataframe if "outcome" in d.value.columns]
    assert list(table.columns) == [
        "threshold",
        "estimate",
        "decided-on bound",
        "two-sided 95% CI",
        "items",
        "comparisons",
        "outcome",
    ]
    row = table.iloc[0]
    low, high = (float(x) for x in row["two-sided 95% CI"].strip("[]").split(","))
    decision_now = decision.evaluate_gate(looking(demo_store, "demo"))
    (result,) = decision_now.results
    assert float(row["decided-on bound"]) == pytest.approx(result.bounds[0], abs=5e-4)
    # The demo is at an early interim look: its bound is moved out to the look's sequential
    # boundary, beyond the two-sided 95% interval; at 95% it lies inside it.
    assert decision_now.look.boundary > 1.96 and result.bounds[0] < low
    gate_at_95 = result.value - (result.value - result.bounds[0]) * (
        1.6448536269514722 / decision_now.look.boundary
    )
    assert row["estimate"] == f"{result.value:.3f}"
    assert low < gate_at_95 < high
    shown = "\n".join(m.value for m in at.markdown)
    assert result.reason in shown  # in full, not cut off in a cell
    assert any("one-sided 95% bound" in c.value for c in at.caption)
    assert any("sequential boundary" in c.value for c in at.caption)


def test_before_the_lock_every_step_is_listed(demo_store):
    at = open_page(demo_store, "gate.py")
    assert not at.exception
    headings = [h.value for h in at.subheader]
    assert headings[:4] == [
        "1. Thresholds",
        "2. Evaluation",
        "3. Final human review",
        "4. Sign-off",
    ]


def test_results_count_items_and_comparisons_as_the_gate_does(demo_store):
    """The same comparison showed n = 30 on the Gate and n = 70 on Results: the Gate counts
    compared pairs (one per item here), Results counted votes. Results now gives items,
    comparisons and votes in their own columns, and the Gate's figures are found there."""
    lock_on_win_rate(demo_store)
    gate_table = next(
        d.value for d in open_page(demo_store, "gate.py").dataframe if "outcome" in d.value.columns
    )
    at = open_page(demo_store, "results.py")
    assert not at.exception
    rates = next(d.value for d in at.dataframe if "win rate" in d.value.columns)
    assert "n" not in rates.columns
    humans = rates[(rates.comparison == "finetuned vs base") & (rates.source == "humans")].iloc[0]
    gate_row = gate_table.iloc[0]
    assert (humans["items"], humans["comparisons"]) == (gate_row["items"], gate_row["comparisons"])
    assert humans["votes or verdicts"] > humans["comparisons"]  # several reviewers per pair
    assert humans["wins"] + humans["ties"] + humans["losses"] == humans["votes or verdicts"]
    assert any("several votes" in c.value for c in at.caption)
