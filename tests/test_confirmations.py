"""Actions that cannot be undone (revoke a link, lock the thresholds, make the dev/test split)
act only on a second, explicit click; Cancel leaves everything as it was."""

from review_app.services import rubric_iteration
from tests.acting import looking
from tests.test_calibration import open_page
from tests.test_gate import add_standard_thresholds


def test_lock_asks_before_it_locks_and_cancel_keeps_it_open(demo_store):
    add_standard_thresholds(demo_store)
    at = open_page(demo_store, "gate.py")
    at.text_input(key="gate_lock_reason").input("a demo of the flow")
    at.button(key="gate_lock").click().run()
    assert not at.exception
    assert any("cannot be undone" in w.value for w in at.warning)
    assert looking(demo_store, "demo").lock.row is None
    at.button(key="gate_lock_cancel").click().run()
    assert looking(demo_store, "demo").lock.row is None
    assert not at.button(key="gate_lock").disabled
    at.button(key="gate_lock").click().run()
    at.button(key="gate_lock_yes").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert looking(demo_store, "demo").lock.row["locked_by"] == "demo-admin"


def test_the_split_asks_with_its_share_and_seed(demo_store):
    at = open_page(demo_store, "calibration.py")
    at.button(key="FormSubmitter:calibration_split-Split into dev and test").click().run()
    assert not at.exception
    assert any("cannot be redone" in w.value and "0.3" in w.value for w in at.warning)
    assert rubric_iteration.split_summary(demo_store, "demo") is None
    at.button(key="calibration_split_yes").click().run()
    assert not at.exception
    assert rubric_iteration.split_summary(demo_store, "demo").created_by == "demo-admin"
