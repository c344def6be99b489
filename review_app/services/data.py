"""Files in and out of a workspace: imports of outputs, votes and verdicts (creating the study an
import names), and exports in the columns the importers read, so exports round-trip."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from review_app import importers
from review_app.errors import Conflict, InputError, NotFound
from review_app.services import audit
from review_app.services.studies import create_study, infer_candidate, set_candidate
from review_app.services.thresholds import require_outcomes_visible
from review_app.store import Store


def import_outputs(
    store: Store, path: str | Path, eval_set: str, replace: bool = False, by: str = "cli"
):
    with store.transaction():
        summary = importers.import_outputs(store, path, eval_set, replace=replace)
        _record_import(store, by, "outputs", path, summary, None, eval_set=eval_set)
        return summary


def import_votes(
    store: Store,
    path: str | Path,
    study: str,
    eval_set: str | None = None,
    candidate: str | None = None,
    by: str = "cli",
    reason: str = "",
):
    """Import votes; the study is created over `eval_set` first when it does not exist yet
    (in the same transaction, so a failed import leaves no empty study behind). A study without
    a candidate gets `candidate`, or one inferred from its comparisons, and the summary says which.
    After the lock an import changes what the gate decides on: it needs a reason and is recorded
    as a deviation the report lists."""
    return _import_into_study(
        importers.import_votes, "votes", store, path, study, eval_set, candidate, by, reason
    )


def import_verdicts(
    store: Store,
    path: str | Path,
    study: str,
    eval_set: str | None = None,
    candidate: str | None = None,
    by: str = "cli",
    reason: str = "",
):
    """Import verdicts, creating the study and naming its candidate as `import_votes` does."""
    return _import_into_study(
        importers.import_verdicts, "verdicts", store, path, study, eval_set, candidate, by, reason
    )


def _import_into_study(importer, kind, store, path, study, eval_set, candidate, by, reason):
    with store.transaction():
        _study_for_import(store, study, eval_set)
        row = store.require_study(study)
        locked = store.threshold_lock(row["id"]) is not None
        summary = importer(store, path, study)
        _candidate_for_import(store, study, candidate, summary)
        changed = bool(summary.added)
        if locked and changed:
            # Raising here rolls the whole import back: nothing lands without a stated reason.
            if not reason.strip():
                raise Conflict(
                    f"the thresholds of study {study!r} are locked: {kind} imported now would "
                    "change what the gate decides on; give a reason, which the report lists as "
                    "a deviation"
                )
            store.insert_deviation(
                row["id"], by, f"{kind} as locked", summary.line(), reason.strip()
            )
        _record_import(
            store, by, kind, path, summary, row["id"], after_lock=locked, reason=reason.strip()
        )
        return summary


def _record_import(store, by, kind, path, summary, study_id, **detail) -> None:
    with open(path, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    audit.record(
        store,
        by,
        f"{kind} imported",
        study_id,
        file=Path(path).name,
        sha256=digest,
        rows=summary.rows,
        added=summary.added,
        **detail,
    )


def _candidate_for_import(
    store: Store, study: str, candidate: str | None, summary: importers.ImportSummary
) -> None:
    row = store.require_study(study)
    if candidate is not None:
        if candidate != row["candidate"]:
            set_candidate(store, study, candidate)
        summary.notes.append(f"candidate: {candidate}")
        return
    if row["candidate"] is not None:
        return
    inferred = infer_candidate(store.comparisons(row["id"]))
    if inferred is not None:
        name, why = inferred
        store.set_candidate(row["id"], name)
        summary.notes.append(f"candidate: {name} (inferred: {why}; name another to change it)")


def _study_for_import(store: Store, study: str, eval_set: str | None) -> None:
    row = store.study(study)
    if row is not None:
        if eval_set is not None and store.require_eval_set(eval_set)["id"] != row["eval_set_id"]:
            raise Conflict(f"study {study!r} uses a different eval set than {eval_set!r}")
        return
    if eval_set is None:
        raise NotFound(f"no study named {study!r}; name an eval set to create it over")
    create_study(store, study, eval_set, comparisons=[], by="import")


# The columns of each export, in order (also the header of an export with no rows).
EXPORT_COLUMNS = {
    "votes": importers.VOTE_COLUMNS + importers.VOTE_OPTIONAL,
    "verdicts": importers.VERDICT_COLUMNS + importers.VERDICT_OPTIONAL,
    "pairs": (
        "pair_id",
        "item_id",
        "category",
        "system_x",
        "system_y",
        "prompt",
        "output_x",
        "output_y",
    ),
}


EXPORTS = tuple(EXPORT_COLUMNS)


def export_rows(store: Store, what: str, study: str) -> Iterator[dict]:
    """Rows of an export, in the same columns the importers read (so exports round-trip).
    The study and export kind are checked before the first row is asked for."""
    if what not in EXPORTS:
        raise InputError(f"unknown export {what!r}; choose one of {', '.join(EXPORTS)}")
    study_row = store.require_study(study)
    if what in ("votes", "verdicts"):
        # Who won each pair is an outcome: exported before the lock, the bar could be set to it.
        require_outcomes_visible(store, study_row)
    return _export_rows(store, what, study_row)


def _export_rows(store: Store, what: str, study_row: dict) -> Iterator[dict]:
    if what == "votes":
        frame = store.votes_frame(study_row["id"])
        pairs = store.pairs_frame(study_row["id"]).set_index("pair_id")
        for vote in frame.itertuples():
            pair = pairs.loc[vote.pair_id]
            yield {
                "item_id": pair.item_key,
                "system_a": pair.system_x,
                "system_b": pair.system_y,
                "reviewer": vote.reviewer,
                "winner": vote.winner,
                "shown_left": vote.shown_left or "",
                "rationale": vote.rationale,
                "created_at": vote.created_at,
            }
    elif what == "verdicts":
        for v in store.verdict_rows(study_row["id"]):
            yield {
                "item_id": v["item_key"],
                "system_a": v["system_x"],
                "system_b": v["system_y"],
                "judge": v["judge"],
                "winner": v["winner"] or "",
                "first": v["first_system"],
                "explanation": v["explanation"],
            }
    elif what == "pairs":
        for p in store.pairs_frame(study_row["id"]).itertuples():
            yield {
                "pair_id": int(p.pair_id),
                "item_id": p.item_key,
                "category": p.category,
                "system_x": p.system_x,
                "system_y": p.system_y,
                "prompt": p.prompt,
                "output_x": p.output_x,
                "output_y": p.output_y,
            }
