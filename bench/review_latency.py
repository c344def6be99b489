"""Review latency on a large workspace: 100,000 pairs and 200,000 earlier votes.

1. Service: p50/p95 of one reviewer step, `record_vote` + `next_pair` (target p95 <= 3 ms, issue 24).
2. Browser: median time from a key press to the next pair being on screen, in Debian's chromium
   on the real app over the same workspace (target <= 300 ms). Skipped with --no-browser or
   when /usr/bin/chromium is missing.

Usage: python bench/review_latency.py [--pairs N] [--steps N] [--keys N] [--no-browser]
The last line printed is one JSON object with the figures."""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_study import bench_admin  # noqa: E402

from review_app import assignment  # noqa: E402
from review_app.auth import Actor  # noqa: E402
from review_app.services import data, people, review, studies  # noqa: E402
from review_app.settings import Settings  # noqa: E402
from review_app.store import AssignmentState, Store, now_iso  # noqa: E402

SYSTEMS = ("base", "finetuned", "frontier")
REVIEWERS = 100
K = 3


def earlier_votes(pair_ids, reviewer_ids: list[int], study_id: int, seed: int):
    """(pair id, reviewer id, queue position, vote number) of two earlier votes per pair, as the
    app hands them out: the reviewers take turns, each taking the next pair of their own queue
    that has fewer than two votes, so each stops part-way through their queue."""
    n = len(pair_ids)
    queues = [
        assignment.queue_stretch(
            0, assignment.queue_span(n), n, assignment.queue_keys(r, study_id, seed)
        )
        for r in reviewer_ids
    ]
    cursors, counts, votes = [0] * len(reviewer_ids), [0] * n, []
    while len(votes) < 2 * n:
        for r, (positions, indexes) in enumerate(queues):
            while cursors[r] < n and counts[indexes[cursors[r]]] >= 2:
                cursors[r] += 1
            if cursors[r] == n:
                continue
            index = int(indexes[cursors[r]])
            votes.append(
                (int(pair_ids[index]), reviewer_ids[r], int(positions[cursors[r]]), counts[index])
            )
            counts[index] += 1
            cursors[r] += 1
            if len(votes) == 2 * n:
                break
    return votes


def build_workspace(db: Path, n_pairs: int) -> None:
    """n_pairs pairs (two comparisons over n_pairs / 2 items) and two earlier votes per pair,
    cast through assignments by REVIEWERS reviewers, as the app would have left them
    (`earlier_votes`)."""
    items = n_pairs // 2
    source = db.parent / "outputs.csv"
    with source.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item_id", "prompt", "system", "output", "category"])
        for i in range(items):
            for system in SYSTEMS:
                text = f"Reply {i} by one system: reset the hub, then pair it again. " * 4
                writer.writerow(
                    [f"item-{i:06d}", f"Question {i}: my hub is offline.", system, text, "support"]
                )
    store = Store.open(db)
    settings = Settings.from_env()
    admin, _ = bench_admin(store)
    data.import_outputs(store, source, "bench", actor=admin)
    studies.create_study(
        store, "bench", "bench", [("finetuned", "base"), ("finetuned", "frontier")], K, actor=admin
    )
    study_id = store.studies.require_study("bench")["id"]
    ids = [
        people.add_reviewer(store, settings, f"r{n:03d}", "reviewer", "bench", actor=admin)[0]["id"]
        for n in range(REVIEWERS)
    ]
    pair_ids = store.studies.study_pair_ids(study_id)
    frame = store.frames.pairs_frame(study_id)
    systems = dict(
        zip(frame["pair_id"], zip(frame["system_x"], frame["system_y"], strict=True), strict=True)
    )
    stamp = now_iso()
    with store.transaction():
        votes = []
        for pair_id, reviewer, position, slot in earlier_votes(
            pair_ids, ids, study_id, settings.seed
        ):
            x, y = systems[pair_id]
            left, right = (x, y) if slot == 0 else (y, x)
            store.review.insert_assignment(
                pair_id, reviewer, study_id, (left, right), position, 0.0, AssignmentState.VOTED
            )
            votes.append(
                {
                    "pair_id": pair_id,
                    "reviewer_id": reviewer,
                    "shown_left": left,
                    "shown_right": right,
                    "choice": "A",
                    "winner": left,
                    "criteria": "{}",
                    "rationale": "",
                    "flags": "[]",
                    "source": "app",
                    "created_at": stamp,
                }
            )
            if len(votes) >= 20_000:
                store.review.insert_votes(votes)
                votes = []
        store.review.insert_votes(votes)
    store.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def service_latency(db: Path, steps: int) -> dict:
    store = Store.open(db)
    settings = Settings.from_env()
    study_id = store.studies.require_study("bench")["id"]
    reviewer = store.people.reviewer("r000")["id"]
    task = review.next_pair(store, settings, reviewer, study_id)  # warms the queue cache
    step_ms, vote_ms, next_ms = [], [], []
    choices = ("A", "B", "tie", "both_bad")
    for n in range(steps):
        start = time.perf_counter()
        review.record_vote(store, settings, reviewer, task.assignment_id, choices[n % 4])
        middle = time.perf_counter()
        task = review.next_pair(store, settings, reviewer, study_id)
        end = time.perf_counter()
        vote_ms.append((middle - start) * 1000)
        next_ms.append((end - middle) * 1000)
        step_ms.append((end - start) * 1000)
    store.close()
    return {
        "service_p50_ms": round(percentile(step_ms, 0.5), 2),
        "service_p95_ms": round(percentile(step_ms, 0.95), 2),
        "record_vote_p95_ms": round(percentile(vote_ms, 0.95), 2),
        "next_pair_p95_ms": round(percentile(next_ms, 0.95), 2),
        "service_steps": steps,
    }


def browser_latency(db: Path, keys: int) -> dict:
    """Median key press -> next pair drawn, on the real app in Debian's chromium."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "browser"))
    from conftest import CHROMIUM, CHROMIUM_ARGS, COUNTER, AppServer, wait_for_pair, wait_idle
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        return {"browser_median_ms": None, "browser_skipped": f"{CHROMIUM} is missing"}
    store = Store.open(db)
    admin = Actor.of(store.people.reviewer("bench-admin"))
    _, link = people.add_reviewer(
        store, Settings.from_env(), "r001", "reviewer", "bench", actor=admin, reissue=True
    )
    store.close()
    token = link.split("token=")[1]
    server = AppServer(db)
    times = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(server.link(token))
            wait_for_pair(page)
            counter = page.get_by_text(COUNTER)
            done = int(counter.inner_text().split()[0])
            for n in range(keys + 2):
                start = time.perf_counter()
                page.keyboard.press("ab"[n % 2])
                done += 1
                page.get_by_text(re.compile(rf"^{done} done · \d+ left$")).wait_for(timeout=30_000)
                page.locator(".review-output").nth(2).wait_for(timeout=30_000)
                elapsed = (time.perf_counter() - start) * 1000
                wait_idle(page, 30_000)
                if n >= 2:  # the first presses warm caches
                    times.append(elapsed)
            browser.close()
    finally:
        server.stop()
    return {
        "browser_median_ms": round(statistics.median(times), 1),
        "browser_p95_ms": round(percentile(times, 0.95), 1),
        "browser_keys": len(times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--keys", type=int, default=20)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        start = time.perf_counter()
        build_workspace(db, args.pairs)
        setup_s = time.perf_counter() - start
        store = Store.open(db)
        counts = store.studies.study_counts(store.studies.require_study("bench")["id"])
        store.close()
        figures = {"pairs": counts["pairs"], "votes": counts["votes"], "setup_s": round(setup_s, 1)}
        figures |= service_latency(db, args.steps)
        if args.no_browser:
            figures["browser_median_ms"] = None
        else:
            figures |= browser_latency(db, args.keys)
    # Issue 24: a reviewer's step (vote + next pair) within 3 ms at the 95th percentile.
    figures |= {"target_service_p95_ms": 3, "target_browser_median_ms": 300}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
