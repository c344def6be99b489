"""Every governance use case acts as the holder of a personal link: walked from the command line
and from the app, the audit log names the token's holder (never "cli", "import", "demo" or no
one), a command without a token or with a reviewer's token is refused and writes nothing, and
every action of `auth.PERMISSIONS` refuses the roles it does not list."""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import pytest
from streamlit.testing.v1 import AppTest

from review_app import auth
from review_app.auth import Actor
from review_app.cli import main
from review_app.errors import Forbidden, ReviewAppError
from review_app.services import (
    data,
    grading,
    items,
    judging,
    juries,
    people,
    plans,
    quality,
    rubric_editor,
    rubric_iteration,
    signoff,
    studies,
    thresholds,
)
from review_app.services import decision as decisions
from review_app.services.context import StudyContext
from review_app.settings import Settings
from review_app.store import Store
from tests.acting import acting, lock_on_win_rate, person, token_for
from tests.conftest import write

ROOT = Path(__file__).resolve().parent.parent
PAGES = ROOT / "review_app" / "app_pages"
RUBRIC = str(ROOT / "rubrics" / "general-pairwise.yaml")
GRADER = str(ROOT / "graders" / "demo-format.yaml")
# Who an entry must never name: the actors of the code before every use case had an Actor.
NOBODY = {"cli", "cli (no token)", "import", "demo", ""}

# ---- a small workspace: six support questions, two systems, three reviewers, one judge ----

ITEMS = [f"q{i}" for i in range(1, 7)]


def outputs_csv() -> str:
    rows = ["item_id,prompt,system,output,category"]
    for i, item in enumerate(ITEMS):
        rows.append(f"{item},Question {i}?,finetuned,A short answer {i}.,support")
        rows.append(f"{item},Question {i}?,base,A much longer and wordier answer {i}.,support")
    return "\n".join(rows) + "\n"


def votes_csv(reviewers: tuple[str, ...] = ("rev1", "rev2", "rev3")) -> str:
    rows = ["item_id,system_a,system_b,reviewer,winner"]
    for i, item in enumerate(ITEMS):
        for j, reviewer in enumerate(reviewers):
            winner = "base" if (i + j) % 3 == 0 else "finetuned"
            rows.append(f"{item},finetuned,base,{reviewer},{winner}")
    return "\n".join(rows) + "\n"


def verdicts_csv() -> str:
    rows = ["item_id,system_a,system_b,judge,winner"]
    rows += [f"{item},finetuned,base,ext-judge,finetuned" for item in ITEMS]
    return "\n".join(rows) + "\n"


def inputs(tmp_path: Path) -> dict[str, str]:
    """The files the commands read, by name."""
    files = {
        "outputs": write(tmp_path / "outputs.csv", outputs_csv()),
        "votes": write(tmp_path / "votes.csv", votes_csv()),
        "late_votes": write(tmp_path / "late-votes.csv", votes_csv(("rev4",))),
        "verdicts": write(tmp_path / "verdicts.csv", verdicts_csv()),
        "guidelines": write(tmp_path / "guidelines.md", "# Rules\n\nCorrect beats long.\n"),
        "guidelines2": write(tmp_path / "guidelines-2.md", "# Rules\n\nCorrect and short.\n"),
    }
    return {name: str(path) for name, path in files.items()}


def run(capsys, token: str | None, *argv: str) -> tuple[int, str, str]:
    """`review-app [--token TOKEN] ARGV...`: exit status, stdout, stderr."""
    code = main(["--token", token, *argv] if token else list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def token_of(link: str) -> str:
    return link.split("token=")[1]


class Recorder:
    """What the workspace's audit log gains, step by step: every study's entries and the
    workspace's own (study null)."""

    def __init__(self, store: Store):
        self.store = store
        self.seen = len(store.audit.audit_entries())

    def new(self) -> list[tuple[str, str]]:
        """(actor, action) of each entry written since the last call."""
        entries = self.store.audit.audit_entries()[self.seen :]
        self.seen += len(entries)
        return [(e["actor"], e["action"]) for e in entries]


def without_early_looks(entries: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The entries other than looks before the lock (a screen showing an imported judge's
    agreement records one each time the figures it shows change)."""
    return [e for e in entries if e[1] != "look before the lock"]


def deviations(store: Store) -> list[dict]:
    return [d for s in studies.list_studies(store) for d in store.gate.deviations(s["id"])]


def looks(store: Store) -> list[dict]:
    return [x for s in studies.list_studies(store) for x in store.calibration.test_looks(s["id"])]


# ---- 1. the command line: every command that records something names the token's holder ----


class Step(NamedTuple):
    """One command of the walk: who runs it, its arguments ("{name}" is filled in: a file of
    `inputs`, or the id of the last threshold added), an action it records, and the permission
    (a key of `auth.PERMISSIONS`) it takes."""

    holder: str
    argv: tuple[str, ...]
    records: str
    permission: str

    def args(self, values: dict[str, str]) -> list[str]:
        return [a.format(**values) if a.startswith("{") else a for a in self.argv]

    @property
    def command(self) -> str:
        """The command's name: `judge`, `thresholds add`..."""
        two = self.argv[1] if not self.argv[1].startswith(("-", "{")) else ""
        return f"{self.argv[0]} {two}".strip()


S = ("--study", "s")
WIN = ("--metric", "human_win_rate", "--param", "system_a=finetuned", "--param", "system_b=base")
PAIR = ("--item", "q1", "--compare", "finetuned:base")
# Every command that records something, in the order of a study's life. `boss` is an admin and
# `sol` a signer: neither is named like an actor the code used to write.
WALK = [
    Step("boss", ("reviewers", "add", "sol", "--role", "signer"), "reviewer added", "manage links"),
    Step(
        "boss",
        ("import", "outputs", "{outputs}", "--eval-set", "e"),
        "outputs imported",
        "import data",
    ),
    Step(
        "boss",
        (
            "study",
            "create",
            "s",
            "--eval-set",
            "e",
            "--compare",
            "finetuned:base",
            "--guidelines",
            "{guidelines}",
        ),
        "study created",
        "create a study",
    ),
    Step("boss", ("study", "candidate", "s", "base"), "candidate named", "name the candidate"),
    Step(
        "boss",
        ("study", "guidelines", "s", "{guidelines2}"),
        "guidelines set",
        "set the guidelines",
    ),
    Step("boss", ("import", "votes", "{votes}", *S), "votes imported", "import data"),
    Step("boss", ("import", "verdicts", "{verdicts}", *S), "verdicts imported", "import data"),
    Step(
        "boss",
        ("reviewers", "add", "rita", "--role", "reviewer", *S),
        "reviewer added",
        "manage links",
    ),
    Step(
        "boss",
        ("reviewers", "add", "rita", "--role", "reviewer", "--reissue"),
        "link reissued",
        "manage links",
    ),
    Step("boss", ("reviewers", "revoke", "rita"), "link revoked", "manage links"),
    Step(
        "boss",
        ("reviewers", "exclude", "rev1", *S, "--reason", "3 s a vote"),
        "reviewer excluded",
        "exclude a reviewer",
    ),
    Step(
        "boss",
        ("reviewers", "include", "rev1", *S, "--reason", "they were fine"),
        "reviewer included again",
        "exclude a reviewer",
    ),
    Step(
        "boss",
        ("known-answers", "set", *S, *PAIR, "--answer", "finetuned"),
        "known answer set",
        "set a known answer",
    ),
    Step(
        "boss", ("known-answers", "remove", *S, *PAIR), "known answer removed", "set a known answer"
    ),
    Step(
        "boss",
        ("judge", *S, "--rubric", RUBRIC, "--judge", "baseline/longest"),
        "judge calls sent",
        "run a judge",
    ),
    Step("boss", ("calibrate", "split", *S, "--seed", "7"), "split comparisons", "make the split"),
    Step(
        "boss",
        ("jury", *S, "--name", "panel", "--judges", "ext-judge,baseline/longest"),
        "created jury",
        "create a jury",
    ),
    Step("boss", ("grade", *S, "--grader", GRADER), "graded", "run graders"),
    Step(
        "sol",
        ("thresholds", "add", *S, *WIN, "--value", "0.5"),
        "threshold added",
        "change the thresholds",
    ),
    Step(
        "boss",
        ("thresholds", "add", *S, "--metric", "final_review_acceptable_rate", "--value", "0.9"),
        "threshold added",
        "change the thresholds",
    ),
    Step(
        "boss",
        ("thresholds", "remove", "{threshold}", *S),
        "threshold removed",
        "change the thresholds",
    ),
    Step("boss", ("stats", *S, "--split", "test"), "looked at test", "look at test"),
    Step(
        "sol",
        ("calibrate", "confirm", *S, "--judge", "ext-judge"),
        "looked at test",
        "look at test",
    ),
    Step(
        "boss",
        ("calibrate", "compare", *S, "--judges", "ext-judge,baseline/longest", "--split", "test"),
        "looked at test",
        "look at test",
    ),
    Step(
        "sol",
        ("thresholds", "lock", *S, "--reason", "a small test study"),
        "thresholds locked",
        "lock the thresholds",
    ),
    # After the lock: changes that need a reason, each a deviation in its holder's name.
    Step(
        "boss",
        ("import", "votes", "{late_votes}", *S, "--reason", "late reviewer"),
        "votes imported",
        "import data",
    ),
    Step(
        "sol",
        ("thresholds", "add", *S, *WIN, "--value", "0.4", "--reason", "bar was too high"),
        "threshold added",
        "change the thresholds",
    ),
    Step(
        "boss",
        (
            "judge",
            *S,
            "--rubric",
            RUBRIC,
            "--judge",
            "baseline/shortest",
            "--reason",
            "a second baseline",
        ),
        "judge calls sent",
        "run a judge",
    ),
    Step(
        "sol",
        ("signoff", *S, "--decision", "approve", "--comment", "ship it", "--override", "pilot"),
        "signed",
        "sign off",
    ),
]


STEP_IDS = [f"{n:02d} {step.command}" for n, step in enumerate(WALK, 1)]


def test_every_recording_command_names_the_holder_of_its_token(
    store, tmp_path, capsys, monkeypatch
):
    """Each command that records something, run with boss's or sol's token, writes audit entries
    (and deviations, looks at test) in that person's name only. A failure names the command
    whose record names someone else: the audit log would not say who did it."""
    monkeypatch.delenv("REVIEW_APP_TOKEN", raising=False)
    values = inputs(tmp_path)
    log = Recorder(store)
    code, out, err = run(capsys, None, "reviewers", "add", "boss", "--role", "admin")
    assert code == 0, err
    assert log.new() == [("boss", "first admin added")]
    tokens = {"boss": token_of(out.strip().splitlines()[-1])}
    for step in WALK:
        argv = step.args(values)
        code, out, err = run(capsys, tokens[step.holder], *argv)
        assert code == 0, f"{step.command}: {err}"
        if argv[:3] == ["reviewers", "add", "sol"]:
            tokens["sol"] = token_of(out.strip().splitlines()[-1])
        if argv[:2] == ["thresholds", "add"]:
            values["threshold"] = out.split()[1]  # "threshold N added"
        new = log.new()
        assert step.records in [action for _, action in new], f"{step.command}: recorded {new}"
        assert {actor for actor, _ in new} == {step.holder}, f"{step.command}: recorded {new}"
    study = store.studies.require_study("s")
    assert [d["changed_by"] for d in store.gate.deviations(study["id"])] == ["boss", "sol", "boss"]
    assert [x["looked_by"] for x in store.calibration.test_looks(study["id"])] == [
        "boss",
        "sol",
        "boss",
    ]
    assert store.gate.threshold_lock(study["id"])["locked_by"] == "sol"
    assert [s["signer"] for s in store.gate.signoffs(study["id"])] == ["sol"]
    everyone = {e["actor"] for e in store.audit.audit_entries()}
    assert everyone == {"boss", "sol"}
    assert not everyone & NOBODY


# ---- 2. without a token, or with a reviewer's, nothing is recorded ----


@pytest.fixture
def prepared(store, tmp_path, monkeypatch) -> dict[str, str]:
    """The workspace the walk's commands work on, built through the services as boss: outputs,
    study s with votes, an imported judge, a baseline run and a dev/test split; sol signs and
    ann reviews. Returns the walk's values with the three tokens."""
    monkeypatch.delenv("REVIEW_APP_TOKEN", raising=False)
    values = inputs(tmp_path)
    tokens = {
        name: token_for(store, name, role)
        for name, role in (("boss", "admin"), ("sol", "signer"), ("ann", "reviewer"))
    }
    boss = person(store, "boss")
    data.import_outputs(store, values["outputs"], "e", actor=boss)
    studies.create_study(store, "s", "e", [("finetuned", "base")], actor=boss)
    data.import_votes(store, values["votes"], "s", actor=boss)
    data.import_verdicts(store, values["verdicts"], "s", actor=boss)
    judging.start_judge_run(acting(store, "s", "boss"), RUBRIC, "baseline/longest")
    rubric_iteration.make_split(acting(store, "s", "boss"), seed=7)
    return {**values, **tokens, "threshold": "1"}


def one_line(err: str) -> bool:
    return err.startswith("error: ") and err.count("\n") == 1


@pytest.mark.parametrize("step", WALK, ids=STEP_IDS)
def test_a_recording_command_without_a_token_names_the_option_and_writes_nothing(
    step, prepared, store, capsys
):
    """Run with no token (and no REVIEW_APP_TOKEN), the command stops with one line that says to
    pass --token, before it writes anything: a change must never be recorded in no one's name."""
    before = store.table_counts()
    code, out, err = run(capsys, None, *step.args(prepared))
    assert (code, out) == (1, ""), err
    assert one_line(err) and "--token" in err, err
    assert store.table_counts() == before


@pytest.mark.parametrize("step", WALK, ids=STEP_IDS)
def test_a_recording_command_with_a_reviewers_token_names_the_role_and_writes_nothing(
    step, prepared, store, capsys
):
    """Run with a reviewer's live token, the command is refused with one line naming the role
    its action takes (`auth.PERMISSIONS`), and writes nothing: a reviewer's link is no key to
    the record."""
    before = store.table_counts()
    code, out, err = run(capsys, prepared["ann"], *step.args(prepared))
    assert (code, out) == (1, ""), err
    needed = " or ".join(auth.PERMISSIONS[step.permission])
    assert one_line(err) and needed in err, err
    assert store.table_counts() == before


# ---- the paid judge runs the walk leaves out: they need a provider (a fake one on localhost) ----


@pytest.fixture
def fake_provider(monkeypatch):
    """An OpenAI-compatible judge provider on localhost that answers every call and batch."""
    from judge.fake_server import FakeJudgeServer

    with FakeJudgeServer() as fake:
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        monkeypatch.setenv("OPENAI_BASE_URL", fake.openai_base_url)
        monkeypatch.setenv("REVIEW_APP_JUDGE_BATCH_POLL", "0.05")
        yield fake


@pytest.mark.parametrize("mode", [[], ["--batch"]], ids=["interactive", "batch"])
def test_an_llm_judge_run_names_the_holder_of_the_token(
    mode, prepared, store, capsys, fake_provider
):
    """A paid judge run, sent call by call or through the provider's batch API, is recorded as
    the holder of the token, like the baseline runs of the walk."""
    log = Recorder(store)
    argv = ["judge", *S, "--rubric", RUBRIC, "--judge", "openai/gpt-4o-mini", *mode]
    code, out, err = run(capsys, prepared["boss"], *argv)
    assert code == 0, err
    assert log.new() == [("boss", "judge calls sent")]


# ---- 3. the app: each screen's governance actions name the signed-in person ----


def open_page(page: str, token: str) -> AppTest:
    at = AppTest.from_file(str(PAGES / page), default_timeout=90)
    at.query_params["token"] = token
    return at.run()


def issue(store, settings, name: str, role: str) -> str:
    """A link for `name` issued by the demo's admin; returns its token."""
    by = person(store, "demo-admin")
    _, link = people.add_reviewer(store, settings, name, role, "demo", actor=by)
    return token_of(link)


@pytest.fixture
def ada(demo_store, settings) -> str:
    """The token of a second admin of the demo: not the demo's own admin, whose name the demo's
    seeding already wrote all over the log, so only an entry made by the page can name her."""
    return issue(demo_store, settings, "ada", "admin")


def test_app_gate_candidate_thresholds_and_lock_name_the_admin(demo_store, ada):
    """On the Gate screen, naming another candidate, adding the recommended set, adding and
    removing a threshold, locking, and adding one after the lock (a deviation) are each recorded
    as the signed-in admin. Naming the candidate was once recorded as "cli"."""
    study_id = demo_store.studies.require_study("demo")["id"]
    log = Recorder(demo_store)
    at = open_page("gate.py", ada)
    assert not at.exception
    assert log.new() == []
    at.selectbox(key="gate_candidate").select("base").run()
    assert not at.exception
    assert demo_store.studies.require_study("demo")["candidate"] == "base"
    assert log.new() == [("ada", "candidate named")]
    at.button(key="gate_recommended").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert log.new() == [("ada", "recommended thresholds added")]
    at.selectbox(key="gate_metric").select("human_win_rate").run()
    at.button(key="gate_add").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert log.new() == [("ada", "threshold added")]
    at.button(key="gate_remove").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert log.new() == [("ada", "threshold removed")]
    at.text_input(key="gate_lock_reason").input("a pilot on the demo")
    at.button(key="gate_lock").click().run()
    at.button(key="gate_lock_yes").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    # The screen then shows the interim figures: a look on the record in the admin's name.
    assert log.new() == [("ada", "thresholds locked"), ("ada", "interim look")]
    assert demo_store.gate.threshold_lock(study_id)["locked_by"] == "ada"

    at.selectbox(key="gate_metric").select("human_win_rate").run()
    at.text_input(key="gate_reason").input("the bar was set before the pilot")
    at.button(key="gate_add").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert log.new() == [("ada", "threshold added"), ("ada", "interim look")]
    assert [d["changed_by"] for d in demo_store.gate.deviations(study_id)] == ["ada"]


def test_app_gate_final_review_and_signoff_name_the_signer(demo_store, settings):
    """A final-review mark and a sign-off on the Gate screen are recorded as the signed-in signer
    (a second signer, not the demo's own)."""
    lock_on_win_rate(demo_store, settings)
    sol = issue(demo_store, settings, "sol", "signer")
    log = Recorder(demo_store)
    at = open_page("gate.py", sol)
    assert not at.exception
    at.button(key="final_review_ok").click().run()
    assert not at.exception
    # Opening the screen showed the interim figures (a look); the mark changed none of them.
    assert log.new() == [("sol", "interim look"), ("sol", "final review mark")]
    at.radio(key="signoff_decision").set_value("approve").run()
    at.text_area(key="signoff_comment").input("numbers look right")
    at.text_input(key="signoff_override").input("pilot")
    at.button(key="signoff_submit").click().run()
    assert not at.exception
    assert log.new() == [("sol", "signed")]


def test_app_reviewers_screen_adds_and_revokes_as_the_admin(demo_store, ada):
    """Issuing a link and revoking one on the Reviewers screen name the signed-in admin."""
    log = Recorder(demo_store)
    at = open_page("people.py", ada)
    assert not at.exception
    at.text_input(key="people_name").input("nia")
    at.selectbox(key="people_role").select("reviewer")
    at.button(key="people_add").click().run()
    assert not at.exception
    assert demo_store.people.reviewer("nia")["token_hash"]
    assert log.new() == [("ada", "reviewer added")]
    at.selectbox(key="people_revoke_name").select("nia")
    at.button(key="people_revoke").click().run()
    at.button(key="people_revoke_yes").click().run()
    assert not at.exception
    assert demo_store.people.reviewer("nia")["revoked_at"]
    assert log.new() == [("ada", "link revoked")]


def test_app_uploads_name_the_admin(demo_store, ada):
    """Outputs into a new eval set, then votes and verdicts into a study the upload creates: every
    entry they write (the study's creation among them) names the signed-in admin."""
    log = Recorder(demo_store)
    at = open_page("data.py", ada)
    assert not at.exception
    at.selectbox(key="upload_eval_set").select("(new)").run()
    at.text_input(key="upload_new_eval_set").input("es2").run()
    at.file_uploader(key="upload_file_outputs").set_value(
        ("outputs.csv", outputs_csv().encode(), "text/csv")
    )
    at.button(key="upload_submit").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert log.new() == [("ada", "outputs imported")]

    at.segmented_control(key="upload_kind").set_value("votes").run()
    at.selectbox(key="upload_study").select("(new)").run()
    at.text_input(key="upload_new_study").input("uploaded").run()
    at.selectbox(key="upload_over_eval_set").select("es2").run()
    at.file_uploader(key="upload_file_votes").set_value(
        ("votes.csv", votes_csv().encode(), "text/csv")
    )
    at.button(key="upload_submit").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert log.new() == [("ada", "study created"), ("ada", "votes imported")]

    at.segmented_control(key="upload_kind").set_value("verdicts").run()
    at.selectbox(key="upload_study").select("uploaded").run()
    at.file_uploader(key="upload_file_verdicts").set_value(
        ("verdicts.csv", verdicts_csv().encode(), "text/csv")
    )
    at.button(key="upload_submit").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert log.new() == [("ada", "verdicts imported")]


def test_app_studies_screen_creates_a_study_and_sets_guidelines_as_the_admin(demo_store, ada):
    """Creating a study and putting guidelines in force on the Studies screen name the admin."""
    log = Recorder(demo_store)
    at = open_page("studies.py", ada)
    assert not at.exception
    at.text_input(key="study_new_name").input("release-2").run()
    at.selectbox(key="study_new_candidate").select("finetuned").run()
    at.multiselect(key="study_new_others").select("base").run()
    at.text_area(key="study_new_guidelines").input("# Rules\n\nShort wins.")
    at.button(key="study_create").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert log.new() == [("ada", "study created")]

    at = open_page("studies.py", ada)
    at.selectbox(key="study_picker").select("demo").run()
    (editor,) = [t for t in at.text_area if str(t.key).startswith("guidelines_text_")]
    editor.input("# Rules\n\nCorrect beats long, every time.")
    at.button(key="guidelines_save").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert log.new() == [("ada", "guidelines set")]


def test_app_reviewer_quality_exclusions_and_known_answers_name_the_admin(demo_store, ada):
    """Excluding and including a reviewer, and marking and removing a known answer, on the
    Reviewer quality screen are each recorded as the signed-in admin."""
    log = Recorder(demo_store)
    at = open_page("quality.py", ada)
    assert not at.exception
    target = at.selectbox(key="quality_target").value
    at.text_input(key="quality_reason").input("median 3 s per vote")
    at.button(key="quality_decide").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert log.new() == [("ada", "reviewer excluded")]
    at.selectbox(key="quality_target").select(target)
    at.text_input(key="quality_reason").input("their votes were fine after all")
    at.button(key="quality_decide").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert log.new() == [("ada", "reviewer included again")]

    at.button(key="known_mark").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    # Before the lock, the accuracy on it the screen then shows is a look in her name too.
    assert log.new() == [("ada", "known answer set"), ("ada", "look before the lock")]
    at.button(key="known_remove").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert log.new() == [("ada", "known answer removed")]


def test_app_judge_runs_screen_judges_and_grades_as_the_admin(demo_store, ada):
    """A baseline judge run and a grader run started on the Judge runs screen are recorded as
    the signed-in admin. On a new study over the demo's outputs: the demo already ran every
    baseline and the shipped grader on its own study, so there they would record nothing."""
    studies.create_study(
        demo_store,
        "fresh",
        "demo",
        [("finetuned", "base")],
        actor=person(demo_store, "demo-admin"),
    )
    log = Recorder(demo_store)
    at = open_page("judge_runs.py", ada)
    at.selectbox(key="study_picker").select("fresh").run()
    assert not at.exception
    assert at.text_input(key="judge_name").value == "baseline/longest"
    at.button(key="judge_start").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert log.new() == [("ada", "judge calls sent")]
    at.selectbox(key="grader_file").select_index(0).run()
    at.button(key="grader_run").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert log.new() == [("ada", "graded")]


SPLIT_BUTTON = "FormSubmitter:calibration_split-Split into dev and test"


def test_app_calibration_split_and_a_look_at_test_name_the_admin(demo_store, ada):
    """Making the dev/test split and looking at test agreement on the Calibration screen are
    recorded as the signed-in admin (the split's own record names her too)."""
    log = Recorder(demo_store)
    at = open_page("calibration.py", ada)
    assert not at.exception
    # The demo's judge was imported: before the lock its agreement is a look in her name.
    assert log.new() == [("ada", "look before the lock")]
    at.button(key=SPLIT_BUTTON).click().run()
    at.button(key="calibration_split_yes").click().run()
    assert not at.exception
    assert without_early_looks(log.new()) == [("ada", "split comparisons")]
    assert rubric_iteration.split_summary(demo_store, "demo").created_by == "ada"
    at.selectbox(key="iteration_confirm").select("example-llm-judge")
    at.button(key="iteration_look").click().run()
    assert not at.exception
    assert without_early_looks(log.new()) == [("ada", "looked at test")]
    assert [x["looked_by"] for x in looks(demo_store)] == ["ada"]


def test_app_showing_test_on_the_disagreements_screen_is_a_look_by_the_admin(demo_store, ada):
    """On a split study, switching the Disagreements screen to test is a look at test recorded
    as the signed-in admin."""
    rubric_iteration.make_split(acting(demo_store, "demo", "demo-admin"), seed=7)
    log = Recorder(demo_store)
    at = open_page("disagreements.py", ada)
    assert not at.exception
    at.radio(key=f"disagreements_view_{demo_store.studies.require_study('demo')['id']}").set_value(
        "test"
    )
    at.run()
    assert not at.exception
    assert log.new() == [("ada", "looked at test")]


def test_app_showing_test_on_the_calibration_screen_is_a_look_by_the_admin(demo_store, ada):
    """On a split study, switching the Calibration screen to test is one look at test, recorded
    as the signed-in admin, and the screen then shows the test comparisons."""
    rubric_iteration.make_split(acting(demo_store, "demo", "demo-admin"), seed=7)
    log = Recorder(demo_store)
    at = open_page("calibration.py", ada)
    assert not at.exception
    at.radio(key=f"calibration_view_{demo_store.studies.require_study('demo')['id']}").set_value(
        "test"
    )
    at.run()
    assert without_early_looks(log.new()) == [("ada", "looked at test")]
    assert not at.exception, at.exception


def test_app_saving_a_rubric_version_is_recorded_as_the_admin(
    demo_store, ada, tmp_path, monkeypatch
):
    """Saving a new rubric version in the Calibration screen's editor is a governance action
    (`auth.PERMISSIONS["save a rubric"]`): the audit log names the admin who saved it."""
    monkeypatch.setenv("REVIEW_APP_RUBRICS", str(tmp_path / "my-rubrics"))
    log = Recorder(demo_store)
    at = open_page("calibration.py", ada)
    editor = at.text_area(key=f"editor_text:{at.selectbox(key='editor_start').value}")
    lines = [
        "version: 99" if line.startswith("version:") else line for line in editor.value.splitlines()
    ]
    editor.input("\n".join(lines) + "\n").run()
    at.button(key="editor_save").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert list((tmp_path / "my-rubrics").glob("*-v99.yaml"))
    new = log.new()
    assert new and {actor for actor, _ in new} == {"ada"}, new


# ---- 4. roles: each governance action refuses every role it does not list ----

REFUSED = [
    (action, role)
    for action, roles in auth.PERMISSIONS.items()
    for role in auth.ROLES
    if role not in roles
]


@pytest.mark.parametrize(("action", "role"), REFUSED, ids=[f"{a}-{r}" for a, r in REFUSED])
def test_require_refuses_a_role_the_action_does_not_list(action, role):
    """`auth.require` is the one check every service makes: a role missing from the action's
    tuple is Forbidden, with a message naming the action and the roles it takes."""
    with pytest.raises(
        Forbidden, match=f"may not {action}: .* {' or '.join(auth.PERMISSIONS[action])}$"
    ):
        auth.require(Actor("someone", role, 1), action)


@pytest.mark.parametrize("action", list(auth.PERMISSIONS))
def test_require_lets_every_listed_role_through(action):
    """The other side of the table: each role an action lists may take it."""
    for role in auth.PERMISSIONS[action]:
        auth.require(Actor("someone", role, 1), action)
        assert auth.allowed(Actor("someone", role, 1), action)


class World(NamedTuple):
    """What a service call needs, in the name of one person of the demo workspace."""

    store: Store
    settings: Settings
    tmp_path: Path
    name: str

    @property
    def actor(self) -> Actor:
        return person(self.store, self.name)

    @property
    def row(self) -> dict:
        return self.store.people.reviewer(self.name)

    @property
    def ctx(self) -> StudyContext:
        return acting(self.store, "demo", self.name, settings=self.settings)


def new_rubric_version() -> str:
    text = Path(RUBRIC).read_text(encoding="utf-8")
    return text.replace("version: 1\n", "version: 77\n", 1)


PAIR_OF_JUDGES = ["example-llm-judge", "baseline/longest"]
WIN_RATE = {"system_a": "finetuned", "system_b": "base"}
# A service per governance action (some actions have two), called as a refused person.
SERVICES = {
    "import data": [
        lambda w: data.import_outputs(
            w.store, write(w.tmp_path / "o.csv", outputs_csv()), "e2", actor=w.actor
        ),
        lambda w: data.import_votes(
            w.store, write(w.tmp_path / "v.csv", votes_csv()), "demo", actor=w.actor
        ),
    ],
    "create a study": [
        lambda w: studies.create_study(
            w.store, "s2", "demo", [("finetuned", "base")], actor=w.actor
        )
    ],
    "archive a study": [lambda w: studies.archive_study(w.ctx)],
    "name the candidate": [lambda w: studies.set_candidate(w.ctx, "base")],
    "set the guidelines": [lambda w: studies.set_guidelines(w.ctx, "# New rules\n")],
    "change the thresholds": [
        lambda w: thresholds.add_threshold(w.ctx, "human_win_rate", WIN_RATE, ">", 0.5),
        lambda w: thresholds.add_recommended_thresholds(w.ctx),
    ],
    "lock the thresholds": [lambda w: thresholds.lock_thresholds(w.ctx, "a small test study")],
    "change the plan": [lambda w: plans.change_plan(w.ctx, 5)],
    "look at outcomes": [lambda w: decisions.evaluate_gate(w.ctx)],
    "browse items": [lambda w: items.browse_items(w.ctx, items.ItemFilters(text="hub"))],
    "manage links": [
        lambda w: people.add_reviewer(w.store, w.settings, "newbie", "reviewer", actor=w.actor),
        lambda w: people.revoke_reviewer(w.store, "demo-reviewer", w.actor),
    ],
    "exclude a reviewer": [
        lambda w: quality.exclude_reviewer(w.ctx, "example-ana", "too fast"),
    ],
    "set a known answer": [
        lambda w: quality.set_known_answer(w.ctx, "support-001", "finetuned:base", "finetuned"),
    ],
    "run a judge": [
        lambda w: judging.start_judge_run(w.ctx, RUBRIC, "baseline/longest", both_orders=False)
    ],
    "create a jury": [lambda w: juries.create_jury(w.ctx, "panel", PAIR_OF_JUDGES)],
    "make the split": [lambda w: rubric_iteration.make_split(w.ctx, seed=7)],
    "run graders": [lambda w: grading.grade(w.ctx, GRADER)],
    "save a rubric": [
        lambda w: rubric_editor.save_rubric_version(
            w.store, w.settings, new_rubric_version(), w.actor
        )
    ],
    "look at test": [
        lambda w: rubric_iteration.record_test_look(w.store, "demo", PAIR_OF_JUDGES[:1], w.actor)
    ],
    "mark the final review": [
        lambda w: signoff.record_final_review(w.store, "demo", w.actor, 1, True, "fine", w.settings)
    ],
    "sign off": [
        lambda w: signoff.sign_off(
            w.store, "demo", w.actor, "approve", "ok", w.settings, override="x"
        )
    ],
}
# How a service says no to a role: `auth.require`'s words.
ROLE_REFUSAL = "may not {action}: "
CALLS = [
    (action, i, role) for action, role in REFUSED for i in range(len(SERVICES.get(action, [None])))
]


def test_every_governance_action_has_a_service_here():
    """A new key of `auth.PERMISSIONS` needs its service in SERVICES, so the refusal below
    covers it too."""
    assert set(SERVICES) == set(auth.PERMISSIONS)


@pytest.mark.parametrize(
    ("action", "index", "role"), CALLS, ids=[f"{a}-{i}-{r}" for a, i, r in CALLS]
)
def test_a_service_refuses_a_role_its_action_does_not_list_and_writes_nothing(
    action, index, role, demo_store, settings, tmp_path
):
    """Called in the name of someone whose role the action does not list (a reviewer, and for a
    signer's action an admin too), the service raises Forbidden before it writes anything: no
    audit entry, no row anywhere. A failure means the page or command in front of it is the only
    guard."""
    world = World(demo_store, settings, tmp_path, f"someone-{role}")
    person(demo_store, world.name, role)
    before = demo_store.table_counts()
    with pytest.raises(Forbidden, match=ROLE_REFUSAL.format(action=action)):
        SERVICES[action][index](world)
    assert demo_store.table_counts() == before


ALLOWED = [
    (action, i, role)
    for action, roles in auth.PERMISSIONS.items()
    for role in roles
    for i in range(len(SERVICES.get(action, [None])))
]


@pytest.mark.parametrize(
    ("action", "index", "role"), ALLOWED, ids=[f"{a}-{i}-{r}" for a, i, r in ALLOWED]
)
def test_a_service_lets_a_role_its_action_lists_through(
    action, index, role, demo_store, settings, tmp_path
):
    """The control for the refusals above: the same call in the name of a role the action lists
    is not Forbidden (it may still stop for what the demo's state is, e.g. a lock without
    thresholds), so the refusal comes from the role and not from the call."""
    world = World(demo_store, settings, tmp_path, f"someone-{role}")
    person(demo_store, world.name, role)
    try:
        SERVICES[action][index](world)
    except ReviewAppError as exc:
        assert not re.search(ROLE_REFUSAL.format(action=action), str(exc)), exc
