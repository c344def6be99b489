"""Moving a workspace between backends (a SQLite file and a PostgreSQL database, either way):
every row copied, ids and hashes as they are, into an empty target in one transaction; then the
copy proven: `audit verify` finds on the target what it finds on the source, and the digests of
the votes, the verdicts and the audit chain are equal."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace

from review_app.errors import Conflict, NotFound
from review_app.services import audit
from review_app.settings import Settings, is_server_url, shown_location
from review_app.store import Store
from review_app.store.copying import SINGLETONS

__all__ = ["CopyProof", "copy_workspace", "digests"]


@dataclass
class CopyProof:
    """What was copied and what shows the copy is the source."""

    source: str
    target: str
    rows: dict[str, int]
    digests: dict[str, str]
    verified: dict[str, list[str]] = field(default_factory=dict)  # study -> problems on target

    @property
    def holds(self) -> bool:
        return not any(self.verified.values())


def copy_workspace(source: str, target: str, settings: Settings) -> CopyProof:
    """Copy the workspace at `source` into `target` (created if missing, refused unless empty)
    and prove it. Nothing is left in the target when a step fails."""
    if str(source) == str(target):
        raise Conflict("--from and --to name the same workspace")
    _require_existing(source)
    src = Store.open(source)
    try:
        dst = Store.open(target)
    except BaseException:
        src.close()
        raise
    try:
        return _copy_and_prove(src, dst, source, target, settings)
    finally:
        src.close()
        dst.close()


def _copy_and_prove(
    src: Store, dst: Store, source: str, target: str, settings: Settings
) -> CopyProof:
    if src.schema_version() != dst.schema_version():
        raise Conflict(
            f"workspace {shown_location(source)} has schema version {src.schema_version()} "
            f"and {shown_location(target)} {dst.schema_version()}: open both with this "
            "version first"
        )
    filled = {t: n for t, n in dst.copying.content_rows().items() if n}
    if filled:
        raise Conflict(
            f"workspace {shown_location(target)} is not empty ({_counts(filled)}): copy into "
            "a new database or file"
        )
    if src.imports.import_jobs():
        raise Conflict(
            f"an import into {shown_location(source)} is still in flight: let it finish "
            "(or run any import to finish it), then copy"
        )
    # The proof is read inside the copy's transaction: a copy that does not prove out is
    # rolled back, leaving the target as empty as it was.
    with dst.transaction():
        rows = _copy_rows(src, dst)
        proof = CopyProof(shown_location(source), shown_location(target), rows, digests(src))
        target_digests = digests(dst)
        differ = sorted(k for k in proof.digests if target_digests.get(k) != proof.digests[k])
        if differ:
            raise Conflict(
                f"the copy differs from the source in {', '.join(differ)}; nothing was copied"
            )
        for study in src.studies.studies(archived=True):
            before = audit.verify(src, study["name"], replace(settings, db=source))
            after = audit.verify(dst, study["name"], replace(settings, db=target))
            proof.verified[study["name"]] = [p for p in after if p not in before]
        if not proof.holds:
            problems = [f"{s}: {p}" for s, ps in proof.verified.items() for p in ps]
            raise Conflict(
                f"audit verify fails on the copy where it holds on the source ({problems[0]}); "
                "nothing was copied"
            )
    return proof


def _require_existing(source: str) -> None:
    from pathlib import Path

    if not is_server_url(source) and source != ":memory:" and not Path(source).is_file():
        raise NotFound(f"no workspace at {source}")


def _copy_rows(src: Store, dst: Store) -> dict[str, int]:
    copied: dict[str, int] = {}
    for table in SINGLETONS:
        dst.copying.clear_singleton(table)
    for table in src.copying.tables_in_order():
        copied[table] = 0
        for names, rows in src.copying.read_table(table):
            dst.copying.write_rows(table, names, rows)
            copied[table] += len(rows)
        dst.copying.continue_numbering(table)
    return copied


def digests(store: Store) -> dict[str, str]:
    """A digest of every row of the votes, the verdicts and the audit chain (the chain's head
    hash among them), and of the row counts of every table."""
    found = {}
    for table in ("votes", "verdicts", "audit_log", "row_seals"):
        digest = hashlib.sha256()
        for _, rows in store.copying.read_table(table):
            digest.update(json.dumps(rows, default=str).encode())
        found[table] = digest.hexdigest()
    counts = store.copying.content_rows()
    found["row counts"] = hashlib.sha256(json.dumps(counts, sort_keys=True).encode()).hexdigest()
    return found


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {table}" for table, n in sorted(counts.items()))
