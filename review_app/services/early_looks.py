"""Looks before the lock at figures that can stand in for the outcomes: the agreement with the
humans of a judge whose verdicts were imported or favour one system almost always, and
reviewers' known-answer accuracy. Each is recorded (who, when, the figures shown) and listed
in the report under "seen before the lock", beside the shadow studies: other studies over the
same eval-set content, whose outcomes are this study's too."""

from __future__ import annotations

import json

from review_app import auth, stats
from review_app.auth import Actor
from review_app.services import audit
from review_app.services.context import StudyContext
from review_app.services.study_data import StudyData
from review_app.store import Store

__all__ = [
    "FAVOURS_SHARE",
    "LOOK",
    "early_looks",
    "record_look",
    "revealing_judges",
    "seen_before_lock",
    "shadow_studies",
]

# The audit action of a look before the lock at figures that can stand in for the outcomes.
LOOK = "look before the lock"
# A judge that picks one system on more than this share of its comparisons is nearly a constant:
# its agreement with the humans is the humans' win rate for that system.
FAVOURS_SHARE = 0.9
# Where a judge's verdicts come from when they were imported rather than produced here.
_IMPORTED = "import"


def revealing_judges(data: StudyData) -> dict[str, str]:
    """Judge label -> why its agreement with the humans reads as an outcome: its verdicts were
    imported (anyone can write an oracle that always names the candidate), it is a jury over
    such verdicts, or its combined verdicts favour one system on more than 90% of the
    comparisons that system is in. Deliberately silent on which system."""
    imported = {label for label, info in data.judges.items() if info.source == _IMPORTED}
    out = {label: "its verdicts were imported" for label in imported}
    for label, members in data.juries.items():
        if imported & set(members):
            out[label] = "a jury over imported verdicts"
    for judge in stats.favouring_judges_of(data.encoded, FAVOURS_SHARE):
        out.setdefault(
            judge,
            f"its verdicts favour one system on more than {FAVOURS_SHARE:.0%} of its comparisons",
        )
    return out


def record_look(ctx: StudyContext, actor: Actor, what: str, figures: list[dict]) -> None:
    """Record that `actor` was shown `figures` of `what` before the lock. A look that shows one
    person exactly what their previous look of the same kind showed adds nothing and is not
    recorded again."""
    auth.require(actor, "look at outcomes")
    figures = json.loads(json.dumps(figures))
    for look in reversed(early_looks(ctx.store, ctx.id)):
        if look["actor"] == actor.name and look["what"] == what:
            if look["figures"] == figures:
                return
            break
    with ctx.store.transaction():
        audit.record(ctx.store, actor.name, LOOK, ctx.id, what=what, figures=figures)


def early_looks(store: Store, study_id: int) -> list[dict]:
    """Every recorded look before the lock of one study, oldest first: when, who, what and the
    figures shown."""
    looks = []
    for entry in store.audit.audit_entries(study_id):
        if entry["action"] != LOOK:
            continue
        detail = json.loads(entry["detail"])
        looks.append(
            {
                "at": entry["at"],
                "actor": entry["actor"],
                "what": detail.get("what", ""),
                "figures": detail.get("figures", []),
            }
        )
    return looks


def shadow_studies(store: Store, study_id: int) -> list[dict]:
    """Every other study over the same eval set or a copy of it (same content hash) sharing at
    least two systems with this one: study, eval_set, created_at, locked_at (None while
    unlocked), the shared systems."""
    own = {s for pair in store.studies.comparisons(study_id) for s in pair}
    out = []
    for other in store.gate.studies_on_same_content(study_id):
        shared = own & set((other["systems"] or "").split(","))
        if len(shared) >= 2:
            out.append(
                {
                    "study": other["study"],
                    "eval_set": other["eval_set"],
                    "created_at": other["created_at"],
                    "locked_at": other["locked_at"],
                    "systems": sorted(shared),
                }
            )
    return out


def seen_before_lock(ctx: StudyContext) -> dict:
    """What the report lists under "seen before the lock": this study's recorded looks and its
    shadow studies' (each naming its study), and the shadow studies themselves. Looks after
    this study's lock are left out: by then the outcomes were visible anyway."""
    locked_at = ctx.lock.row["locked_at"] if ctx.lock.row else None
    shadows = shadow_studies(ctx.store, ctx.id)
    looks = [{"study": ctx.name, **look} for look in early_looks(ctx.store, ctx.id)]
    for shadow in shadows:
        row = ctx.store.studies.require_study(shadow["study"])
        looks += [{"study": shadow["study"], **look} for look in early_looks(ctx.store, row["id"])]
    if locked_at is not None:
        looks = [look for look in looks if look["at"] <= locked_at]
    return {"looks": sorted(looks, key=lambda look: look["at"]), "shadow_studies": shadows}
