"""The admin screens through AppTest: uploads, studies and guidelines, reviewers and links,
reviewer quality; each change checked in the store, each refusal leaves the store unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from review_app.services import people, studies
from tests.acting import person
from tests.review_fixtures import SYSTEM_X, SYSTEM_Y, SYSTEM_Z, write_outputs

PAGES = Path(__file__).resolve().parent.parent / "review_app" / "app_pages"


def token_of(link: str) -> str:
    return link.split("token=")[1]


def open_page(page: str, token: str) -> AppTest:
    at = AppTest.from_file(str(PAGES / page), default_timeout=60)
    at.query_params["token"] = token
    return at.run()


@pytest.fixture
def admin(store, settings) -> str:
    _, link = people.add_reviewer(store, settings, "ada", "admin", actor=None)  # the first admin
    return token_of(link)


def messages(at: AppTest) -> str:
    return " | ".join(str(e.value) for e in (*at.success, *at.error, *at.info, *at.warning))


# ---- upload ----


def test_uploading_outputs_imports_them(store, admin, tmp_path):
    content = write_outputs(tmp_path / "outputs.csv", 3).read_bytes()
    at = open_page("data.py", admin)
    assert not at.exception
    at.selectbox(key="upload_eval_set").select("(new)").run()
    at.text_input(key="upload_new_eval_set").input("es").run()
    at.file_uploader(key="upload_file_outputs").set_value(("outputs.csv", content, "text/csv"))
    at.button(key="upload_submit").click().run()
    assert not at.exception
    assert "outputs.csv: 9 rows read" in messages(at)
    [eval_set] = store.catalog.eval_sets()
    assert (eval_set["name"], eval_set["n_items"]) == ("es", 3)


def test_a_bad_upload_changes_nothing_and_names_the_file_and_line(store, admin, tmp_path):
    good = write_outputs(tmp_path / "outputs.csv", 3).read_text(encoding="utf-8")
    bad = good.replace("Answer short for question 2.", "", 1).splitlines()
    bad[4] = "q0001,Question number 1?,zq-sentinel-alpha-4f1c"  # too few columns
    before = store.table_counts()
    at = open_page("data.py", admin)
    at.selectbox(key="upload_eval_set").select("(new)").run()
    at.text_input(key="upload_new_eval_set").input("es").run()
    at.file_uploader(key="upload_file_outputs").set_value(
        ("broken.csv", "\n".join(bad).encode(), "text/csv")
    )
    at.button(key="upload_submit").click().run()
    assert not at.exception
    [error] = at.error
    assert error.value.startswith("Nothing imported. broken.csv:5")
    assert "/tmp" not in error.value and "review-app-upload" not in error.value
    assert store.table_counts() == before


def test_uploading_votes_creates_the_study_over_an_eval_set(store, admin, tmp_path, settings):
    from review_app.services import data

    data.import_outputs(store, write_outputs(tmp_path / "o.csv", 2), "es", actor=person(store))
    votes = (
        "item_id,system_a,system_b,reviewer,winner\n"
        f"q0000,{SYSTEM_X},{SYSTEM_Y},ana,{SYSTEM_X}\n"
        f"q0001,{SYSTEM_X},{SYSTEM_Y},ana,tie\n"
    )
    at = open_page("data.py", admin)
    at.segmented_control(key="upload_kind").set_value("votes").run()
    at.selectbox(key="upload_study").select("(new)").run()
    at.text_input(key="upload_new_study").input("imported").run()
    at.selectbox(key="upload_over_eval_set").select("es").run()
    at.file_uploader(key="upload_file_votes").set_value(("votes.csv", votes.encode(), "text/csv"))
    at.button(key="upload_submit").click().run()
    assert not at.exception, at.exception
    assert "votes.csv: 2 rows read" in messages(at)
    study = store.studies.require_study("imported")
    assert len(store.frames.votes_frame(study["id"])) == 2


# ---- studies and guidelines ----


@pytest.fixture
def eval_set(store, tmp_path):
    from review_app.services import data

    data.import_outputs(store, write_outputs(tmp_path / "o.csv", 4), "es", actor=person(store))
    return "es"


def test_creating_a_study_with_guidelines(store, admin, eval_set):
    at = open_page("studies.py", admin)
    assert not at.exception
    at.text_input(key="study_new_name").input("release-2").run()
    at.selectbox(key="study_new_candidate").select(SYSTEM_X).run()
    at.multiselect(key="study_new_others").select(SYSTEM_Y).select(SYSTEM_Z).run()
    at.number_input(key="study_new_k").set_value(2)
    at.text_input(key="study_new_criteria").input("accuracy, tone")
    at.text_area(key="study_new_guidelines").input("# Rules\n\nShort wins.")
    at.button(key="study_create").click().run()
    assert not at.exception
    assert "Study release-2: 8 pairs" in messages(at)
    study = store.studies.require_study("release-2")
    assert study["reviews_per_pair"] == 2
    assert store.studies.comparisons(study["id"]) == [(SYSTEM_X, SYSTEM_Y), (SYSTEM_X, SYSTEM_Z)]
    assert store.studies.current_guidelines(study["id"])["body"] == "# Rules\n\nShort wins.\n"


def test_a_study_with_a_human_share_from_the_screen(store, admin, eval_set):
    at = open_page("studies.py", admin)
    at.text_input(key="study_new_name").input("half").run()
    at.selectbox(key="study_new_candidate").select(SYSTEM_X).run()
    at.multiselect(key="study_new_others").select(SYSTEM_Y).run()
    at.slider(key="study_new_human_share").set_value(0.5)
    at.button(key="study_create").click().run()
    assert not at.exception
    assert "Study half: 4 pairs over es (reviewers see 2; the rest are judged only)" in messages(at)
    study = store.studies.require_study("half")
    assert study["human_share"] == 0.5
    assert len(store.studies.judge_only_pair_ids(study["id"])) == 2


def test_a_refused_study_is_not_created(store, admin, eval_set):
    at = open_page("studies.py", admin)
    at.text_input(key="study_new_name").input("nothing-to-compare").run()
    at.button(key="study_create").click().run()
    assert not at.exception
    assert "Not created: choose at least one system" in at.error[0].value
    assert store.studies.study("nothing-to-compare") is None
    at.multiselect(key="study_new_others").select(SYSTEM_Y).run()
    at.text_input(key="study_new_name").input("").run()
    at.button(key="study_create").click().run()
    assert at.error[0].value.startswith("Not created:")
    assert studies.list_studies(store) == []


def test_guidelines_are_replaced_in_the_app(store, admin, eval_set):
    studies.create_study(
        store, "s", eval_set, [(SYSTEM_X, SYSTEM_Y)], guidelines="# Old", actor=person(store)
    )
    at = open_page("studies.py", admin)
    text = next(t for t in at.text_area if t.key.startswith("guidelines_text_"))
    assert text.value == "# Old\n"
    text.input("# New\n\n- Name the reset time.").run()
    at.button(key="guidelines_save").click().run()
    assert not at.exception
    assert "in force" in messages(at)
    history = studies.guidelines_history(store, "s")
    assert [h["set_by"] for h in history] == ["ada", "ada"]
    assert studies.study_guidelines(store, "s")["body"] == "# New\n\n- Name the reset time.\n"


# ---- reviewers and links ----


def test_adding_a_reviewer_shows_their_link_once_and_revoking_shuts_it(store, admin, eval_set):
    studies.create_study(store, "s", eval_set, [(SYSTEM_X, SYSTEM_Y)], actor=person(store))
    at = open_page("people.py", admin)
    assert not at.exception
    at.text_input(key="people_name").input("maya")
    at.selectbox(key="people_role").select("reviewer")
    at.button(key="people_add").click().run()
    assert not at.exception
    [link] = [c.value for c in at.code]
    assert link.startswith("http://127.0.0.1:8501/?token=")
    maya = people.authenticate(store, token_of(link))
    assert (maya["name"], maya["role"], maya["study_id"]) == (
        "maya",
        "reviewer",
        store.studies.require_study("s")["id"],
    )
    assert at.selectbox(key="people_revoke_name").options == ["maya"]  # never yourself
    at.selectbox(key="people_revoke_name").select("maya")
    at.button(key="people_revoke").click().run()
    # One click only asks: the link still works until the second, explicit one.
    assert "cannot be restored" in at.warning[0].value
    assert not store.people.reviewer("maya")["revoked_at"]
    at.button(key="people_revoke_yes").click().run()
    assert not at.exception
    assert not at.code  # the link is not shown again
    assert "Revoked: maya" in messages(at)
    assert store.people.reviewer("maya")["revoked_at"]


def test_a_reviewer_without_a_name_is_refused(store, admin):
    at = open_page("people.py", admin)
    at.button(key="people_add").click().run()
    assert "Not added: reviewer name is empty" in messages(at)
    assert [r["name"] for r in store.people.reviewers()] == ["ada"]


def test_an_admin_link_revoked_while_the_tab_is_open_issues_and_revokes_nothing(
    store, settings, admin
):
    people.add_reviewer(store, settings, "maya", "reviewer", actor=person(store))
    people.add_reviewer(store, settings, "bob", "admin", actor=person(store))
    for button in ("people_add", "people_revoke"):
        at = open_page("people.py", admin)
        at.text_input(key="people_name").input("mallory")
        at.selectbox(key="people_role").select("admin")
        at.selectbox(key="people_revoke_name").select("maya")
        people.revoke_reviewer(
            store, "ada", person(store, "bob")
        )  # ada's page is drawn; then she clicks
        before = store.people.reviewers()
        at.button(key=button).click().run()
        assert not at.exception
        assert store.people.reviewers() == before and not at.code
        assert "revoked" in at.error[0].value
        _, link = people.add_reviewer(
            store, settings, "ada", "admin", reissue=True, actor=person(store)
        )
        admin = token_of(link)


@pytest.mark.parametrize("page", ["data.py", "studies.py", "people.py", "quality.py"])
def test_only_admins_open_the_admin_screens(store, settings, page):
    for role in ("reviewer", "signer"):
        _, link = people.add_reviewer(store, settings, f"x-{role}", role, actor=person(store))
        at = open_page(page, token_of(link))
        assert not at.exception
        assert "for admin accounts" in at.error[0].value
        assert not at.button


# ---- reviewer quality ----


def test_excluding_a_reviewer_in_the_app(demo_store, settings):
    token = token_of(demo_store.demo_links["demo-admin"])
    at = open_page("quality.py", token)
    assert not at.exception
    table = at.dataframe[0].value
    assert set(table["reviewer"]) >= {"example-ana", "example-ben", "example-chen"}
    assert any("example-chen" in w.value for w in at.warning)  # the careless one is flagged
    at.selectbox(key="quality_target").select("example-chen").run()
    at.button(key="quality_decide").click().run()
    assert "Nothing changed: say why example-chen is excluded" in messages(at)
    study_id = demo_store.studies.require_study("demo")["id"]
    assert demo_store.quality.exclusion_history(study_id) == []

    at.text_input(key="quality_reason").input("left bias, low agreement")
    at.button(key="quality_decide").click().run()
    assert not at.exception
    [decision] = demo_store.quality.exclusion_history(study_id)
    assert (decision["reviewer"], decision["decided_by"], decision["reason"]) == (
        "example-chen",
        "demo-admin",
        "left bias, low agreement",
    )
    assert "example-chen (excluded)" in set(at.dataframe[0].value["reviewer"])
    assert at.button(key="quality_decide").label == "Include example-chen again"


def test_marking_a_known_answer_in_the_app(demo_store):
    token = token_of(demo_store.demo_links["demo-admin"])
    at = open_page("quality.py", token)
    at.selectbox(key="known_item").select("formatting-006").run()
    at.selectbox(key="known_compare").select("finetuned:base").run()
    at.selectbox(key="known_answer").select("finetuned").run()
    at.button(key="known_mark").click().run()
    assert not at.exception
    study_id = demo_store.studies.require_study("demo")["id"]
    [known] = demo_store.quality.known_answers(study_id)
    assert (known["item_key"], known["answer"], known["set_by"]) == (
        "formatting-006",
        "finetuned",
        "demo-admin",
    )


def test_the_workspace_listing_includes_what_was_just_uploaded(store, admin, tmp_path):
    content = write_outputs(tmp_path / "outputs.csv", 2).read_bytes()
    at = open_page("data.py", admin)
    at.selectbox(key="upload_eval_set").select("(new)").run()
    at.text_input(key="upload_new_eval_set").input("fresh").run()
    at.file_uploader(key="upload_file_outputs").set_value(("outputs.csv", content, "text/csv"))
    at.button(key="upload_submit").click().run()
    assert any("fresh: 2 items" in m.value for m in at.markdown)
