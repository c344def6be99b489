"""Batch judging throughput against the local fake of the provider batch APIs.

10,000 pairs x 2 orders = 20,000 calls through `judging.start_batch_run` (what `review-app judge
--batch` does: plan, record, upload, create, poll, download, parse, store), with the fake holding
each batch in progress for `--batch-delay` seconds. Reported: the wall time, and the wall time
excluding the fake's batch delay (our own overhead, polling granularity included); the process's
peak resident memory and how much the run added to it; verdicts stored (must be 20,000, none
duplicated); requests the fake received (must be 20,000: nothing sent twice).

Usage: python bench/judge_batch.py [--pairs N] [--batch-delay S] [--poll S] [--judge SPEC]
The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

from judge_throughput import make_study

# Both adapters are imported up front: loading an SDK is not part of what is timed.
import judge.providers.anthropic  # noqa: F401
import judge.providers.openai  # noqa: F401
from review_app.auth import Actor
from review_app.services import judging
from review_app.services.context import open_study
from review_app.settings import Settings
from review_app.store import Store

ROOT = Path(__file__).resolve().parents[1]
RUBRIC = ROOT / "rubrics" / "general-pairwise.yaml"


def start_server(batch_delay: float) -> tuple[subprocess.Popen, str]:
    """The fake server runs in its own process, so its memory and CPU are not the client's."""
    command = [sys.executable, "-m", "judge.fake_server", "--batch-delay", str(batch_delay)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    return process, process.stdout.readline().strip().removeprefix("listening on ")


def rss_mb() -> float:
    """Current resident memory of this process."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def requests_received(base_url: str, judge: str) -> int:
    """Requests in every batch the fake holds, from its own list endpoint."""
    path = "/v1/messages/batches" if judge.startswith("anthropic/") else "/v1/batches"
    with urllib.request.urlopen(f"{base_url}{path}?limit=1000") as response:
        batches = json.load(response)["data"]
    counts = [b["request_counts"] for b in batches]
    return sum(c.get("total", sum(c.values())) for c in counts)


def measure(args: argparse.Namespace) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="judge-batch-bench-"))
    store = Store.open(workdir / "bench.db")
    settings = replace(Settings.from_env(), db=workdir / "bench.db", judge_batch_poll=args.poll)
    make_study(store, workdir, args.pairs)
    process, base_url = start_server(args.batch_delay)
    provider_base = base_url if args.judge.startswith("anthropic/") else base_url + "/v1"
    try:
        before = rss_mb()
        started = time.perf_counter()
        outcome = judging.start_batch_run(
            open_study(store, settings, "bench", Actor.of(store.people.reviewer("bench-admin"))),
            RUBRIC,
            args.judge,
            provider_options={"api_key": "bench", "base_url": provider_base},
        )
        elapsed = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        received = requests_received(base_url, args.judge)
    finally:
        process.terminate()
        process.wait()
    rows = store.db.execute(
        "SELECT count(*), count(DISTINCT pair_id || ':' || first_system) FROM verdicts "
        "WHERE run_id = ?",
        [outcome.run_id],
    ).fetchone()
    batches = store.db.execute(
        "SELECT count(*) FROM judge_batches WHERE run_id = ?", [outcome.run_id]
    ).fetchone()[0]
    store.close()
    expected = 2 * args.pairs
    return {
        "judge": args.judge,
        "calls": expected,
        "batches": batches,
        "batch_delay_s": args.batch_delay,
        "poll_interval_s": args.poll,
        "wall_s": round(elapsed, 3),
        "wall_excluding_batch_delay_s": round(elapsed - args.batch_delay, 3),
        "peak_rss_mb": round(peak, 1),
        "rss_before_run_mb": round(before, 1),
        "run_added_mb": round(peak - before, 1),
        "verdicts_stored": rows[0],
        "duplicates": rows[0] - rows[1],
        "requests_received": received,
        "status": outcome.status,
        "cost_usd": round(outcome.progress.answers.cost, 4),
        "target": f"{expected} verdicts stored, none duplicated, {expected} requests received",
        "ok": rows[0] == expected and rows[0] == rows[1] and received == expected,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--batch-delay", type=float, default=2.0, help="seconds in progress")
    parser.add_argument("--poll", type=float, default=0.2, help="seconds between polls")
    parser.add_argument("--judge", default="openai/gpt-4o-mini")
    args = parser.parse_args()
    results = measure(args)
    print(json.dumps(results))
    if not results["ok"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
