"""The record cannot be bent without a trace: every governance action is in a hash-chained log,
`audit verify` finds a threshold, vote, trigger or report changed behind the app's back, votes
are frozen at the lock, and the CLI acts only as an authenticated person."""

from __future__ import annotations

import json

import pytest

from review_app.auth import Actor
from review_app.cli import main
from review_app.errors import InputError
from review_app.services import audit, data, signoff, thresholds
from review_app.settings import Settings
from tests.acting import acting, lock_on_win_rate, looking, person
from tests.conftest import write
from tests.tamper import raw

pytestmark = pytest.mark.both_backends

KEY = {"REVIEW_APP_SIGNING_KEY": "a secret kept outside the workspace"}


def token(store, name):
    return store.demo_links[name].split("token=")[1]


@pytest.fixture
def signed(demo_store, monkeypatch):
    """The demo, locked by the admin and signed (with an override) by the signer, with a key."""
    monkeypatch.setenv("REVIEW_APP_SIGNING_KEY", KEY["REVIEW_APP_SIGNING_KEY"])
    settings = Settings.from_env()
    demo_store.signing_key = settings.signing_key  # as the app opens it, with the key
    lock_on_win_rate(demo_store, settings)
    signer = Actor.of(demo_store.people.reviewer("demo-signer"))
    signoff.sign_off(demo_store, "demo", signer, "approve", "ok", settings, override="pilot")
    return demo_store, settings


def test_every_governance_action_is_logged_with_its_actor(signed, cli_admin):
    store, _ = signed
    actions = [(e["actor"], e["action"]) for e in audit.study_log(store, "demo")]
    assert ("demo-admin", "threshold added") in actions
    assert ("demo-admin", "thresholds locked") in actions
    assert actions[-1] == ("demo-signer", "signed")
    # The demo acts as its admin, never as "demo" or "cli".
    assert ("demo-admin", "link reissued") in actions
    assert {actor for actor, _ in actions} <= {"demo-admin", "demo-signer"}


def test_an_untouched_record_verifies(signed, tmp_path, capsys):
    store, settings = signed
    assert audit.verify(store, "demo", settings) == []
    report = tmp_path / "report.json"
    # The study is interim: the report is a look, read in the signer's name (who looked already
    # when signing, so nothing new is recorded and the report is the one signed).
    as_signer = ["--token", token(store, "demo-signer")]
    assert (
        main([*as_signer, "report", "--study", "demo", "--format", "json", "--output", str(report)])
        == 0
    )
    assert main(["audit", "verify", "--study", "demo", "--report", str(report)]) == 0
    assert "hold and the report's signature" in capsys.readouterr().out


def test_verify_finds_a_threshold_edited_in_the_file(signed, capsys):
    store, settings = signed
    with raw(store) as db:
        db.execute("UPDATE thresholds SET value = 0.1")
    problems = audit.verify(store, "demo", settings)
    assert "the thresholds differ from the locked ones and no deviation says why" in problems
    assert main(["audit", "verify", "--study", "demo"]) == 1
    assert "does not hold" in capsys.readouterr().err


def test_verify_finds_a_dropped_trigger_and_an_edited_vote(signed):
    store, settings = signed
    with raw(store) as db:
        db.execute("DROP TRIGGER votes_append_only_update")
        db.execute("UPDATE votes SET winner = 'base' WHERE id = (SELECT min(id) FROM votes)")
    problems = audit.verify(store, "demo", settings)
    assert "table votes: the append-only UPDATE trigger is missing" in problems
    assert any(p.startswith("votes changed after 'thresholds locked'") for p in problems)
    assert any(p.startswith("votes changed after 'signed'") for p in problems)


def test_guidelines_and_exclusions_are_append_only_and_their_triggers_checked(signed):
    store, settings = signed
    with pytest.raises(Exception, match="append-only"):
        store.db.execute("DELETE FROM study_guidelines")
    with raw(store) as db:
        db.execute("DROP TRIGGER study_guidelines_append_only_update")
        db.execute("UPDATE study_guidelines SET body = 'anything goes'")
    problems = audit.verify(store, "demo", settings)
    assert "table study_guidelines: the append-only UPDATE trigger is missing" in problems
    actions = {
        e["action"] for e in store.audit.audit_entries(store.studies.require_study("demo")["id"])
    }
    assert "guidelines set" in actions


def test_verify_finds_an_edited_lock_and_a_rewritten_log(signed):
    store, settings = signed
    with raw(store) as db:
        db.execute("DROP TRIGGER threshold_locks_append_only_update")
        db.execute("UPDATE threshold_locks SET content_hash = 'f' || substr(content_hash, 2)")
        db.execute("DROP TRIGGER audit_log_append_only_update")
        db.execute("UPDATE audit_log SET actor = 'someone else' WHERE action = 'signed'")
    problems = audit.verify(store, "demo", settings)
    assert "the locked thresholds no longer match the lock's content hash" in problems
    assert any("(signed): its content was changed" in p for p in problems)


def test_verify_finds_a_forged_report(signed, tmp_path):
    store, settings = signed
    body = signoff.build_report(looking(store, "demo", settings))
    path = write(tmp_path / "r.json", json.dumps(body, default=str))
    assert audit.verify(store, "demo", settings, path) == []
    # Someone with the file but not the key changes a number and recomputes the hashes.
    from review_app.report import document_hash, report_hash

    body["gate"]["result"] = "pass"
    body["report_hash"] = report_hash(body)
    body["document_hash"] = document_hash(body)
    forged = write(tmp_path / "forged.json", json.dumps(body, default=str))
    problems = audit.verify(store, "demo", settings, forged)
    assert any("its signature is not this key's" in p for p in problems)
    # Without recomputing the hash, the edit itself shows.
    body["report_hash"] = "0" * 64
    edited = write(tmp_path / "edited.json", json.dumps(body, default=str))
    assert any("(edited)" in p for p in audit.verify(store, "demo", settings, edited))


def test_votes_are_frozen_at_the_lock(signed, tmp_path, capsys):
    store, settings = signed
    study_id = store.studies.require_study("demo")["id"]
    before = store.audit.votes_by_source(study_id)
    late = write(
        tmp_path / "late.csv",
        "item_id,system_a,system_b,reviewer,winner\nsupport-001,finetuned,base,ghost,finetuned\n",
    )
    with pytest.raises(InputError, match="give a reason"):
        data.import_votes(store, late, "demo", actor=person(store))
    assert store.audit.votes_by_source(study_id) == before
    # From the CLI, only an admin may add them, with a reason; the report lists it.
    assert main(["import", "votes", str(late), "--study", "demo", "--reason", "x"]) == 1
    assert "pass --token TOKEN" in capsys.readouterr().err
    admin = ["--token", token(store, "demo-admin")]
    argv = [*admin, "import", "votes", str(late), "--study", "demo", "--reason", "late reviewer"]
    assert main(argv) == 0
    report = signoff.build_report(looking(store, "demo", settings))
    assert report["deviations"][-1]["reason"] == "late reviewer"
    assert report["votes_by_source"]["import:late.csv"] == 1
    assert report["votes_by_source"]["import:votes.csv"] == before["import:votes.csv"]


def test_an_import_never_replaces_a_vote_cast_in_the_app(demo_store, settings, tmp_path):
    from review_app.services import review

    reviewer = demo_store.people.reviewer("demo-reviewer")
    study = demo_store.studies.require_study("demo")
    task = review.next_pair(demo_store, settings, reviewer["id"], study["id"])
    review.record_vote(demo_store, settings, reviewer["id"], task.assignment_id, "A")
    pair = demo_store.studies.pair(demo_store.review.assignment(task.assignment_id)["pair_id"])
    other = {pair["system_x"]: pair["system_y"], pair["system_y"]: pair["system_x"]}
    app_winner = demo_store.review.latest_vote(pair["pair_id"], reviewer["id"])["winner"]
    rewritten = write(
        tmp_path / "rewrite.csv",
        "item_id,system_a,system_b,reviewer,winner,created_at\n"
        f"{pair['item_key']},{pair['system_x']},{pair['system_y']},demo-reviewer,"
        f"{other[app_winner]},2020-01-01T00:00:00Z\n",
    )
    with pytest.raises(Exception, match="voted on this pair in the app; an import cannot"):
        data.import_votes(demo_store, rewritten, "demo", actor=person(demo_store))
    assert demo_store.review.latest_vote(pair["pair_id"], reviewer["id"])["winner"] == app_winner


def test_a_vote_from_the_future_is_refused(demo_store, tmp_path):
    future = write(
        tmp_path / "future.csv",
        "item_id,system_a,system_b,reviewer,winner,created_at\n"
        "support-001,finetuned,base,zed,finetuned,2999-01-01T00:00:00Z\n",
    )
    with pytest.raises(Exception, match=r"future.csv:2: field 'created_at': .* is in the future"):
        data.import_votes(demo_store, future, "demo", actor=person(demo_store))


def test_every_vote_records_when_it_entered_the_workspace(demo_store):
    rows = demo_store.db.execute("SELECT created_at, entered_at FROM votes").fetchall()
    assert rows and all(entered for _, entered in rows)


def test_a_shadow_study_locked_first_is_reported_as_a_look_at_the_outcomes(demo_store, settings):
    from review_app.report import render_report
    from review_app.services import studies

    studies.create_study(
        demo_store,
        "shadow",
        "demo",
        [("finetuned", "base")],
        actor=person(demo_store, "demo-admin"),
    )
    for study in ("shadow", "demo"):
        thresholds.add_threshold(
            acting(demo_store, study, "demo-admin"), "final_review_acceptable_rate", {}, ">=", 0.9
        )
    thresholds.lock_thresholds(
        acting(demo_store, "shadow", "demo-admin", settings=settings), "a small test study"
    )
    thresholds.lock_thresholds(
        acting(demo_store, "demo", "demo-admin", settings=settings), "a small test study"
    )
    report = signoff.build_report(looking(demo_store, "demo", settings))
    (look,) = report["looks_before_lock"]
    assert (look["study"], look["systems"]) == ("shadow", ["base", "finetuned"])
    html = render_report(report, "html")
    assert "after the outcomes of the same systems on this eval set were visible through" in html
    assert "before the outcomes were visible" not in html
    # The shadow study itself saw nothing earlier.
    assert signoff.build_report(looking(demo_store, "shadow", settings))["looks_before_lock"] == []


def test_signing_does_not_change_the_report_it_signed(signed):
    store, settings = signed
    # Read by the signer, whose look at these figures is already on the record: signing added
    # nothing the report covers. (Someone else's first look would be listed, and change it.)
    report = signoff.build_report(acting(store, "demo", "demo-signer", settings=settings))
    assert report["signoffs"][-1]["report_hash"] == report["report_hash"]


def test_a_vote_cast_in_the_app_while_an_import_publishes_is_not_replaced(
    demo_store, settings, tmp_path, monkeypatch
):
    # The import checks the pair before the reviewer votes on it in the app; its publishing then
    # meets the app vote, keeps it, and says so.
    from review_app.services import review

    reviewer = demo_store.people.reviewer("demo-reviewer")
    study = demo_store.studies.require_study("demo")
    task = review.next_pair(demo_store, settings, reviewer["id"], study["id"])
    pair = demo_store.studies.pair(demo_store.review.assignment(task.assignment_id)["pair_id"])
    x, y = pair["system_x"], pair["system_y"]
    rows = f"{pair['item_key']},{x},{y},demo-reviewer,tie\n{pair['item_key']},{x},{y},late,{x}\n"
    path = write(tmp_path / "late.csv", "item_id,system_a,system_b,reviewer,winner\n" + rows)
    publish = data._publish

    def vote_then_publish(*args, **kwargs):
        review.record_vote(demo_store, settings, reviewer["id"], task.assignment_id, "A")
        return publish(*args, **kwargs)

    monkeypatch.setattr(data, "_publish", vote_then_publish)
    summary = data.import_votes(demo_store, path, "demo", actor=person(demo_store))
    assert summary.added == {"votes added": 1}
    assert "1 left out: their reviewers voted on those pairs in the app meanwhile" in summary.line()
    latest = demo_store.review.latest_vote(pair["pair_id"], reviewer["id"])
    assert latest["source"] == "app" and latest["winner"] != "tie"
    assert (
        demo_store.review.latest_vote(pair["pair_id"], demo_store.people.reviewer("late")["id"])[
            "winner"
        ]
        == x
    )
