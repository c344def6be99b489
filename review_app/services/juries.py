"""Juries: a virtual judge whose verdict on a comparison is the majority of several judges'
combined verdicts (its pointwise scores the mean of theirs). A jury is stored with its members,
so thresholds can name it (`jury/NAME`) before the lock, and it is calibrated like any judge."""

from __future__ import annotations

import json
import re

import pandas as pd

from review_app import stats
from review_app.errors import Conflict, InputError
from review_app.services import study_data
from review_app.services.context import StudyContext
from review_app.settings import Settings
from review_app.store import Store

__all__ = ["create_jury", "jury_label", "jury_scores", "list_juries", "member_scores"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def jury_label(name: str) -> str:
    return stats.JURY_PREFIX + name


def create_jury(ctx: StudyContext, name: str, members: list[str], reason: str = "") -> dict:
    """Store a jury of `members` (judge labels of the study, at least two, none a jury); its
    verdicts appear as judge `jury/NAME` wherever judges do. A name is used once per study.
    After the lock a jury could be chosen to fit the results a threshold already names, so it
    needs a reason and is recorded as a deviation the report lists."""
    actor = ctx.require("create a jury")
    study = ctx.name
    if not _NAME.match(name or ""):
        raise InputError(
            f"jury name {name!r}: use letters, digits, '-', '_' or '.', starting with a letter "
            "or digit"
        )
    members = [m.strip() for m in members if m.strip()]
    if len(set(members)) != len(members):
        raise InputError(f"jury {name}: a judge is named twice in {', '.join(members)}")
    if len(members) < 2:
        raise InputError(f"jury {name}: name at least two judges, got {len(members)}")
    known = study_data.load(ctx.store, ctx.study, ctx.settings).judges
    if jury_label(name) in known:
        raise Conflict(f"study {study} already has a jury or judge named {jury_label(name)}")
    for member in members:
        if member.startswith(stats.JURY_PREFIX):
            raise InputError(f"jury {name}: {member} is a jury; members are judges")
        if member not in known:
            options = ", ".join(j for j in known if not j.startswith(stats.JURY_PREFIX))
            raise InputError(
                f"jury {name}: study {study} has no judge {member!r} (judges: {options})"
            )
    ctx.lock.require_reason(reason, f"a jury ({jury_label(name)})")
    with ctx.store.transaction():
        if any(j["name"] == name for j in ctx.store.calibration.juries(ctx.id)):
            raise Conflict(f"study {study} already has a jury named {name}")
        jury_id = ctx.store.calibration.insert_jury(ctx.id, name, members, actor.name)
        ctx.lock.change(
            actor,
            reason,
            "created jury",
            f"no {jury_label(name)} at the lock",
            f"{jury_label(name)} of {', '.join(members)}",
            name=name,
            members=members,
        )
    return {"id": jury_id, "name": name, "label": jury_label(name), "members": members}


def list_juries(store: Store, study: str) -> list[dict]:
    rows = store.calibration.juries(store.studies.require_study(study)["id"])
    return [{**row, "label": jury_label(row["name"])} for row in rows]


def jury_scores(
    store: Store, study: str, name: str, settings: Settings | None = None
) -> pd.DataFrame:
    """The jury's pointwise scores (`pair_id, system, criterion, score`): per comparison, system
    and criterion, the mean over its members' pointwise verdicts (both orders)."""
    settings = settings or Settings.from_env()
    study_row = store.studies.require_study(study)
    jury = next((j for j in store.calibration.juries(study_row["id"]) if j["name"] == name), None)
    if jury is None:
        raise InputError(f"study {study} has no jury named {name}")
    members = member_scores(store, study_row["id"])
    own = members[members["judge"].isin(jury["members"])]
    return stats.jury_scores(own[["pair_id", "system", "criterion", "score"]])


SCORE_COLUMNS = ["judge", "pair_id", "system", "criterion", "score"]


def member_scores(store: Store, study_id: int) -> pd.DataFrame:
    """Every pointwise score of the study's judge runs, one row per verdict, system and
    criterion: `judge` (the run's label), `pair_id, system, criterion, score`."""
    labels = study_data.run_labels(store, study_id)
    rows = []
    for row in store.calibration.verdict_scores(list(labels)):
        for system, criteria in json.loads(row["scores"]).items():
            for criterion, score in criteria.items():
                rows.append(
                    (labels[row["run_id"]], row["pair_id"], system, criterion, float(score))
                )
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)
