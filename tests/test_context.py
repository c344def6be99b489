"""The kernel of who may do what, and when: the Lock decides visibility and what a change after it
costs; the StudyContext carries the Actor; the roles of each governance action live in one table."""

from __future__ import annotations

import pytest

from review_app import auth
from review_app.auth import Actor
from review_app.errors import Conflict, Forbidden, InputError, OutcomesHidden
from review_app.services import audit, context, thresholds
from tests.acting import acting, person, reading


def _lock_demo(store, settings) -> None:
    ctx = acting(store, "demo", "demo-admin", settings=settings)
    thresholds.add_threshold(ctx, "final_review_acceptable_rate", {}, ">=", 0.5)
    thresholds.lock_thresholds(ctx, "a small test study")


def _entries(store) -> list[dict]:
    return audit.study_log(store, "demo")


def test_outcomes_are_visible_only_after_the_lock(demo_store, settings):
    before = reading(demo_store, "demo", settings)
    assert not before.lock.visible
    with pytest.raises(OutcomesHidden, match="stay hidden until its thresholds are locked"):
        before.lock.require_visible()
    _lock_demo(demo_store, settings)
    after = reading(demo_store, "demo", settings)
    assert after.lock.visible and after.lock.candidate == "finetuned"
    after.lock.require_visible()


def test_a_change_before_the_lock_is_audited_and_is_no_deviation(demo_store, settings):
    ctx = acting(demo_store, "demo", "ada", settings=settings)
    with demo_store.transaction():
        locked = ctx.lock.change(ctx.actor, "", "probe", "a", "b", detail=1)
    assert locked is False
    last = _entries(demo_store)[-1]
    assert (last["actor"], last["action"]) == ("ada", "probe")
    assert last["detail"] == {"detail": 1, "after_lock": False, "reason": ""}
    assert demo_store.gate.deviations(ctx.id) == []


def test_after_the_lock_a_change_needs_a_reason_and_is_a_deviation(demo_store, settings):
    _lock_demo(demo_store, settings)
    ctx = acting(demo_store, "demo", "ada", settings=settings)
    count = len(_entries(demo_store))
    with pytest.raises(InputError, match="locked: probe now would change"):
        with demo_store.transaction():
            ctx.lock.change(ctx.actor, "  ", "probe", "a", "b")
    assert len(_entries(demo_store)) == count and demo_store.gate.deviations(ctx.id) == []
    with demo_store.transaction():
        assert ctx.lock.change(ctx.actor, "a typo in the bar", "probe", "a", "b") is True
    (deviation,) = demo_store.gate.deviations(ctx.id)
    assert (deviation["changed_by"], deviation["before"], deviation["after"]) == ("ada", "a", "b")
    assert deviation["reason"] == "a typo in the bar"
    assert _entries(demo_store)[-1]["detail"]["after_lock"] is True


def test_a_change_that_does_not_deviate_needs_no_reason_after_the_lock(demo_store, settings):
    _lock_demo(demo_store, settings)
    ctx = acting(demo_store, "demo", "ada", settings=settings)
    with demo_store.transaction():
        ctx.lock.change(ctx.actor, "", "known answer set", deviates=False)
    assert demo_store.gate.deviations(ctx.id) == []
    assert _entries(demo_store)[-1]["detail"]["after_lock"] is True


def test_a_lock_taken_after_the_context_was_resolved_still_counts(demo_store, settings):
    """A page resolved its context before someone else locked: the change must not slip through
    as if the study were still open."""
    stale = acting(demo_store, "demo", "ada", settings=settings)
    assert not stale.lock.locked
    _lock_demo(demo_store, settings)
    with pytest.raises(InputError, match="give a reason"):
        with demo_store.transaction():
            stale.lock.change(stale.actor, "", "probe", "a", "b")
    with pytest.raises(Conflict, match="already locked: the lock can no longer change"):
        thresholds.lock_thresholds(stale, "a small test study")


def test_a_threshold_changed_after_the_lock_is_the_token_holders_deviation(demo_store, settings):
    _lock_demo(demo_store, settings)
    ctx = acting(demo_store, "demo", "ada", settings=settings)
    systems = {"system_a": "finetuned", "system_b": "base"}
    with pytest.raises(InputError, match="a new threshold now would change"):
        thresholds.add_threshold(ctx, "human_win_rate", systems, None, 0.5)
    thresholds.add_threshold(ctx, "human_win_rate", systems, None, 0.5, "the bar was left out")
    (deviation,) = thresholds.threshold_deviations(ctx)
    assert deviation["changed_by"] == "ada" and deviation["before"] == "(none)"


def test_reads_without_a_link_cannot_record_anything(demo_store, settings):
    ctx = reading(demo_store, "demo", settings)
    with pytest.raises(Forbidden, match="needs a personal link"):
        thresholds.add_threshold(ctx, "final_review_acceptable_rate", {}, ">=", 0.5)


@pytest.mark.parametrize("action", sorted(auth.PERMISSIONS))
def test_every_governance_action_refuses_the_roles_it_does_not_name(action):
    for role in auth.ROLES:
        actor = Actor("pat", role, 1)
        if role in auth.PERMISSIONS[action]:
            auth.require(actor, action)
        else:
            with pytest.raises(Forbidden, match=f"pat \\({role}\\) may not {action}"):
                auth.require(actor, action)


def test_a_name_is_no_actor():
    with pytest.raises(TypeError, match="needs an authenticated Actor"):
        auth.require("cli", "lock the thresholds")


def test_a_revoked_link_is_no_actor(store):
    actor = person(store, "gone", "admin")
    with store.transaction():
        store.people.revoke_reviewer(actor.reviewer_id)
    with pytest.raises(Forbidden, match="revoked"):
        Actor.of(store.people.reviewer("gone"))


def test_open_study_names_the_missing_study(store, settings):
    with pytest.raises(Exception, match="no study named 'nope'"):
        context.open_study(store, settings, "nope", None)
