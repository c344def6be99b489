"""The record that proves itself: governance actions appended to the hash-chained audit log, the
keyed signature a report carries, and `verify`, which recomputes the chain, the lock, the
sign-offs, the vote digests and the append-only triggers and names every problem it finds."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from review_app import gate, report
from review_app.errors import InputError
from review_app.migrations import APPEND_ONLY_TABLES
from review_app.settings import Settings
from review_app.store import Store
from review_app.store.audit import GENESIS, entry_hash

__all__ = ["record", "signature", "study_log", "verify"]


def record(
    store: Store, actor: str, action: str, study_id: int | None = None, **detail: Any
) -> None:
    """Append one governance action; call it inside the transaction that makes the change."""
    store.audit.append_audit(actor, action, study_id, detail)


def signature(settings: Settings, report_hash: str) -> str | None:
    """HMAC-SHA256 of a report hash with the signing key, which lives outside the workspace
    (`REVIEW_APP_SIGNING_KEY`): someone holding only the database file cannot forge it. None
    when no key is set."""
    if not settings.signing_key:
        return None
    return hmac.new(settings.signing_key.encode(), report_hash.encode(), hashlib.sha256).hexdigest()


def chain_problems(entries: list[dict]) -> list[str]:
    """Every place the chain does not hold: an edited, inserted or removed entry."""
    problems = []
    prev = GENESIS
    for entry in entries:
        if entry["prev_hash"] != prev:
            problems.append(f"audit log entry {entry['id']}: does not follow the entry before it")
        if entry_hash(entry["prev_hash"], entry) != entry["hash"]:
            problems.append(
                f"audit log entry {entry['id']} ({entry['action']}): its content was changed"
            )
        prev = entry["hash"]
    return problems


def _trigger_problems(store: Store) -> list[str]:
    found = store.audit.append_only_triggers()
    return [
        f"table {table}: the append-only {event} trigger is missing"
        for table in APPEND_ONLY_TABLES
        for event in ("UPDATE", "DELETE")
        if event not in found.get(table, set())
    ]


def _lock_problems(store: Store, study: dict, entries: list[dict]) -> list[str]:
    lock = store.gate.threshold_lock(study["id"])
    if lock is None:
        return []
    problems = []
    locked = [
        gate.Threshold(t["metric"], t["params"], t["comparator"], t["value"])
        for t in json.loads(lock["thresholds"])
    ]
    if gate.thresholds_hash(locked) != lock["content_hash"]:
        problems.append("the locked thresholds no longer match the lock's content hash")
    logged = [e for e in entries if e["action"] == "thresholds locked"]
    if logged and json.loads(logged[-1]["detail"]).get("content_hash") != lock["content_hash"]:
        problems.append("the lock's content hash differs from the one the audit log recorded")
    current = sorted(
        json.dumps(
            {
                "metric": r["metric"],
                "params": r["params"],
                "comparator": r["comparator"],
                "value": r["value"],
            },
            sort_keys=True,
        )
        for r in store.gate.thresholds(study["id"])
    )
    if current != sorted(json.dumps(t.key(), sort_keys=True) for t in locked):
        if not store.gate.deviations(study["id"]):
            problems.append("the thresholds differ from the locked ones and no deviation says why")
    return problems


def _digest_problems(store: Store, study: dict, entries: list[dict]) -> list[str]:
    problems = []
    for entry in entries:
        recorded = json.loads(entry["detail"]).get("votes")
        if not recorded:
            continue
        now = store.audit.votes_digest(study["id"], recorded["max_vote_id"])
        if now != recorded:
            problems.append(
                f"votes changed after '{entry['action']}' at {entry['at']}: {recorded['votes']} "
                f"votes then, {now['votes']} of the same ids now, or their content differs"
            )
    return problems


def _recorded_digest_problems(store: Store, study: dict, entries: list[dict]) -> list[str]:
    """Grader results, the dev/test split and the juries against what the audit log recorded
    when they were written (the latest record per grader version counts: grading again may add
    results)."""
    latest: dict[str, tuple[dict, dict]] = {}
    split: tuple[dict, dict] | None = None
    for entry in entries:
        detail = json.loads(entry["detail"])
        if not detail.get("digest"):
            continue
        if entry["action"] == "graded":
            latest[detail["content_hash"]] = (entry, detail)
        elif entry["action"] == "split comparisons":
            split = (entry, detail)
    problems = []
    for content_hash, (entry, detail) in latest.items():
        now = store.audit.grader_results_digest(study["id"], content_hash)
        if now != detail["digest"]:
            problems.append(
                f"grader {detail.get('grader')} {content_hash[:12]}: results changed after "
                f"grading at {entry['at']}: {detail['digest']['results']} results then, "
                f"{now['results']} now, or their content differs"
            )
    logged_juries = {
        json.loads(e["detail"])["name"]: json.loads(e["detail"])["members"]
        for e in entries
        if e["action"] == "created jury"
    }
    stored_juries = {j["name"]: j["members"] for j in store.calibration.juries(study["id"])}
    for name in sorted(set(logged_juries) | set(stored_juries)):
        if logged_juries.get(name) != stored_juries.get(name):
            problems.append(
                f"jury jury/{name}: its members are {stored_juries.get(name) or 'gone'} but "
                f"the audit log recorded {logged_juries.get(name) or 'no such jury'}"
            )
    if split is not None and store.audit.split_digest(study["id"]) != split[1]["digest"]:
        now = store.audit.split_digest(study["id"])
        problems.append(
            f"the dev/test split changed after it was recorded at {split[0]['at']}: "
            f"{split[1]['digest']['rows']} comparisons then, {now['rows']} now, or their parts "
            "differ"
        )
    return problems


def _signoff_problems(store: Store, study: dict) -> list[str]:
    problems = []
    for row in store.gate.signoff_reports(study["id"]):
        body = json.loads(row["report"])
        if report.report_hash(body) != row["report_hash"]:
            problems.append(f"sign-off {row['id']}: the pinned report does not match its hash")
    return problems


def report_file_problems(path: str | Path, settings: Settings, entries: list[dict]) -> list[str]:
    """Whether a report file (JSON) is what this workspace and key produced."""
    try:
        body = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a JSON report ({exc})") from None
    problems = []
    if report.report_hash(body) != body.get("report_hash"):
        problems.append(f"{path}: its content does not match its report hash (edited)")
    expected = signature(settings, body.get("report_hash") or "")
    if expected is None:
        problems.append("no signing key is set (REVIEW_APP_SIGNING_KEY): cannot check signatures")
    elif not hmac.compare_digest(expected, body.get("signature") or ""):
        problems.append(f"{path}: its signature is not this key's (forged or signed elsewhere)")
    head = (body.get("audit") or {}).get("head")
    if head and head not in {e["hash"] for e in entries}:
        problems.append(f"{path}: it cites an audit log entry this workspace does not have")
    return problems


def verify(
    store: Store, study: str, settings: Settings, report_path: str | Path | None = None
) -> list[str]:
    """Every problem with the study's record, one line each; empty when it holds."""
    row = store.studies.require_study(study)
    entries = store.audit.audit_entries()
    study_entries = [e for e in entries if e["study_id"] == row["id"]]
    problems = chain_problems(entries) + _trigger_problems(store)
    problems += _lock_problems(store, row, study_entries)
    problems += _digest_problems(store, row, study_entries)
    problems += _recorded_digest_problems(store, row, study_entries)
    problems += _signoff_problems(store, row)
    if report_path is not None:
        problems += report_file_problems(report_path, settings, entries)
    return problems


def study_log(store: Store, study: str) -> list[dict]:
    """The study's governance actions, oldest first, with their detail decoded."""
    row = store.studies.require_study(study)
    return [{**e, "detail": json.loads(e["detail"])} for e in store.audit.audit_entries(row["id"])]
