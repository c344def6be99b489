"""Restarting the demo keeps the links it handed out (open tabs stay signed in) while they still
work, and counts the votes cast in the app apart from the example votes."""

import re
import stat

from review_app.cli import main
from review_app.services import people, review
from review_app.settings import Settings
from review_app.store import Store


def demo(capsys) -> tuple[str, dict[str, str]]:
    assert main(["demo", "--no-serve"]) == 0
    out = capsys.readouterr().out
    links = dict(re.findall(r"^\s+(demo-\w+)\s+(\S+token=\S+)$", out, re.M))
    links["demo-admin"] = out.strip().splitlines()[-1]
    return out, links


def test_a_restart_keeps_the_links_and_counts_app_votes_apart(capsys, isolated_workspace):
    first, links = demo(capsys)
    example = int(re.search(r"(\d+) example votes", first).group(1))
    assert "cast in the app" not in first
    store = Store.open(isolated_workspace)
    try:
        settings = Settings.from_env()
        user = people.authenticate(store, links["demo-reviewer"].split("token=")[1])
        study_id = store.studies.require_study("demo")["id"]
        task = review.next_pair(store, settings, user["id"], study_id)
        review.record_vote(store, settings, user["id"], task.assignment_id, "A")
    finally:
        store.close()
    again, same = demo(capsys)
    assert same == links
    assert f"{example} example votes and 1 cast in the app" in again
    kept = isolated_workspace.with_name(isolated_workspace.name + ".demo-links.json")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600


def test_a_revoked_demo_link_is_replaced(capsys, isolated_workspace):
    _, links = demo(capsys)
    store = Store.open(isolated_workspace)
    try:
        from tests.acting import person

        people.revoke_reviewer(store, "demo-signer", person(store, "demo-admin"))
    finally:
        store.close()
    _, again = demo(capsys)
    assert again["demo-signer"] != links["demo-signer"]
    assert again["demo-reviewer"] == links["demo-reviewer"]
