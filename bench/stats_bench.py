"""Benchmark: `review-app stats --study bench --json` on a large workspace.

A SQLite workspace with 25,000 items answered by three systems, a study comparing finetuned with
base and with frontier (50,000 comparisons), 100,000 votes by 40 reviewers and 200,000 verdicts
from two judges in both orders. The timed part is the whole command: loading the frames from the
store, computing the four baseline judges, every statistic overall and per category with 1,000
bootstrap resamples, and printing the JSON. Target (issue 24): <= 2 s on a 2-core machine. The
last line of output is one JSON object with the figures and the target.

Usage: python bench/stats_bench.py [--items N]   (N items, default 25,000; the suite runs a few
hundred so the benchmark cannot break unseen)
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
from bench_study import import_everything, seed_study

from review_app.cli import main
from review_app.store import Store, now_iso

N_ITEMS = 25_000
SYSTEMS = ("base", "finetuned", "frontier")
COMPARISONS = (("finetuned", "base"), ("finetuned", "frontier"))
CATEGORIES = ("target", "reasoning", "instructions", "formatting", "safety")
VOTES_PER_PAIR = 2
REVIEWERS = 40
JUDGES = ("gpt-judge/v1", "claude-judge/v1")
FILLER = "the hub light app reset router firmware plan refund scene bulb dimmer " * 25


def seed(path: Path, rng: np.random.Generator, n_items: int = N_ITEMS) -> dict[str, int]:
    """Write the benchmark workspace through the store, as the importers would; returns the
    study's counts."""
    store = Store.open(path)
    study_id = seed_study(
        store,
        n_items=n_items,
        categories=CATEGORIES,
        systems=SYSTEMS,
        comparisons=COMPARISONS,
        output=lambda i, system: FILLER[: int(rng.integers(0, len(FILLER)))],
        reviews_per_pair=VOTES_PER_PAIR,
    )
    pairs = store.frames.pairs_frame(study_id)
    pair_ids = pairs["pair_id"].to_numpy()
    systems = pairs[["system_x", "system_y"]].to_numpy()
    n_pairs = len(pair_ids)
    truth = rng.choice(3, size=n_pairs, p=[0.45, 0.45, 0.10])  # 0 = x, 1 = y, 2 = tie

    def winner(code: int, i: int) -> str:
        return "tie" if code == 2 else systems[i][code]

    with store.transaction():
        reviewer_ids = store.people.ensure_reviewers(
            [f"reviewer-{r:02d}" for r in range(REVIEWERS)]
        )
        reviewers = list(reviewer_ids.values())
        votes = []
        for i in range(n_pairs):
            first = int(rng.integers(0, REVIEWERS))
            second = (first + 1 + int(rng.integers(0, REVIEWERS - 1))) % REVIEWERS
            for reviewer in (first, second):
                noisy = rng.random() < 0.2
                said = int(rng.integers(0, 4)) if noisy else int(truth[i])
                left = systems[i][int(rng.integers(0, 2))]
                votes.append(
                    {
                        "pair_id": int(pair_ids[i]),
                        "reviewer_id": reviewers[reviewer],
                        "shown_left": left,
                        "choice": "A",
                        "winner": "both_bad" if said == 3 else winner(said, i),
                        "criteria": "{}",
                        "rationale": "",
                        "flags": "[]",
                        "source": "bench",
                        "created_at": now_iso(),
                    }
                )
        store.review.insert_votes(votes)
        for judge in JUDGES:
            run_id = store.judging.ensure_imported_run(study_id, judge)
            verdicts = []
            for order in (0, 1):
                flips = rng.random(n_pairs) < 0.15
                unparsed = rng.random(n_pairs) < 0.01
                for i in range(n_pairs):
                    code = int(rng.integers(0, 3)) if flips[i] else int(truth[i])
                    verdicts.append(
                        {
                            "run_id": run_id,
                            "pair_id": int(pair_ids[i]),
                            "first_system": systems[i][order],
                            "winner": None if unparsed[i] else winner(code, i),
                            "explanation": "",
                            "cost": 0.0004,
                            "latency_ms": 900.0,
                            "created_at": now_iso(),
                        }
                    )
            store.judging.insert_verdicts(verdicts)
    counts = store.studies.study_counts(study_id)
    store.close()
    return counts


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=N_ITEMS, help="items (default 25,000)")
    args = parser.parse_args()
    import_everything()  # the command's modules, imported before its run is timed
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        start = time.perf_counter()
        counts = seed(path, np.random.default_rng(0), args.items)
        seed_seconds = time.perf_counter() - start
        out = io.StringIO()
        start, cpu_start = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(out):
            code = main(["--db", str(path), "stats", "--study", "bench", "--json"])
        seconds = time.perf_counter() - start
        # CPU time as well: on a shared machine the wall time also measures the other jobs.
        cpu_seconds = time.process_time() - cpu_start
    if code != 0:
        sys.exit(f"review-app stats failed with status {code}")
    document = json.loads(out.getvalue())
    print(f"judges: {[j['judge'] for j in document['judges']]}")
    print(f"categories: {sorted(document['by_category'])}")
    print(
        json.dumps(
            {
                "votes": document["n_votes"],
                "verdicts": counts["verdicts"],
                "comparisons": document["n_comparisons"],
                "baseline_verdicts": 2 * 4 * document["n_comparisons"],
                "bootstrap_resamples": 1000,
                "seed_seconds": round(seed_seconds, 1),
                "json_bytes": len(out.getvalue()),
                "seconds": round(seconds, 3),
                "cpu_seconds": round(cpu_seconds, 3),
                "target_seconds": 2,
            }
        )
    )


if __name__ == "__main__":
    main_bench()
