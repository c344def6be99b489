"""Import 100,000 output rows of about 1 KB each into a fresh workspace (target: <= 3 s, and
never slower than bdd9490's code, the last before imports were staged, measured in the same run).

Usage: python bench/import_bench.py [--rows N] [--format jsonl|csv] [--baseline DIR]
--baseline DIR runs the import_bench.py of an earlier checkout first (e.g. one made with
`git worktree add /tmp/bdd9490 bdd9490`), on its own code, for the ratio.
The last line printed is one JSON object with the figures and the target."""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_study import bench_admin  # noqa: E402

from review_app.services import data  # noqa: E402
from review_app.store import Store  # noqa: E402

TARGET_S = 3.0
WORDS = "the hub light app reset button firmware amber pulse wifi router scene schedule".split()


def write_rows(path: Path, rows: int, fmt: str, systems: int = 2) -> None:
    rng = random.Random(0)
    header = ["item_id", "prompt", "system", "output", "category"]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle) if fmt == "csv" else None
        if writer:
            writer.writerow(header)
        for n in range(rows):
            item = n // systems
            output = " ".join(rng.choice(WORDS) for _ in range(180))[:1000]
            values = [
                f"item-{item:06d}",
                f"Question {item}: how do I reset the hub?",
                f"system-{n % systems}",
                output,
                ("support", "safety")[item % 2],
            ]
            if writer:
                writer.writerow(values)
            else:
                handle.write(json.dumps(dict(zip(header, values, strict=True))) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    parser.add_argument("--baseline", type=Path, help="an earlier checkout to measure first")
    args = parser.parse_args()
    baseline = run_baseline(args.baseline, args.rows, args.format) if args.baseline else None
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / f"outputs.{args.format}"
        write_rows(source, args.rows, args.format)
        size_mb = source.stat().st_size / 1e6
        store = Store.open(Path(tmp) / "bench.db")
        admin, _ = bench_admin(store)
        start, cpu = time.perf_counter(), time.process_time()
        summary = data.import_outputs(store, source, "bench", actor=admin)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        stored = store.db.execute("SELECT count(*) FROM outputs").fetchone()[0]
        start = time.perf_counter()
        again = data.import_outputs(store, source, "bench", actor=admin)
        reimport_seconds = time.perf_counter() - start
        store.close()
    assert stored == args.rows and again.unchanged == args.rows, (stored, again.line())
    print(summary.line())
    print(
        json.dumps(
            {
                "rows": args.rows,
                "format": args.format,
                "file_mb": round(size_mb, 1),
                "seconds": round(seconds, 2),
                "cpu_seconds": round(cpu, 2),
                "rows_per_s": round(args.rows / seconds),
                "reimport_noop_seconds": round(reimport_seconds, 2),
                "baseline_s": baseline,
                "ratio_to_baseline": round(seconds / baseline, 2) if baseline else None,
                "target_seconds": TARGET_S,
                "meets_target": seconds <= TARGET_S and seconds <= (baseline or seconds),
            }
        )
    )


def run_baseline(checkout: Path, rows: int, fmt: str) -> float:
    """The seconds the import_bench.py of `checkout` reports, run on that checkout's code."""
    script = checkout.resolve() / "bench" / "import_bench.py"
    done = subprocess.run(
        [sys.executable, str(script), "--rows", str(rows), "--format", fmt],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, PYTHONPATH=str(checkout.resolve())),
    )
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds"]


if __name__ == "__main__":
    main()
