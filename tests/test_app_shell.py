"""The app shell: nobody gets in without a valid link; each role sees only its screens."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from review_app.services import people
from tests.acting import person

APP = str(Path(__file__).resolve().parent.parent / "review_app" / "streamlit_app.py")
PAGES = Path(APP).parent / "app_pages"


def token_of(link: str) -> str:
    return link.split("token=")[1]


def open_app(token: str | None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    if token is not None:
        at.query_params["token"] = token
    return at.run()


def page_text(at: AppTest) -> str:
    return " ".join(str(e.value) for e in (*at.title, *at.error, *at.markdown, *at.caption))


@pytest.mark.parametrize("token", [None, "", "not-a-real-token"])
def test_missing_or_invalid_token_is_refused(demo_store, token):
    at = open_app(token)
    assert not at.exception
    assert at.title[0].value == "Access denied"
    assert "not valid" in at.error[0].value or "personal link" in at.error[0].value


def test_revoked_token_is_refused(demo_store):
    token = token_of(demo_store.demo_links["demo-signer"])
    people.revoke_reviewer(demo_store, "demo-signer", person(demo_store))
    at = open_app(token)
    assert "revoked" in at.error[0].value


def test_admin_sees_the_workspace(demo_store):
    at = open_app(token_of(demo_store.demo_links["demo-admin"]))
    assert not at.exception
    assert at.title[0].value == "Workspace"  # admins land on the overview, reviewers on review
    assert "Study: demo" in [s.value for s in at.subheader]
    votes = next(m for m in at.metric if m.label == "Votes")
    study = demo_store.studies.require_study("demo")
    assert int(votes.value) == demo_store.studies.study_counts(study["id"])["votes"] > 0


def test_signer_lands_on_the_gate(demo_store):
    at = open_app(token_of(demo_store.demo_links["demo-signer"]))
    assert not at.exception
    assert at.title[0].value == "Gate"


def test_screens_follow_the_work_and_gate_comes_before_results():
    from review_app.auth import LANDING, ROLE_SCREENS, SCREENS

    screens = [screen for screen, *_ in SCREENS]
    assert screens.index("gate") < screens.index("results")
    assert screens.index("calibration") < screens.index("gate")
    titles = [title for _, _, title, _ in SCREENS]
    assert len(set(titles)) == len(titles)  # each tab is titled after its screen
    for role, screens_of_role in ROLE_SCREENS.items():
        assert screens_of_role <= set(screens) and LANDING[role] in screens_of_role
    assert all((PAGES / file).is_file() for _, file, _, _ in SCREENS)


def test_reviewer_lands_on_the_review_screen(demo_store):
    at = open_app(token_of(demo_store.demo_links["demo-reviewer"]))
    assert not at.exception
    assert any(">Which response is better?</h1>" in e.proto.body for e in at.get("html"))
    assert not at.metric  # no workspace counts


def test_reviewer_cannot_open_the_workspace_page(demo_store):
    token = token_of(demo_store.demo_links["demo-reviewer"])
    at = AppTest.from_file(str(Path(APP).parent / "app_pages" / "home.py"), default_timeout=30)
    at.query_params["token"] = token
    at.run()
    assert not at.exception
    assert "for admin or signer accounts" in at.error[0].value
    assert not at.metric
