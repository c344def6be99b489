"""Attacks by a reviewer: someone holding a reviewer's personal link who wants more than their
own votes: to take a governance action (lock, sign, exclude someone, hand out or upgrade links,
read the votes), to sign in another's name, or to keep using a revoked link. Each is refused in
one line and leaves nothing in the record."""

from __future__ import annotations

import pytest

from review_app import cli
from review_app.errors import Forbidden
from review_app.services import audit, people

pytestmark = pytest.mark.both_backends

GOVERNANCE = {
    "lock the thresholds": ["thresholds", "lock", "--study", "demo", "--reason", "now"],
    "sign off": ["signoff", "--study", "demo", "--decision", "approve", "--comment", "ok"],
    "sign as the signer": [
        "signoff",
        "--study",
        "demo",
        "--signer",
        "demo-signer",
        "--decision",
        "approve",
        "--comment",
        "ok",
    ],
    "exclude a reviewer": [
        "reviewers",
        "exclude",
        "example-ana",
        "--study",
        "demo",
        "--reason",
        "disagrees with me",
    ],
    "give themselves an admin link": [
        "reviewers",
        "add",
        "demo-reviewer",
        "--role",
        "admin",
        "--reissue",
    ],
    "mint a signer": ["reviewers", "add", "friend", "--role", "signer"],
    "revoke the admin": ["reviewers", "revoke", "demo-admin"],
    "export the votes": ["export", "votes", "--study", "demo", "--format", "csv"],
}


def tables(store) -> dict[str, int]:
    names = ("audit_log", "signoffs", "threshold_locks", "reviewer_exclusions", "reviewers")
    return {t: store.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in names}


@pytest.mark.parametrize("attempt", sorted(GOVERNANCE))
def test_a_reviewers_link_takes_no_governance_action(demo_store, settings, capsys, attempt):
    token = demo_store.demo_links["demo-reviewer"].split("token=")[1]
    before = tables(demo_store)
    assert cli.main(["--token", token, *GOVERNANCE[attempt]]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert tables(demo_store) == before
    assert demo_store.people.reviewer("demo-reviewer")["role"] == "reviewer"
    assert audit.verify(demo_store, "demo", settings) == []


def test_a_revoked_reviewer_link_opens_nothing(demo_store, settings, capsys):
    token = demo_store.demo_links["demo-reviewer"].split("token=")[1]
    admin_token = demo_store.demo_links["demo-admin"].split("token=")[1]
    assert cli.main(["--token", admin_token, "reviewers", "revoke", "demo-reviewer"]) == 0
    with pytest.raises(Forbidden, match="revoked"):
        people.actor_for(demo_store, token)
    capsys.readouterr()
    assert (
        cli.main(
            ["--token", token, "reviewers", "exclude", "example-ana"]
            + ["--study", "demo", "--reason", "x"]
        )
        == 1
    )
    assert "revoked" in capsys.readouterr().err
    assert audit.verify(demo_store, "demo", settings) == []
