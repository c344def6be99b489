"""Files in and out of a workspace: imports of outputs, votes and verdicts (creating the study an
import names), from a path or uploaded in the app, and exports in the columns the importers
read, so exports round-trip."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

from review_app import importers
from review_app.errors import Conflict, InputError, NotFound, ReviewAppError
from review_app.services.studies import create_study
from review_app.store import Store


def import_outputs(store: Store, path: str | Path, eval_set: str, replace: bool = False):
    return importers.import_outputs(store, path, eval_set, replace=replace)


def import_votes(store: Store, path: str | Path, study: str, eval_set: str | None = None):
    """Import votes; the study is created over `eval_set` first when it does not exist yet
    (in the same transaction, so a failed import leaves no empty study behind)."""
    with store.transaction():
        _study_for_import(store, study, eval_set)
        return importers.import_votes(store, path, study)


def import_verdicts(store: Store, path: str | Path, study: str, eval_set: str | None = None):
    """Import verdicts, creating the study as `import_votes` does."""
    with store.transaction():
        _study_for_import(store, study, eval_set)
        return importers.import_verdicts(store, path, study)


UPLOAD_KINDS = ("outputs", "votes", "verdicts")


def import_upload(
    store: Store,
    kind: str,
    filename: str,
    content: bytes,
    eval_set: str | None = None,
    study: str | None = None,
    replace: bool = False,
) -> importers.ImportSummary:
    """Import a file uploaded in the app exactly as the CLI imports one: the same formats (told
    apart by the file name's extension), checks and single transaction, so a failed upload
    changes nothing. Errors and the summary name the uploaded file, not where it was kept."""
    if kind not in UPLOAD_KINDS:
        raise InputError(f"unknown upload {kind!r}; choose one of {', '.join(UPLOAD_KINDS)}")
    name = Path(filename).name
    if not name:
        raise InputError("the uploaded file has no name")
    with tempfile.TemporaryDirectory(prefix="review-app-upload-") as folder:
        path = Path(folder) / name
        path.write_bytes(content)
        try:
            if kind == "outputs":
                if not (eval_set or "").strip():
                    raise InputError("name the eval set these outputs belong to")
                summary = import_outputs(store, path, eval_set.strip(), replace=replace)
            else:
                if not (study or "").strip():
                    raise InputError(f"name the study these {kind} belong to")
                importer = import_votes if kind == "votes" else import_verdicts
                summary = importer(store, path, study.strip(), (eval_set or "").strip() or None)
        except ReviewAppError as exc:
            raise type(exc)(str(exc).replace(str(path), name)) from exc
    summary.file = name
    return summary


def _study_for_import(store: Store, study: str, eval_set: str | None) -> None:
    row = store.study(study)
    if row is not None:
        if eval_set is not None and store.require_eval_set(eval_set)["id"] != row["eval_set_id"]:
            raise Conflict(f"study {study!r} uses a different eval set than {eval_set!r}")
        return
    if eval_set is None:
        raise NotFound(f"no study named {study!r}; name an eval set to create it over")
    create_study(store, study, eval_set, comparisons=[])


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
    return _export_rows(store, what, store.require_study(study))


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
