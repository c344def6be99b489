"""The Gate's evaluation table says which bound decides (one-sided) apart from the two-sided
interval, counts items and comparisons in their own columns, and gives each reason in full."""

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
    assert row["decided-on bound"] == result.bounds[0]
    # The demo is at an early interim look: its bound is moved out to the look's sequential
    # boundary, beyond the two-sided 95% interval; at 95% it lies inside it.
    assert decision_now.look.boundary > 1.96 and row["decided-on bound"] < low
    gate_at_95 = row["estimate"] - (row["estimate"] - row["decided-on bound"]) * (
        1.6448536269514722 / decision_now.look.boundary
    )
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
