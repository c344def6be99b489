"""Studies an admin can fix: systems offered from the chosen eval set, no study of 0 pairs,
archiving a study (hidden, audited, its eval set unfrozen when nothing was recorded on it), and
`--db` accepted after the command's name."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from review_app.cli import main
from review_app.errors import Forbidden, InputError
from review_app.services import data, studies, workspace
from tests.acting import acting, person, token_for
from tests.conftest import write

pytestmark = pytest.mark.both_backends

OUTPUTS = (
    "item_id,prompt,system,output\n"
    "q1,Capital of France?,base,Paris\n"
    "q1,Capital of France?,finetuned,Paris.\n"
    "q2,2+2?,base,4\n"
    "q2,2+2?,finetuned,5\n"
)
OTHER = "item_id,prompt,system,output\nz1,Say hi,frontier,hi\nz1,Say hi,other,hello\n"


@pytest.fixture
def two_sets(store, tmp_path):
    admin = person(store)
    data.import_outputs(store, write(tmp_path / "a.csv", OUTPUTS), "first", actor=admin)
    data.import_outputs(store, write(tmp_path / "b.csv", OTHER), "second", actor=admin)
    return admin


def test_systems_offered_are_those_of_the_eval_set(store, two_sets):
    assert studies.eval_set_systems(store, "first") == ["base", "finetuned"]
    assert studies.eval_set_systems(store, "second") == ["frontier", "other"]


def test_a_study_of_zero_pairs_is_refused_with_the_reason(store, two_sets):
    with pytest.raises(InputError) as refused:
        studies.create_study(store, "s", "first", [("finetuned", "frontier")], actor=two_sets)
    assert "0 pairs" in str(refused.value)
    assert "frontier has no output in it" in str(refused.value)
    assert studies.list_studies(store) == []
    assert not store.catalog.eval_set("first")["frozen_at"]


def test_archive_hides_the_study_and_unfreezes_an_unused_eval_set(store, two_sets):
    studies.create_study(store, "s", "first", [("finetuned", "base")], actor=two_sets)
    assert store.catalog.eval_set("first")["frozen_at"]
    archived = studies.archive_study(acting(store, "s"))
    assert archived.unfrozen
    assert studies.list_studies(store) == []
    assert workspace.workspace_summary(store)["studies"] == []
    assert not store.catalog.eval_set("first")["frozen_at"]
    (entry,) = [e for e in store.audit.audit_entries() if e["action"] == "study archived"]
    assert entry["actor"] == two_sets.name


def test_archive_keeps_the_eval_set_frozen_once_votes_exist(demo_store):
    result = studies.archive_study(acting(demo_store, "demo", "demo-admin"))
    assert not result.unfrozen
    assert "demo" not in [s["name"] for s in studies.list_studies(demo_store)]
    eval_set = demo_store.studies.study("demo")["eval_set_id"]
    assert [
        e["frozen_at"] is not None for e in demo_store.catalog.eval_sets() if e["id"] == eval_set
    ] == [True]


def test_only_an_admin_archives(store, two_sets):
    studies.create_study(store, "s", "first", [("finetuned", "base")], actor=two_sets)
    with pytest.raises(Forbidden):
        studies.archive_study(acting(store, "s", "rita", role="reviewer"))
    assert [s["name"] for s in studies.list_studies(store)] == ["s"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_study_archive_on_the_command_line(tmp_path, capsys, cli_admin):
    write(tmp_path / "o.csv", OUTPUTS)
    assert run(capsys, "import", "outputs", str(tmp_path / "o.csv"), "--eval-set", "e")[0] == 0
    code, _, err = run(
        capsys, "study", "create", "s", "--eval-set", "e", "--compare", "finetuned:nobody"
    )
    assert code == 1
    code, out, _ = run(
        capsys, "study", "create", "s", "--eval-set", "e", "--compare", "finetuned:base"
    )
    assert code == 0
    code, out, err = run(capsys, "study", "archive", "s")
    assert code == 0 and "archived" in out and "unfrozen" in out, err
    code, out, _ = run(capsys, "study", "list")
    assert code == 0 and "s\t" not in out
    code, _, err = run(capsys, "study", "archive", "s")
    assert code == 1 and err == "error: study 's' is already archived\n"


def test_db_is_accepted_after_the_command(tmp_path, capsys, monkeypatch):
    db = str(tmp_path / "elsewhere.db")
    write(tmp_path / "o.csv", OUTPUTS)
    code, out, _ = run(capsys, "reviewers", "add", "boss", "--role", "admin", "--db", db)
    assert code == 0
    token = out.strip().splitlines()[-1].split("token=")[1]
    code, out, err = run(
        capsys,
        "import",
        "outputs",
        str(tmp_path / "o.csv"),
        "--eval-set",
        "e",
        "--db",
        db,
        "--token",
        token,
    )
    assert code == 0, err
    code, out, err = run(capsys, "info", "--db", db)
    assert code == 0 and "e" in out, err
    # Given before the command, it still counts.
    code, out, _ = run(capsys, "--db", db, "info", "--json")
    assert code == 0 and '"e"' in out


# ---- the Studies screen ----

PAGE = str(Path(__file__).resolve().parent.parent / "review_app" / "app_pages" / "studies.py")


def open_studies(store) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params["token"] = token_for(store, "ada", "admin")
    return at.run()


def test_the_screen_offers_the_systems_of_the_chosen_eval_set(store, two_sets):
    at = open_studies(store)
    assert not at.exception
    at.selectbox(key="study_new_eval_set").select("second").run()
    assert at.selectbox(key="study_new_candidate").options == ["frontier", "other"]
    assert at.selectbox(key="study_new_candidate").value is None
    at.selectbox(key="study_new_eval_set").select("first").run()
    assert at.selectbox(key="study_new_candidate").options == ["base", "finetuned"]


def test_the_screen_archives_after_the_name_is_typed(store, two_sets):
    studies.create_study(store, "s", "first", [("finetuned", "base")], actor=two_sets)
    at = open_studies(store)
    at.selectbox(key="study_archive_name").select("s").run()
    assert at.button(key="study_archive").disabled
    at.text_input(key="study_archive_confirm").input("x").run()
    assert at.button(key="study_archive").disabled
    at.text_input(key="study_archive_confirm").input("s").run()
    at.button(key="study_archive").click().run()
    assert not at.exception
    assert "archived" in at.success[0].value and "unfrozen" in at.success[0].value
    assert studies.list_studies(store) == []
