"""The backups docs/deploy.md describes, run as written on a workspace a server has open: the copy
holds the last change (still in the write-ahead log) and its audit trail verifies."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from review_app.cli import main
from review_app.services import people
from tests.acting import person

DEPLOY = (Path(__file__).resolve().parent.parent / "docs" / "deploy.md").read_text(encoding="utf-8")
BACKUPS = DEPLOY.split("## Backups", 1)[1]


def documented(kind: str) -> str:
    """The Backups section's command of `kind`: the sqlite3 shell line or the Python script."""
    if kind == "python":
        [script] = re.findall(r"python3 - <<'EOF'\n(.*?)\nEOF", BACKUPS, re.S)
        return script
    [line] = re.findall(r"^sqlite3 .*\.backup.*$", BACKUPS, re.M)
    return line


@pytest.mark.parametrize("kind", ["sqlite3", "python"])
def test_the_documented_backup_copies_a_workspace_in_use(
    demo_store, settings, tmp_path, kind, capsys
):
    if kind == "sqlite3" and shutil.which("sqlite3") is None:
        pytest.skip("the sqlite3 shell is missing (Debian package sqlite3)")
    # A change made just now, by a process that still has the workspace open.
    people.add_reviewer(
        demo_store, settings, "late-reviewer", "reviewer", "demo", actor=person(demo_store)
    )
    backups = tmp_path / "backups"
    backups.mkdir()
    command = (
        documented(kind)
        .replace("/srv/review/workspace.db", str(demo_store.path))
        .replace("/srv/backup/", f"{backups}/")
    )
    if kind == "python":
        subprocess.run([sys.executable, "-c", command], check=True)
    else:
        subprocess.run(["bash", "-c", command], check=True)
    [copy] = backups.iterdir()
    assert main(["--db", str(copy), "reviewers", "list"]) == 0
    assert "late-reviewer\treviewer\tdemo" in capsys.readouterr().out
    assert main(["--db", str(copy), "audit", "verify", "--study", "demo"]) == 0
    assert "hold" in capsys.readouterr().out
