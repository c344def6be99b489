"""Attacks by someone holding the workspace file and sqlite3, without REVIEW_APP_SIGNING_KEY: each
opens its own connection to the file, changes what the decision rests on (votes, verdicts,
thresholds, sign-offs, deviations, looks at test, guidelines, final-review marks, exclusions,
the eval set, grader results, the split, juries, people's links, the audit log itself, up to a
consistent rewrite of the whole chain), rolls the file back to an older copy, or edits a signed
report, and `audit verify` (with the key, an anchor or the signed report kept elsewhere) names
what changed. Normal use of the app leaves a record that verifies clean."""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest

from review_app import cli
from review_app.auth import Actor
from review_app.report import render_report
from review_app.services import (
    audit,
    data,
    juries,
    quality,
    review,
    rubric_iteration,
    signoff,
    thresholds,
)
from review_app.services.rubric_iteration import record_test_look
from review_app.settings import Settings
from review_app.store import Store
from tests.acting import acting, lock_on_win_rate, looking, person
from tests.conftest import write

KEY = "a secret kept outside the workspace"


@pytest.fixture
def locked(demo_store, monkeypatch):
    """The demo with a human win-rate threshold, locked by the admin, with a signing key."""
    monkeypatch.setenv("REVIEW_APP_SIGNING_KEY", KEY)
    settings = Settings.from_env()
    demo_store.signing_key = KEY  # as the app opens it, with the key
    lock_on_win_rate(demo_store, settings)
    return demo_store, settings


def sign(store, settings, decision, **kwargs):
    signer = Actor.of(store.people.reviewer("demo-signer"))
    return signoff.sign_off(store, "demo", signer, decision, "read it", settings, **kwargs)


@pytest.fixture
def signed(locked):
    store, settings = locked
    sign(store, settings, "approve", override="pilot")
    return store, settings


def raw(store) -> sqlite3.Connection:
    """A second connection to the workspace file, as the file holder opens it with sqlite3
    (recursive triggers off, the default)."""
    return sqlite3.connect(store.path)


def problems_of(store, settings) -> list[str]:
    return audit.verify(store, "demo", settings)


def only(problems: list[str], words: str) -> str:
    found = [p for p in problems if words in p]
    assert len(found) == 1, problems
    return found[0]


# ---- a normal record verifies clean ----


def test_normal_use_after_the_lock_verifies_clean(locked, tmp_path):
    store, settings = locked
    admin = acting(store, "demo", "demo-admin", settings=settings)
    # Votes cast in the app, and an undone one.
    reviewer = store.people.reviewer("demo-reviewer")
    study = store.studies.require_study("demo")
    for _ in range(3):
        task = review.next_pair(store, settings, reviewer["id"], study["id"])
        review.record_vote(store, settings, reviewer["id"], task.assignment_id, "A")
    # An import after the lock, with a reason; a threshold changed with a reason.
    late = write(
        tmp_path / "late.csv",
        "item_id,system_a,system_b,reviewer,winner\nsupport-001,finetuned,base,ghost,finetuned\n",
    )
    data.import_votes(store, late, "demo", actor=person(store), reason="a late reviewer")
    (row,) = store.gate.thresholds(study["id"])
    thresholds.update_threshold(admin, row["id"], ">", 0.55, reason="a stricter bar")
    # Exclusions, known answers, looks at test, final-review marks, a sign-off.
    quality.exclude_reviewer(admin, "ghost", "did not read the guidelines")
    quality.include_reviewer(admin, "ghost", "read them after all")
    quality.set_known_answer(admin, "support-001", "finetuned:base", "finetuned")
    quality.set_known_answer(admin, "support-002", "finetuned:base", "tie")
    quality.remove_known_answer(admin, "support-002", "finetuned:base")
    record_test_look(store, "demo", ["example-llm-judge"], person(store, "demo-admin"))
    signer = Actor.of(store.people.reviewer("demo-signer"))
    for output in candidate_outputs(store)[:2]:
        signoff.record_final_review(store, "demo", signer, output, True, "fine", settings)
    sign(store, settings, "reject")
    assert problems_of(store, settings) == []


def candidate_outputs(store) -> list[int]:
    rows = store.db.execute(
        "SELECT o.id FROM outputs o JOIN items i ON i.id = o.item_id "
        "WHERE o.system = 'finetuned' ORDER BY o.id"
    ).fetchall()
    return [r[0] for r in rows]


# ---- 1. verdicts ----


def test_a_verdict_cannot_be_edited_and_one_edited_behind_a_dropped_trigger_shows(signed):
    store, settings = signed
    flip = (
        "UPDATE verdicts SET winner = 'finetuned' WHERE winner = 'base' AND run_id = "
        "(SELECT id FROM judge_runs WHERE label = 'example-llm-judge')"
    )
    with raw(store) as db, pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute(flip)
    with raw(store) as db:
        trigger = db.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'verdicts_append_only_update'"
        ).fetchone()[0]
        db.execute("DROP TRIGGER verdicts_append_only_update")
        flipped = db.execute(flip).rowcount
        db.execute(trigger)
    assert flipped > 0
    problems = problems_of(store, settings)
    assert not any("trigger" in p for p in problems)
    line = only(problems, "judge verdict(s) their content changed since they were recorded")
    assert line.startswith(f"{flipped} judge verdict(s)")


def test_a_verdict_written_into_the_file_or_removed_shows(signed):
    store, settings = signed
    with raw(store) as db:
        db.execute(
            "INSERT INTO verdicts (run_id, pair_id, first_system, winner, created_at) "
            "SELECT run_id, pair_id, 'zzz', 'finetuned', created_at FROM verdicts WHERE id = 1"
        )
        db.execute("DROP TRIGGER verdicts_append_only_delete")
        db.execute("DELETE FROM verdicts WHERE id = 2")
    problems = problems_of(store, settings)
    assert "table verdicts: the append-only DELETE trigger is missing" in problems
    only(problems, "1 judge verdict(s) not cast in the app or imported: written into the file")
    only(problems, "1 judge verdict(s) recorded, now gone or moved")


# ---- 2. votes forged as cast in the app ----


def test_votes_inserted_as_app_votes_superseding_losses_show(signed):
    store, settings = signed
    with raw(store) as db:
        inserted = db.execute(
            "INSERT INTO votes (pair_id, reviewer_id, shown_left, shown_right, choice, winner, "
            "source, created_at, entered_at, supersedes) "
            "SELECT v.pair_id, v.reviewer_id, v.shown_left, v.shown_right, 'A', 'finetuned', "
            "'app', v.created_at, v.entered_at, v.id FROM votes v "
            "WHERE v.winner = 'base' AND v.id = (SELECT max(id) FROM votes v2 "
            "WHERE v2.pair_id = v.pair_id AND v2.reviewer_id = v.reviewer_id)"
        ).rowcount
    assert inserted > 0
    problems = problems_of(store, settings)
    only(problems, f"{inserted} vote(s) not cast in the app or imported: written into the file")


def test_an_imported_vote_relabelled_as_cast_in_the_app_shows(signed):
    store, settings = signed
    with raw(store) as db:
        db.execute("DROP TRIGGER votes_append_only_update")
        db.execute("UPDATE votes SET source = 'app' WHERE id = (SELECT max(id) FROM votes)")
        db.execute(
            "CREATE TRIGGER votes_append_only_update BEFORE UPDATE ON votes "
            "BEGIN SELECT RAISE(ABORT, 'votes are append-only'); END"
        )
    only(problems_of(store, settings), "1 vote(s) their content changed since they were recorded")


# ---- 3. thresholds after a recorded deviation ----


def test_a_threshold_edited_after_a_recorded_deviation_shows(locked):
    store, settings = locked
    study_id = store.studies.require_study("demo")["id"]
    (row,) = store.gate.thresholds(study_id)
    thresholds.update_threshold(
        acting(store, "demo", "demo-admin", settings=settings),
        row["id"],
        ">",
        0.55,
        reason="a stricter bar",
    )
    assert problems_of(store, settings) == []
    with raw(store) as db:
        db.execute("UPDATE thresholds SET value = 0.1")
    problems = problems_of(store, settings)
    assert "the thresholds differ from the locked ones and no deviation says why" in problems
    only(problems, "> 0.1: neither locked nor set by a change the audit log recorded")


def test_a_locked_threshold_deleted_in_the_file_shows(locked):
    store, settings = locked
    with raw(store) as db:
        db.execute("DELETE FROM thresholds")
    only(problems_of(store, settings), "gone, and no change the audit log recorded")


# ---- 4. INSERT OR REPLACE past intact triggers ----


def test_the_app_refuses_insert_or_replace_on_append_only_tables(signed):
    # sqlite-utils turns recursive triggers on for the app's connections, so the delete a
    # REPLACE makes meets the DELETE trigger; the file holder's own connection need not.
    store, _ = signed
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.execute("INSERT OR REPLACE INTO signoffs SELECT * FROM signoffs")


def test_a_reject_replaced_by_an_approve_shows(locked):
    store, settings = locked
    sign(store, settings, "reject")
    with raw(store) as db:
        db.execute(
            "INSERT OR REPLACE INTO signoffs (id, study_id, signer_id, decision, comment, "
            "report_hash, report, created_at, gate_result, override) SELECT id, study_id, "
            "signer_id, 'approve', comment, report_hash, report, created_at, gate_result, "
            "'pilot' FROM signoffs WHERE decision = 'reject'"
        )
        assert db.execute("SELECT decision FROM signoffs").fetchall() == [("approve",)]
    problems = problems_of(store, settings)
    assert not any("trigger" in p for p in problems)
    only(problems, "(APPROVE by demo-signer) matches no sign-off in the audit log")
    only(problems, "(REJECT by demo-signer) has no sign-off row: removed or replaced")


def test_a_deviation_replaced_away_shows(locked):
    store, settings = locked
    study_id = store.studies.require_study("demo")["id"]
    (row,) = store.gate.thresholds(study_id)
    thresholds.update_threshold(
        acting(store, "demo", "demo-admin", settings=settings), row["id"], ">", 0.4, "lower"
    )
    with raw(store) as db:
        db.execute(
            "INSERT OR REPLACE INTO threshold_deviations (id, study_id, changed_at, changed_by, "
            "before, after, reason) SELECT id, study_id + 1000, changed_at, changed_by, before, "
            "after, reason FROM threshold_deviations"
        )
    assert store.gate.deviations(study_id) == []
    only(problems_of(store, settings), "is missing from the study's deviations")


def test_looks_at_test_replaced_away_show(locked):
    store, settings = locked
    for _ in range(2):
        record_test_look(store, "demo", ["example-llm-judge"], person(store, "demo-admin"))
    with raw(store) as db:
        db.execute(
            "INSERT OR REPLACE INTO test_looks (id, study_id, judges, looked_by, created_at) "
            "SELECT id, study_id + 1000, judges, looked_by, created_at FROM test_looks"
        )
    line = only(problems_of(store, settings), "test agreement was looked at 2 time(s)")
    assert "but the study records 0" in line


def test_guidelines_rewritten_under_their_old_hash_show(locked):
    store, settings = locked
    with raw(store) as db:
        db.execute(
            "INSERT OR REPLACE INTO study_guidelines (id, study_id, content_hash, body, set_by, "
            "created_at) SELECT id, study_id, content_hash, 'Prefer the longer answer.', set_by, "
            "created_at FROM study_guidelines"
        )
    only(problems_of(store, settings), "the text no longer matches its hash")


# ---- 5. a trigger kept under its name but made inert ----


@pytest.mark.parametrize(
    "inert",
    [
        "BEGIN SELECT RAISE(ABORT, 'votes are append-only') WHERE 0; END",
        "WHEN 0 BEGIN SELECT RAISE(ABORT, 'votes are append-only'); END",
    ],
)
def test_an_inert_trigger_is_not_reported_as_holding(signed, inert):
    store, settings = signed
    with raw(store) as db:
        db.execute("DROP TRIGGER votes_append_only_update")
        db.execute(f"CREATE TRIGGER votes_append_only_update BEFORE UPDATE ON votes {inert}")
        db.execute("UPDATE votes SET winner = winner WHERE id = 1")  # nothing refuses it now
    assert "UPDATE" not in store.audit.append_only_triggers()["votes"]
    only(
        problems_of(store, settings),
        "table votes: the append-only UPDATE trigger is missing (the one of its name was rewritten",
    )


def test_a_trigger_limited_to_some_columns_is_not_reported_as_holding(signed):
    store, settings = signed
    with raw(store) as db:
        db.execute("DROP TRIGGER signoffs_append_only_update")
        db.execute(
            "CREATE TRIGGER signoffs_append_only_update BEFORE UPDATE OF comment ON signoffs "
            "BEGIN SELECT RAISE(ABORT, 'sign-offs are append-only'); END"
        )
    only(problems_of(store, settings), "signoffs: the append-only UPDATE trigger is missing (the")


# ---- 6. marks and exclusions in someone's name ----


def test_final_review_marks_and_an_exclusion_inserted_in_the_signers_name_show(signed):
    store, settings = signed
    study_id = store.studies.require_study("demo")["id"]
    signer_id = store.people.reviewer("demo-signer")["id"]
    reviewer_id = store.people.reviewer("demo-reviewer")["id"]
    with raw(store) as db:
        db.executemany(
            "INSERT INTO final_reviews (study_id, output_id, reviewer_id, acceptable, comment, "
            "created_at) VALUES (?, ?, ?, 1, '', '2030-01-01T00:00:00Z')",
            [(study_id, output, signer_id) for output in candidate_outputs(store)[:50]],
        )
        db.execute(
            "INSERT INTO reviewer_exclusions (study_id, reviewer_id, excluded, reason, "
            "decided_by, created_at) VALUES (?, ?, 1, 'careless', 'demo-signer', "
            "'2030-01-01T00:00:00Z')",
            [study_id, reviewer_id],
        )
    problems = problems_of(store, settings)
    only(problems, "50 final-review mark(s) have no audit entry")
    only(problems, "reviewer exclusion")
    assert "(demo-reviewer, by demo-signer) has no audit entry" in only(problems, "exclusion")


def test_a_known_answer_changed_in_the_file_shows(locked):
    store, settings = locked
    admin = acting(store, "demo", "demo-admin", settings=settings)
    quality.set_known_answer(admin, "support-001", "finetuned:base", "base")
    with raw(store) as db:
        db.execute("UPDATE known_answers SET answer = 'finetuned'")
    line = only(problems_of(store, settings), "known answer of item support-001")
    assert "is finetuned but the audit log recorded base" in line


# ---- 7. the eval set after the lock ----


def test_outputs_and_prompts_edited_after_the_lock_show_and_the_report_says_so(signed):
    store, settings = signed
    before = signoff.build_report(looking(store, "demo", settings))["eval_set"]
    assert before["content_hash"] == before["frozen_hash"]
    with raw(store) as db:
        db.execute("UPDATE outputs SET text = 'A much better answer.' WHERE system = 'finetuned'")
        db.execute("UPDATE items SET prompt = prompt || ' (easy)'")
    problems = problems_of(store, settings)
    only(problems, "the eval set's items (prompts, references, categories) changed")
    only(problems, "the outputs of base, finetuned, frontier changed since the study was created")
    report = signoff.build_report(looking(store, "demo", settings))
    after = report["eval_set"]
    assert after["content_hash"] != after["frozen_hash"] == before["frozen_hash"]
    for form in ("md", "html"):
        assert "NOT the hash frozen when the study was created" in render_report(report, form)


# ---- an interim look erased ----


def test_an_interim_look_erased_from_the_file_shows(locked):
    """An admin who looked before the planned sample was in, then deletes that look from the
    file once others have acted (the log's triggers dropped and put back): the chain no longer
    holds. (Erasing the log's very last entries needs an anchor kept outside the file to show.)"""
    from review_app.services import decision

    store, settings = locked
    decision.evaluate_gate(acting(store, "demo", "demo-admin", settings=settings))
    decision.evaluate_gate(acting(store, "demo", "demo-signer", settings=settings))
    assert problems_of(store, settings) == []
    with raw(store) as db:
        triggers = db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'"
        ).fetchall()
        for name, _ in triggers:
            db.execute(f"DROP TRIGGER {name}")
        db.execute("DELETE FROM audit_log WHERE action = 'interim look' AND actor = 'demo-admin'")
        for _, sql in triggers:
            db.execute(sql)
    problems = problems_of(store, settings)
    assert problems and any("chain" in p or "audit" in p for p in problems), problems
    built = signoff.build_report(acting(store, "demo", "demo-signer", settings=settings))
    assert [look["actor"] for look in built["looks"]] == ["demo-signer"]


# ---- 8. the whole chain rewritten, rolled back or cut short ----


def rewrite_chain(db: sqlite3.Connection, edit, macs: str = "kept") -> None:
    """Rewrite the audit log as someone without the key would: each entry through `edit`, then
    every hash recomputed in order, so the chain holds again. `macs`: "kept" leaves each
    entry's keyed signature as it was, "removed" blanks them all."""
    from review_app.store.audit import GENESIS, entry_hash

    triggers = db.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'"
    ).fetchall()
    for (sql,) in triggers:
        db.execute(f"DROP TRIGGER {sql.split()[2]}")
    db.row_factory = sqlite3.Row
    entries = [dict(r) for r in db.execute("SELECT * FROM audit_log ORDER BY id")]
    db.row_factory = None
    prev = GENESIS
    for entry in entries:
        entry = edit(entry)
        entry["prev_hash"] = prev
        entry["hash"] = prev = entry_hash(prev, entry)
        db.execute(
            "UPDATE audit_log SET detail = ?, prev_hash = ?, hash = ?, mac = ? WHERE id = ?",
            [
                entry["detail"],
                entry["prev_hash"],
                entry["hash"],
                entry["mac"] if macs == "kept" else None,
                entry["id"],
            ],
        )
    for (sql,) in triggers:
        db.execute(sql)


def lower_the_locked_bar(db: sqlite3.Connection) -> None:
    """The threshold, the lock row and every log entry that names them set to 0.1, with the
    lock's content hash recomputed: a rewrite no single check can tell from the real thing."""
    import json

    from review_app import gate

    (trigger,) = db.execute(
        "SELECT sql FROM sqlite_master WHERE name = 'threshold_locks_append_only_update'"
    ).fetchone()
    db.execute("DROP TRIGGER threshold_locks_append_only_update")
    db.execute("UPDATE thresholds SET value = 0.1")
    old_hash, locked = db.execute("SELECT content_hash, thresholds FROM threshold_locks").fetchone()
    rows = [t | {"value": 0.1} for t in json.loads(locked)]
    new_hash = gate.thresholds_hash(
        [gate.Threshold(t["metric"], t["params"], t["comparator"], t["value"]) for t in rows]
    )
    db.execute(
        "UPDATE threshold_locks SET thresholds = ?, content_hash = ?",
        [json.dumps(rows, sort_keys=True), new_hash],
    )
    db.execute(trigger)

    def edit(entry: dict) -> dict:
        detail = entry["detail"].replace(old_hash, new_hash).replace('"value": 0.5', '"value": 0.1')
        return entry | {"detail": detail}

    return edit


@pytest.mark.parametrize("macs", ["kept", "removed"])
def test_a_consistent_rewrite_of_the_whole_chain_without_the_key_shows(signed, macs):
    store, settings = signed
    with raw(store) as db:
        rewrite_chain(db, lower_the_locked_bar(db), macs)
    (row,) = store.gate.thresholds(store.studies.require_study("demo")["id"])
    assert row["value"] == 0.1
    # Without the key the rewrite holds: every hash was recomputed.
    assert problems_of(store, dataclasses.replace(settings, signing_key=None)) == []
    problems = problems_of(store, settings)
    if macs == "kept":
        assert any("its keyed signature is not this key's" in p for p in problems), problems
    else:
        only(problems, "no audit log entry is keyed, though REVIEW_APP_SIGNING_KEY is set")


def test_an_entry_appended_without_the_key_after_keyed_ones_shows(signed):
    store, settings = signed
    unkeyed = Store.open(store.path)  # a process that was started without the key
    try:
        record_test_look(unkeyed, "demo", ["example-llm-judge"], person(unkeyed, "demo-admin"))
    finally:
        unkeyed.close()
    only(problems_of(store, settings), "(looked at test) is not keyed, though entries before it")


def anchor_of(capsys) -> str:
    from review_app.cli import main

    assert main(["audit", "anchor", "--study", "demo"]) == 0
    return capsys.readouterr().out.strip()


def copy_of(store, path) -> str:
    """A copy of the workspace as it is now (sqlite3's online backup)."""
    with sqlite3.connect(path) as copy, raw(store) as db:
        db.backup(copy)
    return str(path)


def restore(store, path) -> None:
    with sqlite3.connect(path) as copy, raw(store) as db:
        copy.backup(db)


def test_an_anchor_shows_a_workspace_rolled_back_behind_it(locked, tmp_path, capsys):
    from review_app.cli import main

    store, settings = locked
    before = copy_of(store, tmp_path / "before.db")
    sign(store, settings, "reject")
    anchor = write(tmp_path / "anchor.json", anchor_of(capsys))
    assert main(["audit", "verify", "--study", "demo", "--anchor", str(anchor)]) == 0
    assert "hold and the anchor" in capsys.readouterr().out
    restore(store, before)
    assert store.gate.signoffs(store.studies.require_study("demo")["id"]) == []
    assert problems_of(store, settings) == []  # the older copy holds on its own
    assert main(["audit", "verify", "--study", "demo", "--anchor", str(anchor)]) == 1
    err = capsys.readouterr().err
    assert "fewer than the" in err and "rolled back to an older copy" in err


def test_an_anchor_shows_a_log_whose_tail_was_cut(locked, tmp_path, capsys):
    from review_app.cli import main

    store, settings = locked
    sign(store, settings, "reject")
    anchor = anchor_of(capsys)
    with raw(store) as db:
        for table in ("audit_log", "signoffs"):
            db.execute(f"DROP TRIGGER {table}_append_only_delete")
        db.execute("DELETE FROM signoffs")
        db.execute("DELETE FROM audit_log WHERE action = 'signed'")
    # The sign-off and its entry were the last: what is left is a chain that holds, and only
    # the dropped triggers show.
    assert all("trigger" in p for p in problems_of(store, settings))
    assert main(["audit", "verify", "--study", "demo", "--anchor", anchor]) == 1
    assert "its tail was cut" in capsys.readouterr().err


def test_an_anchor_needs_the_key_and_a_forged_anchor_shows(demo_store, tmp_path, capsys):
    import json

    from review_app.cli import main

    assert main(["audit", "anchor", "--study", "demo"]) == 1
    assert "needs the signing key" in capsys.readouterr().err
    anchor = {"study": "demo", "entry": 1, "hash": "0" * 64, "signature": "f" * 64}
    path = write(tmp_path / "anchor.json", json.dumps(anchor))
    assert main(["audit", "verify", "--study", "demo", "--anchor", str(path)]) == 1
    assert "cannot check the anchor" in capsys.readouterr().err


# ---- 9. a signed report edited, or a workspace rolled back behind it ----


def report_file(store, settings, tmp_path, name="report.json"):
    import json

    built = signoff.build_report(acting(store, "demo", "demo-signer", settings=settings))
    return write(tmp_path / name, json.dumps(built, default=str)), built


def test_a_signoff_edited_in_a_signed_report_shows(locked, tmp_path):
    import json

    store, settings = locked
    sign(store, settings, "reject")
    path, built = report_file(store, settings, tmp_path)
    assert audit.verify(store, "demo", settings, path) == []
    built["signoffs"][0]["decision"] = "approve"
    edited = write(tmp_path / "edited.json", json.dumps(built, default=str))
    only(
        audit.verify(store, "demo", settings, edited),
        "what it shows (sign-offs included) does not match its document hash (edited)",
    )
    # Recomputing that hash is no help without the key.
    from review_app.report import document_hash

    built["document_hash"] = document_hash(built)
    forged = write(tmp_path / "forged.json", json.dumps(built, default=str))
    only(audit.verify(store, "demo", settings, forged), "its signature is not this key's")


def test_a_rollback_to_before_a_reject_shows_against_the_signed_report(locked, tmp_path):
    store, settings = locked
    before = copy_of(store, tmp_path / "before.db")
    sign(store, settings, "reject")
    path, _ = report_file(store, settings, tmp_path)
    restore(store, before)
    problems = audit.verify(store, "demo", settings, path)
    only(problems, "cites an audit log entry this workspace does not have")
    only(problems, "its sign-off REJECT by demo-signer at")


# ---- 10. a link swapped in the file ----


def test_a_signers_token_swapped_in_used_and_restored_shows(locked):
    from review_app import auth
    from review_app.services import people

    store, settings = locked
    mine = auth.new_token()
    with raw(store) as db:
        kept = db.execute("SELECT token_hash FROM reviewers WHERE name = 'demo-signer'").fetchone()
        db.execute(
            "UPDATE reviewers SET token_hash = ? WHERE name = 'demo-signer'",
            [auth.hash_token(mine)],
        )
    signer = people.actor_for(store, mine)
    signoff.sign_off(store, "demo", signer, "approve", "ship it", settings, override="pilot")
    with raw(store) as db:
        db.execute("UPDATE reviewers SET token_hash = ? WHERE name = 'demo-signer'", kept)
    only(
        problems_of(store, settings),
        "was made with a link the audit log never issued to demo-signer",
    )
    report = signoff.build_report(acting(store, "demo", "demo-signer", settings=settings))
    assert "link the audit log never issued" in render_report(report, "md")


def test_a_link_swapped_and_left_in_place_or_revived_shows(locked):
    from review_app import auth
    from review_app.services import people

    store, settings = locked
    people.revoke_reviewer(store, "demo-reviewer", person(store, "demo-admin"))
    with raw(store) as db:
        db.execute("UPDATE reviewers SET revoked_at = NULL WHERE name = 'demo-reviewer'")
        db.execute(
            "UPDATE reviewers SET token_hash = ? WHERE name = 'demo-signer'",
            [auth.hash_token(auth.new_token())],
        )
    problems = problems_of(store, settings)
    only(problems, "demo-reviewer's link was revoked by demo-admin at")
    only(problems, "demo-signer's link is not the one the audit log issued last")


# ---- 11. graders, the split and juries behind the triggers ----


def _sql(store, *statements: str) -> None:
    """Edit the workspace file behind the app's back, as someone with the file could."""
    conn = sqlite3.connect(_path(store))
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


def _path(store) -> str:
    return store.db.execute("PRAGMA database_list").fetchone()[2]


def _trigger_sql(store, name: str) -> str:
    return store.db.execute("SELECT sql FROM sqlite_master WHERE name = ?", [name]).fetchone()[0]


def test_audit_verify_notices_an_edited_grader_result_behind_the_triggers(demo_store, settings):
    assert audit.verify(demo_store, "demo", settings) == []
    trigger = _trigger_sql(demo_store, "grader_results_append_only_update")
    _sql(
        demo_store,
        "DROP TRIGGER grader_results_append_only_update",
        "UPDATE grader_results SET passed = 1 - passed WHERE output_id = (SELECT min(output_id) "
        "FROM grader_results)",
        trigger,
    )
    problems = audit.verify(demo_store, "demo", settings)
    assert any("results changed after grading" in p for p in problems), problems


def test_audit_verify_notices_a_deleted_split_row_behind_the_triggers(demo_store, settings):
    rubric_iteration.make_split(acting(demo_store, "demo", "ada", settings=settings), 0.3)
    assert audit.verify(demo_store, "demo", settings) == []
    trigger = _trigger_sql(demo_store, "comparison_splits_append_only_delete")
    _sql(
        demo_store,
        "DROP TRIGGER comparison_splits_append_only_delete",
        "DELETE FROM comparison_splits WHERE pair_id = (SELECT min(pair_id) FROM "
        "comparison_splits WHERE part = 'test')",
        trigger,
    )
    problems = audit.verify(demo_store, "demo", settings)
    assert any("dev/test split changed" in p for p in problems), problems


@pytest.mark.parametrize("table", ["grader_results", "comparison_splits", "juries"])
def test_audit_verify_notices_a_dropped_or_defanged_trigger(demo_store, settings, capsys, table):
    name = f"{table}_append_only_update"
    _sql(demo_store, f"DROP TRIGGER {name}")
    assert any(f"table {table}" in p for p in audit.verify(demo_store, "demo", settings))
    # A trigger of the same name that lets the change through protects nothing.
    _sql(demo_store, f"CREATE TRIGGER {name} BEFORE UPDATE ON {table} BEGIN SELECT 1; END")
    assert any(f"table {table}" in p for p in audit.verify(demo_store, "demo", settings))
    assert cli.main(["audit", "verify", "--study", "demo"]) == 1
    assert f"table {table}: the append-only UPDATE trigger is missing" in capsys.readouterr().err


def test_audit_verify_notices_a_jury_whose_members_were_changed(demo_store, settings):
    judges = ["example-llm-judge", "baseline/longest"]
    juries.create_jury(acting(demo_store, "demo", "ada", settings=settings), "pair", judges)
    assert audit.verify(demo_store, "demo", settings) == []
    trigger = _trigger_sql(demo_store, "juries_append_only_update")
    _sql(
        demo_store,
        "DROP TRIGGER juries_append_only_update",
        """UPDATE juries SET members = '["example-llm-judge", "baseline/shortest"]'""",
        trigger,
    )
    problems = audit.verify(demo_store, "demo", settings)
    assert any("jury jury/pair" in p for p in problems), problems
