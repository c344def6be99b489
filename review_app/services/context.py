"""A use case's view of one study, resolved once where the use case is entered (a page run or a
command): the study row, its `Lock`, thresholds, plan, minimum and candidate, and the `Actor`.
The `Lock` is the one home of what the lock decides: whether outcomes are visible, and what a
change after it costs (a reason, a deviation and an audit entry, in the caller's transaction)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

from review_app import auth, gate
from review_app.auth import Actor
from review_app.errors import Conflict, Forbidden, InputError, OutcomesHidden
from review_app.services import audit, study_data
from review_app.settings import Settings
from review_app.store import Store

__all__ = ["Lock", "StudyContext", "lock_of", "open_study"]

T = TypeVar("T")


class Lock:
    """A study's pre-registration as it stands: None before the lock, the lock row after it.
    Before the lock outcomes stay hidden, so no bar can be set after seeing them; after it,
    every change to what the gate decides on needs a reason and is recorded as a deviation."""

    def __init__(self, store: Store, study: dict, row: dict | None):
        self._store = store
        self._study = study
        self.row = row

    @property
    def study_id(self) -> int:
        return self._study["id"]

    @property
    def locked(self) -> bool:
        return self.row is not None

    @property
    def visible(self) -> bool:
        """Whether the study's outcomes (win rates, agreement by system, pass rates...) may be
        shown: only once the thresholds are locked."""
        return self.row is not None

    def require_visible(self) -> None:
        if not self.visible:
            raise OutcomesHidden(
                f"outcomes of study {self._study['name']!r} stay hidden until its thresholds "
                "are locked, so the pass bar cannot be tuned to the results"
            )

    def require_unlocked(self, what: str) -> None:
        """Conflict once locked: for what the lock pins outright (the candidate, the lock)."""
        if self._current() is not None:
            raise Conflict(
                f"the thresholds of study {self._study['name']!r} are already locked: {what} "
                "can no longer change"
            )

    def require_reason(self, reason: str, what: str) -> None:
        """InputError when the study is locked and `reason` is blank: `what`, done now, would
        change what the gate decides on. For checks made before any work is done; `change`
        checks again inside the transaction."""
        if self.locked and not reason.strip():
            raise InputError(self._needs_reason(what))

    def change(
        self,
        actor: Actor,
        reason: str,
        what: str,
        before: str = "",
        after: str = "",
        *,
        deviates: bool = True,
        **detail: Any,
    ) -> bool:
        """Record one governance change of the study, inside the caller's transaction: its audit
        entry (`what`, by `actor`) always; after the lock, when the change `deviates` from what
        the lock pinned, also a deviation from `before` to `after`, which needs a reason.
        Returns whether the study was locked. The lock is read again here, so a lock taken since
        the context was resolved still counts."""
        self.row = self._current()
        reason = reason.strip()
        if self.row is not None and deviates:
            if not reason:
                raise InputError(self._needs_reason(what))
            self._store.gate.insert_deviation(self._study["id"], actor.name, before, after, reason)
            detail = {**detail, "deviation": {"before": before, "after": after}}
        audit.record(
            self._store,
            actor.name,
            what,
            self._study["id"],
            **detail,
            after_lock=self.row is not None,
            reason=reason,
        )
        return self.row is not None

    def _current(self) -> dict | None:
        return self._store.gate.threshold_lock(self._study["id"])

    def _needs_reason(self, what: str) -> str:
        return (
            f"the thresholds of study {self._study['name']!r} are locked: {what} now would "
            "change what the gate decides on; give a reason, which the report lists as a "
            "deviation"
        )

    # What the lock pinned.

    @property
    def candidate(self) -> str | None:
        return (self.row or {}).get("candidate")

    @property
    def plan(self) -> dict | None:
        plan = (self.row or {}).get("plan")
        return json.loads(plan) if isinstance(plan, str) else plan

    @property
    def min_items(self) -> int | None:
        """The minimum the lock recorded (items; a lock made before items were counted recorded
        comparisons, which the gate then reads as items: never fewer units than it planned)."""
        return (self.row or {}).get("min_comparisons")


@dataclass(frozen=True)
class StudyContext:
    """One study as a use case sees it, read once. `actor` is None only for reads made without a
    personal link (a command run without a token): anything recorded needs `require(action)`."""

    store: Store
    settings: Settings
    study: dict
    lock: Lock
    actor: Actor | None
    # Figures derived once for this use case run (see `memo`).
    _memo: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def id(self) -> int:
        return self.study["id"]

    @property
    def name(self) -> str:
        return self.study["name"]

    @property
    def candidate(self) -> str | None:
        """The system the gate decides on: as pinned by the lock, else as named on the study."""
        return self.lock.candidate or self.study["candidate"]

    @property
    def min_items(self) -> int:
        """Items each threshold needs before it can be decided: as locked, else as set."""
        return self.lock.min_items or self.settings.gate_min_items

    @cached_property
    def threshold_rows(self) -> list[dict]:
        """The study's thresholds as stored (with ids), in the order they were added."""
        return self.store.gate.thresholds(self.id)

    @cached_property
    def thresholds(self) -> list[gate.Threshold]:
        return [
            gate.Threshold(r["metric"], r["params"], r["comparator"], r["value"])
            for r in self.threshold_rows
        ]

    def data(self, split: str = "all") -> study_data.StudyData:
        """The study's data (`study_data.load`), looked up once for this use case run."""
        return self.memo(
            ("data", split), lambda: study_data.load(self.store, self.study, self.settings, split)
        )

    def memo(self, key: Any, compute: Callable[[], T]) -> T:
        """`compute()` once for this context, under `key`. A context lives for one page run or one
        command, so the parts of a screen (the gate, the final review, the report) share what one
        of them read or computed; a change made since is seen by the next run's context."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def forget(self, *keys: Any) -> None:
        """Drop what `memo` kept under `keys`: for a use case that changed it."""
        for key in keys:
            self._memo.pop(key, None)

    def require(self, action: str) -> Actor:
        """The actor, when their role may take `action` (see `auth.PERMISSIONS`)."""
        if self.actor is None:
            raise Forbidden(
                f"to {action} on study {self.name!r} you act in your own name: it needs a personal link"
            )
        auth.require(self.actor, action)
        return self.actor


def open_study(store: Store, settings: Settings, study: str, actor: Actor | None) -> StudyContext:
    """The context of the study named `study` (NotFound when there is none)."""
    row = store.studies.require_study(study)
    return StudyContext(store, settings, row, lock_of(store, row), actor)


def lock_of(store: Store, study_row: dict) -> Lock:
    """The study's lock as it stands now."""
    return Lock(store, study_row, store.gate.threshold_lock(study_row["id"]))
