"""Attacks on the sign-off, by a signer or by an admin acting through a signer's link: a
signature that lands on a report other than the one the signer read, a signer's link reissued
or a new signer minted after the lock, and what the report says about the link each sign-off
was made with."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from review_app import cli
from review_app.auth import Actor
from review_app.errors import ReportChanged
from review_app.report import render_report
from review_app.services import audit, people, quality, signoff
from review_app.settings import Settings
from tests.acting import acting, lock_on_win_rate, person
from tests.conftest import ROOT, write

KEY = "a secret kept outside the workspace"


@pytest.fixture
def locked(demo_store, monkeypatch):
    """The demo with a human win-rate threshold, locked by the admin, with a signing key."""
    monkeypatch.setenv("REVIEW_APP_SIGNING_KEY", KEY)
    settings = Settings.from_env()
    demo_store.signing_key = KEY
    lock_on_win_rate(demo_store, settings)
    return demo_store, settings


def signer_of(store, name: str = "demo-signer") -> Actor:
    return Actor.of(store.people.reviewer(name))


def as_signer(store, settings) -> dict:
    """The report as the signer reads it."""
    return signoff.build_report(acting(store, "demo", "demo-signer", settings=settings))


def exclude_a_reviewer(store, settings) -> None:
    admin = acting(store, "demo", "demo-admin", settings=settings)
    quality.exclude_reviewer(admin, "example-ana", "careless on formatting items")


def token_of(link: str) -> str:
    return link.split("token=")[1]


# ---- the report the signer read ----


def test_a_signature_never_lands_on_a_report_the_signer_did_not_read(locked):
    store, settings = locked
    seen = as_signer(store, settings)
    exclude_a_reviewer(store, settings)
    with pytest.raises(ReportChanged) as refused:
        signoff.sign_off(store, "demo", signer_of(store), "reject", "not yet", settings, seen=seen)
    assert seen["report_hash"][:8] in str(refused.value)
    assert any(line.startswith("exclusions") for line in refused.value.differences)
    study_id = store.studies.require_study("demo")["id"]
    assert store.gate.signoffs(study_id) == []
    # The report read again is the one signed.
    again = as_signer(store, settings)
    signed = signoff.sign_off(
        store, "demo", signer_of(store), "reject", "not yet", settings, seen=again
    )
    assert signed["signoffs"][-1]["report_hash"] == again["report_hash"]


def test_the_gate_screen_refuses_to_sign_a_newer_report_and_shows_what_changed(locked):
    store, settings = locked
    at = AppTest.from_file(str(ROOT / "review_app" / "app_pages" / "gate.py"), default_timeout=90)
    at.query_params["token"] = token_of(store.demo_links["demo-signer"])
    at.run()
    assert not at.exception
    at.radio(key="signoff_decision").set_value("reject").run()
    at.text_area(key="signoff_comment").input("the formatting suite is too thin")
    # An admin excludes a reviewer while the signer reads.
    exclude_a_reviewer(store, settings)
    at.button(key="signoff_submit").click().run()
    assert not at.exception
    study_id = store.studies.require_study("demo")["id"]
    assert store.gate.signoffs(study_id) == []
    assert any("the report changed after you opened it" in e.value for e in at.error)
    assert any("exclusions" in m.value and "example-ana" in m.value for m in at.markdown)
    # What the page now shows is what the next click signs.
    at.text_area(key="signoff_comment").input("the formatting suite is too thin")
    at.button(key="signoff_submit").click().run()
    assert not at.exception
    (signed,) = store.gate.signoffs(study_id)
    assert signed["report_hash"] == as_signer(store, settings)["report_hash"]


def test_signoff_on_the_command_line_signs_only_the_report_file_it_names(
    locked, tmp_path, capsys, monkeypatch
):
    store, settings = locked
    monkeypatch.setenv("REVIEW_APP_TOKEN", token_of(store.demo_links["demo-signer"]))
    path = tmp_path / "report.json"
    assert cli.main(["report", "--study", "demo", "--format", "json", "--output", str(path)]) == 0
    capsys.readouterr()
    exclude_a_reviewer(store, settings)
    args = ["signoff", "--study", "demo", "--decision", "reject", "--comment", "too thin"]
    assert cli.main([*args, "--report", str(path)]) == 1
    err = capsys.readouterr().err
    assert "the report changed since you read it" in err and "exclusions" in err
    assert len(err.strip().splitlines()) == 1
    assert store.gate.signoffs(store.studies.require_study("demo")["id"]) == []
    assert cli.main(["report", "--study", "demo", "--format", "json", "--output", str(path)]) == 0
    assert cli.main([*args, "--report", str(path)]) == 0


# ---- the link a sign-off was made with ----


def test_a_signoff_records_the_version_of_the_link_it_was_made_with(locked):
    store, settings = locked
    signoff.sign_off(store, "demo", signer_of(store), "reject", "not yet", settings)
    (row,) = store.audit.study_rows("signoffs", store.studies.require_study("demo")["id"])
    assert row["token_version"] == store.people.reviewer("demo-signer")["token_version"] >= 1
    (shown,) = as_signer(store, settings)["signoffs"]
    assert shown["link"]["version"] == row["token_version"]
    assert shown["link"]["by"] == "demo-admin" and shown["link"]["issued"] is True


def test_a_signers_link_reissued_after_the_lock_shows_in_the_report(locked):
    store, settings = locked
    _, link = people.add_reviewer(
        store,
        settings,
        "demo-signer",
        "signer",
        "demo",
        actor=person(store, "demo-admin"),
        reissue=True,
    )
    signer = people.actor_for(store, token_of(link))
    signoff.sign_off(store, "demo", signer, "approve", "ship it", settings, override="pilot")
    report = as_signer(store, settings)
    (shown,) = report["signoffs"]
    assert shown["link"]["action"] == "link reissued" and shown["link"]["by"] == "demo-admin"
    for form in ("md", "html"):
        text = render_report(report, form)
        assert "reissued by demo-admin at" in text
        assert "after the thresholds were locked" in text
    assert audit.verify(store, "demo", settings) == []


def test_a_signer_minted_after_the_lock_shows_in_the_report(locked, tmp_path):
    store, settings = locked
    _, link = people.add_reviewer(
        store, settings, "VP Product", "signer", "demo", actor=person(store, "demo-admin")
    )
    signer = people.actor_for(store, token_of(link))
    signoff.sign_off(store, "demo", signer, "approve", "ship it", settings, override="pilot")
    report = as_signer(store, settings)
    markdown = render_report(report, "md")
    assert "APPROVE by VP Product" in markdown
    assert "link version 1, created by demo-admin at" in markdown
    assert "after the thresholds were locked" in markdown.split("## Gate")[1].split("##")[0]
    # The JSON report says it too, under its signature.
    path = write(tmp_path / "report.json", json.dumps(report, default=str))
    assert audit.verify(store, "demo", settings, path) == []
