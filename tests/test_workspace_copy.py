"""`review-app copy`: a whole workspace moved between SQLite and PostgreSQL, either way, proven
by equal digests and `audit verify`; a target that is not empty, or a database that cannot be
reached, is refused in one line and nothing changes."""

from __future__ import annotations

import pytest

from review_app.cli import main
from review_app.services import workspace_copy
from review_app.store import Store


@pytest.fixture
def on_postgres(postgres):
    """A new, empty PostgreSQL database (its URL)."""
    url = postgres.database()
    yield url
    postgres.drop(url)


def _snapshot(location: str) -> dict:
    store = Store.open(location)
    try:
        return {
            "digests": workspace_copy.digests(store),
            "blinding": store.calibration.blinding_key(),
            "sealed": store.calibration.label_key(),
            "pairs": store.studies.study_pair_ids(store.studies.require_study("demo")["id"]),
        }
    finally:
        store.close()


def test_a_workspace_goes_to_postgresql_and_back_unchanged(
    demo_store, on_postgres, tmp_path, capsys
):
    source = demo_store.path
    demo_store.close()
    assert main(["copy", "--from", source, "--to", on_postgres]) == 0
    out = capsys.readouterr().out
    assert "audit verify on the copy finds what it finds on the source (demo)" in out
    back = str(tmp_path / "back.db")
    assert main(["copy", "--from", on_postgres, "--to", back]) == 0
    original, there, again = _snapshot(source), _snapshot(on_postgres), _snapshot(back)
    assert original == there == again
    assert main(["audit", "verify", "--study", "demo", "--db", on_postgres]) == 0


def test_new_rows_in_the_copy_are_numbered_after_the_copied_ones(demo_store, on_postgres):
    source = demo_store.path
    demo_store.close()
    workspace_copy.copy_workspace(source, on_postgres, _settings(source))
    copy = Store.open(on_postgres)
    try:
        before = copy.audit.last_id("votes")
        with copy.transaction():
            copy.audit.append_audit("someone", "noted", None, {})
            entry = copy.audit.audit_entries()[-1]
        assert entry["id"] == max(e["id"] for e in copy.audit.audit_entries())
        assert before > 0
    finally:
        copy.close()


def test_a_target_that_is_not_empty_is_refused_and_left_as_it_was(demo_store, tmp_path, capsys):
    source = demo_store.path
    demo_store.close()
    target = str(tmp_path / "other.db")
    assert main(["copy", "--from", source, "--to", target]) == 0
    before = _snapshot(target)
    capsys.readouterr()
    assert main(["copy", "--from", source, "--to", target]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not empty" in err[0] and "copy into a new database" in err[0]
    assert _snapshot(target) == before


def test_an_unreachable_or_missing_workspace_is_one_line(tmp_path, capsys):
    assert main(["copy", "--from", str(tmp_path / "none.db"), "--to", str(tmp_path / "t.db")]) == 1
    assert capsys.readouterr().err.strip() == f"error: no workspace at {tmp_path / 'none.db'}"
    db = tmp_path / "w.db"
    Store.open(db).close()
    url = "postgresql://nobody:secret@127.0.0.1:1/none"
    assert main(["copy", "--from", str(db), "--to", url]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot connect" in err[0] and "secret" not in err[0]


def _settings(db: str):
    from dataclasses import replace

    from review_app.settings import Settings

    return replace(Settings.from_env(), db=db)
