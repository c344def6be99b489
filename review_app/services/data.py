"""Files in and out of a workspace: imports of outputs, votes and verdicts (creating the study an
import names), from a path or uploaded in the app, and exports in the columns the importers read,
so exports round-trip.

An import never holds the workspace for long, so reviewers never wait behind it. Every row is
checked first while the changes are staged in short transactions, out of sight; a failed check
discards them, leaving nothing behind. Once every row has passed, the import is committed and
its staged batches are published, one short transaction each, with pauses between them that let
reviewers' votes through. If the import's process dies while publishing, the next import (or
server start) finishes it; one that died while checking is discarded. Re-importing a file that
was imported is a no-op."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from review_app import auth, importers, stats
from review_app.auth import Actor
from review_app.errors import Conflict, InputError, NotFound, ReviewAppError
from review_app.importers import ImportSummary
from review_app.names import checked_name
from review_app.services import audit, study_data
from review_app.services.context import Lock, lock_of
from review_app.services.import_recovery import HOST, abandoned, recover_imports
from review_app.services.studies import create_study_for_import, infer_candidate, name_candidate
from review_app.settings import Settings
from review_app.store import Store, import_lock, locked_what

__all__ = [
    "EXPORTS",
    "EXPORT_COLUMNS",
    "HOST",
    "UPLOAD_KINDS",
    "export_rows",
    "finish_abandoned",
    "import_outputs",
    "import_upload",
    "import_verdicts",
    "import_votes",
    "recover_imports",
]

# How long an import waits between two of its transactions, by how long the last one took:
# SQLite's busy handler has a waiting writer retry every 25 ms at first, every 50 ms once it has
# waited 0.13 s and every 100 ms after 0.23 s, so a pause a little longer than that interval
# always lets a vote waiting behind the import through. A transaction slower than that means a
# loaded machine, where a vote's process is slowed as much as the import's and so are the gaps
# between a vote's own transactions: the pause is then as long as the transaction took, so the
# import holds the write lock at most half of the time.
PAUSES_S = ((0.12, 0.03), (0.22, 0.055))


def import_outputs(
    store: Store, path: str | Path, eval_set: str, replace: bool = False, *, actor: Actor
) -> ImportSummary:
    """Import model outputs into `eval_set`, creating it if needed (see `importers.check_outputs`)."""
    auth.require(actor, "import data")
    eval_set = checked_name(eval_set, "eval set name")
    summary = ImportSummary(str(path))
    _import(
        store,
        "outputs",
        path,
        eval_set,
        {"replace": replace, **_recorded(path, actor)},
        [import_lock("eval_set", eval_set)],
        lambda: importers.check_outputs(store, path, eval_set, replace, summary),
        summary,
    )
    return summary


def import_votes(
    store: Store,
    path: str | Path,
    study: str,
    eval_set: str | None = None,
    candidate: str | None = None,
    *,
    actor: Actor,
    reason: str = "",
) -> ImportSummary:
    """Import votes; the study is created over `eval_set` when it does not exist yet (when the
    import is published, so a failed import leaves no empty study behind). A study without a
    candidate gets `candidate`, or one inferred from its comparisons, and the summary says which.
    After the lock, votes that change anything need a reason and are recorded as a deviation
    the report lists."""
    return _import_into_study(
        store, "votes", importers.check_votes, path, study, eval_set, candidate, actor, reason
    )


def import_verdicts(
    store: Store,
    path: str | Path,
    study: str,
    eval_set: str | None = None,
    candidate: str | None = None,
    *,
    actor: Actor,
    reason: str = "",
) -> ImportSummary:
    """Import verdicts, creating the study and naming its candidate as `import_votes` does."""
    return _import_into_study(
        store, "verdicts", importers.check_verdicts, path, study, eval_set, candidate, actor, reason
    )


def _import_into_study(
    store: Store,
    kind: str,
    check,
    path: str | Path,
    study: str,
    eval_set: str | None,
    candidate: str | None,
    actor: Actor,
    reason: str,
) -> ImportSummary:
    auth.require(actor, "import data")
    study = checked_name(study, "study name")
    if eval_set is not None:
        eval_set = checked_name(eval_set, "eval set name")
    summary = ImportSummary(str(path))
    locks = [import_lock("study", study)]
    if eval_set is not None:
        locks.append(import_lock("eval_set", eval_set))

    def changes() -> Iterator[list[dict]]:
        row = store.studies.study(study)
        if row is None:
            if eval_set is None:
                raise NotFound(f"no study named {study!r}; name an eval set to create it over")
            eval_set_id = store.catalog.require_eval_set(eval_set)["id"]
        else:
            eval_set_id = row["eval_set_id"]
            if (
                eval_set is not None
                and store.catalog.require_eval_set(eval_set)["id"] != eval_set_id
            ):
                raise Conflict(f"study {study!r} uses a different eval set than {eval_set!r}")
        batches = check(store, path, row, eval_set_id, summary)
        if row is None:
            return batches
        return _refused_after_lock(batches, lock_of(store, row), reason, kind)

    options = {"eval_set": eval_set, "candidate": candidate, "reason": reason.strip()}
    _import(store, kind, path, study, options | _recorded(path, actor), locks, changes, summary)
    return summary


def _refused_after_lock(batches: Iterator[list[dict]], lock: Lock, reason: str, kind: str):
    # Refusing at the first change discards everything staged: nothing lands without a reason.
    for batch in batches:
        lock.require_reason(reason, f"{kind} imported")
        yield batch


def _recorded(path: str | Path, actor: Actor) -> dict:
    """What the audit log keeps of an import: who, and the file's name and content hash (known
    once the import has read the file, see `_stage`)."""
    return {
        "by": actor.name,
        "actor": [actor.name, actor.role, actor.reviewer_id],
        "file_name": Path(path).name,
        "sha256": None,
    }


def _importer(options: dict) -> Actor:
    """Who an import acts for, as its job recorded them: a job may be finished by another
    process (see `recover_imports`), long after its importer was authenticated."""
    name, role, reviewer_id = options.get("actor") or (options["by"], "admin", 0)
    return Actor(name, role, reviewer_id)


def _import(
    store: Store,
    kind: str,
    path: str | Path,
    target: str,
    options: dict,
    locks: list[str],
    changes: Callable[[], Iterator[Any]],
    summary: ImportSummary,
) -> None:
    """Check and stage, then publish. `changes` is called once this import holds its locks, so
    what it reads of the workspace cannot be changed by another import meanwhile; it yields
    batches of changes (`importers.check_outputs`, `check_votes` or `check_verdicts`)."""
    job_id = _start(store, kind, path, target, options, locks)
    pacer = _Pacer()  # one for the whole import: its first publishing transaction waits too
    try:
        staged = _stage(store, job_id, kind, changes(), options, summary, pacer)
    except BaseException as exc:
        with contextlib.suppress(Exception):
            _discard(store, job_id)
        if _disk_full(exc):
            raise Conflict(
                f"{path}: the disk is full; nothing was imported. Free some space and import "
                "it again"
            ) from exc
        raise
    if not staged:
        with store.transaction():
            _record_import(store, {"kind": kind, "target": target, "options": options}, summary)

        return
    try:
        _publish(store, store.imports.import_job(job_id), summary, pacer)
    except Exception as exc:
        if _disk_full(exc):
            # Kept for later, the staged rows would hold the very space every later write
            # needs: they are dropped, and importing the file again writes what is missing.
            with contextlib.suppress(Exception):
                _discard(store, job_id)
            raise Conflict(
                f"{path}: the disk filled up while the checked rows were being written; those "
                "not yet written were dropped to free the space. Free some space and import "
                "the file again: rows already written are kept and skipped"
            ) from exc
        _abandon(store, job_id)
        raise Conflict(
            f"{path}: every row was checked, but writing them stopped ({exc}); the next "
            "import or server start finishes it"
        ) from exc
    except BaseException:
        _abandon(store, job_id)
        raise


def _disk_full(exc: BaseException) -> bool:
    """Whether `exc` is the database refusing a write for want of space (SQLite's
    SQLITE_FULL, PostgreSQL's disk_full)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return (
        code == sqlite3.SQLITE_FULL
        or "database or disk is full" in str(exc)
        or type(exc).__name__ == "DiskFull"
    )


def _abandon(store: Store, job_id: int) -> None:
    """Leave a committed import for the next import or server start to finish: its rows stay
    staged, and a heartbeat of 0 marks its owner as gone."""
    with contextlib.suppress(Exception), store.transaction():
        store.imports.touch_import_job(job_id, heartbeat=0)


def _start(
    store: Store, kind: str, path: str | Path, target: str, options: dict, locks: list[str]
) -> int:
    """Record the import and take its locks; refused while another import holds one of them
    (one whose process died is dealt with first)."""
    job_id, holder = _try_start(store, kind, path, target, options, locks)
    if holder is not None and abandoned(holder):
        recover_imports(store)
        job_id, holder = _try_start(store, kind, path, target, options, locks)
    if holder is not None:
        raise Conflict(
            f"{holder['file']} is being imported into {locked_what(holder['lock_name'])} "
            f"(since {holder['started_at']}); import again once it has finished"
        )
    return job_id


def _try_start(
    store: Store, kind: str, path: str | Path, target: str, options: dict, locks: list[str]
) -> tuple[int | None, dict | None]:
    with store.transaction():
        holder = store.imports.import_lock_holder(locks)
        if holder is not None:
            return None, holder
        job_id = store.imports.insert_import_job(
            kind, str(path), target, options, os.getpid(), HOST
        )
        store.imports.insert_import_locks(job_id, locks)
        return job_id, None


class _Pacer:
    """Spaces an import's transactions so that writers waiting behind one get their turn."""

    def __init__(self) -> None:
        self._ready_at = 0.0

    def __enter__(self) -> None:
        delay = self._ready_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self._started = time.monotonic()

    def __exit__(self, *exc) -> None:
        ended = time.monotonic()
        self.took = ended - self._started
        pause = next((pause for longest, pause in PAUSES_S if self.took <= longest), self.took)
        self._ready_at = ended + pause


def _pack(changes: list[dict]) -> bytes:
    return json.dumps(changes, ensure_ascii=False, separators=(",", ":")).encode()


def _unpack(payload: bytes) -> list[dict]:
    return json.loads(payload)


def _stage(
    store: Store,
    job_id: int,
    kind: str,
    batches: Iterator[Any],
    options: dict,
    summary: ImportSummary,
    pacer: _Pacer,
) -> int:
    """Stage every batch, then commit the import, recording in its `options` the hash of the
    file it read. Returns the number of batches (0: nothing to change, and the import is
    forgotten). Each batch is recorded in its own private transaction (staged rows are the
    import's own: on PostgreSQL, reviewers' votes never wait for them); the rows of an outputs
    import go to its staging file when it has one, outside any transaction of the workspace,
    and that file is on disk before the import is committed."""
    staging_file = store.imports.open_staging_file(job_id) if kind == "outputs" else None
    # A transaction that only records a batch staged in a file is as short as a vote's: a vote
    # waits no longer behind it than behind another vote, so it needs no pause.
    waits = store.private_writes_wait and staging_file is None
    paced = pacer if waits else contextlib.nullcontext()
    staged = 0
    try:
        for batch in batches:
            staged += 1
            if staging_file is not None:
                staging_file.stage(job_id, staged, *batch)
            with paced, store.transaction(private=True):
                if staging_file is not None:
                    store.imports.stage_import_batch(job_id, staged, b"")
                elif kind == "outputs":
                    store.imports.stage_outputs(job_id, staged, *batch)
                else:
                    store.imports.stage_import_batch(job_id, staged, _pack(batch))
    except BaseException:
        if staging_file is not None:
            staging_file.close(durable=False)
        raise
    if staging_file is not None:
        staging_file.close()
        options["staged_in_file"] = True
    options["sha256"] = summary.sha256.hexdigest()  # every row has been read
    with pacer, store.transaction():
        if not staged:
            store.imports.delete_import_job(job_id)
            store.imports.delete_staging_file(job_id)
            return 0
        # Every row passed its checks: from here on the import is finished, never undone.
        store.imports.set_import_state(job_id, "publishing", options)
    return staged


# A publishing transaction takes as many staged batches (up to MAX_SPAN) as it can write in
# about PUBLISH_S, judged by the last one: fewer transactions, fewer pauses, and still far
# below what a vote may wait.
PUBLISH_S = 0.15
MAX_SPAN = 16


def _publish(
    store: Store, job: dict, summary: ImportSummary | None = None, pacer: _Pacer | None = None
) -> None:
    """Write the job's staged batches into the workspace, a few per transaction, then forget
    it, recording the import in the audit log (and, after a study's lock, as a deviation)."""
    pacer = pacer or _Pacer()
    created = job["kind"] != "outputs" and store.studies.study(job["target"]) is None
    if created:
        with pacer:
            create_study_for_import(
                store, job["target"], job["options"]["eval_set"], _importer(job["options"])
            )
    write = _batch_writer(store, job)
    kept_app_votes = 0
    span = 1
    staged_in_file = job["options"].get("staged_in_file", False)
    with (
        store.imports.staged_outputs(job["id"], staged_in_file),
        store.imports.log_checkpointed_by_caller() as checkpoint,
    ):
        while batches := store.imports.next_import_batches(job["id"], span):
            with pacer, store.transaction():
                kept_app_votes += write(batches) or 0
                store.imports.delete_import_batches_through(job["id"], batches[-1][0])
            span = _next_span(len(batches), pacer.took)
            checkpoint()  # in the pause that lets waiting votes through
    if kept_app_votes and summary is not None:
        summary.count("votes added", -kept_app_votes)
        summary.notes.append(
            f"{kept_app_votes} left out: their reviewers voted on those pairs in the app meanwhile"
        )
    with pacer, store.transaction():
        store.imports.delete_import_job(job["id"])
        _record_import(store, job, summary, created)
    store.imports.delete_staging_file(job["id"])


def _next_span(span: int, took: float) -> int:
    """How many batches the next publishing transaction takes, after `span` took `took` s: in
    proportion, at most twice as many, and between 1 and MAX_SPAN."""
    fits = int(span * PUBLISH_S / max(took, 1e-3))
    return max(1, min(fits, span * 2, MAX_SPAN))


def _record_import(
    store: Store, job: dict, summary: ImportSummary | None, created: bool = False
) -> None:
    """The import's trace: the study's candidate named if it has none, the votes per comparison
    of a study the import `created`, a deviation when it changed a locked study, and its audit
    entry (inside the caller's transaction)."""
    options, kind = job["options"], job["kind"]
    actor = _importer(options)
    study = store.studies.study(job["target"]) if kind != "outputs" else None
    trace = {
        "file": options["file_name"],
        "sha256": options["sha256"],
        "rows": summary.rows if summary is not None else None,
        "added": summary.added if summary is not None else None,
    }
    if study is None:
        audit.record(
            store, actor.name, f"{kind} imported", None, **trace, after_lock=False, reason=""
        )
        return
    lock = lock_of(store, study)
    note = _candidate_for_import(store, lock, study, options.get("candidate"), actor)
    if note and summary is not None:
        summary.notes.append(note)
    if created and kind == "votes":
        planned = _plan_from_votes(store, study)
        trace["reviews_per_pair"] = planned
        if summary is not None:
            summary.notes.append(
                f"reviews per pair: {planned} (the most votes any comparison got in this import; "
                f"`review-app study plan {study['name']} --reviews-per-pair K` changes it)"
            )
    reason = options.get("reason") or ""
    if lock.locked and not reason:
        # Checked unlocked, locked before it was written: the change is still a deviation.
        reason = "the thresholds were locked while this import was being written"
    lock.change(
        actor,
        reason,
        f"{kind} imported",
        f"{kind} as locked",
        summary.line() if summary is not None else options["file_name"],
        deviates=bool(summary.added) if summary is not None else True,
        **trace,
    )


def _plan_from_votes(store: Store, study: dict) -> int:
    """A study made by an import of votes plans the votes it was given: k is the most votes any
    of its comparisons got, so the plan can be reached (a default k of 3 over one vote per item
    would leave the gate interim forever)."""
    k = max(1, store.studies.most_votes_on_a_pair(study["id"]))
    store.studies.set_plan(study["id"], reviews_per_pair=k)
    return k


def _candidate_for_import(
    store: Store, lock: Lock, study: dict, candidate: str | None, actor: Actor
) -> str:
    """Name the study's candidate when the import was told it, or infer one for a study that
    has none; returns what to tell the user ("" when nothing changed)."""
    if candidate is not None:
        if candidate != study["candidate"]:
            name_candidate(store, lock, actor, candidate)
        return f"candidate: {candidate}"
    if study["candidate"] is not None:
        return ""
    inferred = infer_candidate(store.studies.comparisons(study["id"]))
    if inferred is None:
        return ""
    name, why = inferred
    store.studies.set_candidate(study["id"], name)
    return f"candidate: {name} (inferred: {why}; name another to change it)"


def _batch_writer(store: Store, job: dict) -> Callable[[list[tuple[int, bytes]]], int | None]:
    """Writes staged batches, given as (seq, payload) in order, into the workspace."""
    if job["kind"] == "outputs":
        return lambda batches: importers.publish_outputs(
            store, job["target"], job["id"], batches[0][0], batches[-1][0]
        )
    writer = importers.StudyWriter(store, store.studies.require_study(job["target"])["id"])
    write = writer.votes if job["kind"] == "votes" else writer.verdicts
    return lambda batches: write([c for _, payload in batches for c in _unpack(payload)])


def _discard(store: Store, job_id: int) -> None:
    """Forget an import that was not committed, deleting what it staged a little at a time."""
    pacer = _Pacer()
    while True:
        with pacer, store.transaction():
            if store.imports.delete_import_batches(job_id, 10) == 0:
                store.imports.delete_import_job(job_id)
                break
    store.imports.delete_staging_file(job_id)


def finish_abandoned(store: Store, job: dict) -> str:
    """Finish an import whose process died (`recover_imports` took it over) if it was
    committed (every row had been checked), else discard it; says which."""
    what = f"{job['file']} into {job['target']}"
    if job["state"] == "publishing":
        _publish(store, job)
        return f"finished the interrupted import of {what}"
    _discard(store, job["id"])
    return f"discarded the unfinished import of {what}; nothing of it was kept"


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
        "human",
        "prompt",
        "output_x",
        "output_y",
    ),
    # TRL's DPO format, with where each pair came from.
    "preferences": (
        "prompt",
        "chosen",
        "rejected",
        "item_id",
        "chosen_system",
        "rejected_system",
        "n_votes",
    ),
}


EXPORTS = tuple(EXPORT_COLUMNS)


def export_rows(
    store: Store,
    what: str,
    study: str,
    *,
    source: str = stats.HUMANS,
    settings: Settings | None = None,
) -> Iterator[dict]:
    """Rows of an export, in the same columns the importers read (so exports round-trip); for
    `preferences`, training pairs from `source` (humans or a judge, see `preference_rows`).
    The study, export kind and source are checked before the first row is asked for."""
    if what not in EXPORTS:
        raise InputError(f"unknown export {what!r}; choose one of {', '.join(EXPORTS)}")
    study_row = store.studies.require_study(study)
    if what in ("votes", "verdicts", "preferences"):
        # Who won each pair is an outcome: exported before the lock, the bar could be set to it.
        lock_of(store, study_row).require_visible()
    if what == "preferences":
        return preference_rows(store, study_row, source, settings or Settings.from_env())
    return _export_rows(store, what, study_row)


def preference_rows(
    store: Store, study_row: dict, source: str, settings: Settings
) -> Iterator[dict]:
    """Preference pairs for DPO training (TRL's `prompt, chosen, rejected`), one per comparison
    whose outcome is decisive: from humans, the unique most frequent vote when it names a system
    (a tied majority, ties and both-bad leave the comparison out); from a judge, its combined
    verdict when it names a system (orders that disagree count as a tie). `n_votes` is the
    number of votes (or parsed verdicts) behind the outcome."""
    data = study_data.load(store, study_row, settings)
    if source == stats.HUMANS:
        outcome = stats.majority_labels(data.pairs, data.votes)
        counts = data.votes.groupby("pair_id").size()
    elif source in data.judges:
        verdicts = data.verdicts[data.verdicts["judge"] == source]
        combined = stats.combine_verdicts(data.pairs, verdicts).set_index("pair_id")
        outcome = combined["outcome"]
        counts = verdicts[verdicts["outcome"].notna()].groupby("pair_id").size()
    else:
        choices = ", ".join([stats.HUMANS, *data.judge_order])
        raise InputError(f"source {source!r}: choose one of {choices}")
    decisive = outcome[outcome.isin(["x", "y"])]
    return _preference_rows(data.vote_texts(store)[0], decisive, counts)


def _preference_rows(pairs, decisive, counts) -> Iterator[dict]:
    for pair in pairs[pairs["pair_id"].isin(decisive.index)].itertuples():
        x_won = decisive[pair.pair_id] == "x"
        yield {
            "prompt": pair.prompt,
            "chosen": pair.output_x if x_won else pair.output_y,
            "rejected": pair.output_y if x_won else pair.output_x,
            "item_id": pair.item_key,
            "chosen_system": pair.system_x if x_won else pair.system_y,
            "rejected_system": pair.system_y if x_won else pair.system_x,
            "n_votes": int(counts.get(pair.pair_id, 0)),
        }


def _export_rows(store: Store, what: str, study_row: dict) -> Iterator[dict]:
    if what == "votes":
        frame = store.frames.votes_frame(study_row["id"])
        pairs = store.frames.pairs_frame(study_row["id"]).set_index("pair_id")
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
                "criteria": "" if vote.criteria in (None, "", "{}") else vote.criteria,
            }
    elif what == "verdicts":
        for v in store.judging.verdict_rows(study_row["id"]):
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
        for p in store.frames.pairs_frame(study_row["id"]).itertuples():
            yield {
                "pair_id": int(p.pair_id),
                "item_id": p.item_key,
                "category": p.category,
                "system_x": p.system_x,
                "system_y": p.system_y,
                # Reviewers see this pair (it is in the study's human share), or only judges do.
                "human": bool(p.human),
                "prompt": p.prompt,
                "output_x": p.output_x,
                "output_y": p.output_y,
            }


UPLOAD_KINDS = ("outputs", "votes", "verdicts")


def import_upload(
    store: Store,
    kind: str,
    filename: str,
    content: bytes,
    eval_set: str | None = None,
    study: str | None = None,
    replace: bool = False,
    *,
    actor: Actor,
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
                summary = import_outputs(
                    store, path, eval_set.strip(), replace=replace, actor=actor
                )
            else:
                if not (study or "").strip():
                    raise InputError(f"name the study these {kind} belong to")
                importer = import_votes if kind == "votes" else import_verdicts
                summary = importer(
                    store, path, study.strip(), (eval_set or "").strip() or None, actor=actor
                )
        except ReviewAppError as exc:
            renamed = type(exc)(str(exc).replace(str(path), name))
            if hasattr(exc, "problems"):
                renamed.problems = [p.replace(str(path), name) for p in exc.problems]
            raise renamed from exc
    summary.file = name
    return summary
