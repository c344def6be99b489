"""Benchmark: `review-app grade --study bench --grader FILE` on 50,000 outputs x 3 checks.

A workspace with 25,000 items answered by base and finetuned (the study compares the two, so
50,000 outputs are graded), about a third of the outputs JSON that fits the schema, a third
JSON that does not, a third prose around JSON. The grader has three checks: json_valid,
json_schema and max_chars. Timed: the whole command the first time (loading outputs, running the
checks, storing 150,000 results), the same command again (nothing new to store), and the pass-rate
summary after the lock. Target: a few seconds on a 2-core machine. The last line of output is one
JSON object with the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_study import bench_admin, import_everything, seed_study

from review_app.cli import main
from review_app.services import grading, people, thresholds
from review_app.services.context import open_study
from review_app.settings import Settings
from review_app.store import Store

N_ITEMS = 25_000
SYSTEMS = ("base", "finetuned")
CATEGORIES = ("target", "formatting", "safety")
GRADER = """\
name: bench
checks:
  - name: valid
    type: json_valid
  - name: schema
    type: json_schema
    schema:
      type: object
      required: [name, amount]
      properties:
        name: {type: string}
        amount: {type: number}
  - name: short
    type: max_chars
    n: 120
"""


def _output(rng: np.random.Generator, i: int) -> str:
    kind = int(rng.integers(0, 3))
    if kind == 0:
        return json.dumps({"name": f"customer {i}", "amount": round(float(rng.random()) * 100, 2)})
    if kind == 1:
        return json.dumps({"name": f"customer {i}", "amount": "unknown", "note": "é" * (i % 80)})
    return f'Sure! Here is the JSON:\n```json\n{{"name": "customer {i}"}}\n```'


def seed(path: Path, rng: np.random.Generator) -> str:
    """The benchmark workspace; returns its admin's token."""
    store = Store.open(path)
    seed_study(
        store,
        n_items=N_ITEMS,
        categories=CATEGORIES,
        systems=SYSTEMS,
        comparisons=[("finetuned", "base")],
        output=lambda i, system: _output(rng, i),
        prompt="extract the invoice {i}",
    )
    _, token = bench_admin(store)
    store.close()
    return token


def _grade(db: Path, grader: Path, token: str) -> tuple[float, str]:
    out = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = main(
            [
                "--db",
                str(db),
                "--token",
                token,
                "grade",
                "--study",
                "bench",
                "--grader",
                str(grader),
            ]
        )
    seconds = time.perf_counter() - start
    if code != 0:
        sys.exit(f"review-app grade failed with status {code}")
    return seconds, out.getvalue()


def main_bench() -> None:
    global N_ITEMS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=N_ITEMS, help="items in the eval set")
    # The size is read by the seeding functions through the module constant.
    N_ITEMS = parser.parse_args().items
    import_everything()  # the command's modules, imported before its run is timed
    with tempfile.TemporaryDirectory() as tmp:
        db, grader = Path(tmp) / "bench.db", Path(tmp) / "bench.yaml"
        grader.write_text(GRADER, encoding="utf-8")
        start = time.perf_counter()
        token = seed(db, np.random.default_rng(0))
        seed_seconds = time.perf_counter() - start
        first, text = _grade(db, grader, token)
        print(text.splitlines()[0])
        again, text = _grade(db, grader, token)
        print(text.splitlines()[0])
        store = Store.open(db)
        store.studies.set_candidate(store.studies.require_study("bench")["id"], "finetuned")
        ctx = open_study(store, Settings.from_env(), "bench", people.actor_for(store, token))
        thresholds.add_threshold(ctx, "grader_pass_rate", {"check": "valid"}, ">=", 0.5)
        thresholds.lock_thresholds(ctx, "a small test study")
        start = time.perf_counter()
        summary = grading.grader_summary(open_study(store, Settings.from_env(), "bench", None))
        summary_seconds = time.perf_counter() - start
        store.close()
    overall = {
        (r["check"], r["system"]): round(r["rate"], 3)
        for r in summary["graders"]
        if r["category"] is None
    }
    print(f"pass rates: {overall}")
    n_outputs = N_ITEMS * len(SYSTEMS)
    print(
        json.dumps(
            {
                "outputs": n_outputs,
                "checks": 3,
                "results": sum(r["n"] for r in summary["graders"] if r["category"] is None),
                "seed_seconds": round(seed_seconds, 1),
                "grade_seconds": round(first, 3),
                "regrade_seconds": round(again, 3),
                "summary_seconds": round(summary_seconds, 3),
                "target_seconds": 5,
            }
        )
    )


if __name__ == "__main__":
    main_bench()
