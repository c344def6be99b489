"""The record that proves itself: governance actions appended to the hash-chained (and, with
the signing key, keyed) audit log, the keyed signature a report carries, the anchor kept
outside the workspace, and `verify`, which recomputes the chain and its keyed signatures, the
lock and the thresholds in force, the sign-offs and the links they were made with, the vote
digests, the seals of votes and verdicts, every governance row against the audit entry written
with it, the eval set's hashes and the append-only triggers, and names every problem it
finds."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from review_app import auth, gate, planning, report
from review_app.errors import InputError
from review_app.migrations import APPEND_ONLY_TABLES
from review_app.settings import Settings
from review_app.store import Store
from review_app.store.audit import GENESIS, entry_hash, entry_mac, keyed

__all__ = ["anchor", "read_anchor", "record", "signature", "study_log", "verify"]

_REPORT = "review-app report"
_ANCHOR = "review-app audit anchor"


def record(
    store: Store, actor: str, action: str, study_id: int | None = None, **detail: Any
) -> None:
    """Append one governance action; call it inside the transaction that makes the change."""
    store.audit.append_audit(actor, action, study_id, detail)


def signature(settings: Settings, document_hash: str) -> str | None:
    """HMAC-SHA256 of a report's document hash with the signing key, which lives outside the
    workspace (`REVIEW_APP_SIGNING_KEY`): someone holding only the database file cannot forge
    it. None when no key is set."""
    if not settings.signing_key:
        return None
    return keyed(settings.signing_key, _REPORT, document_hash)


def anchor(store: Store, study: str, settings: Settings) -> dict:
    """The audit log's head now, with its keyed signature: kept outside the workspace (a
    password manager, a ticket, an email), it lets `verify` show a workspace rolled back behind
    it or a log whose tail was cut. InputError without the signing key: an anchor anyone could
    make proves nothing."""
    if not settings.signing_key:
        raise InputError(
            "an anchor needs the signing key (REVIEW_APP_SIGNING_KEY): without it anyone with "
            "the workspace file could make one"
        )
    row = store.studies.require_study(study)
    entries = store.audit.audit_entries()
    if not entries:
        raise InputError("the audit log is empty: there is nothing to anchor yet")
    head = entries[-1]
    body = {
        "study": row["name"],
        "entry": head["id"],
        "hash": head["hash"],
        "at": head["at"],
        "entries": len(entries),
        "study_entries": sum(1 for e in entries if e["study_id"] == row["id"]),
    }
    return body | {"signature": keyed(settings.signing_key, _ANCHOR, _canonical(body))}


def _canonical(body: dict) -> str:
    return json.dumps(body, sort_keys=True, default=str)


def _keyed_problems(entries: list[dict], settings: Settings) -> list[str]:
    """With the signing key: every entry's keyed signature, so a log rewritten consistently
    (every hash recomputed) without the key shows. Entries written before the key was first
    used are vouched for by the first keyed one (its hash chains them); none after it may be
    unkeyed, and a log with entries but no keyed one at all is named too."""
    key = settings.signing_key
    if not key or not entries:
        return []
    problems = []
    first = next((i for i, e in enumerate(entries) if e["mac"]), None)
    if first is None:
        return [
            f"no audit log entry is keyed, though REVIEW_APP_SIGNING_KEY is set: the "
            f"{len(entries)} entries were written without the key, or their signatures were "
            "removed (the next action recorded with the key vouches for those before it)"
        ]
    for entry in entries[first:]:
        if not entry["mac"]:
            problems.append(
                f"audit log entry {entry['id']} ({entry['action']}) is not keyed, though entries "
                "before it are: written into the file, or by a process without the signing key"
            )
        elif not hmac.compare_digest(entry["mac"], entry_mac(key, entry["hash"])):
            problems.append(
                f"audit log entry {entry['id']} ({entry['action']}): its keyed signature is not "
                "this key's: the entry was rewritten without the key (or keyed with another)"
            )
    return problems


def anchor_problems(anchored: dict, entries: list[dict], settings: Settings) -> list[str]:
    """A kept anchor against the audit log now: its signature, and the anchored entry still
    in the log, where it was."""
    body = {k: v for k, v in anchored.items() if k != "signature"}
    problems = []
    if not settings.signing_key:
        problems.append("no signing key is set (REVIEW_APP_SIGNING_KEY): cannot check the anchor")
    elif not hmac.compare_digest(
        keyed(settings.signing_key, _ANCHOR, _canonical(body)), str(anchored.get("signature"))
    ):
        problems.append("the anchor's signature is not this key's (forged or edited)")
    when = f"anchored at {anchored.get('at')}"
    present = next((e for e in entries if e["hash"] == anchored.get("hash")), None)
    if present is not None:
        return problems
    last = entries[-1]["id"] if entries else 0
    if len(entries) < (anchored.get("entries") or 0) or last < (anchored.get("entry") or 0):
        problems.append(
            f"the audit log has {len(entries)} entries (up to entry {last}), fewer than the "
            f"{anchored.get('entries')} {when}: its tail was cut or the workspace was rolled "
            "back to an older copy"
        )
    else:
        problems.append(
            f"the audit log no longer holds entry {anchored.get('entry')} as {when}: the "
            "workspace was rolled back behind the anchor, or its log was rewritten"
        )
    return problems


def read_anchor(text_or_path: str) -> dict:
    """An anchor as `review-app audit anchor` printed it: the text itself or a file holding
    it."""
    text = text_or_path
    if not text_or_path.lstrip().startswith("{"):
        try:
            text = Path(text_or_path).read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"anchor {text_or_path}: {exc.strerror or exc}") from None
    try:
        anchored = json.loads(text)
    except ValueError as exc:
        raise InputError(f"anchor {text_or_path}: not an anchor ({exc})") from None
    if not isinstance(anchored, dict) or not {"hash", "entry", "signature"} <= set(anchored):
        raise InputError(
            f"anchor {text_or_path}: not an anchor (it needs the hash, entry and signature "
            "`review-app audit anchor` printed)"
        )
    return anchored


def _link_problems(store: Store, study: dict) -> list[str]:
    """Each link against the audit log that issued it: a sign-off made with a link never
    issued to its signer (a token hash swapped into the file, used, and put back), a live link
    that is not the one issued last, a revoked link live again."""
    from review_app.services.people import link_issues

    issues = link_issues(store)
    problems = []
    for row in store.audit.study_rows("signoffs", study["id"]):
        given = {i["link"] for i in issues.get(row["person"], []) if i["link"]}
        if row["link"] and given and row["link"] not in given:
            problems.append(
                f"sign-off {row['id']} ({row['decision'].upper()} by {row['person']}) was made "
                f"with a link the audit log never issued to {row['person']}: a token put into "
                "the file"
            )
    for reviewer in store.people.reviewers():
        logged = issues.get(reviewer["name"])
        if not logged:
            continue  # known only from imported votes, or from before links were logged
        last = logged[-1]
        current = store.people.reviewer(reviewer["name"])
        if last["action"] == "link revoked":
            if not current["revoked_at"]:
                problems.append(
                    f"{reviewer['name']}'s link was revoked by {last['by']} at {last['at']} but "
                    "works again: restored in the file"
                )
            continue
        now = auth.link_fingerprint(current["token_hash"]) if current["token_hash"] else None
        if last["link"] and now != last["link"]:
            problems.append(
                f"{reviewer['name']}'s link is not the one the audit log issued last (version "
                f"{last['version']}, by {last['by']} at {last['at']}): replaced in the file"
            )
    return problems


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
    """Each append-only table must have triggers that refuse every UPDATE and DELETE; one kept
    under its name but rewritten to refuse nothing (a condition, a WHERE 0) is named as such."""
    found = store.audit.append_only_triggers()
    names = store.audit.trigger_names()
    problems = []
    for table in APPEND_ONLY_TABLES:
        for event in ("UPDATE", "DELETE"):
            if event in found.get(table, set()):
                continue
            if f"{table}_append_only_{event.lower()}" in names:
                problems.append(
                    f"table {table}: the append-only {event} trigger is missing (the one of "
                    "its name was rewritten and no longer refuses every change)"
                )
            else:
                problems.append(f"table {table}: the append-only {event} trigger is missing")
    return problems


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
    problems += _threshold_problems(store, study, entries, locked)
    return problems


def _key(threshold: dict) -> str:
    return json.dumps(
        {k: threshold[k] for k in ("metric", "params", "comparator", "value")}, sort_keys=True
    )


def _threshold_problems(
    store: Store, study: dict, entries: list[dict], locked: list[gate.Threshold]
) -> list[str]:
    """The thresholds in force against the locked set and the changes the audit log recorded
    after the lock: each one in force must be locked or set by a recorded change, and each
    locked one gone must have been changed or removed on the record."""
    lock_at = max(
        (i for i, e in enumerate(entries) if e["action"] == "thresholds locked"), default=None
    )
    since_lock = [] if lock_at is None else entries[lock_at:]
    after = [json.loads(e["detail"]) | {"action": e["action"]} for e in since_lock]
    allowed = {json.dumps(t.key(), sort_keys=True) for t in locked}
    changed_away, removals = set(), 0
    for detail in after:
        if detail["action"] == "threshold added" and detail.get("threshold"):
            allowed.add(_key(detail["threshold"]))
        elif detail["action"] == "threshold changed" and detail.get("after_threshold"):
            allowed.add(_key(detail["after_threshold"]))
            changed_away.add(_key(detail["before_threshold"]))
        elif detail["action"] == "threshold removed":
            removals += 1
    current = {_key(r): r for r in store.gate.thresholds(study["id"])}
    problems = []
    unexplained = [r for key, r in current.items() if key not in allowed]
    for row in unexplained:
        described = gate.Threshold(row["metric"], row["params"], row["comparator"], row["value"])
        problems.append(
            f"threshold {described.describe()}: neither locked nor set by a change the audit "
            "log recorded after the lock"
        )
    locked_keys = {json.dumps(t.key(), sort_keys=True): t for t in locked}
    gone = [t for key, t in locked_keys.items() if key not in current and key not in changed_away]
    if len(gone) > removals:
        problems += [
            f"locked threshold {t.describe()}: gone, and no change the audit log recorded after "
            "the lock removed it"
            for t in gone
        ]
    if problems:
        problems.insert(0, "the thresholds differ from the locked ones and no deviation says why")
    return problems


def _unmatched(rows: list, entries: list, row_key, entry_key) -> tuple[list, list]:
    """Rows with no audit entry of the same content, and entries with no row (as multisets)."""
    waiting: dict = {}
    for entry in entries:
        waiting.setdefault(entry_key(entry), []).append(entry)
    lonely_rows = []
    for row in rows:
        match = waiting.get(row_key(row))
        if match:
            match.pop(0)
        else:
            lonely_rows.append(row)
    return lonely_rows, [e for found in waiting.values() for e in found]


def _ids(rows: list[dict]) -> str:
    ids = [str(r["id"]) for r in rows[:10]]
    return ", ".join(ids) + (f" and {len(rows) - 10} more" if len(rows) > 10 else "")


def _logged(entries: list[dict], *actions: str) -> list[dict]:
    """The entries of those actions (every entry without any), their detail decoded beside
    who, when and what."""
    return [
        {**json.loads(e["detail"]), "_actor": e["actor"], "_at": e["at"], "_action": e["action"]}
        for e in entries
        if not actions or e["action"] in actions
    ]


def _record_problems(store: Store, study: dict, entries: list[dict]) -> list[str]:
    """The study's governance rows against the audit entries written with them: a row written
    into the file has no entry, a row replaced or removed leaves an entry without its row."""
    sid = study["id"]
    problems = []

    rows, logged = _unmatched(
        store.audit.study_rows("final_reviews", sid),
        _logged(entries, "final review mark"),
        lambda r: (r["output_id"], bool(r["acceptable"]), r["comment"], r["person"]),
        lambda e: (e["output_id"], bool(e["acceptable"]), e["comment"], e["_actor"]),
    )
    if rows:
        problems.append(
            f"{len(rows)} final-review mark(s) have no audit entry: written into the file, not "
            f"marked in the app (marks {_ids(rows)})"
        )
    if logged:
        problems.append(
            f"{len(logged)} final-review mark(s) in the audit log are missing or changed "
            f"(first: output {logged[0]['output_id']} by {logged[0]['_actor']} at {logged[0]['_at']})"
        )

    rows, logged = _unmatched(
        store.audit.study_rows("reviewer_exclusions", sid),
        _logged(entries, "reviewer excluded", "reviewer included again"),
        lambda r: (r["person"], bool(r["excluded"]), r["reason"], r["decided_by"]),
        lambda e: (e["reviewer"], e["_action"] == "reviewer excluded", e["reason"], e["_actor"]),
    )
    for row in rows:
        what = "exclusion" if row["excluded"] else "re-inclusion"
        problems.append(
            f"reviewer {what} {row['id']} ({row['person']}, by {row['decided_by']}) has no audit "
            "entry: written into the file, not decided in the app"
        )
    for entry in logged:
        problems.append(
            f"the audit log's '{entry['_action']}' of {entry['reviewer']} at {entry['_at']} has no "
            "matching decision: removed or changed in the file"
        )

    rows, logged = _unmatched(
        store.audit.study_rows("signoffs", sid),
        _logged(entries, "signed"),
        lambda r: (
            r["person"],
            r["decision"],
            r["report_hash"],
            r["gate_result"],
            r["override"],
            r.get("link"),
        ),
        lambda e: (
            e["_actor"],
            e["decision"],
            e["report_hash"],
            e.get("gate_result"),
            e.get("override"),
            e.get("link"),
        ),
    )
    for row in rows:
        problems.append(
            f"sign-off {row['id']} ({row['decision'].upper()} by {row['person']}) matches no "
            "sign-off in the audit log: written or changed in the file"
        )
    for entry in logged:
        problems.append(
            f"the audit log's sign-off at {entry['_at']} ({entry['decision'].upper()} by "
            f"{entry['_actor']}) has no sign-off row: removed or replaced in the file"
        )

    deviations = store.audit.study_rows("threshold_deviations", sid)
    changes = [e for e in _logged(entries) if e.get("after_lock")]
    recorded = [e for e in changes if "deviation" in e]
    rows, logged = _unmatched(
        deviations,
        recorded,
        lambda r: (r["changed_by"], r["before"], r["after"], r["reason"]),
        lambda e: (e["_actor"], e["deviation"]["before"], e["deviation"]["after"], e["reason"]),
    )
    # Changes logged before deviations recorded their before and after: by who and why.
    rows, _ = _unmatched(
        rows,
        [e for e in changes if "deviation" not in e and e.get("reason")],
        lambda r: (r["changed_by"], r["reason"]),
        lambda e: (e["_actor"], e["reason"]),
    )
    for row in rows:
        problems.append(
            f"deviation {row['id']} ({row['before']} -> {row['after']}, by {row['changed_by']}) "
            "has no audit entry: written into the file"
        )
    for entry in logged:
        problems.append(
            f"the deviation the audit log recorded at {entry['_at']} ('{entry['_action']}': "
            f"{entry['deviation']['before']} -> {entry['deviation']['after']}) is missing from "
            "the study's deviations: removed or replaced in the file"
        )

    rows, logged = _unmatched(
        store.audit.study_rows("test_looks", sid),
        _logged(entries, "looked at test"),
        lambda r: (r["looked_by"], tuple(json.loads(r["judges"]))),
        lambda e: (e["_actor"], tuple(e.get("judges") or [])),
    )
    if rows or logged:
        n = len(_logged(entries, "looked at test"))
        problems.append(
            f"test agreement was looked at {n} time(s) by the audit log, but the study records "
            f"{len(store.audit.study_rows('test_looks', sid))}: {len(logged)} look(s) removed or "
            f"changed, {len(rows)} written into the file"
        )

    problems += _guideline_problems(store, sid, entries)
    problems += _known_answer_problems(store, sid, entries)
    return problems


def _guideline_problems(store: Store, sid: int, entries: list[dict]) -> list[str]:
    from review_app.services.studies import guidelines_hash

    rows = store.audit.study_rows("study_guidelines", sid)
    problems = [
        f"guidelines version {row['content_hash']}: the text no longer matches its hash "
        "(rewritten in the file)"
        for row in rows
        if guidelines_hash(row["body"]) != row["content_hash"]
    ]
    logged = _logged(entries, "guidelines set")
    created = _logged(entries, "study created")
    for entry in created[:1]:
        if entry.get("guidelines_hash"):
            logged.insert(0, {"content_hash": entry["guidelines_hash"], "_actor": entry["_actor"]})
        elif "guidelines_hash" not in entry and rows:
            rows = rows[1:]  # recorded before the creation entry named its guidelines
    lonely, missing = _unmatched(
        rows,
        logged,
        lambda r: (r["content_hash"], r["set_by"]),
        lambda e: (e["content_hash"], e["_actor"]),
    )
    problems += [
        f"guidelines version {row['content_hash']} (set by {row['set_by']}) has no audit entry: "
        "written into the file"
        for row in lonely
    ]
    problems += [
        f"guidelines version {entry['content_hash']} the audit log recorded is missing: removed "
        "or replaced in the file"
        for entry in missing
    ]
    return problems


def _known_answer_problems(store: Store, sid: int, entries: list[dict]) -> list[str]:
    """The known answers in force against the replayed sets and removals of the audit log."""
    expected: dict[tuple[str, frozenset], str] = {}
    for entry in _logged(entries, "known answer set", "known answer removed"):
        key = (entry["item"], frozenset(entry["compare"].split(":", 1)))
        if entry["_action"] == "known answer set":
            expected[key] = entry["answer"]
        else:
            expected.pop(key, None)
    current = {
        (r["item_key"], frozenset((r["system_x"], r["system_y"]))): r["answer"]
        for r in store.quality.known_answers(sid)
    }
    problems = []
    for key in sorted(set(expected) | set(current), key=lambda k: (k[0], sorted(k[1]))):
        if expected.get(key) != current.get(key):
            item, systems = key[0], ":".join(sorted(key[1]))
            problems.append(
                f"known answer of item {item} ({systems}) is {current.get(key) or 'none'} but "
                f"the audit log recorded {expected.get(key) or 'none'}: changed in the file"
            )
    return problems


def _seal_problems(store: Store, study: dict) -> list[str]:
    words = {"votes": "vote", "verdicts": "judge verdict"}
    why = {
        "unsealed": "not cast in the app or imported: written into the file",
        "changed": "their content changed since they were recorded",
        "removed": "recorded, now gone or moved: removed or replaced in the file",
        "out of order": "their seals do not follow one another: a seal was removed or put in",
    }
    problems = []
    for table, word in words.items():
        found = store.audit.seal_problems(table, study["id"])
        for kind, ids in found.items():
            if ids:
                shown = ", ".join(str(i) for i in ids[:10])
                more = f" and {len(ids) - 10} more" if len(ids) > 10 else ""
                problems.append(f"{len(ids)} {word}(s) {why[kind]} (ids {shown}{more})")
    return problems


def _content_problems(store: Store, study: dict, entries: list[dict]) -> list[str]:
    """The eval set's items and the compared systems' outputs, hashed again, against the
    hashes the audit log recorded when the study was created (and the eval set frozen)."""
    created = _logged(entries, "study created")
    if not created:
        return []
    entry = created[0]
    problems = []
    now = store.catalog.eval_set_content_hash(study["eval_set_id"])
    if entry.get("eval_set_hash") and now != entry["eval_set_hash"]:
        problems.append(
            f"the eval set's items (prompts, references, categories) changed since the study was "
            f"created: hash {entry['eval_set_hash'][:16]} then, {now[:16]} now"
        )
    if entry.get("outputs_hash"):
        systems = {s for c in entry.get("comparisons") or [] for s in c}
        outputs = store.catalog.outputs_hash(study["eval_set_id"], systems)
        if outputs != entry["outputs_hash"]:
            problems.append(
                f"the outputs of {', '.join(sorted(systems))} changed since the study was "
                f"created: hash {entry['outputs_hash'][:16]} then, {outputs[:16]} now"
            )
    return problems


def _human_subset_problems(store: Store, study: dict, entries: list[dict]) -> list[str]:
    """The pairs reviewers see against the human subset the audit log recorded last (and the
    lock pinned): flipping a pair in or out of it in the file changes which votes correct a
    judge and which pairs the plan waits for."""
    drawn = _logged(entries, "human share set")
    rows = store.studies.pairs_for_subset(study["id"])
    now = planning.subset_hash({r["pair_id"] for r in rows if r["human"]})
    if not drawn:
        judged_only = sum(1 for r in rows if not r["human"])
        if judged_only:
            return [
                f"{judged_only} pair(s) are judged only, but the audit log records no human "
                "share for the study"
            ]
        return []
    recorded = drawn[-1]
    if recorded.get("hash") != now:
        return [
            f"the human subset changed since it was drawn at {recorded['_at']}: hash "
            f"{str(recorded.get('hash'))[:16]} then, {now[:16]} now"
        ]
    return []


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


def report_file_problems(
    path: str | Path, settings: Settings, entries: list[dict], signoffs: list[dict]
) -> list[str]:
    """Whether a report file (JSON) is what this workspace and key produced: its figures and
    everything else it shows (sign-offs included) against its hashes and signature, and the
    audit entries and sign-offs it cites against the workspace's."""
    try:
        body = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a JSON report ({exc})") from None
    if not isinstance(body, dict):
        raise InputError(f"{path}: not a JSON report (not an object)")
    problems = []
    if report.report_hash(body) != body.get("report_hash"):
        problems.append(f"{path}: its content does not match its report hash (edited)")
    covered = body.get("document_hash")
    if covered is not None and report.document_hash(body) != covered:
        problems.append(
            f"{path}: what it shows (sign-offs included) does not match its document hash (edited)"
        )
    if not settings.signing_key:
        problems.append("no signing key is set (REVIEW_APP_SIGNING_KEY): cannot check signatures")
    else:
        # Reports made before the document hash existed signed their report hash alone.
        expected = (
            signature(settings, covered)
            if covered is not None
            else hmac.new(
                settings.signing_key.encode(),
                str(body.get("report_hash")).encode(),
                hashlib.sha256,
            ).hexdigest()
        )
        if not hmac.compare_digest(expected, str(body.get("signature") or "")):
            problems.append(f"{path}: its signature is not this key's (forged or signed elsewhere)")
    hashes = {e["hash"] for e in entries}
    for cited in (body.get("audit") or {}, body.get("audit_head") or {}):
        head = cited.get("head") if isinstance(cited, dict) else None
        if head and head not in hashes:
            problems.append(
                f"{path}: it cites an audit log entry this workspace does not have (rolled back "
                "to before it, or the log rewritten)"
            )
            break
    held = {(s["id"], s["signer"], s["decision"], s["created_at"]) for s in signoffs}
    for shown in body.get("signoffs") or []:
        key = tuple(shown.get(k) for k in ("id", "signer", "decision", "created_at"))
        if key not in held:
            problems.append(
                f"{path}: its sign-off {str(shown.get('decision')).upper()} by "
                f"{shown.get('signer')} at {shown.get('created_at')} is not in this workspace"
            )
    return problems


def verify(
    store: Store,
    study: str,
    settings: Settings,
    report_path: str | Path | None = None,
    anchored: dict | None = None,
) -> list[str]:
    """Every problem with the study's record, one line each; empty when it holds. With
    `anchored` (`read_anchor`), also whether the log still reaches that anchor."""
    row = store.studies.require_study(study)
    if anchored is not None and anchored.get("study") not in (None, row["name"]):
        raise InputError(
            f"the anchor is of study {anchored.get('study')!r}: verify it with --study "
            f"{anchored.get('study')}"
        )
    entries = store.audit.audit_entries()
    study_entries = [e for e in entries if e["study_id"] == row["id"]]
    problems = chain_problems(entries) + _keyed_problems(entries, settings)
    problems += _trigger_problems(store)
    if anchored is not None:
        problems += anchor_problems(anchored, entries, settings)
    problems += _link_problems(store, row)
    problems += _lock_problems(store, row, study_entries)
    problems += _digest_problems(store, row, study_entries)
    problems += _recorded_digest_problems(store, row, study_entries)
    problems += _signoff_problems(store, row)
    problems += _seal_problems(store, row)
    problems += _record_problems(store, row, study_entries)
    problems += _content_problems(store, row, study_entries)
    problems += _human_subset_problems(store, row, study_entries)
    if report_path is not None:
        problems += report_file_problems(
            report_path, settings, entries, store.gate.signoffs(row["id"])
        )
    return problems


def study_log(store: Store, study: str) -> list[dict]:
    """The study's governance actions, oldest first, with their detail decoded."""
    row = store.studies.require_study(study)
    return [{**e, "detail": json.loads(e["detail"])} for e in store.audit.audit_entries(row["id"])]
