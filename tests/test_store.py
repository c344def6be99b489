import time
from pathlib import Path

import pandas as pd
import pytest

import review_app.store
from review_app.migrations import MIGRATIONS
from review_app.store import AssignmentState, Store, now_iso
from review_app.store.base import Aggregate, StoreBase
from review_app.store.connection import connect, refused_errors

pytestmark = pytest.mark.both_backends


def test_open_creates_wal_database_with_every_migration(store, isolated_workspace, backend):
    if backend == "sqlite":
        assert isolated_workspace.exists()
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.schema_version() == max(v for v, _, _ in MIGRATIONS)
    assert {"items", "outputs", "pairs", "votes", "verdicts", "signoffs"} <= set(
        store.db.table_names()
    )


def test_reopening_migrates_nothing_twice(isolated_workspace):
    Store.open(isolated_workspace).close()
    again = Store.open(isolated_workspace)
    rows = again.db.execute("SELECT version FROM _migrations").fetchall()
    assert rows == [(v,) for v, _, _ in MIGRATIONS]
    again.close()


def test_transaction_rolls_back_every_write_on_error(store):
    before = store.table_counts()
    with pytest.raises(RuntimeError):
        with store.transaction():
            es = store.catalog.ensure_eval_set("e")
            store.catalog.insert_items(
                es["id"],
                [
                    {
                        "item_key": "a",
                        "prompt": "p",
                        "reference": None,
                        "category": "",
                        "metadata": {},
                    }
                ],
            )
            raise RuntimeError("boom")
    assert store.table_counts() == before


def test_nested_transaction_rolls_back_to_its_savepoint_only(store):
    with store.transaction():
        store.catalog.ensure_eval_set("outer")
        with pytest.raises(RuntimeError):
            with store.transaction():
                store.catalog.ensure_eval_set("inner")
                raise RuntimeError("inner fails")
    assert [e["name"] for e in store.catalog.eval_sets()] == ["outer"]


def test_each_store_module_is_one_aggregate_of_the_store(store):
    modules = {p.stem for p in Path(review_app.store.__file__).parent.glob("*.py")}
    for name in modules - {"__init__", "base", "connection"}:
        aggregate = vars(store)[name]
        assert isinstance(aggregate, Aggregate) and aggregate.store is store
        assert aggregate.db is store.db
        # The queries are the aggregate's only: the Store's methods are what StoreBase owns.
        queries = {q for q in vars(type(aggregate)) if not q.startswith("_")}
        assert queries and not queries & set(dir(Store)), name
    assert {m for m in dir(Store) if not m.startswith("_")} <= set(dir(StoreBase))


def test_one_transaction_spans_every_aggregate(store):
    with pytest.raises(RuntimeError):
        with store.transaction():
            eval_set_id = store.catalog.ensure_eval_set("e")["id"]
            study_id = store.studies.insert_study("s", eval_set_id, 1)
            store.gate.insert_threshold(study_id, "human_win_rate", {}, ">", 0.5, "admin")
            # Inside the transaction every aggregate reads the writer: its changes show.
            assert store.studies.study_by_id(study_id)["eval_set_id"] == eval_set_id
            assert len(store.gate.thresholds(study_id)) == 1
            raise RuntimeError("boom")
    assert store.catalog.eval_sets() == []
    assert store.studies.studies() == []


def _one_vote(store):
    with store.transaction():
        es = store.catalog.ensure_eval_set("e")
        ids = store.catalog.insert_items(
            es["id"],
            [{"item_key": "a", "prompt": "p", "reference": None, "category": "", "metadata": {}}],
        )
        store.catalog.ensure_systems(["x", "y"])
        store.catalog.upsert_outputs([(ids["a"], "x", "1"), (ids["a"], "y", "2")])
        study_id = store.studies.insert_study("s", es["id"], 1)
        store.studies.insert_pairs(study_id, [(ids["a"], "x", "y")])
        reviewer = store.people.insert_reviewer("r", "reviewer", None)
        store.review.insert_votes(
            [
                {
                    "pair_id": store.studies.pair_id(study_id, ids["a"], "x", "y"),
                    "reviewer_id": reviewer,
                    "choice": "A",
                    "winner": "x",
                    "criteria": "{}",
                    "rationale": "",
                    "flags": "[]",
                    "source": "app",
                    "created_at": now_iso(),
                }
            ]
        )
    return study_id


def test_votes_are_append_only(store):
    _one_vote(store)
    with pytest.raises(refused_errors(), match="append-only"):
        store.db.execute("UPDATE votes SET winner = 'y'")
    with pytest.raises(refused_errors(), match="append-only"):
        store.db.execute("DELETE FROM votes")
    assert store.db.execute("SELECT winner FROM votes").fetchall() == [("x",)]


def test_votes_frame_keeps_latest_vote_and_drops_retractions(store):
    study_id = _one_vote(store)
    frame = store.frames.votes_frame(study_id)
    assert list(frame["outcome"]) == ["x"] and frame["shown_left"].tolist() == [None]
    first = int(frame["vote_id"][0])
    base = {"pair_id": int(frame["pair_id"][0]), "reviewer_id": 1, "criteria": "{}"}
    base |= {"rationale": "", "flags": "[]", "source": "app", "created_at": now_iso()}
    with store.transaction():
        store.review.insert_votes([base | {"choice": "tie", "winner": "tie", "supersedes": first}])
    assert list(store.frames.votes_frame(study_id)["outcome"]) == ["tie"]
    with store.transaction():
        store.review.insert_votes(
            [base | {"choice": "retracted", "winner": None, "supersedes": first + 1}]
        )
    assert store.frames.votes_frame(study_id).empty
    assert len(store.review.vote_history(study_id)) == 3


def test_pairs_are_stored_in_canonical_order(store):
    with store.transaction():
        es = store.catalog.ensure_eval_set("e")
        ids = store.catalog.insert_items(
            es["id"],
            [{"item_key": "a", "prompt": "p", "reference": None, "category": "", "metadata": {}}],
        )
        study_id = store.studies.insert_study("s", es["id"], 1)
    with pytest.raises(refused_errors()):
        store.studies.insert_pairs(study_id, [(ids["a"], "y", "x")])


def test_opening_an_up_to_date_workspace_does_not_write(isolated_workspace):
    Store.open(isolated_workspace).close()
    holder = connect(str(isolated_workspace))
    holder.begin_write()  # another session (a reviewer's vote) holds the write lock
    try:
        started = time.monotonic()
        store = Store.open(isolated_workspace)  # a write would queue behind the holder for 30 s
        waited = time.monotonic() - started
        in_transaction = store.db.in_transaction
        store.close()
    finally:
        holder.rollback()
        holder.close()
    assert waited < 5
    assert not in_transaction


def test_counts_leave_out_retracted_votes(store):
    study_id = _one_vote(store)
    assert store.studies.study_counts(study_id)["votes"] == 1
    frame = store.frames.votes_frame(study_id)
    retraction = {"pair_id": int(frame["pair_id"][0]), "reviewer_id": 1, "choice": "retracted"}
    retraction |= {"winner": None, "criteria": "{}", "rationale": "", "flags": "[]"}
    retraction |= {"source": "app", "created_at": now_iso(), "supersedes": int(frame["vote_id"][0])}
    with store.transaction():
        store.review.insert_votes([retraction])
    assert store.studies.study_counts(study_id)["votes"] == 0
    assert store.studies.study_counts(study_id)["reviewers"] == 0
    assert store.people.reviewers()[0]["n_votes"] == 0


def test_migration_3_makes_an_imported_verdicts_cost_unknown_and_keeps_uniqueness(tmp_path):
    from review_app.store.connection import SQLiteDatabase

    path = tmp_path / "v2.db"
    db = SQLiteDatabase(str(path))
    db.execute("CREATE TABLE _migrations (version INTEGER PRIMARY KEY, name TEXT, applied_at TEXT)")
    for version, name, apply in MIGRATIONS[:2]:
        apply(db)
        db.execute("INSERT INTO _migrations VALUES (?, ?, ?)", [version, name, now_iso()])
    db.execute("INSERT INTO eval_sets (id, name, created_at) VALUES (1, 'e', 'now')")
    db.execute("INSERT INTO items (id, eval_set_id, item_key, prompt) VALUES (1, 1, 'a', 'p')")
    db.execute("INSERT INTO studies (id, name, eval_set_id, created_at) VALUES (1, 's', 1, 'now')")
    db.execute(
        "INSERT INTO pairs (id, study_id, item_id, system_x, system_y) VALUES (1, 1, 1, 'x', 'y')"
    )
    for run_id, source in ((1, "import"), (2, "run")):
        db.execute(
            "INSERT INTO judge_runs (id, study_id, label, judge, source, params_hash, created_at) "
            "VALUES (?, 1, ?, ?, ?, ?, 'now')",
            [run_id, f"j{run_id}", f"j{run_id}", source, str(run_id)],
        )
        db.execute(
            "INSERT INTO verdicts (run_id, pair_id, winner, cost, created_at) VALUES (?, 1, 'x', 0, 'now')",
            [run_id],
        )
    db.close()

    store = Store.open(path)
    assert store.schema_version() == max(v for v, _, _ in MIGRATIONS)
    assert store.schema_version() >= 3
    costs = store.db.execute("SELECT run_id, cost FROM verdicts ORDER BY run_id").fetchall()
    assert costs == [(1, None), (2, 0.0)]  # an import never had a price; a free run stays free
    assert (
        store.judging.insert_verdicts(
            [{"run_id": 2, "pair_id": 1, "first_system": "", "created_at": "x"}]
        )
        == 0
    )
    store.close()


def _study_with_history(store):
    """A study whose frames have rows to drop: a superseded and a retracted vote, a pair with a
    missing output, an unparsed verdict, and two judge runs."""
    with store.transaction():
        es = store.catalog.ensure_eval_set("e")
        rows = [("a", "What?", "ref"), ("b", "Why?", None), ("c", "How?", None)]
        items = [
            {"item_key": k, "prompt": p, "reference": r, "category": "cat", "metadata": {}}
            for k, p, r in rows
        ]
        ids = store.catalog.insert_items(es["id"], items)
        store.catalog.ensure_systems(["x", "y"])
        outputs = [(ids["a"], "x", "ax"), (ids["a"], "y", "ayy"), (ids["b"], "x", "bx")]
        store.catalog.upsert_outputs([*outputs, (ids["b"], "y", "by"), (ids["c"], "x", "cx")])
        study_id = store.studies.insert_study("s", es["id"], 2)
        store.studies.insert_pairs(
            study_id, [(ids[k], "x", "y") for k in "abc"]
        )  # c has no y output
        pair_a, pair_b = (store.studies.pair_id(study_id, ids[k], "x", "y") for k in "ab")
        r1, r2 = (
            store.people.insert_reviewer("r1", "reviewer", None),
            store.people.insert_reviewer("r2", "reviewer", None),
        )
    base = {"criteria": "{}", "rationale": "why", "flags": "[]", "source": "app"}
    for pair_id, reviewer, winner, supersedes in [
        (pair_a, r1, "x", None),
        (pair_a, r2, "y", None),
        (pair_b, r1, "y", None),
        (pair_a, r1, "tie", 1),  # r1 changes their mind: only this one counts
        (pair_a, r2, None, 2),  # r2 retracts theirs
    ]:
        with store.transaction():
            store.review.insert_votes(
                [
                    base
                    | {"pair_id": pair_id, "reviewer_id": reviewer, "choice": winner or "retracted"}
                    | {"winner": winner, "supersedes": supersedes, "created_at": now_iso()}
                ]
            )
    with store.transaction():
        imported = store.judging.ensure_imported_run(study_id, "j1")
        run = store.judging.insert_judge_run(study_id, "j2", "fake", None, "h", {}, "p")
        verdict = {"created_at": now_iso(), "cost": 0.01, "latency_ms": 5}
        store.judging.insert_verdicts(
            [
                verdict
                | {"run_id": imported, "pair_id": pair_a, "first_system": "x", "winner": "x"},
                verdict
                | {"run_id": imported, "pair_id": pair_a, "first_system": "y", "winner": "tie"},
                verdict | {"run_id": run, "pair_id": pair_b, "first_system": "y", "winner": "y"},
                verdict
                | {"run_id": run, "pair_id": pair_a, "first_system": "x", "parse_error": "no json"},
            ]
        )
    return study_id


@pytest.mark.parametrize(
    "frame, key, rows",
    [
        ("pairs_frame", "pair_id", 2),
        ("votes_frame", "vote_id", 2),
        ("verdicts_frame", "verdict_id", 4),
    ],
)
def test_lean_and_full_frames_select_the_same_rows(store, frame, key, rows):
    study_id = _study_with_history(store)
    full = getattr(store.frames, frame)(study_id)
    lean = getattr(store.frames, frame)(study_id, texts=False)
    assert len(full) == rows
    assert lean[key].tolist() == full[key].tolist()
    assert set(lean.columns) < set(full.columns)
    pd.testing.assert_frame_equal(lean, full[list(lean.columns)])


@pytest.mark.parametrize("batch", [1, 3])
def test_lean_frames_read_in_batches_equal_one_read(store, monkeypatch, batch):
    """The lean frames are read a batch of rows at a time: any batch size gives the same frame,
    each column's type included, and so does a study with no rows at all. The verdicts come
    in stored order although the index hands them over by run and pair (the second run's pair
    a, stored last, comes before its pair b there)."""
    frames = ("pairs_frame", "votes_frame", "verdicts_frame")
    study_id = _study_with_history(store)
    with store.transaction():
        es = store.catalog.ensure_eval_set("empty")
        empty_id = store.studies.insert_study("empty", es["id"], 2)
    whole = {
        (frame, study): getattr(store.frames, frame)(study, texts=False)
        for frame in frames
        for study in (study_id, empty_id)
    }
    assert whole["verdicts_frame", study_id]["verdict_id"].is_monotonic_increasing
    assert all(whole[frame, empty_id].empty for frame in frames)
    monkeypatch.setattr(review_app.store.base, "_FRAME_BATCH", batch)
    for (frame, study), expected in whole.items():
        pd.testing.assert_frame_equal(getattr(store.frames, frame)(study, texts=False), expected)


def test_lean_frames_hold_only_what_the_statistics_read(store):
    study_id = _study_with_history(store)
    assert list(store.frames.pairs_frame(study_id, texts=False).columns) == [
        "pair_id",
        "item_key",
        "category",
        "system_x",
        "system_y",
        "human",
        "len_x",
        "len_y",
    ]
    assert list(store.frames.votes_frame(study_id, texts=False).columns) == [
        "vote_id",
        "pair_id",
        "reviewer",
        "outcome",
        "shown_left",
    ]
    assert list(store.frames.verdicts_frame(study_id, texts=False).columns) == [
        "verdict_id",
        "run_id",
        "pair_id",
        "first",
        "outcome",
        "cost",
        "latency_ms",
    ]


def test_the_lean_verdicts_are_read_from_an_index_not_from_the_judges_answers(store, backend):
    # The judges' answers sit before cost and latency in a verdict's row: reading the table,
    # SQLite would step through every long answer to reach them.
    if backend != "sqlite":
        pytest.skip("the plan is SQLite's; PostgreSQL chooses by its statistics")
    from review_app.store import frames

    sql = f"{frames._select(frames._VERDICT_COLUMNS, False)} {frames._VERDICTS_OF_STUDY}"
    plan = " | ".join(row[3] for row in store.db.execute(f"EXPLAIN QUERY PLAN {sql}", [1]))
    assert "SEARCH v USING COVERING INDEX verdicts_lean" in plan, plan


def test_pointwise_scores_are_read_from_the_index_of_scored_verdicts(store, backend, monkeypatch):
    # Most verdicts hold no scores; read through the table, every view of scores would step
    # through every verdict's long answer to find the few that do.
    if backend != "sqlite":
        pytest.skip("the plan is SQLite's; PostgreSQL chooses by its statistics")
    from review_app.store.base import StoreBase

    read: list[tuple[str, list]] = []
    for name in ("_rows", "_plain_frame"):
        original = getattr(StoreBase, name)

        def recording(self, sql, params=(), *args, _original=original, **kwargs):
            read.append((sql, list(params)))
            return _original(self, sql, params, *args, **kwargs)

        monkeypatch.setattr(StoreBase, name, recording)
    store.frames.scores_frame(1)
    store.calibration.verdict_scores([1, 2])
    assert len(read) == 2
    for sql, params in read:
        plan = " | ".join(row[3] for row in store.db.execute(f"EXPLAIN QUERY PLAN {sql}", params))
        assert "USING INDEX verdicts_scored" in plan, (sql, plan)


def test_frames_orient_votes_and_verdicts_to_the_pair(store):
    study_id = _study_with_history(store)
    votes = store.frames.votes_frame(study_id)
    assert votes[["reviewer", "outcome"]].values.tolist() == [["r1", "y"], ["r1", "tie"]]
    verdicts = store.frames.verdicts_frame(study_id)
    assert verdicts["judge"].tolist() == ["j1", "j1", "j2", "j2"]
    assert verdicts["first"].tolist() == ["x", "y", "y", "x"]
    assert verdicts["outcome"].tolist() == ["x", "tie", "y", None]


def test_assignment_states_drive_open_and_voted_counts(store):
    study_id = _study_with_history(store)
    pair_id = int(store.frames.pairs_frame(study_id)["pair_id"][0])
    reviewer = store.people.insert_reviewer("r3", "reviewer", None)
    with store.transaction():
        handed = store.review.insert_assignment(
            pair_id, reviewer, study_id, ("x", "y"), 0, time.time() + 60
        )
    assert [a["id"] for a in store.review.open_assignments(reviewer, study_id)] == [handed]
    assert (
        store.review.live_reviews([pair_id], time.time())[pair_id]["n"] == 2
    )  # r1's vote and r3's lease
    with store.transaction():
        store.review.set_assignment_state(handed, AssignmentState.VOTED)
    assert store.review.open_assignments(reviewer, study_id) == []
    assert store.review.count_voted(reviewer, study_id) == 1
    with store.transaction():
        store.review.set_assignment_state(handed, AssignmentState.RELEASED)
    assert store.review.count_voted(reviewer, study_id) == 0
    assert store.review.assignment(handed)["done"] == AssignmentState.RELEASED
