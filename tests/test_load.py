"""Ten reviewers voting through the real server for thirty seconds (`bench/load_reviewers.py`,
real websocket sessions of the Streamlit protocol): no vote lost, duplicated or refused, and the
server's open files do not grow. And two servers sharing one PostgreSQL workspace: no vote lost,
duplicated or refused, and no pair given more reviews than the study asks for."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_bench(*arguments: str) -> tuple[dict, str]:
    """The benchmark's figures (its last line) and its whole output."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "load_reviewers.py"), *arguments],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stdout


@pytest.mark.load
def test_ten_reviewers_for_thirty_seconds(tmp_path):
    """About a minute by design: ten seconds of warm-up and thirty of voting are what it takes
    for a leak of open files per page run, or a vote lost under concurrent sessions, to show.
    Started from a folder holding another copy of the app, it still serves the app beside it."""
    shutil.copytree(
        ROOT / "review_app", tmp_path / "review_app", ignore=shutil.ignore_patterns("__pycache__")
    )
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "load_reviewers.py")]
        + ["--sessions", "10", "--minutes", "0.5", "--think", "1.5", "--items", "2000"]
        + ["--warmup", "10"],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    # The server ran the app beside the benchmark, not the copy in the current folder.
    assert figures["review_app"] == [str(ROOT / "review_app")], figures
    assert figures["errors"] == 0, result.stdout
    assert figures["votes"] >= 40, figures
    assert figures["lost"] == 0 and figures["duplicated"] == 0, figures
    assert figures["votes_in_db"] == figures["votes"], figures
    assert figures["repeated_pairs"] == 0, figures
    # No growth after the warm-up; a page run that kept its own connection open would add two
    # files per run (about 200 here).
    assert figures["fds_end"] <= figures["fds_start"], figures
    # A vote after the warm-up costs CPU of its own, and less than the run's figure, which
    # also holds every session's first page.
    assert 0 < figures["server_cpu_ms_per_vote_after_warmup"], figures
    assert figures["server_cpu_ms_per_vote_after_warmup"] < figures["server_cpu_ms_per_vote"]


@pytest.mark.load
def test_two_servers_share_one_postgresql_workspace(postgres):
    """Six reviewers spread over two servers of one PostgreSQL workspace for eighteen seconds:
    the servers take the workspace's one write lock in turn, so every saved vote is there once
    and no pair holds more current votes than its reviews per pair."""
    url = postgres.database()
    try:
        figures, output = run_bench(
            *["--servers", "2", "--sessions", "6", "--minutes", "0.3", "--think", "1.5"],
            *["--items", "500", "--warmup", "5", "--db", url],
        )
    finally:
        postgres.drop(url)
    assert figures["servers"] == 2 and figures["backend"] == "postgresql", figures
    assert [s["sessions"] for s in figures["per_server"]] == [3, 3], figures
    assert figures["errors"] == 0, output
    assert figures["votes"] > 0, figures
    assert figures["lost"] == 0 and figures["duplicated"] == 0, figures
    assert figures["pairs_over_k"] == 0, figures
    assert figures["votes_in_db"] == figures["votes"], figures
