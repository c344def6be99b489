"""Benchmark: `review-app copy` of a large workspace, SQLite to PostgreSQL and back.

The statistics benchmark's workspace (25,000 items, 50,000 comparisons, 100,000 votes, 200,000
verdicts and their seals) is copied from a SQLite file into an empty PostgreSQL database, then
from there into a new SQLite file. Each copy proves itself before it commits (equal digests of
votes, verdicts, seals and the audit chain; `audit verify` on the study); the benchmark also
compares the three workspaces' digests itself. The PostgreSQL server is `--postgres URL` (a
server where the user may create databases), else a throwaway cluster started here from Debian's
PostgreSQL binaries. The last line of output is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import stats_bench

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from review_app.services import workspace_copy  # noqa: E402
from review_app.settings import Settings  # noqa: E402
from review_app.store import Store  # noqa: E402
from tests.postgres import Cluster  # noqa: E402


def digests(location: str) -> dict[str, str]:
    store = Store.open(location)
    try:
        return workspace_copy.digests(store)
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=stats_bench.N_ITEMS)
    parser.add_argument("--postgres", default="", help="server URL without a database name")
    args = parser.parse_args()
    cluster = Cluster()
    if args.postgres:
        cluster.url = args.postgres.rstrip("/")
    else:
        cluster.start()
        if cluster.url is None:
            sys.exit(f"no PostgreSQL server: {cluster.reason}")
    database = cluster.database()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            source, back = str(Path(tmp) / "source.db"), str(Path(tmp) / "back.db")
            counts = stats_bench.seed(Path(source), np.random.default_rng(0), n_items=args.items)
            settings = replace(Settings.from_env(), db=source)
            start = time.perf_counter()
            there = workspace_copy.copy_workspace(source, database, settings)
            to_postgres = time.perf_counter() - start
            start = time.perf_counter()
            workspace_copy.copy_workspace(database, back, replace(settings, db=database))
            to_sqlite = time.perf_counter() - start
            equal = digests(source) == digests(database) == digests(back)
    finally:
        cluster.drop(database)
        if not args.postgres:
            cluster.stop()
    print(
        json.dumps(
            {
                "votes": counts["votes"],
                "verdicts": counts["verdicts"],
                "rows": sum(there.rows.values()),
                "sqlite_to_postgresql_s": round(to_postgres, 1),
                "postgresql_to_sqlite_s": round(to_sqlite, 1),
                "digests_equal": equal,
                "verify_holds": there.holds,
                "target": "digests equal both ways, audit verify holds",
            }
        )
    )
    if not equal:
        sys.exit("the copies' digests differ")


if __name__ == "__main__":
    main()
