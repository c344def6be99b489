"""Attacks by an admin: before the lock, one who wants to know which system wins (self-
preference, the A/B orientation, grader pass rates); with hostile or careless files and
commands; after the lock, one who wants to bend the locked decision (a jury, a second split, a
judge run or a grader version chosen after seeing the results); and one who wants to keep or
take the workspace (revoking the last admin, setting up a "first" admin again). Each attempt is
refused with a one-line error, recorded as a deviation, or answered without an outcome."""

from __future__ import annotations

import json
import sqlite3

import pytest

from review_app import cli, graders
from review_app.errors import Conflict, Forbidden, InputError
from review_app.services import audit, calibration, people, rubric_iteration, thresholds
from review_app.settings import Settings
from tests.acting import acting, lock_as_ada, looking, person
from tests.conftest import write

FAMILIES = "example-llm-judge=openai,finetuned=openai"


def strict_json(text: str) -> dict:
    """A JSON document that is strict JSON (no NaN or infinity)."""
    document = json.loads(text)
    json.dumps(document, allow_nan=False)
    return document


def _sql(store, *statements: str) -> None:
    """Edit the workspace file behind the app's back, as someone with the file could."""
    conn = sqlite3.connect(_path(store))
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


def _path(store) -> str:
    return store.db.execute("PRAGMA database_list").fetchone()[2]


# ---- before the lock: which system wins ----


def test_self_preference_names_no_win_rate_before_the_lock(demo_store, monkeypatch, capsys):
    monkeypatch.setenv("REVIEW_APP_MODEL_FAMILIES", FAMILIES)
    settings = Settings.from_env()
    assert cli.main(["stats", "--study", "demo", "--json"]) == 0
    found = strict_json(capsys.readouterr().out)["self_preference"]
    assert [(p["judge"], p["system"]) for p in found] == [("example-llm-judge", "finetuned")]
    # The shift (judge minus humans) is a bias figure; the humans' own win rate is an outcome.
    assert found[0]["shift"]["value"] is not None
    assert found[0]["human_win_rate"] is None and found[0]["judge_win_rate"] is None
    assert cli.main(["stats", "--study", "demo"]) == 0
    text = capsys.readouterr().out
    (line,) = [x for x in text.splitlines() if "self-preference of" in x]
    assert "for finetuned" in line and "humans" not in line and "(judge" not in line

    lock_as_ada(demo_store, settings)
    (after,) = calibration.self_preference(looking(demo_store, "demo", settings))
    assert after.human_win_rate is not None and after.judge_win_rate is not None
    assert after.shift.value == pytest.approx(found[0]["shift"]["value"])


def test_the_a_b_orientation_before_the_lock_comes_from_a_key_no_command_shows(
    demo_store, settings, capsys
):
    # With the orientation derived from the seed (a public setting), anyone could map each
    # comparison's A back to its system and read which system the humans prefer.
    judges = "example-llm-judge,baseline/longest"

    def compared() -> dict:
        args = ["calibrate", "compare", "--study", "demo", "--judges", judges]
        assert cli.main([*args, "--split", "all"]) == 0
        capsys.readouterr()
        assert cli.main([*args, "--split", "all", "--json"]) == 0
        document = strict_json(capsys.readouterr().out)
        assert document["outcomes_visible"] is False
        return {r["pair_id"]: r["human_majority"] for r in document["changed"]}

    key = demo_store.calibration.blinding_key()
    assert len(key) == 64
    assert cli.main(["settings"]) == 0 and key not in capsys.readouterr().out
    # Fixed keys from here on, so that how many orientations differ is not left to chance.
    _sql(demo_store, "UPDATE workspace_secrets SET value = 'one workspace'")
    first = compared()
    assert len(first) >= 10 and compared() == first  # stable in one workspace
    _sql(demo_store, "UPDATE workspace_secrets SET value = 'another workspace'")
    other = compared()
    flipped = [p for p in first if {first[p], other[p]} == {"A", "B"}]
    assert flipped and len(flipped) < len(first)


def test_grade_prints_no_pass_rate_before_the_lock(demo_store, tmp_path, capsys, cli_admin):
    grader = "name: g2\nchecks:\n  - name: short\n    type: max_chars\n    n: 400\n"
    assert (
        cli.main(["grade", "--study", "demo", "--grader", str(write(tmp_path / "g.yaml", grader))])
        == 0
    )
    out = capsys.readouterr().out
    assert (
        "hidden" in out and "%" not in out and "pass rate" not in out.replace("pass rates stay", "")
    )
    for name in ("finetuned", "base", "frontier"):
        assert name not in out


# ---- hostile or careless files and commands ----

BAD_GRADERS = {
    "type-list.yaml": ("name: g\nchecks:\n  - name: c\n    type: [regex]\n", ":4: ", "type"),
    "unknown-type.yaml": ("name: g\nchecks:\n  - name: c\n    type: bogus\n", ":4: ", "type"),
    "wrong-type.yaml": (
        "name: g\nchecks:\n  - name: c\n    type: max_chars\n    n: '12'\n",
        ":5: ",
        "checks[0].n",
    ),
    "bad-regex.yaml": (
        "name: g\nchecks:\n  - name: c\n    type: regex\n    pattern: '(['\n",
        ":5: ",
        "checks[0].pattern",
    ),
    "bad-schema.yaml": (
        "name: g\nchecks:\n  - name: c\n    type: json_schema\n    schema: {type: 12}\n",
        ":5: ",
        "checks[0].schema",
    ),
    "remote-ref.yaml": (
        "name: g\nchecks:\n  - name: c\n    type: json_schema\n"
        "    schema: {$ref: 'http://203.0.113.1/x.json'}\n",
        ":5: ",
        "checks[0].schema",
    ),
    "dangling-ref.yaml": (
        "name: g\nchecks:\n  - name: c\n    type: json_schema\n"
        "    schema: {$ref: '#/$defs/nope'}\n",
        ":5: ",
        "checks[0].schema",
    ),
    "no-checks.yaml": ("name: g\nchecks: []\n", ":2: ", "checks"),
    "twice.yaml": (
        "name: g\nchecks:\n  - name: c\n    type: json_valid\nname: h\n",
        ":5: ",
        "name",
    ),
    "latin1.yaml": (
        b"name: g\nchecks:\n  - name: caf\xe9\n    type: json_valid\n",
        ":3: ",
        "UTF-8",
    ),
}


@pytest.mark.parametrize("file_name", sorted(BAD_GRADERS))
def test_a_bad_grader_file_is_one_clear_line_and_changes_nothing(
    demo_store, tmp_path, capsys, file_name, cli_admin
):
    text, line, field = BAD_GRADERS[file_name]
    path = write(tmp_path / file_name, text)
    count = "SELECT count(*) FROM grader_results"
    before = demo_store.db.execute(count).fetchone()[0]
    assert cli.main(["grade", "--study", "demo", "--grader", str(path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f"{path}{line}" in err and field in err
    assert demo_store.db.execute(count).fetchone()[0] == before
    with pytest.raises(InputError):
        graders.load_grader(path)


def test_a_local_reference_in_a_schema_still_works(tmp_path):
    grader = graders.parse_grader(
        "name: g\nchecks:\n  - name: c\n    type: json_schema\n    schema:\n"
        "      $defs: {n: {type: integer}}\n      type: object\n"
        "      properties: {a: {$ref: '#/$defs/n'}}\n"
    )
    import pandas as pd

    outputs = pd.DataFrame(
        {
            "output_id": [1, 2],
            "item_key": ["a", "b"],
            "category": ["x", "x"],
            "reference": [None, None],
            "text": ['{"a": 1}', '{"a": "one"}'],
        }
    )
    assert graders.run_checks(grader, outputs)["passed"].tolist() == [True, False]


def test_a_grader_file_of_nested_aliases_is_refused_quickly():
    import time

    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):
        levels.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    bomb = "\n".join(levels)
    # Inside a schema the aliases would be expanded (validated, hashed): refused before that.
    text = "name: g\nchecks:\n  - name: c\n    type: json_schema\n    schema:\n      enum: *a11\n"
    started = time.monotonic()
    with pytest.raises(InputError, match="expands"):
        graders.parse_grader(bomb + "\n" + text.replace("name: g", "name: g", 1), "bomb.yaml")
    assert time.monotonic() - started < 5
    # A few shared anchors are fine.
    shared = (
        "name: g\nchecks:\n  - name: c\n    type: json_valid\n    categories: &cats [a, b]\n"
        "  - name: d\n    type: max_chars\n    n: 10\n    categories: *cats\n"
    )
    assert graders.parse_grader(shared).check("d").categories == ("a", "b")


@pytest.mark.parametrize("version", ["../../escaped", "a/b", "..", " 2"])
def test_the_rubric_editor_never_writes_outside_its_folder(
    demo_store, tmp_path, monkeypatch, version
):
    import re

    from review_app.services import judging, rubric_editor

    folder = tmp_path / "editor" / "rubrics"
    monkeypatch.setenv("REVIEW_APP_RUBRICS", str(folder))
    text = judging.DEMO_RUBRIC.read_text(encoding="utf-8")
    text = re.sub(r"^version: .*$", f"version: '{version}'", text, flags=re.M)
    before = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    with pytest.raises(InputError, match="version"):
        rubric_editor.save_rubric_version(demo_store, Settings.from_env(), text, person(demo_store))
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == before


CARELESS = {
    "jury of one": (
        ["jury", "--study", "demo", "--name", "j", "--judges", "example-llm-judge"],
        "at least two",
    ),
    "unknown judge": (
        ["jury", "--study", "demo", "--name", "j", "--judges", "example-llm-judge,ghost"],
        "no judge 'ghost'",
    ),
    "judge twice": (
        ["jury", "--study", "demo", "--name", "j", "--judges", "baseline/first,baseline/first"],
        "named twice",
    ),
    "jury in a jury": (
        ["jury", "--study", "demo", "--name", "j", "--judges", "example-llm-judge,jury/x"],
        "is a jury",
    ),
    "jury without judges": (["jury", "--study", "demo", "--name", "j"], "--judges"),
    "missing reference": (["scorecard", "--study", "demo", "--reference", "nosuch"], "nosuch"),
    "missing base": (["scorecard", "--study", "demo", "--base", "nosuch"], "nosuch"),
    "unknown source": (
        ["export", "preferences", "--study", "demo", "--format", "jsonl", "--source", "nobody"],
        "nobody",
    ),
    "compare one judge": (
        ["calibrate", "compare", "--study", "demo", "--judges", "example-llm-judge"],
        "--judges",
    ),
    "compare unknown judge": (
        ["calibrate", "compare", "--study", "demo", "--judges", "example-llm-judge,ghost"]
        + ["--split", "all"],
        "ghost",
    ),
    "confirm without split": (
        ["calibrate", "confirm", "--study", "demo", "--judge", "example-llm-judge"],
        "split",
    ),
    "grade a missing file": (
        ["grade", "--study", "demo", "--grader", "nowhere.yaml"],
        "nowhere.yaml",
    ),
    "grade a missing study": (
        ["grade", "--study", "nostudy", "--grader", "graders/demo-format.yaml"],
        "nostudy",
    ),
}


@pytest.mark.parametrize("case", sorted(CARELESS))
def test_a_careless_command_is_one_clear_line_exit_1_and_changes_nothing(
    demo_store, settings, capsys, case, cli_admin
):
    from tests.conftest import ROOT

    lock_as_ada(demo_store, settings)
    args, expected = CARELESS[case]
    args = [str(ROOT / a) if a.startswith("graders/") else a for a in args]
    tables = ("juries", "grader_results", "comparison_splits", "test_looks", "audit_log")
    before = {t: demo_store.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert expected in err
    after = {t: demo_store.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    assert after == before


@pytest.mark.parametrize("share", ["0", "1", "1.5", "-0.2"])
def test_a_split_share_outside_zero_and_one_is_refused(demo_store, capsys, share, cli_admin):
    assert cli.main(["calibrate", "split", "--study", "demo", "--test-share", share]) == 1
    err = capsys.readouterr().err
    assert "test share" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert rubric_iteration.split_summary(demo_store, "demo") is None


# ---- after the lock: bending the locked decision ----


def test_a_jury_made_after_the_lock_needs_a_reason_and_is_a_deviation(
    demo_store, settings, capsys, monkeypatch
):
    # A threshold may name a jury before it exists; after the lock its members could be picked
    # to fit the results.
    thresholds.add_threshold(
        acting(demo_store, "demo", "ada"),
        "judge_win_rate",
        {"judge": "jury/late", "system_a": "finetuned", "system_b": "base"},
        ">",
        0.5,
    )
    token = lock_as_ada(demo_store, settings, recommended=False)
    study_id = demo_store.studies.require_study("demo")["id"]
    members = "example-llm-judge,baseline/longest"
    args = ["jury", "--study", "demo", "--name", "late", "--judges", members]
    # A deviation is an admin's: without a token it is refused, reason or not.
    assert cli.main([*args, "--reason", "the judge alone was too noisy"]) == 1
    assert "token" in capsys.readouterr().err and demo_store.calibration.juries(study_id) == []
    monkeypatch.setenv("REVIEW_APP_TOKEN", token)
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert "locked" in err and "reason" in err and "Traceback" not in err
    assert (
        demo_store.calibration.juries(study_id) == [] and demo_store.gate.deviations(study_id) == []
    )
    assert cli.main([*args, "--reason", "the judge alone was too noisy"]) == 0
    (deviation,) = demo_store.gate.deviations(study_id)
    assert deviation["changed_by"] == "ada"
    assert "jury/late" in deviation["after"] and "too noisy" in deviation["reason"]
    assert cli.main(["report", "--study", "demo", "--format", "md"]) == 0
    assert "jury/late of example-llm-judge, baseline/longest" in capsys.readouterr().out
    assert audit.verify(demo_store, "demo", settings) == []


def test_a_second_split_is_refused_and_changes_nothing(demo_store, settings, capsys, cli_admin):
    first = rubric_iteration.make_split(acting(demo_store, "demo", "ada", settings=settings), 0.3)
    before = demo_store.calibration.split_parts(demo_store.studies.require_study("demo")["id"])
    lock_as_ada(demo_store, settings)
    for share in ("0.5", "0.3"):
        assert cli.main(["calibrate", "split", "--study", "demo", "--test-share", share]) == 1
        assert "already split" in capsys.readouterr().err
    assert (
        demo_store.calibration.split_parts(demo_store.studies.require_study("demo")["id"]) == before
    )
    assert rubric_iteration.split_summary(demo_store, "demo") == first


def test_judging_after_the_lock_needs_a_reason_and_is_a_deviation(
    demo_store, settings, capsys, monkeypatch
):
    from review_app.services import judging

    monkeypatch.setenv("REVIEW_APP_TOKEN", lock_as_ada(demo_store, settings))
    study_id = demo_store.studies.require_study("demo")["id"]
    runs = len(judging.judge_runs(demo_store, settings, "demo"))
    args = ["judge", "--study", "demo", "--rubric", str(judging.DEMO_RUBRIC)]
    args += ["--judge", "baseline/first", "--seed", "7"]
    # The plan (dry run) shows no outcome and changes nothing: it is shown, and its status says
    # the run itself would be refused without a reason.
    assert cli.main([*args, "--dry-run"]) == 1
    out, err = capsys.readouterr()
    assert "calls" in out and "reason" in err
    assert cli.main([*args, "--dry-run", "--reason", "a baseline for the report"]) == 0
    capsys.readouterr()
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert "locked" in err and "reason" in err and "Traceback" not in err
    assert len(judging.judge_runs(demo_store, settings, "demo")) == runs
    assert demo_store.gate.deviations(study_id) == []

    assert cli.main([*args, "--reason", "a second seed for the position baseline"]) == 0
    (deviation,) = demo_store.gate.deviations(study_id)
    assert "calls sent after the lock" in deviation["after"]
    assert len(judging.judge_runs(demo_store, settings, "demo")) == runs + 1
    # Running the finished run again sends nothing, so it needs no reason.
    assert cli.main(args) == 0
    assert len(demo_store.gate.deviations(study_id)) == 1
    assert audit.verify(demo_store, "demo", settings) == []


def test_a_new_grader_version_after_the_lock_needs_a_reason_and_the_gate_keeps_the_pinned_one(
    demo_store, settings, tmp_path, capsys, monkeypatch
):
    from review_app.services import grading

    monkeypatch.setenv("REVIEW_APP_TOKEN", lock_as_ada(demo_store, settings))
    study_id = demo_store.studies.require_study("demo")["id"]
    pinned = grading.grader_summary(looking(demo_store, "demo"))
    # The same grader name with a laxer check: every output now "passes" no-code-fences.
    laxer = grading.DEMO_GRADER.read_text(encoding="utf-8").replace('text: "```"', 'text: "@@@"')
    path = write(tmp_path / "demo-format.yaml", laxer)
    count = "SELECT count(*) FROM grader_results"
    before = demo_store.db.execute(count).fetchone()[0]
    assert cli.main(["grade", "--study", "demo", "--grader", str(path)]) == 1
    err = capsys.readouterr().err
    assert "locked" in err and "reason" in err and "Traceback" not in err
    assert demo_store.db.execute(count).fetchone()[0] == before
    assert demo_store.gate.deviations(study_id) == []

    args = ["grade", "--study", "demo", "--grader", str(path), "--reason", "fences are fine"]
    assert cli.main(args) == 0
    assert "deviation" in capsys.readouterr().out
    (deviation,) = demo_store.gate.deviations(study_id)
    assert "demo-format" in deviation["after"] and deviation["reason"] == "fences are fine"
    # What counts is still the version the lock pinned.
    assert grading.grader_summary(looking(demo_store, "demo")) == pinned
    assert cli.main(["report", "--study", "demo", "--format", "md"]) == 0
    assert "fences are fine" in capsys.readouterr().out
    assert audit.verify(demo_store, "demo", settings) == []


def test_the_judge_runs_screen_after_the_lock_asks_for_a_reason(demo_store, settings):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT

    lock_as_ada(demo_store, settings)
    study_id = demo_store.studies.require_study("demo")["id"]
    at = AppTest.from_file(str(ROOT / "review_app" / "app_pages" / "judge_runs.py"))
    at.default_timeout = 60
    at.query_params["token"] = demo_store.demo_links["demo-admin"].split("token=")[1]
    at.run()
    at.text_input(key="judge_name").set_value("baseline/random").run()
    at.checkbox(key="judge_both_orders").uncheck().run()
    at.button(key="judge_start").click().run()
    assert not at.exception
    assert any("reason" in e.value for e in at.error)
    assert demo_store.gate.deviations(study_id) == []
    at.text_input(key="judge_reason").set_value("one order is enough for the baseline").run()
    at.button(key="judge_start").click().run()
    assert not at.exception and "128 verdicts stored" in at.success[0].value
    (deviation,) = demo_store.gate.deviations(study_id)
    assert deviation["changed_by"] == "demo-admin"


# ---- keeping or taking the workspace ----


def test_the_last_admin_cannot_be_revoked_or_given_another_role(demo_store, settings, capsys):
    admin = person(demo_store, "demo-admin")
    with pytest.raises(Conflict, match="demo-admin holds the last admin link"):
        people.revoke_reviewer(demo_store, "demo-admin", admin)
    with pytest.raises(Conflict, match="last admin link"):
        people.add_reviewer(
            demo_store, settings, "demo-admin", "reviewer", actor=admin, reissue=True
        )
    token = demo_store.demo_links["demo-admin"].split("token=")[1]
    assert cli.main(["--token", token, "reviewers", "revoke", "demo-admin"]) == 1
    err = capsys.readouterr().err
    assert "last admin link" in err and len(err.strip().splitlines()) == 1
    assert not demo_store.people.reviewer("demo-admin")["revoked_at"]
    # With a second admin, the first may go.
    people.add_reviewer(demo_store, settings, "ada", "admin", actor=admin)
    people.revoke_reviewer(demo_store, "demo-admin", admin)
    assert demo_store.people.reviewer("demo-admin")["revoked_at"]


def test_the_first_admin_setup_is_refused_once_the_workspace_had_an_admin(
    demo_store, settings, capsys
):
    # The only admin link revoked behind the app's back (the app refuses it), then anyone
    # at the command line tries the setup a new workspace uses.
    with sqlite3.connect(demo_store.path) as db:
        db.execute("UPDATE reviewers SET revoked_at = '2030-01-01' WHERE role = 'admin'")
    assert cli.main(["reviewers", "add", "mallory", "--role", "admin"]) == 1
    err = capsys.readouterr().err
    assert "has had an admin" in err and len(err.strip().splitlines()) == 1
    assert demo_store.people.reviewer("mallory") is None
    with pytest.raises(Forbidden, match="has had an admin"):
        people.add_reviewer(demo_store, settings, "mallory", "admin", actor=None)


def test_a_new_workspace_still_gets_its_first_admin_without_a_link(store, settings, capsys):
    assert cli.main(["reviewers", "add", "root", "--role", "admin"]) == 0
    assert "token=" in capsys.readouterr().out
    assert cli.main(["reviewers", "add", "second", "--role", "admin"]) == 1
    assert "--token" in capsys.readouterr().err
