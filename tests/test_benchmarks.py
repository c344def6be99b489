"""The benchmarks under bench/ still run: each, at a small size, finishes and prints its figures
as one JSON object on its last line. Their figures are not checked here (timings belong to the
benchmarks, on a quiet machine); only that the setup they do through the CLI and the services
still passes the rules those enforce."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_bench(name: str, *argv: str) -> dict:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / name), *argv],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_page_render_builds_its_locked_study_and_renders_every_screen():
    """Takes about 30 s and more on a loaded machine, as the benchmark does: the study is built
    through the command line, and each screen and the report are rendered in a fresh Python
    process (a started server's first render), four of them."""
    figures = run_bench("page_render.py", "--comparisons", "200", "--no-session")
    assert set(figures["store_queries_per_render"]) == {"calibration", "results", "gate", "report"}
    assert all(n > 0 for n in figures["store_queries_per_render"].values())
    assert figures["comparisons"] == 200 and figures["report_bytes"] > 0


@pytest.mark.parametrize(
    ("name", "argv", "key"),
    [
        (
            "review_latency.py",
            ("--pairs", "300", "--steps", "20", "--keys", "2"),
            "service_p95_ms",
        ),
        ("import_bench.py", ("--rows", "300"), "rows_per_s"),
        ("grade_bench.py", ("--items", "200"), "grade_seconds"),
        ("scorecard_bench.py", ("--items", "200"), "seconds"),
        ("stats_bench.py", ("--items", "300"), "seconds"),
    ],
)
def test_benchmarks_run_at_a_small_size(name, argv, key):
    """review_latency.py takes up to 30 s and more on a loaded machine: it starts the real app
    server and Debian's chromium to time key presses, which no smaller size avoids."""
    assert run_bench(name, *argv)[key] > 0


def test_decision_sim_reports_coverage_and_its_targets_at_a_small_size():
    figures = run_bench("decision_sim.py", "--small")
    assert set(figures["coverage"]) == {
        "vs_ceiling",
        "beats_baseline",
        "verbosity_gap",
        "regression",
        "win_rate",
        "pass_rate_change",
    }
    assert all(0 <= v <= 1 for by_size in figures["coverage"].values() for v in by_size.values())
    assert set(figures["within_at_margin"]) == {"30", "30x3"}
    assert figures["simulations"] > 0 and isinstance(figures["targets"]["met"], bool)
    ((design, plan),) = figures["plan_power"].items()
    assert plan["planned"] >= 0.8 and 0 <= plan["pass_rate"] <= 1, design
    assert set(plan["false_pass"]) == {"one_suite_at_the_margin", "final_review_at_the_bar"}
    # Interim rows never read pass, whatever the sample: this one is exact at any size.
    assert figures["interim_rows_pass_at_parity"] == 0.0
    assert 0 <= figures["gate_false_pass_with_looks"] <= 1


def test_label_savings_reports_its_sections_and_targets_at_a_small_size():
    figures = run_bench("label_savings.py", "--small")
    assert set(figures["ppi"]) == {"0.6", "0.7", "0.8", "0.9"}
    assert all(
        set(v) >= {"coverage", "width_ratio", "labels_ratio"} for v in figures["ppi"].values()
    )
    assert 0 <= figures["biased_judge"]["coverage"] <= 1
    sequential = figures["sequential"]
    # Computed exactly, so these hold at any size: looks add almost nothing to the false pass
    # rate of the fixed design at the same sample, and stopping early saves labels.
    assert sequential["false_pass_any_look"] <= sequential["fixed_false_pass"] + 0.002
    assert sequential["expected_labels_ratio"] < 0.85
    assert set(figures["targets"]) == {
        "coverage_min",
        "labels_ratio_at_0.8",
        "false_pass_any_look",
        "expected_labels_ratio",
    }


def test_copy_workspace_goes_both_ways_at_a_small_size(postgres):
    figures = run_bench("copy_workspace.py", "--items", "100", "--postgres", postgres.url)
    assert figures["digests_equal"] and figures["verify_holds"]
    assert figures["votes"] == 400 and figures["rows"] > figures["votes"] + figures["verdicts"]


def test_judge_benchmarks_answer_every_call_once_at_a_small_size():
    """Both run the real SDKs against the local fake of the providers."""
    throughput = run_bench(
        "judge_throughput.py",
        "--pairs",
        "20",
        "--concurrency",
        "5",
        "--latency",
        "0.01",
        "--rounds",
        "1",
    )
    assert throughput["ratio"] > 0 and isinstance(throughput["meets_target"], bool)
    batch = run_bench("judge_batch.py", "--pairs", "20", "--batch-delay", "0.2", "--poll", "0.05")
    assert batch["ok"] and batch["verdicts_stored"] == 40 and "target" in batch


def test_length_control_sim_reports_its_target_at_a_small_size():
    figures = run_bench("length_control_sim.py", "--sims", "3", "--n-boot", "50")
    assert len(figures["designs"]) == 8 and isinstance(figures["target_met"], bool)
    assert all(isinstance(d["met"], bool) for d in figures["designs"].values())


def test_import_bench_prints_its_target_beside_its_figures():
    figures = run_bench("import_bench.py", "--rows", "200", "--format", "csv")
    assert figures["target_seconds"] == 3.0
    assert figures["rows"] == 200 and figures["cpu_seconds"] > 0
    assert figures["baseline_s"] is None  # measured only when an earlier checkout is named
