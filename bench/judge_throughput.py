"""Judge runner throughput against a local fake OpenAI-compatible server.

1,000 pairs x 2 orders, 100 ms latency per call, concurrency 50. Measured in the same run: the
runner's wall time (`judging.start_judge_run`: planning, the async runner and one SQLite commit per
verdict, as `review-app judge` does it); a bare asyncio loop making the same 2,000 calls with the same
SDK client settings and concurrency (the floor on this machine); the ideal latency bound
(2,000 / 50 x 0.1 s). Target: runner <= 1.15 x bare loop. Then again with every 10th call answered
429 (retry-after 0.2 s): all 2,000 verdicts must be stored, none duplicated.

Usage: python bench/judge_throughput.py [--pairs N] [--concurrency N] [--latency S] [--rounds N]
The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from bench_study import bench_admin

from judge.providers.base import get_provider
from judge.rubric import load_rubric
from judge.runner import build_calls, render_call
from review_app.auth import Actor
from review_app.services import data, judging, studies
from review_app.services.context import open_study
from review_app.settings import Settings
from review_app.store import Store

ROOT = Path(__file__).resolve().parents[1]
RUBRIC = ROOT / "rubrics" / "general-pairwise.yaml"
JUDGE = "openai/gpt-4o-mini"
TARGET_RATIO = 1.15


def start_server(latency: float, rate_limit_every: int = 0) -> tuple[subprocess.Popen, str]:
    """The fake server runs in its own process: it must not compete with the client for the GIL."""
    command = [sys.executable, "-m", "judge.fake_server", "--latency", str(latency)]
    if rate_limit_every:
        command += ["--rate-limit-every", str(rate_limit_every), "--retry-after", "0.2"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    line = process.stdout.readline().strip()
    return process, line.removeprefix("listening on ") + "/v1"


def make_study(store: Store, workdir: Path, n: int) -> None:
    """A study of `n` pairs (finetuned vs base), imported the way a user would."""
    path = workdir / "outputs.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for i in range(1, n + 1):
            prompt = f"Customer question number {i}: my lamp flickers, what should I do?"
            outputs = {
                "base": f"Answer {i} from base. " * 8,
                "finetuned": f"Answer {i} from the fine-tune, in numbered steps. " * 6,
            }
            for system, output in outputs.items():
                row = {"item_id": f"q{i}", "prompt": prompt, "system": system, "output": output}
                handle.write(json.dumps(row) + "\n")
    admin, _ = bench_admin(store)
    data.import_outputs(store, path, "bench", actor=admin)
    studies.create_study(
        store, "bench", "bench", [("finetuned", "base")], reviews_per_pair=1, actor=admin
    )


async def bare_loop(base_url: str, messages: list, concurrency: int) -> float:
    """The floor: the same SDK calls with a semaphore and nothing else."""
    provider = get_provider(JUDGE, api_key="bench", base_url=base_url)
    rubric = load_rubric(RUBRIC)
    schema = {"name": rubric.schema_name, "schema": rubric.output_schema(), "strict": True}
    semaphore = asyncio.Semaphore(concurrency)

    async def one(message_list):
        async with semaphore:
            await provider.client.chat.completions.create(
                model=provider.model,
                messages=message_list,
                max_tokens=1024,
                temperature=0.0,
                response_format={"type": "json_schema", "json_schema": schema},
            )

    started = time.perf_counter()
    await asyncio.gather(*(one(m) for m in messages))
    elapsed = time.perf_counter() - started
    await provider.aclose()
    return elapsed


def runner(store: Store, settings: Settings, base_url: str, seed: int, concurrency: int) -> dict:
    """`review-app judge` minus argument parsing; a new seed makes a new run each time."""
    started = time.perf_counter()
    outcome = judging.start_judge_run(
        open_study(store, settings, "bench", Actor.of(store.people.reviewer("bench-admin"))),
        RUBRIC,
        JUDGE,
        seed=seed,
        concurrency=concurrency,
        provider_options={"api_key": "bench", "base_url": base_url},
    )
    elapsed = time.perf_counter() - started
    if outcome.failures:
        raise SystemExit(f"{len(outcome.failures)} calls failed: {outcome.failures[0]}")
    rows = store.db.execute(
        "SELECT count(*), count(DISTINCT pair_id || ':' || first_system) FROM verdicts "
        "WHERE run_id = ?",
        [outcome.run_id],
    ).fetchone()
    return {"seconds": elapsed, "stored": rows[0], "duplicates": rows[0] - rows[1]}


def measure(args: argparse.Namespace) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="judge-bench-"))
    store = Store.open(workdir / "bench.db")
    settings = replace(Settings.from_env(), db=workdir / "bench.db")
    make_study(store, workdir, args.pairs)
    pairs = store.frames.pairs_frame(store.studies.require_study("bench")["id"]).to_dict("records")
    rubric = load_rubric(RUBRIC)
    messages = [render_call(rubric, call) for call in build_calls(pairs)]
    results: dict = {"calls": len(messages), "concurrency": args.concurrency}
    results["latency_s"] = args.latency

    process, base_url = start_server(args.latency)
    try:
        # Warm-up: start the server's threads and the client's imports before timing anything.
        asyncio.run(bare_loop(base_url, messages[: args.concurrency * 2], args.concurrency))
        bare_times, runs = [], []
        for round_number in range(args.rounds):
            bare_times.append(asyncio.run(bare_loop(base_url, messages, args.concurrency)))
            runs.append(runner(store, settings, base_url, round_number + 1, args.concurrency))
            print(f"bare {bare_times[-1]:.2f}s  runner {runs[-1]['seconds']:.2f}s", file=sys.stderr)
    finally:
        process.terminate()
        process.wait()
    best = min(runs, key=lambda r: r["seconds"])
    results.update(
        runner_s=round(best["seconds"], 3),
        bare_loop_s=round(min(bare_times), 3),
        ideal_s=round(len(messages) / args.concurrency * args.latency, 3),
        verdicts_stored=best["stored"],
        duplicates=best["duplicates"],
    )
    results["ratio"] = round(results["runner_s"] / results["bare_loop_s"], 3)
    results["target_ratio"] = TARGET_RATIO
    results["meets_target"] = results["ratio"] <= TARGET_RATIO

    process, base_url = start_server(args.latency, rate_limit_every=10)
    try:
        limited = runner(store, settings, base_url, 1000, args.concurrency)
    finally:
        process.terminate()
        process.wait()
    store.close()
    results.update(
        with_429_runner_s=round(limited["seconds"], 3),
        with_429_verdicts_stored=limited["stored"],
        with_429_duplicates=limited["duplicates"],
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=2, help="best of N for both timings")
    args = parser.parse_args()
    print(json.dumps(measure(args)))


if __name__ == "__main__":
    main()
