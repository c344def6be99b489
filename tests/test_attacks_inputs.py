"""Hostile and careless inputs: every one is refused in one line naming the file, line and field
(the workspace unchanged), or is documented as intended in the README's trust model. Names are
NFC, visible and never pass for the app's own judges; a full disk leaves nothing staged."""

from __future__ import annotations

import json
import os
import stat
import unicodedata

import pytest

from review_app import cli, names
from review_app.services import data, thresholds
from review_app.store import Store
from review_app.store.imports import StagingFile
from tests.acting import acting, person
from tests.conftest import ROOT, write

OUTPUTS = (
    "item_id,prompt,system,output,category\n"
    "q1,Capital of France?,base,Paris,geo\n"
    "q1,Capital of France?,finetuned,Paris.,geo\n"
    "q2,2+2?,base,4,math\n"
    "q2,2+2?,finetuned,5,math\n"
    "q1,Capital of France?,frontier,Paris!,geo\n"
    "q2,2+2?,frontier,4.,math\n"
)
RUBRIC = ROOT / "rubrics" / "general-pairwise.yaml"


def run(capsys, *argv):
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys, *argv) -> str:
    """The one-line error of a command that must fail."""
    code, _, err = run(capsys, *argv)
    assert code == 1, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.fixture
def workspace(tmp_path, capsys, isolated_workspace, cli_admin):
    """Eval set e (base, finetuned, frontier on two items) and study s comparing finetuned with
    base, k = 2; yields a function that says whether anything changed since."""
    assert run(capsys, "import", "outputs", write(tmp_path / "o.csv", OUTPUTS), "--eval-set", "e")
    code = run(capsys, "study", "create", "s", "--eval-set", "e", "--compare", "finetuned:base")
    assert code[0] == 0, code

    def counts():
        store = Store.open(isolated_workspace)
        try:
            return store.table_counts()
        finally:
            store.close()

    before = counts()
    return lambda: counts() != before


def _import(capsys, tmp_path, kind: str, name: str, text: str) -> str:
    return refused(capsys, "import", kind, write(tmp_path / name, text), "--study", "s")


# ---- the three tracebacks ----


def test_a_python_object_tag_in_a_rubric_is_one_line(workspace, tmp_path, capsys):
    text = RUBRIC.read_text(encoding="utf-8").replace(
        "description:", "extra: !!python/object/apply:os.system ['true']\ndescription:", 1
    )
    path = write(tmp_path / "evil.yaml", text)
    err = refused(capsys, "judge", "--study", "s", "--rubric", path, "--judge", "baseline/first")
    assert f"{path}:" in err and "python/object" in err
    assert not workspace()


def test_a_python_object_tag_in_a_grader_is_one_line(workspace, tmp_path, capsys):
    path = write(
        tmp_path / "g.yaml",
        "name: g\nchecks:\n  - name: c\n    type: !!python/object:os.system\n      x: 1\n",
    )
    err = refused(capsys, "grade", "--study", "s", "--grader", path)
    assert f"{path}:4" in err and "python/object" in err
    assert not workspace()


def test_a_rubric_that_is_not_utf8_is_one_line(workspace, tmp_path, capsys):
    raw = RUBRIC.read_bytes().replace(b"description:", b"description: caf\xe9 ", 1)
    path = write(tmp_path / "latin1.yaml", raw)
    err = refused(capsys, "judge", "--study", "s", "--rubric", path, "--judge", "baseline/first")
    assert f"{path}:" in err and "UTF-8" in err
    assert not workspace()


def test_a_rubric_version_that_is_a_path_is_refused(workspace, tmp_path, capsys):
    text = RUBRIC.read_text(encoding="utf-8").replace("version: 1", "version: ../../x", 1)
    path = write(tmp_path / "v.yaml", text)
    err = refused(capsys, "judge", "--study", "s", "--rubric", path, "--judge", "baseline/first")
    assert f"{path}:3: version:" in err
    assert not workspace()


# ---- --output ----


@pytest.mark.parametrize("kind", ["fifo", "symlink", "device"])
def test_output_replaces_only_a_regular_file_or_a_new_path(workspace, tmp_path, capsys, kind):
    if kind == "fifo":
        target = tmp_path / "pipe"
        os.mkfifo(target)
    elif kind == "symlink":
        kept = write(tmp_path / "kept.txt", "someone else's file\n")
        target = tmp_path / "link.csv"
        target.symlink_to(kept)
    else:
        # A device node of its own (the null device's numbers), never the system's /dev/null.
        target = tmp_path / "device"
        try:
            os.mknod(target, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        except PermissionError:
            pytest.skip("making a device node needs root")
    mode = target.lstat().st_mode
    err = refused(capsys, "export", "pairs", "--study", "s", "--format", "csv", "--output", target)
    assert f"--output {target} is a" in err
    assert target.lstat().st_mode == mode  # still what it was
    if kind == "symlink":
        assert kept.read_text() == "someone else's file\n"
    out = tmp_path / "new.csv"
    assert (
        run(capsys, "export", "pairs", "--study", "s", "--format", "csv", "--output", out)[0] == 0
    )
    assert (
        run(capsys, "export", "pairs", "--study", "s", "--format", "csv", "--output", out)[0] == 0
    )


# ---- names ----


@pytest.mark.parametrize("judge", ["baseline/longest", "jury/trio", "Baseline/first"])
def test_an_imported_judge_cannot_take_a_reserved_name(workspace, tmp_path, capsys, judge):
    text = f"item_id,system_a,system_b,judge,winner\nq1,finetuned,base,{judge},finetuned\n"
    err = _import(capsys, tmp_path, "verdicts", "j.csv", text)
    assert "j.csv:2: field 'judge'" in err and "reserved" in err
    assert not workspace()


@pytest.mark.parametrize(
    "name", ["finetuned\u200b", "fine\u200dtuned", "finetuned\u202e", "base\x07", "a\nb"]
)
def test_a_system_name_with_invisible_or_control_characters_is_refused(
    workspace, tmp_path, capsys, name
):
    """A zero-width look-alike of the candidate would pass for it in every table."""
    row = {"item_id": "q1", "prompt": "Capital of France?", "system": name, "output": "Paris"}
    err = refused(
        capsys,
        "import",
        "outputs",
        write(tmp_path / "o.jsonl", json.dumps(row) + "\n"),
        "--eval-set",
        "e",
    )
    assert "o.jsonl:1: field 'system'" in err and "U+" in err
    assert not workspace()


def test_names_are_nfc_normalised(tmp_path, capsys, isolated_workspace, cli_admin):
    decomposed = unicodedata.normalize("NFD", "café")
    rows = [
        {"item_id": "q1", "prompt": "Hi", "system": decomposed, "output": "a"},
        {"item_id": "q1", "prompt": "Hi", "system": "base", "output": "b"},
    ]
    path = write(tmp_path / "o.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    assert run(capsys, "import", "outputs", path, "--eval-set", "e")[0] == 0
    store = Store.open(isolated_workspace)
    try:
        assert set(store.catalog.system_names()) == {"café", "base"}
    finally:
        store.close()
    assert names.normal_name(decomposed) == "café"


@pytest.mark.parametrize("name", ["s\nforged line", "study\u200b", "jury/x"])
def test_a_study_name_must_be_plain(workspace, tmp_path, capsys, name):
    err = refused(capsys, "study", "create", name, "--eval-set", "e", "--compare", "base:finetuned")
    assert "study name" in err
    votes = "item_id,system_a,system_b,reviewer,winner\nq1,finetuned,base,zed,tie\n"
    path = write(tmp_path / "v.csv", votes)
    err = refused(capsys, "import", "votes", path, "--study", name, "--eval-set", "e")
    assert "study name" in err
    assert not workspace()


def test_votes_on_a_pair_the_study_does_not_compare_are_refused(workspace, tmp_path, capsys):
    text = "item_id,system_a,system_b,reviewer,winner\nq1,frontier,base,zed,frontier\n"
    err = _import(capsys, tmp_path, "votes", "v.csv", text)
    assert "v.csv:2: field 'system_b'" in err and "does not compare" in err
    text = "item_id,system_a,system_b,judge,winner\nq1,frontier,finetuned,gpt,frontier\n"
    err = _import(capsys, tmp_path, "verdicts", "j.csv", text)
    assert "j.csv:2: field 'system_b'" in err
    assert not workspace()


# ---- JSON ----


def test_a_json_nul_escape_is_refused_like_a_raw_nul(workspace, tmp_path, capsys):
    row = '{"item_id": "q1", "system_a": "finetuned", "system_b": "base", "reviewer": "zed", '
    text = row + '"winner": "tie", "rationale": "fine\\u0000"}\n'
    err = _import(capsys, tmp_path, "votes", "v.jsonl", text)
    assert "v.jsonl:1: field 'rationale'" in err and "NUL" in err
    assert not workspace()


def test_a_json_key_given_twice_is_refused(workspace, tmp_path, capsys):
    """JSON keeps the last of two equal keys: a reviewer would read one winner, the app another."""
    row = '{"item_id": "q1", "system_a": "finetuned", "system_b": "base", "reviewer": "zed", '
    text = row + '"winner": "base", "winner": "finetuned"}\n'
    err = _import(capsys, tmp_path, "votes", "v.jsonl", text)
    assert "v.jsonl:1: field 'winner'" in err and "twice" in err
    assert not workspace()


# ---- numbers and thresholds ----


@pytest.mark.parametrize("k", ["1000000000000", "101"])
def test_reviews_per_pair_has_a_ceiling(workspace, capsys, k):
    args = ["study", "create", "big", "--eval-set", "e", "--compare", "finetuned:base"]
    err = refused(capsys, *args, "--reviews-per-pair", k)
    assert "at most 100" in err
    err = refused(capsys, "study", "plan", "s", "--reviews-per-pair", k)
    assert "at most 100" in err
    assert not workspace()


def test_a_threshold_on_a_system_the_study_does_not_compare_is_refused(
    workspace, capsys, isolated_workspace
):
    args = ["thresholds", "add", "--study", "s", "--metric", "human_win_rate", "--value", "0.5"]
    err = refused(capsys, *args, "--param", "system_a=finetuned\u200b", "--param", "system_b=base")
    assert "compares no such system" in err
    err = refused(capsys, *args, "--param", "system_a=frontier", "--param", "system_b=base")
    assert "compares no such system" in err
    assert not workspace()
    store = Store.open(isolated_workspace)
    try:
        ctx = acting(store, "s", "admin")
        thresholds.add_threshold(
            ctx, "human_win_rate", {"system_a": "finetuned", "system_b": "base"}, ">", 0.5
        )
    finally:
        store.close()


# ---- documented as intended ----


def test_the_trust_model_documents_the_inputs_it_accepts():
    """More votes per pair than planned, and imported votes as such, are accepted on purpose;
    the trust model says so and why."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    model = readme[readme.index("## Trust model") : readme.index("## Architecture")]
    assert "more votes on a pair than the study plans" in model
    assert "in the name of someone who also votes in the app" in model
    assert "`baseline/` or `jury/`" in model
    assert "regular file or a new path" in model


# ---- a full disk ----


def _rows(n: int) -> str:
    return "".join(
        json.dumps({"item_id": f"q{i}", "prompt": "p" * 2000, "system": s, "output": s[0] * 3000})
        + "\n"
        for i in range(n)
        for s in ("base", "finetuned")
    )


def test_a_full_disk_leaves_no_staged_import_behind(tmp_path, isolated_workspace, monkeypatch):
    """The workspace can grow by only so many pages (SQLite's max_page_count), and so can the
    file the import stages its rows in beside it (as many bytes): whether the disk fills while
    an import is checked and staged or while it is written, the import fails in one line and
    nothing staged is left to hold the space or the eval set's lock; once there is space,
    importing the same file again completes it."""
    path = write(tmp_path / "o.jsonl", _rows(200))
    failures = set()
    real_staging_file = StagingFile.__init__

    def filling_staging_file(self, staging_path):
        real_staging_file(self, staging_path)
        page_size = self.conn.execute("PRAGMA page_size").fetchone()[0]
        pages = self.conn.execute("PRAGMA page_count").fetchone()[0]
        self.conn.execute(f"PRAGMA max_page_count = {pages + extra * 4096 // page_size}")

    monkeypatch.setattr(StagingFile, "__init__", filling_staging_file)
    for extra in (200, 450, 650, 900):
        store = Store.open(tmp_path / f"w{extra}.db")
        try:
            admin = person(store)
            pages = store.db.execute("PRAGMA page_count").fetchone()[0]
            store.db.execute(f"PRAGMA max_page_count = {pages + extra}")
            try:
                data.import_outputs(store, path, "e", actor=admin)
            except Exception as exc:
                assert "\n" not in str(exc) and "disk" in str(exc)
                failures.add("nothing was imported" in str(exc))
            assert store.imports.import_jobs() == []
            assert store.db.execute("SELECT count(*) FROM import_batches").fetchone()[0] == 0
            assert not list(tmp_path.glob(f"w{extra}.db-import-*"))
            store.db.execute("PRAGMA max_page_count = 1073741823")
            extra = 10**6  # and the staging file too
            data.import_outputs(store, path, "e", actor=admin)
            assert store.db.execute("SELECT count(*) FROM outputs").fetchone()[0] == 400
        finally:
            store.close()
    # Both phases were hit: while staging (nothing imported) and while writing.
    assert failures == {True, False}
