"""Every way the command line can fail ends in one line `error: ...` on stderr, a non-zero status
and an unchanged workspace: Ctrl-C, text that is not text, JSON nested too deeply, values out of
range, an --output that is the workspace itself, a workspace written by a newer version."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from review_app import cli, importers
from review_app.errors import UnusableWorkspace
from review_app.store import Store
from tests.conftest import write

OUTPUTS = (
    "item_id,prompt,system,output,category\n"
    "q1,Capital of France?,base,Paris,geo\n"
    "q1,Capital of France?,finetuned,Paris.,geo\n"
    "q2,2+2?,base,4,math\n"
    "q2,2+2?,finetuned,5,math\n"
)


def run(capsys, *argv):
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:  # argparse, and `serve` passing on the server's status
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> bool:
    return err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


@pytest.fixture
def workspace(tmp_path, capsys, isolated_workspace, cli_admin):
    """A workspace with an eval set and a study; yields a function that says whether anything in
    it changed since the fixture ran."""
    write(tmp_path / "o.csv", OUTPUTS)
    assert run(capsys, "import", "outputs", str(tmp_path / "o.csv"), "--eval-set", "e")[0] == 0
    assert (
        run(capsys, "study", "create", "s", "--eval-set", "e", "--compare", "finetuned:base")[0]
        == 0
    )

    def counts():
        store = Store.open(isolated_workspace)
        try:
            return store.table_counts()
        finally:
            store.close()

    before = counts()
    return lambda: counts() != before


def test_ctrl_c_mid_import_is_one_line_and_changes_nothing(
    workspace, tmp_path, capsys, monkeypatch
):
    rows = "".join(f"n{i},Prompt {i},base,Answer {i},geo\n" for i in range(10))
    path = write(tmp_path / "more.csv", "item_id,prompt,system,output,category\n" + rows)
    monkeypatch.setattr(importers, "BATCH_ROWS", 2)  # some rows are written before the interrupt
    real_read_rows = importers.read_rows

    def interrupted(source, digest=None):
        for number, row in real_read_rows(source, digest):
            if number == 8:
                raise KeyboardInterrupt
            yield number, row

    monkeypatch.setattr(importers, "read_rows", interrupted)
    code, out, err = run(capsys, "import", "outputs", str(path), "--eval-set", "new")
    assert code == 130 and out == ""
    assert one_line_error(err) and "interrupted" in err
    assert not workspace()


def test_ctrl_c_mid_export_leaves_the_output_file_as_it_was(
    workspace, tmp_path, capsys, monkeypatch
):
    from review_app.services import data

    keep = write(tmp_path / "pairs.csv", "precious\n")

    def interrupted(store, what, study):
        yield {"pair_id": 1}
        raise KeyboardInterrupt

    monkeypatch.setattr(data, "export_rows", interrupted)
    code, _, err = run(capsys, "export", "pairs", "--study", "s", "--output", str(keep))
    assert code == 130 and one_line_error(err)
    assert keep.read_text() == "precious\n"
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


BAD_JSON = [
    pytest.param(
        "o.jsonl",
        '{"item_id": "q9", "prompt": "p\\ud800", "system": "base", "output": "o"}\n',
        "o.jsonl:1: field 'prompt': holds a lone surrogate",
        id="lone surrogate in a field",
    ),
    pytest.param(
        "o.jsonl",
        '{"item_id": "q9", "prompt": "p", "system": "base", "output": "o", "n\\udc00": 1}\n',
        "o.jsonl:1: field 'n\\udc00': holds a lone surrogate",
        id="lone surrogate in a column name",
    ),
    pytest.param(
        "o.jsonl",
        '{"item_id": "q9", "prompt": "p", "system": "base", "output": "o", "m": {"a": ["\\udfff"]}}\n',
        "o.jsonl:1: field 'm': holds a lone surrogate",
        id="lone surrogate in metadata",
    ),
    pytest.param(
        "o.jsonl",
        '{"item_id": "q9", "prompt": "p", "system": "base", "output": "o", "m": '
        + "[" * 100_000
        + "]" * 100_000
        + "}\n",
        "o.jsonl:1: JSON nested too deeply",
        id="a line nested 100,000 deep",
    ),
    pytest.param(
        "o.jsonl",
        '{"item_id": "q9", "prompt": "p", "system": "base", "output": "o", "m": '
        + "[" * 500
        + "]" * 500
        + "}\n",
        "o.jsonl:1: field 'm': is nested more than 100 levels deep",
        id="nested deep enough to break storing it",
    ),
    pytest.param(
        "o.json",
        "[" + "[" * 100_000 + "]" * 100_000 + "]",
        "o.json: JSON nested too deeply",
        id="a JSON array nested 100,000 deep",
    ),
    pytest.param(
        "o.jsonl",
        '{"item_id": "q9", "prompt": "p", "system": "base", "output": "o", "m": '
        + "9" * 5000
        + "}\n",
        "o.jsonl:1: invalid JSON: a number has too many digits",
        id="a 5,000-digit number",
    ),
]


@pytest.mark.parametrize(("name", "text", "message"), BAD_JSON)
def test_text_that_cannot_be_stored_is_one_line_naming_file_line_and_field(
    workspace, tmp_path, capsys, name, text, message
):
    path = write(tmp_path / name, text)
    code, out, err = run(capsys, "import", "outputs", str(path), "--eval-set", "e")
    assert code == 1 and out == "" and one_line_error(err)
    assert err == f"error: {tmp_path}/{message}" + err[len(f"error: {tmp_path}/{message}") :]
    assert not workspace()


def test_a_surrogate_pair_escape_is_an_ordinary_character(workspace, tmp_path, capsys):
    path = write(
        tmp_path / "o.jsonl",
        '{"item_id": "q9", "prompt": "smile \\ud83d\\ude00", "system": "base", "output": "o"}\n',
    )
    assert run(capsys, "import", "outputs", str(path), "--eval-set", "new")[0] == 0


INVALID_VALUES = [
    ("thresholds", "add", "--study", "s", "--metric", "human_win_rate", "--value", "nan"),
    ("thresholds", "add", "--study", "s", "--metric", "human_win_rate", "--value", "inf"),
    ("plan", "--study", "s", "--effect", "nan"),
    ("study", "create", "t", "--eval-set", "e", "--compare", "a:b", "--reviews-per-pair", "1e3"),
    ("judge-runs", "--study", "s", "--failures", "100000000000000000000"),
    ("thresholds", "remove", "99999999999999999999999", "--study", "s"),
    ("serve", "--port", "0"),
    ("import", "outputs", "o\udcff.csv", "--eval-set", "e"),
    ("export", "teapots", "--study", "s"),
]


@pytest.mark.parametrize("argv", INVALID_VALUES, ids=lambda argv: " ".join(argv[:2]))
def test_invalid_values_are_one_line_and_change_nothing(workspace, capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and one_line_error(err)
    assert not workspace()


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm", "-journal"])
@pytest.mark.parametrize("command", ["export", "report"])
def test_output_refuses_the_workspace_files(workspace, isolated_workspace, capsys, suffix, command):
    target = f"{isolated_workspace}{suffix}"
    argv = (
        ("export", "votes", "--study", "s")
        if command == "export"
        else ("report", "--study", "s", "--format", "md")
    )
    before = isolated_workspace.read_bytes()
    code, _, err = run(capsys, *argv, "--output", target)
    assert code == 1 and one_line_error(err)
    assert "is the workspace database" in err
    assert isolated_workspace.read_bytes() == before and not workspace()


def test_output_refuses_a_link_to_the_workspace(workspace, isolated_workspace, tmp_path, capsys):
    link = tmp_path / "innocent.csv"
    link.symlink_to(isolated_workspace)
    hard = tmp_path / "hard.csv"
    hard.hardlink_to(isolated_workspace)
    for target in (link, hard):
        code, _, err = run(capsys, "export", "votes", "--study", "s", "--output", str(target))
        assert code == 1 and "is the workspace database" in err
    assert not workspace()


def newer_workspace(path, version: int = 999) -> str:
    store = Store.open(path)
    store.close()
    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO _migrations (version, name, applied_at) VALUES (?, 'from the future', '')",
        (version,),
    )
    conn.commit()
    conn.close()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_workspace_of_a_newer_schema_is_refused_unopened(tmp_path, capsys):
    db = tmp_path / "future.db"
    digest = newer_workspace(db)
    with pytest.raises(UnusableWorkspace, match="schema version 999, newer than"):
        Store.open(db)
    write(tmp_path / "o.csv", OUTPUTS)
    for argv in (("info",), ("import", "outputs", str(tmp_path / "o.csv"), "--eval-set", "e")):
        code, out, err = run(capsys, "--db", str(db), *argv)
        assert code == 1 and out == "" and one_line_error(err)
        assert "schema version 999" in err
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT count(*) FROM eval_sets").fetchone()[0] == 0
    conn.close()


def test_serving_hides_error_details_from_visitors(monkeypatch, capsys):
    import io

    from review_app import server

    started = []

    class Streamlit:
        def __init__(self, command, **kwargs):
            started.append(command)
            self.stdout = io.StringIO("")

        def poll(self):
            return 0

        def wait(self, timeout=None):
            return 0

    monkeypatch.setattr(server.subprocess, "Popen", Streamlit)
    assert run(capsys, "serve", "--port", "8599")[0] == 0
    command = started[0]
    assert command[command.index("--client.showErrorDetails") + 1] == "none"
    config = (cli.Path(cli.__file__).parent / ".streamlit" / "config.toml").read_text()
    assert 'showErrorDetails = "none"' in config
