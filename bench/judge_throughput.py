"""Judge runner throughput against a local fake OpenAI-compatible server.

1,000 pairs x 2 orders, 100 ms latency per call, concurrency 50. Measured in the same run: the
runner's wall time; a bare asyncio loop making the same 2,000 calls with the same SDK client and
concurrency (the floor on this machine); the ideal latency bound (2,000 / 50 x 0.1 s). Target:
runner <= 1.15 x bare loop. Then again with every 10th call answered 429 (retry-after 0.2 s): all
2,000 verdicts must be stored, none duplicated.

Usage: python bench/judge_throughput.py [--pairs N] [--concurrency N] [--latency S]
The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from judge.providers.base import get_provider
from judge.rubric import load_rubric
from judge.runner import CallResult, JudgeCall, RunOptions, build_calls, render_call, run_judge

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 1.15


def start_server(latency: float, rate_limit_every: int = 0) -> tuple[subprocess.Popen, str]:
    """The fake server runs in its own process: it must not compete with the client for the GIL."""
    command = [sys.executable, "-m", "judge.fake_server", "--latency", str(latency)]
    if rate_limit_every:
        command += ["--rate-limit-every", str(rate_limit_every), "--retry-after", "0.2"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    line = process.stdout.readline().strip()
    return process, line.removeprefix("listening on ") + "/v1"


def make_pairs(n: int) -> list[dict]:
    return [
        {
            "pair_id": i,
            "system_x": "base",
            "system_y": "finetuned",
            "prompt": f"Customer question number {i}: my lamp flickers, what should I do?",
            "output_x": f"Answer {i} from base. " * 8,
            "output_y": f"Answer {i} from the fine-tune, in numbered steps. " * 6,
            "reference": None,
            "category": "support",
        }
        for i in range(1, n + 1)
    ]


async def bare_loop(provider, rubric, calls: list[JudgeCall], concurrency: int) -> float:
    """The floor: the same SDK calls with a semaphore and nothing else."""
    client = provider.client
    schema = {"name": rubric.schema_name, "schema": rubric.output_schema(), "strict": True}
    messages = [render_call(rubric, call) for call in calls]
    semaphore = asyncio.Semaphore(concurrency)

    async def one(message_list):
        async with semaphore:
            await client.chat.completions.create(
                model=provider.model,
                messages=message_list,
                max_tokens=1024,
                temperature=0.0,
                response_format={"type": "json_schema", "json_schema": schema},
            )

    started = time.perf_counter()
    await asyncio.gather(*(one(m) for m in messages))
    return time.perf_counter() - started


async def runner(provider, rubric, calls, concurrency: int) -> tuple[float, Counter, int]:
    """The runner, persisting into a dict keyed like the verdicts table's unique key."""
    stored: Counter = Counter()
    parsed = 0

    def on_result(result: CallResult) -> None:
        nonlocal parsed
        stored[(result.call.pair_id, result.call.first_system)] += 1
        parsed += result.verdict.parsed

    started = time.perf_counter()
    summary = await run_judge(
        provider, rubric, calls, on_result, options=RunOptions(concurrency=concurrency)
    )
    elapsed = time.perf_counter() - started
    if summary.failures:
        raise SystemExit(f"{len(summary.failures)} calls failed: {summary.failures[0].error}")
    return elapsed, stored, parsed


async def measure(args: argparse.Namespace) -> dict:
    rubric = load_rubric(ROOT / "rubrics" / "general-pairwise.yaml")
    calls = build_calls(make_pairs(args.pairs))
    results: dict = {"calls": len(calls), "concurrency": args.concurrency}
    results["latency_s"] = args.latency

    process, base_url = start_server(args.latency)
    try:
        provider = get_provider("openai/gpt-4o-mini", api_key="bench", base_url=base_url)
        # Warm-up: open the connections before anything is timed.
        await bare_loop(provider, rubric, calls[: args.concurrency * 2], args.concurrency)
        bare_times, runner_times = [], []
        for _ in range(args.rounds):
            bare_times.append(await bare_loop(provider, rubric, calls, args.concurrency))
            elapsed, stored, parsed = await runner(provider, rubric, calls, args.concurrency)
            runner_times.append(elapsed)
            print(f"bare {bare_times[-1]:.2f}s  runner {elapsed:.2f}s", file=sys.stderr)
        await provider.aclose()
    finally:
        process.terminate()
        process.wait()
    results.update(
        runner_s=round(min(runner_times), 3),
        bare_loop_s=round(min(bare_times), 3),
        ideal_s=round(len(calls) / args.concurrency * args.latency, 3),
        verdicts_stored=len(stored),
        verdicts_parsed=parsed,
        duplicates=sum(n - 1 for n in stored.values()),
    )
    results["ratio"] = round(results["runner_s"] / results["bare_loop_s"], 3)
    results["target_ratio"] = TARGET_RATIO
    results["meets_target"] = results["ratio"] <= TARGET_RATIO

    process, base_url = start_server(args.latency, rate_limit_every=10)
    try:
        provider = get_provider("openai/gpt-4o-mini", api_key="bench", base_url=base_url)
        elapsed, stored, parsed = await runner(provider, rubric, calls, args.concurrency)
        await provider.aclose()
    finally:
        process.terminate()
        process.wait()
    results.update(
        with_429_runner_s=round(elapsed, 3),
        with_429_verdicts_stored=len(stored),
        with_429_duplicates=sum(n - 1 for n in stored.values()),
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=2, help="best of N for both timings")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args))))


if __name__ == "__main__":
    main()
