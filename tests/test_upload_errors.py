"""An upload or import reports every wrong row at once (up to a limit, counting the rest), so
one corrected file goes through; a file with one wrong row keeps that row's own message."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from review_app import importers
from review_app.cli import main
from review_app.errors import InputError
from review_app.services import data
from tests.acting import person, token_for
from tests.conftest import write

GOOD = "q{n},Question {n}?,{system},Answer {n}.\n"


def outputs(wrong: dict[int, str], n: int = 12) -> str:
    """An outputs file of n items and two systems; `wrong` replaces data lines (1-based)."""
    lines = [GOOD.format(n=i, system=s) for i in range(n) for s in ("base", "tuned")]
    for number, text in wrong.items():
        lines[number - 1] = text + "\n"
    return "item_id,prompt,system,output\n" + "".join(lines)


WRONG = {4: "q1,Question 1?,tuned", 9: 'q4,Question 4?,,"x"', 15: "q7,Question 7?,baseline,1,2"}


def test_every_wrong_row_is_reported_and_nothing_is_imported(store, tmp_path):
    path = write(tmp_path / "o.csv", outputs(WRONG))
    with pytest.raises(InputError) as failed:
        data.import_outputs(store, path, "e", actor=person(store))
    message = str(failed.value)
    assert message.startswith(f"{path}: 3 rows are wrong, nothing was imported: line 5")
    assert "line 10: field 'system'" in message and "line 16" in message
    assert "\n" not in message
    assert failed.value.problems[0].startswith("line 5: has 3 fields")
    assert store.catalog.eval_sets() == []


def test_one_wrong_row_keeps_its_own_message(store, tmp_path):
    path = write(tmp_path / "o.csv", outputs({4: "q1,Question 1?,tuned"}))
    with pytest.raises(InputError) as failed:
        data.import_outputs(store, path, "e", actor=person(store))
    assert str(failed.value) == f"{path}:5: has 3 fields but the header has 4"


def test_many_wrong_rows_are_listed_up_to_a_limit(store, tmp_path):
    wrong = {n: f"q{n},Q?,,x" for n in range(1, 25)}
    path = write(tmp_path / "o.csv", outputs(wrong))
    with pytest.raises(InputError) as failed:
        data.import_outputs(store, path, "e", actor=person(store))
    assert len(failed.value.problems) == importers.MAX_PROBLEMS + 1
    assert failed.value.problems[-1] == f"and {24 - importers.MAX_PROBLEMS} more"


def test_votes_report_every_wrong_row(store, tmp_path, cli_admin, capsys):
    data.import_outputs(store, write(tmp_path / "o.csv", outputs({})), "e", actor=person(store))
    votes = (
        "item_id,system_a,system_b,reviewer,winner\n"
        "q1,tuned,base,ana,tuned\n"
        "q2,tuned,base,ana,nobody\n"
        "q3,tuned,base,ana,base\n"
        "q99,tuned,base,ana,base\n"
    )
    code = main(
        [
            "import",
            "votes",
            str(write(tmp_path / "v.csv", votes)),
            "--study",
            "s",
            "--eval-set",
            "e",
        ]
    )
    _, err = capsys.readouterr()
    assert code == 1 and err.count("\n") == 1
    assert "2 rows are wrong" in err and "line 3: field 'winner'" in err
    assert "line 5: field 'item_id'" in err


def test_the_upload_screen_lists_every_wrong_row(store, tmp_path):
    token = token_for(store, "ada")
    page = Path(__file__).resolve().parent.parent / "review_app" / "app_pages" / "data.py"
    at = AppTest.from_file(str(page), default_timeout=60)
    at.query_params["token"] = token
    at.run()
    at.selectbox(key="upload_eval_set").select("(new)").run()
    at.text_input(key="upload_new_eval_set").input("es").run()
    at.file_uploader(key="upload_file_outputs").set_value(
        ("broken.csv", outputs(WRONG).encode(), "text/csv")
    )
    at.button(key="upload_submit").click().run()
    assert not at.exception
    [error] = at.error
    assert error.value.startswith("Nothing imported: 3 problems in broken.csv.")
    for line in ("- line 5:", "- line 10:", "- line 16:"):
        assert line in error.value
    assert "/tmp" not in error.value
