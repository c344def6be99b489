"""Schema versions. Each migration is a function applied once, in order, inside a transaction;
the applied versions are recorded in `_migrations`, so opening a workspace is idempotent."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from review_app.store.connection import Database

Migration = Callable[["Database"], None]

SCHEMA_V1 = """
CREATE TABLE eval_sets (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    content_hash TEXT,
    frozen_at TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    eval_set_id INTEGER NOT NULL REFERENCES eval_sets(id),
    item_key TEXT NOT NULL,
    prompt TEXT NOT NULL,
    reference TEXT,
    category TEXT NOT NULL DEFAULT '',
    metadata TEXT NOT NULL DEFAULT '{}',
    UNIQUE (eval_set_id, item_key)
);
CREATE TABLE systems (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE outputs (
    id INTEGER PRIMARY KEY,
    item_id INTEGER NOT NULL REFERENCES items(id),
    system TEXT NOT NULL REFERENCES systems(name),
    text TEXT NOT NULL,
    UNIQUE (item_id, system)
);
CREATE TABLE studies (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    eval_set_id INTEGER NOT NULL REFERENCES eval_sets(id),
    reviews_per_pair INTEGER NOT NULL DEFAULT 3,
    show_reference INTEGER NOT NULL DEFAULT 0,
    criteria TEXT NOT NULL DEFAULT '[]',
    ask_rationale INTEGER NOT NULL DEFAULT 1,
    status TEXT NOT NULL DEFAULT 'open',
    created_at TEXT NOT NULL
);
CREATE TABLE study_comparisons (
    id INTEGER PRIMARY KEY,
    study_id INTEGER NOT NULL REFERENCES studies(id),
    system_a TEXT NOT NULL,
    system_b TEXT NOT NULL,
    UNIQUE (study_id, system_a, system_b)
);
CREATE TABLE pairs (
    id INTEGER PRIMARY KEY,
    study_id INTEGER NOT NULL REFERENCES studies(id),
    item_id INTEGER NOT NULL REFERENCES items(id),
    system_x TEXT NOT NULL,
    system_y TEXT NOT NULL,
    CHECK (system_x < system_y),
    UNIQUE (study_id, item_id, system_x, system_y)
);
CREATE TABLE reviewers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('reviewer', 'admin', 'signer')),
    token_hash TEXT UNIQUE,
    study_id INTEGER REFERENCES studies(id),
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE TABLE assignments (
    id INTEGER PRIMARY KEY,
    pair_id INTEGER NOT NULL REFERENCES pairs(id),
    reviewer_id INTEGER NOT NULL REFERENCES reviewers(id),
    shown_left TEXT NOT NULL,
    position INTEGER NOT NULL DEFAULT 0,
    leased_until REAL,
    done INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    UNIQUE (pair_id, reviewer_id)
);
CREATE INDEX assignments_reviewer ON assignments(reviewer_id, done);
CREATE TABLE votes (
    id INTEGER PRIMARY KEY,
    pair_id INTEGER NOT NULL REFERENCES pairs(id),
    reviewer_id INTEGER NOT NULL REFERENCES reviewers(id),
    shown_left TEXT,
    shown_right TEXT,
    choice TEXT NOT NULL,
    winner TEXT,
    criteria TEXT NOT NULL DEFAULT '{}',
    rationale TEXT NOT NULL DEFAULT '',
    flags TEXT NOT NULL DEFAULT '[]',
    ms_spent INTEGER,
    source TEXT NOT NULL DEFAULT 'app',
    created_at TEXT NOT NULL,
    supersedes INTEGER REFERENCES votes(id)
);
CREATE INDEX votes_pair ON votes(pair_id, reviewer_id);
CREATE INDEX votes_reviewer ON votes(reviewer_id);
CREATE TRIGGER votes_append_only_update BEFORE UPDATE ON votes
BEGIN SELECT RAISE(ABORT, 'votes are append-only: record a new vote that supersedes it'); END;
CREATE TRIGGER votes_append_only_delete BEFORE DELETE ON votes
BEGIN SELECT RAISE(ABORT, 'votes are append-only: record a new vote that supersedes it'); END;
CREATE TABLE rubrics (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    content_hash TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE judge_runs (
    id INTEGER PRIMARY KEY,
    study_id INTEGER NOT NULL REFERENCES studies(id),
    label TEXT NOT NULL,
    judge TEXT NOT NULL,
    rubric_id INTEGER REFERENCES rubrics(id),
    rubric_hash TEXT NOT NULL DEFAULT '',
    params TEXT NOT NULL DEFAULT '{}',
    params_hash TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT 'run',
    status TEXT NOT NULL DEFAULT 'pending',
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    UNIQUE (study_id, judge, rubric_hash, params_hash)
);
CREATE TABLE verdicts (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES judge_runs(id),
    pair_id INTEGER NOT NULL REFERENCES pairs(id),
    first_system TEXT NOT NULL DEFAULT '',
    winner TEXT,
    scores TEXT NOT NULL DEFAULT '{}',
    explanation TEXT NOT NULL DEFAULT '',
    raw_text TEXT NOT NULL DEFAULT '',
    parse_error TEXT,
    finish_reason TEXT,
    tokens_in INTEGER NOT NULL DEFAULT 0,
    tokens_out INTEGER NOT NULL DEFAULT 0,
    cost REAL NOT NULL DEFAULT 0,
    latency_ms REAL,
    attempts INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    UNIQUE (run_id, pair_id, first_system)
);
CREATE TABLE thresholds (
    id INTEGER PRIMARY KEY,
    study_id INTEGER NOT NULL REFERENCES studies(id),
    metric TEXT NOT NULL,
    params TEXT NOT NULL DEFAULT '{}',
    comparator TEXT NOT NULL CHECK (comparator IN ('>=', '<=', '>', '<')),
    value REAL NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL DEFAULT ''
);
CREATE TABLE threshold_locks (
    id INTEGER PRIMARY KEY,
    study_id INTEGER NOT NULL UNIQUE REFERENCES studies(id),
    locked_at TEXT NOT NULL,
    locked_by TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    thresholds TEXT NOT NULL
);
CREATE TABLE threshold_deviations (
    id INTEGER PRIMARY KEY,
    study_id INTEGER NOT NULL REFERENCES studies(id),
    changed_at TEXT NOT NULL,
    changed_by TEXT NOT NULL,
    before TEXT NOT NULL,
    after TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT ''
);
CREATE TABLE final_reviews (
    id INTEGER PRIMARY KEY,
    study_id INTEGER NOT NULL REFERENCES studies(id),
    output_id INTEGER NOT NULL REFERENCES outputs(id),
    reviewer_id INTEGER NOT NULL REFERENCES reviewers(id),
    acceptable INTEGER NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
CREATE TABLE signoffs (
    id INTEGER PRIMARY KEY,
    study_id INTEGER NOT NULL REFERENCES studies(id),
    signer_id INTEGER NOT NULL REFERENCES reviewers(id),
    decision TEXT NOT NULL CHECK (decision IN ('approve', 'reject')),
    comment TEXT NOT NULL DEFAULT '',
    report_hash TEXT NOT NULL,
    report TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TRIGGER signoffs_append_only_update BEFORE UPDATE ON signoffs
BEGIN SELECT RAISE(ABORT, 'sign-offs are append-only'); END;
CREATE TRIGGER signoffs_append_only_delete BEFORE DELETE ON signoffs
BEGIN SELECT RAISE(ABORT, 'sign-offs are append-only'); END;
"""


def _run(db: Database, sql: str, params: list | tuple = ()):
    """Run one migration statement, a schema statement written for SQLite translated to the
    workspace's backend."""
    return db.execute(db.ddl(sql), params)


def _v1_initial_schema(db: Database) -> None:
    for statement in _split_statements(SCHEMA_V1):
        _run(db, statement)


def _split_statements(script: str) -> list[str]:
    # Triggers contain ';' inside BEGIN...END, so split on the statement boundary sqlite reports.
    import sqlite3

    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return [s for s in statements if s]


def _v2_assignment_study(db: Database) -> None:
    # The review screen asks "this reviewer, this study" on every vote; with the study and both
    # shown systems on the assignment, one covering index answers without touching pairs.
    _run(db, "ALTER TABLE assignments ADD COLUMN study_id INTEGER REFERENCES studies(id)")
    _run(db, "ALTER TABLE assignments ADD COLUMN shown_right TEXT")
    _run(
        db,
        "UPDATE assignments SET study_id = (SELECT p.study_id FROM pairs p WHERE p.id = pair_id), "
        "shown_right = (SELECT CASE WHEN p.system_x = shown_left THEN p.system_y ELSE p.system_x "
        "END FROM pairs p WHERE p.id = pair_id)",
    )
    _run(
        db,
        "CREATE INDEX assignments_reviewer_study ON assignments "
        "(reviewer_id, study_id, done, leased_until, shown_left, shown_right, position)",
    )


def _v3_verdict_cost_may_be_unknown(db: Database) -> None:
    # A judge whose price is not in the table has an unknown cost, which must not read as $0 in
    # a signed report. SQLite cannot drop NOT NULL in place, so the table is rebuilt.
    _run(
        db,
        """CREATE TABLE verdicts_v3 (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES judge_runs(id),
    pair_id INTEGER NOT NULL REFERENCES pairs(id),
    first_system TEXT NOT NULL DEFAULT '',
    winner TEXT,
    scores TEXT NOT NULL DEFAULT '{}',
    explanation TEXT NOT NULL DEFAULT '',
    raw_text TEXT NOT NULL DEFAULT '',
    parse_error TEXT,
    finish_reason TEXT,
    tokens_in INTEGER NOT NULL DEFAULT 0,
    tokens_out INTEGER NOT NULL DEFAULT 0,
    cost REAL,
    latency_ms REAL,
    attempts INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    UNIQUE (run_id, pair_id, first_system)
)""",
    )
    _run(db, "INSERT INTO verdicts_v3 SELECT * FROM verdicts")
    # Imported verdicts never had a price: their stored 0 meant "unknown".
    _run(
        db,
        "UPDATE verdicts_v3 SET cost = NULL WHERE run_id IN "
        "(SELECT id FROM judge_runs WHERE source = 'import')",
    )
    _run(db, "DROP TABLE verdicts")
    _run(db, "ALTER TABLE verdicts_v3 RENAME TO verdicts")


def _v4_candidate_plan_override(db: Database) -> None:
    # The candidate is named, not inferred from name order; the lock pins it with the planned
    # sample and the minimum comparisons; a sign-off that approves a gate that did not pass
    # carries its override reason. Studies made before keep the old rule's candidate.
    _run(db, "ALTER TABLE studies ADD COLUMN candidate TEXT")
    _run(
        db,
        "UPDATE studies SET candidate = (SELECT c.system_a FROM study_comparisons c "
        "WHERE c.study_id = studies.id ORDER BY c.id LIMIT 1)",
    )
    _run(db, "ALTER TABLE threshold_locks ADD COLUMN candidate TEXT")
    _run(db, "ALTER TABLE threshold_locks ADD COLUMN plan TEXT")
    _run(db, "ALTER TABLE threshold_locks ADD COLUMN min_comparisons INTEGER")
    _run(db, "ALTER TABLE signoffs ADD COLUMN gate_result TEXT")
    _run(db, "ALTER TABLE signoffs ADD COLUMN override TEXT")


# Governance tables whose rows are never changed or removed once written; `audit verify` checks
# that these triggers are all still in place. Version 8 protected the first six, version 9 the
# graders (re-grading with the same grader adds nothing; a changed grader is a new definition
# with its own results), version 10 the dev/test
# split, looks at test and juries, version 11 guidelines and exclusions, version 14 verdicts and
# the seals of votes and verdicts.
_V8_APPEND_ONLY = (
    "votes",
    "signoffs",
    "threshold_locks",
    "threshold_deviations",
    "final_reviews",
    "audit_log",
)
# A verdict that holds pointwise scores (most hold none: '{}'). The readers of scores and the
# index of scored verdicts (migration 21) use this condition as it is written here: a query
# whose condition differs by a word does not use the partial index.
SCORED = "scores NOT IN ('', '{}')"

GRADER_TABLES = ("graders", "grader_results")
_V10_APPEND_ONLY_TABLES = ("comparison_splits", "test_looks", "juries")
APPEND_ONLY_TABLES = (
    *_V8_APPEND_ONLY,
    *GRADER_TABLES,
    *_V10_APPEND_ONLY_TABLES,
    "reviewer_exclusions",
    "study_guidelines",
    "verdicts",
    "row_seals",
)


def _append_only(db: Database, tables: tuple[str, ...]) -> None:
    for table in tables:
        for event in ("UPDATE", "DELETE"):
            for statement in db.append_only_trigger(table, event, f"{table} are append-only"):
                db.execute(statement)


def _v8_audit_log(db: Database) -> None:
    # One hash-chained, append-only log of every governance action, and the time each vote
    # entered the workspace (a file's own created_at can say anything).
    _run(
        db,
        """CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    study_id INTEGER,
    detail TEXT NOT NULL DEFAULT '{}',
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE
)""",
    )
    _run(db, "CREATE INDEX audit_log_study ON audit_log (study_id)")
    _run(db, "ALTER TABLE votes ADD COLUMN entered_at TEXT")
    _append_only(db, _V8_APPEND_ONLY)


def _v11_guidelines_and_exclusions_append_only(db: Database) -> None:
    # Guidelines and exclusions are decisions that change what the gate counts: like locks, they
    # are appended, never edited, and `audit verify` checks their triggers too.
    _append_only(db, ("reviewer_exclusions", "study_guidelines"))


def _v12_blinding_key(db: Database) -> None:
    # Before the lock, screens and commands write a comparison's systems as A and B in a random
    # orientation per comparison. The orientation comes from this random key, which no command
    # shows: derived from the seed (a setting anyone can read), it could be recomputed.
    _run(db, "CREATE TABLE workspace_secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
    _run(
        db,
        "INSERT INTO workspace_secrets (name, value) VALUES ('blinding', ?)",
        [secrets.token_hex(32)],
    )


def _v5_judge_batches_and_cached_tokens(db: Database) -> None:
    # A batch is recorded with its requests before it is sent, so a crash never leaves a paid
    # batch unknown and a request in a batch not yet collected is never sent again.
    _run(
        db,
        """CREATE TABLE judge_batches (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES judge_runs(id),
    key TEXT NOT NULL UNIQUE,
    batch_id TEXT UNIQUE,
    state TEXT NOT NULL DEFAULT 'sending',
    provider_status TEXT,
    n_requests INTEGER NOT NULL,
    n_succeeded INTEGER NOT NULL DEFAULT 0,
    n_errored INTEGER NOT NULL DEFAULT 0,
    n_answered INTEGER,
    n_failed INTEGER,
    error TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT,
    updated_at TEXT,
    collected_at TEXT
)""",
    )
    _run(db, "CREATE INDEX judge_batches_run ON judge_batches(run_id, collected_at)")
    _run(
        db,
        """CREATE TABLE judge_batch_requests (
    batch_id INTEGER NOT NULL REFERENCES judge_batches(id),
    custom_id TEXT NOT NULL,
    pair_id INTEGER NOT NULL REFERENCES pairs(id),
    first_system TEXT NOT NULL,
    PRIMARY KEY (batch_id, custom_id)
) WITHOUT ROWID""",
    )
    # Input tokens read from the provider's prompt cache (part of tokens_in, priced lower).
    _run(db, "ALTER TABLE verdicts ADD COLUMN tokens_cached INTEGER NOT NULL DEFAULT 0")


def _v7_imports_in_flight(db: Database) -> None:
    # A large import is checked and staged in short transactions, then published batch by batch,
    # so reviewers never wait behind it. These tables hold an import while it is in flight (and
    # let the next process finish or discard one whose process died); they are empty otherwise.
    _run(
        db,
        """CREATE TABLE import_jobs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('outputs', 'votes', 'verdicts')),
    file TEXT NOT NULL,
    target TEXT NOT NULL,
    options TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL CHECK (state IN ('staging', 'publishing')),
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    started_at TEXT NOT NULL,
    heartbeat_at REAL NOT NULL
)""",
    )
    _run(
        db,
        "CREATE TABLE import_locks (name TEXT PRIMARY KEY, "
        "job_id INTEGER NOT NULL REFERENCES import_jobs(id))",
    )
    _run(
        db,
        "CREATE TABLE import_batches (job_id INTEGER NOT NULL REFERENCES import_jobs(id), "
        "seq INTEGER NOT NULL, payload BLOB NOT NULL, PRIMARY KEY (job_id, seq))",
    )


def _v6_guidelines_and_reviewer_quality(db: Database) -> None:
    # Guidelines are versioned by content hash: setting new ones appends a row (the latest is in
    # force) and every vote records the hash it was cast under, so a changed rule never silently
    # re-labels earlier votes.
    _run(
        db,
        """CREATE TABLE study_guidelines (
    id INTEGER PRIMARY KEY,
    study_id INTEGER NOT NULL REFERENCES studies(id),
    content_hash TEXT NOT NULL,
    body TEXT NOT NULL,
    set_by TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
)""",
    )
    _run(db, "CREATE INDEX study_guidelines_study ON study_guidelines(study_id, id)")
    _run(db, "ALTER TABLE votes ADD COLUMN guidelines_hash TEXT")
    # Excluding a reviewer is a recorded decision, never a deletion: each exclusion or
    # re-inclusion appends a row (who, when, why) and the latest row per reviewer is in force.
    _run(
        db,
        """CREATE TABLE reviewer_exclusions (
    id INTEGER PRIMARY KEY,
    study_id INTEGER NOT NULL REFERENCES studies(id),
    reviewer_id INTEGER NOT NULL REFERENCES reviewers(id),
    excluded INTEGER NOT NULL CHECK (excluded IN (0, 1)),
    reason TEXT NOT NULL,
    decided_by TEXT NOT NULL,
    created_at TEXT NOT NULL
)""",
    )
    _run(db, "CREATE INDEX reviewer_exclusions_study ON reviewer_exclusions(study_id, reviewer_id)")
    for event in ("UPDATE", "DELETE"):
        _run(
            db,
            f"CREATE TRIGGER reviewer_exclusions_append_only_{event.lower()} BEFORE {event} ON "
            "reviewer_exclusions BEGIN SELECT RAISE(ABORT, 'exclusions are append-only: record "
            "a new decision'); END",
        )
    # A comparison an admin knows the right answer to; reviewers meet it blind in their queue.
    _run(
        db,
        """CREATE TABLE known_answers (
    pair_id INTEGER PRIMARY KEY REFERENCES pairs(id),
    study_id INTEGER NOT NULL REFERENCES studies(id),
    answer TEXT NOT NULL,
    set_by TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
)""",
    )


def _v9_graders(db: Database) -> None:
    _run(
        db,
        """CREATE TABLE graders (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    content_hash TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL
)""",
    )
    # One result per (grader version, study, output, check); `label` is the answer a `choice`
    # check read from the output.
    _run(
        db,
        """CREATE TABLE grader_results (
    grader_id INTEGER NOT NULL REFERENCES graders(id),
    study_id INTEGER NOT NULL REFERENCES studies(id),
    output_id INTEGER NOT NULL REFERENCES outputs(id),
    check_name TEXT NOT NULL,
    passed INTEGER NOT NULL CHECK (passed IN (0, 1)),
    label TEXT,
    PRIMARY KEY (study_id, grader_id, output_id, check_name)
) WITHOUT ROWID""",
    )
    # Which grader versions a lock pinned: [{name, content_hash}].
    _run(db, "ALTER TABLE threshold_locks ADD COLUMN graders TEXT")
    _append_only(db, GRADER_TABLES)


def _v10_splits_test_looks_juries(db: Database) -> None:
    # The dev/test split of a study's human-labelled comparisons is recorded once: one row per
    # comparison. Every look at test agreement is a row too, so a screen can say how often test
    # was looked at. A jury (a virtual judge over other judges) is stored so thresholds can name
    # it before the lock. All three are append-only.
    _run(
        db,
        """CREATE TABLE comparison_splits (
    study_id INTEGER NOT NULL REFERENCES studies(id),
    pair_id INTEGER NOT NULL REFERENCES pairs(id),
    part TEXT NOT NULL CHECK (part IN ('dev', 'test')),
    test_share REAL NOT NULL,
    seed INTEGER NOT NULL,
    created_by TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    PRIMARY KEY (study_id, pair_id)
) WITHOUT ROWID""",
    )
    _run(
        db,
        """CREATE TABLE test_looks (
    id INTEGER PRIMARY KEY,
    study_id INTEGER NOT NULL REFERENCES studies(id),
    judges TEXT NOT NULL DEFAULT '[]',
    looked_by TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
)""",
    )
    _run(db, "CREATE INDEX test_looks_study ON test_looks(study_id)")
    _run(
        db,
        """CREATE TABLE juries (
    id INTEGER PRIMARY KEY,
    study_id INTEGER NOT NULL REFERENCES studies(id),
    name TEXT NOT NULL,
    members TEXT NOT NULL,
    created_by TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    UNIQUE (study_id, name)
)""",
    )
    _append_only(db, _V10_APPEND_ONLY_TABLES)


def _v13_final_review_size(db: Database) -> None:
    # A study's plan names its final-review sample; NULL keeps the default size.
    _run(db, "ALTER TABLE studies ADD COLUMN final_review_size INTEGER")


def _v15_human_share(db: Database) -> None:
    # A study may send only a seeded random share of each comparison's items to reviewers (the
    # rest are judged only): the share and its seed on the study, the subset on the pairs.
    _run(db, "ALTER TABLE studies ADD COLUMN human_share REAL NOT NULL DEFAULT 1.0")
    _run(db, "ALTER TABLE studies ADD COLUMN human_seed TEXT")
    _run(db, "ALTER TABLE pairs ADD COLUMN human INTEGER NOT NULL DEFAULT 1")


# The rows a study's outcomes are computed from, sealed as they are written: each row's seal is
# the hash of its content chained to the previous seal of the same table and study, so a row
# written into the file (not by the app), edited or removed shows in `audit verify`. Per table:
# the query that reads the sealed content (the study first, then the row id), and its id column.
SEALED: dict[str, tuple[str, str]] = {
    "votes": (
        "SELECT p.study_id, v.id, v.pair_id, v.reviewer_id, v.shown_left, v.shown_right, "
        "v.choice, v.winner, v.criteria, v.rationale, v.flags, v.ms_spent, v.source, "
        "v.created_at, v.entered_at, v.supersedes, v.guidelines_hash "
        "FROM votes v JOIN pairs p ON p.id = v.pair_id",
        "v.id",
    ),
    "verdicts": (
        "SELECT j.study_id, v.id, v.run_id, v.pair_id, v.first_system, v.winner, v.scores, "
        "v.explanation, v.raw_text, v.parse_error, v.finish_reason, v.tokens_in, v.tokens_out, "
        "v.tokens_cached, v.cost, v.latency_ms, v.attempts, v.created_at "
        "FROM verdicts v JOIN judge_runs j ON j.id = v.run_id",
        "v.id",
    ),
}


def seal_hash(prev_hash: str, table: str, row: tuple) -> str:
    """The seal of one row (its sealed content, study first) after the seal `prev_hash`."""
    payload = json.dumps([prev_hash, table, list(row)], default=str, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


def seal_rows(db: Database, table: str, after_id: int) -> int:
    """Seal the rows of `table` with an id above `after_id` (the ones just written, inside the
    writer's transaction); returns how many."""
    select, id_column = SEALED[table]
    rows = _run(db, f"{select} WHERE {id_column} > ? ORDER BY {id_column}", [after_id]).fetchall()
    heads: dict[int, str] = {}
    for row in rows:
        study_id = row[0]
        if study_id not in heads:
            last = _run(
                db,
                "SELECT hash FROM row_seals WHERE tbl = ? AND study_id = ? "
                "ORDER BY row_id DESC LIMIT 1",
                [table, study_id],
            ).fetchone()
            heads[study_id] = last[0] if last else "0" * 64
        seal = seal_hash(heads[study_id], table, row)
        _run(
            db,
            "INSERT INTO row_seals (tbl, row_id, study_id, prev_hash, hash) VALUES (?, ?, ?, ?, ?)",
            [table, row[1], study_id, heads[study_id], seal],
        )
        heads[study_id] = seal
    return len(rows)


def _v14_sealed_votes_and_verdicts(db: Database) -> None:
    # Verdicts are append-only like votes (a paid call is never repeated, so none is ever
    # rewritten), and every vote and verdict is sealed: the ones already here now, later ones
    # as they are written.
    _run(
        db,
        """CREATE TABLE row_seals (
    tbl TEXT NOT NULL,
    row_id INTEGER NOT NULL,
    study_id INTEGER NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (tbl, row_id)
) WITHOUT ROWID""",
    )
    _run(db, "CREATE INDEX row_seals_study ON row_seals (tbl, study_id, row_id)")
    for table in SEALED:
        seal_rows(db, table, 0)
    _append_only(db, ("verdicts", "row_seals"))


# The audit actions that hand someone a personal link: each records the link's fingerprint and
# version, so a sign-off can name the link it was made with and who issued it.
LINK_ISSUED = ("reviewer added", "link issued", "link reissued", "first admin added")


def _v16_keyed_chain_and_link_versions(db: Database) -> None:
    # Each audit entry may carry a keyed signature of its hash (REVIEW_APP_SIGNING_KEY), so a
    # consistent rewrite of the chain without the key shows. A reviewer's link has a version
    # (how many times one was issued to them), and a sign-off records the version and the
    # fingerprint of the link it was made with.
    _run(db, "ALTER TABLE audit_log ADD COLUMN mac TEXT")
    _run(db, "ALTER TABLE reviewers ADD COLUMN token_version INTEGER NOT NULL DEFAULT 0")
    _run(db, "ALTER TABLE signoffs ADD COLUMN token_version INTEGER")
    _run(db, "ALTER TABLE signoffs ADD COLUMN link TEXT")
    issued: dict[str, int] = {}
    marks = ", ".join("?" for _ in LINK_ISSUED)
    for (detail,) in _run(
        db, f"SELECT detail FROM audit_log WHERE action IN ({marks})", LINK_ISSUED
    ).fetchall():
        name = json.loads(detail).get("reviewer")
        issued[name] = issued.get(name, 0) + 1
    for reviewer_id, name in _run(
        db, "SELECT id, name FROM reviewers WHERE token_hash IS NOT NULL"
    ).fetchall():
        _run(
            db,
            "UPDATE reviewers SET token_version = ? WHERE id = ?",
            [max(1, issued.get(name, 0)), reviewer_id],
        )


def _v17_sealed_label_key(db: Database) -> None:
    # Rows sealed before the lock name their comparison by a label keyed with this, kept apart
    # from the A/B orientation key: a label must match nothing an export shows, yet stay the
    # same comparison's whichever orientation it is shown in.
    _run(db, "CREATE TABLE sealed_label_key (value TEXT NOT NULL)")
    _run(db, "INSERT INTO sealed_label_key (value) VALUES (?)", [secrets.token_hex(32)])


def _v18_staged_outputs(db: Database) -> None:
    # An outputs import stages its checked rows as rows, not as packed batches, so publishing a
    # batch is a few INSERT ... SELECT statements and the texts are never decoded again. Rows
    # are found, published and deleted by (job, batch). A replaced item's id is known when it is
    # checked: publishing updates it by its primary key.
    _run(
        db,
        """CREATE TABLE import_staged_items (
    id INTEGER PRIMARY KEY,
    job_id INTEGER NOT NULL REFERENCES import_jobs(id),
    seq INTEGER NOT NULL,
    change TEXT NOT NULL CHECK (change IN ('add', 'replace')),
    item_id INTEGER,
    item_key TEXT NOT NULL,
    prompt TEXT NOT NULL,
    reference TEXT,
    category TEXT NOT NULL,
    metadata TEXT NOT NULL
)""",
    )
    _run(db, "CREATE INDEX import_staged_items_batch ON import_staged_items (job_id, seq)")
    _run(
        db,
        """CREATE TABLE import_staged_outputs (
    id INTEGER PRIMARY KEY,
    job_id INTEGER NOT NULL REFERENCES import_jobs(id),
    seq INTEGER NOT NULL,
    item_key TEXT NOT NULL,
    system TEXT NOT NULL,
    text TEXT NOT NULL
)""",
    )
    _run(db, "CREATE INDEX import_staged_outputs_batch ON import_staged_outputs (job_id, seq)")


def _v19_reviewer_queue_and_balance(db: Database) -> None:
    # Each next pair starts from the queue position of the reviewer's last assignment: this
    # index finds it in one step instead of reading every assignment of the reviewer.
    _run(db, "CREATE INDEX assignments_reviewer_latest ON assignments (reviewer_id, study_id, id)")
    # The reviewer's left/right balance counts their live assignments by shown order: in this
    # index's order the count streams, without sorting every assignment of the reviewer.
    _run(
        db,
        "CREATE INDEX assignments_reviewer_shown ON assignments "
        "(reviewer_id, study_id, shown_left, shown_right, done, leased_until)",
    )


def _v20_lean_verdicts(db: Database) -> None:
    # The statistics read every verdict's run, pair, first system, winner, cost and latency.
    # In the table those last two come after the judge's answer, whose long texts SQLite must
    # step through page by page to reach them: read from this index instead, the verdicts of a
    # study of 200,000 with 1.5-3 KB answers load in half the time, whatever their length.
    _run(
        db,
        "CREATE INDEX verdicts_lean ON verdicts "
        "(run_id, pair_id, first_system, winner, cost, latency_ms)",
    )


def _v21_scored_verdicts(db: Database) -> None:
    # Pointwise scores are read on every calibration and stats view, yet most verdicts have
    # none: without this index each view read every verdict row, the judge's long answer
    # included (0.25 s for 200,000 verdicts with 1.5-3 KB answers), to find the few that do.
    # The readers' condition is the index's, word for word, so both backends use it.
    _run(db, f"CREATE INDEX verdicts_scored ON verdicts (run_id, id) WHERE {SCORED}")


MIGRATIONS: list[tuple[int, str, Migration]] = [
    (1, "initial schema", _v1_initial_schema),
    (2, "assignments know their study and shown order", _v2_assignment_study),
    (3, "a verdict's cost may be unknown", _v3_verdict_cost_may_be_unknown),
    (4, "named candidate, planned sample and sign-off overrides", _v4_candidate_plan_override),
    (5, "provider batches of judge runs; cached input tokens", _v5_judge_batches_and_cached_tokens),
    (
        6,
        "study guidelines, reviewer exclusions, known answers",
        _v6_guidelines_and_reviewer_quality,
    ),
    (7, "imports in flight", _v7_imports_in_flight),
    (8, "hash-chained audit log; every governance table append-only", _v8_audit_log),
    (9, "graders and their results; graders pinned by the lock", _v9_graders),
    (
        10,
        "dev/test split of labelled comparisons, looks at test, juries",
        _v10_splits_test_looks_juries,
    ),
    (
        11,
        "reviewer guidelines and exclusions append-only",
        _v11_guidelines_and_exclusions_append_only,
    ),
    (12, "a random key for writing systems as A and B before the lock", _v12_blinding_key),
    (13, "a study's planned final-review sample", _v13_final_review_size),
    (14, "verdicts append-only; votes and verdicts sealed", _v14_sealed_votes_and_verdicts),
    (15, "a study's human share: the items reviewers see", _v15_human_share),
    (
        16,
        "keyed audit entries; link versions, recorded with each sign-off",
        _v16_keyed_chain_and_link_versions,
    ),
    (
        17,
        "a random key for naming comparisons in rows sealed before the lock",
        _v17_sealed_label_key,
    ),
    (18, "outputs imports staged as rows", _v18_staged_outputs),
    (
        19,
        "indexes on each reviewer's latest assignment and shown orders",
        _v19_reviewer_queue_and_balance,
    ),
    (20, "an index holding what the statistics read of each verdict", _v20_lean_verdicts),
    (21, "an index of the verdicts that hold pointwise scores", _v21_scored_verdicts),
]
