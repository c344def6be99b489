"""The Calibration screen's rubric iteration (split, versions compared on dev, looks at test) and
its rubric editor (validation as you type, the prompt for a sample pair, save as a new version)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from review_app.services import calibration, disagreements, juries, rubric_iteration
from review_app.services.judging import DEMO_RUBRIC
from tests.acting import acting, looking, person

PAGES = Path(__file__).resolve().parent.parent / "review_app" / "app_pages"


@pytest.fixture
def rubric_dir(tmp_path, monkeypatch):
    folder = tmp_path / "my-rubrics"
    monkeypatch.setenv("REVIEW_APP_RUBRICS", str(folder))
    return folder


def open_page(store, user: str = "demo-admin") -> AppTest:
    at = AppTest.from_file(str(PAGES / "calibration.py"), default_timeout=90)
    at.query_params["token"] = store.demo_links[user].split("token=")[1]
    return at.run()


def _texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [s.value for s in at.success]
    parts += (
        [e.value for e in at.error] + [w.value for w in at.warning] + [c.value for c in at.caption]
    )
    return "\n".join(parts)


def test_admin_splits_compares_on_dev_and_each_look_at_test_is_counted(demo_store):
    at = open_page(demo_store)
    assert not at.exception
    assert "Rubric iteration" in [h.value for h in at.header]
    at.button(key="FormSubmitter:calibration_split-Split into dev and test").click().run()
    at.button(key="calibration_split_yes").click().run()
    assert not at.exception
    summary = rubric_iteration.split_summary(demo_store, "demo")
    assert summary is not None and summary.created_by == "demo-admin"

    at = open_page(demo_store)
    assert "Test looked at 0 times" in _texts(at)
    at.selectbox(key="iteration_a").select("example-llm-judge")
    at.selectbox(key="iteration_b").select("baseline/longest")
    at.run()
    metrics = {m.label: m.value for m in at.metric}
    # The demo's judge was imported: its agreement before the lock is shown to an admin.
    compared = rubric_iteration.compare_versions(
        demo_store, "demo", "example-llm-judge", "baseline/longest", actor=person(demo_store)
    )
    assert metrics["Version 2 - version 1"] == f"{compared.comparison.difference.value:+.2f}"
    diff = compared.comparison.difference
    (reading,) = [m.value for m in at.markdown if m.value.startswith("Difference")]
    assert f"95% CI [{diff.ci[0]:.2f}, {diff.ci[1]:.2f}]" in reading
    clear = diff.ci[0] > 0 or diff.ci[1] < 0
    assert ("no clear difference" in reading) != clear
    changed = at.dataframe[-1].value
    assert len(changed) == len(compared.changed) > 0
    # Before the lock, no system is named: the responses are A and B.
    assert "system_x" not in changed.columns
    assert set(changed["version 1 says"]) | set(changed["version 2 says"]) <= {"A", "B", "tie"}
    assert not {"finetuned", "base", "frontier"} & set(changed.astype(str).stack())

    at.selectbox(key="iteration_confirm").select("example-llm-judge")
    at.button(key="iteration_look").click().run()
    assert not at.exception
    assert "Test has now been looked at once." in _texts(at)
    at.button(key="iteration_look").click().run()
    assert rubric_iteration.test_look_count(demo_store, "demo") == 2
    assert "Test looked at 2 times" in _texts(open_page(demo_store))


def test_a_signer_sees_the_split_but_cannot_make_one(demo_store):
    at = open_page(demo_store, "demo-signer")
    assert not at.exception
    assert not [b for b in at.button if "Split" in str(b.label)]
    assert rubric_iteration.split_summary(demo_store, "demo") is None


def test_jury_appears_in_the_judges_table(demo_store):
    juries.create_jury(
        acting(demo_store, "demo"), "pair", ["example-llm-judge", "baseline/longest"]
    )
    at = open_page(demo_store)
    assert "jury/pair" in list(at.dataframe[0].value["judge"])


def test_editor_validates_as_you_type_and_renders_a_blind_prompt(demo_store, rubric_dir):
    at = open_page(demo_store)
    at.selectbox(key="editor_start").select(DEMO_RUBRIC.name).run()
    assert any("Valid: general-pairwise v1" in s.value for s in at.success)
    prompt = "\n".join(c.value for c in at.code)
    assert "[Response A]" in prompt and "[Response B]" in prompt
    for system in ("finetuned", "frontier"):
        assert system not in prompt

    broken = DEMO_RUBRIC.read_text(encoding="utf-8").replace("mode: pairwise", "mode: sideways")
    at.text_area(key=f"editor_text:{DEMO_RUBRIC.name}").input(broken).run()
    assert not at.exception
    (error,) = [e.value for e in at.error]
    assert error.startswith("rubric (editor):") and "mode" in error and "\n" not in error
    assert not at.code  # no prompt for a rubric that does not load


def test_the_editor_box_starts_from_the_rubric_file_in_any_run(demo_store, rubric_dir):
    """The box's own starting value is the file's text, so a browser that first draws it from
    any later run shows the rubric (a value kept only in the session's state reached the browser
    with the run that set it; a box drawn from the next run started empty and sent that back)."""
    at = open_page(demo_store)
    at.selectbox(key="editor_start").select(DEMO_RUBRIC.name).run()
    at.run()  # a later run, as after any click elsewhere on the screen
    box = at.text_area(key=f"editor_text:{DEMO_RUBRIC.name}")
    text = DEMO_RUBRIC.read_text(encoding="utf-8")
    assert box.proto.default == text and box.value == text
    # Another file starts from its own text, and the first file's box from the file again.
    other = next(n for n in at.selectbox(key="editor_start").options if n != DEMO_RUBRIC.name)
    at.selectbox(key="editor_start").select(other).run()
    other_text = (DEMO_RUBRIC.parent / other).read_text(encoding="utf-8")
    assert at.text_area(key=f"editor_text:{other}").value == other_text != text


def test_editor_saves_a_new_version_and_refuses_the_same_version_twice(demo_store, rubric_dir):
    at = open_page(demo_store)
    at.selectbox(key="editor_start").select(DEMO_RUBRIC.name).run()
    at.button(key="editor_save").click().run()
    assert any("already saved" in e.value for e in at.error)  # unchanged: nothing new
    assert not rubric_dir.exists() or not list(rubric_dir.iterdir())

    text = DEMO_RUBRIC.read_text(encoding="utf-8")
    v2 = text.replace("version: 1", "version: 2").replace("impartial judge", "careful judge")
    at.text_area(key=f"editor_text:{DEMO_RUBRIC.name}").input(v2).run()
    at.button(key="editor_save").click().run()
    assert not at.exception
    saved = rubric_dir / "general-pairwise-v2.yaml"
    assert saved.read_text(encoding="utf-8") == v2
    assert any("general-pairwise-v2.yaml" in s.value for s in at.success)
    assert demo_store._one("SELECT count(*) AS n FROM rubrics WHERE version = '2'")["n"] == 1

    v2b = v2.replace("careful judge", "very careful judge")
    at.text_area(key=f"editor_text:{DEMO_RUBRIC.name}").input(v2b).run()
    at.button(key="editor_save").click().run()
    assert any("change the version" in e.value for e in at.error)
    assert saved.read_text(encoding="utf-8") == v2


def test_a_split_study_opens_on_dev_and_each_switch_to_test_or_all_is_a_look(demo_store):
    at = open_page(demo_store)
    assert not at.radio  # no split yet: every comparison, nothing to choose
    assert not at.caption[0].value.startswith("Dev")
    at.button(key="FormSubmitter:calibration_split-Split into dev and test").click().run()
    at.button(key="calibration_split_yes").click().run()
    assert not at.exception
    summary = rubric_iteration.split_summary(demo_store, "demo")
    # Straight after the split the tables are on dev, with no look at test.
    (choice,) = at.radio
    assert choice.value == "dev"
    assert at.caption[0].value.startswith(f"Dev comparisons only. {summary.n_dev} comparisons")
    assert "Test looked at 0 times" in _texts(at)
    assert any(summary.line() in s.value for s in at.success)
    dev_judges = at.dataframe[0].value
    dev = calibration.calibration_report(
        looking(demo_store, "demo"), split="dev"
    ).calibration.overall
    assert dev_judges["verdicts"].tolist() == [j.n_verdicts for j in dev.judges]

    at.radio[0].set_value("test").run()
    assert not at.exception
    assert at.caption[0].value.startswith(f"Test comparisons only. {summary.n_test} comparisons")
    assert rubric_iteration.test_look_count(demo_store, "demo") == 1
    at.run()  # drawn again on the same choice: no new look
    at.selectbox(key="calibration_confusion_judge").select_index(0).run()
    assert rubric_iteration.test_look_count(demo_store, "demo") == 1
    at.radio[0].set_value("all").run()
    assert rubric_iteration.test_look_count(demo_store, "demo") == 2
    every = calibration.calibration_report(looking(demo_store, "demo")).calibration.overall
    assert at.caption[0].value.startswith(f"{every.n_comparisons} comparisons")
    at.radio[0].set_value("dev").run()
    assert rubric_iteration.test_look_count(demo_store, "demo") == 2
    assert "Test looked at 2 times" in _texts(at)
    looks = [
        e
        for e in demo_store.audit.audit_entries(demo_store.studies.require_study("demo")["id"])
        if e["action"] == "looked at test"
    ]
    assert len(looks) == 2 and {e["actor"] for e in looks} == {"demo-admin"}

    # A fresh session on the same study starts on dev again.
    assert open_page(demo_store).radio[0].value == "dev"
    assert rubric_iteration.test_look_count(demo_store, "demo") == 2


def test_pointwise_scores_and_jury_scores_show_on_the_screen(demo_store, settings):
    from tests.test_juries import two_scored_runs

    two_scored_runs(demo_store, settings)  # x scored 4 and 2, y 3 and 3; jury `pw` over both
    at = open_page(demo_store)
    assert not at.exception
    assert "Pointwise scores" in [h.value for h in at.subheader]
    (table,) = [d.value for d in at.dataframe if "mean score" in d.value.columns]
    table = table.set_index("judge")
    assert table.loc["jury/pw", "mean score"] == 3.0  # (4 + 3 + 2 + 3) / 4
    assert table.loc["openai/judge-one", "mean score"] == 3.5
    assert table.loc["openai/judge-two", "mean score"] == 2.5
    assert set(table["system"]) == {"all systems"}  # before the lock, no system is named
    assert any("pooled until the thresholds are locked" in c.value for c in at.caption)


def test_the_disagreements_of_a_split_study_are_dev_s_until_test_is_looked_at(demo_store, settings):
    rubric_iteration.make_split(acting(demo_store, "demo", "demo-admin", settings=settings), 0.3, 5)
    dev_pairs = set(rubric_iteration.split_pair_ids(demo_store, "demo", "dev"))
    at = AppTest.from_file(str(PAGES / "disagreements.py"), default_timeout=90)
    at.query_params["token"] = demo_store.demo_links["demo-admin"].split("token=")[1]
    at.run()
    assert not at.exception
    (choice,) = at.radio
    assert choice.value == "dev"
    expected = disagreements.disagreements(demo_store, "demo", settings=settings, split="dev")
    key = demo_store.calibration.label_key()
    labels = {disagreements.row_label(key, p): p for p in dev_pairs}
    assert len(expected) and set(expected["item_key"]) <= set(labels)
    shown = at.dataframe[0].value
    real = expected[expected["judge"].isin(shown["judge"].unique())]
    assert set(shown["item_key"]) == set(real["item_key"])
    assert rubric_iteration.test_look_count(demo_store, "demo") == 0
    at.radio[0].set_value("all").run()
    assert not at.exception
    assert rubric_iteration.test_look_count(demo_store, "demo") == 1
