"""`review-app judge` and `review-app judge-runs`, including a run killed with SIGKILL and
resumed against a local fake OpenAI-compatible server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from judge.fake_server import FakeJudgeServer, Reply
from review_app.cli import main
from tests.conftest import ROOT

GENERAL = str(ROOT / "rubrics" / "general-pairwise.yaml")
JUDGE_ARGS = ["judge", "--study", "demo", "--rubric", GENERAL, "--judge", "openai/gpt-4o-mini"]


@pytest.fixture
def server(monkeypatch):
    with FakeJudgeServer() as fake:
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        monkeypatch.setenv("OPENAI_BASE_URL", fake.openai_base_url)
        yield fake


def run_verdicts(store, judge: str) -> list[tuple]:
    return store.db.execute(
        "SELECT v.pair_id, v.first_system FROM verdicts v JOIN judge_runs j ON j.id = v.run_id "
        "WHERE j.judge = ?",
        [judge],
    ).fetchall()


def test_dry_run_prints_calls_and_cost_and_sends_nothing(demo_store, server, capsys):
    assert main([*JUDGE_ARGS, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "256 calls to send, 0 of 256 already stored (128 pairs, both orders)" in out
    assert "estimated cost $" in out
    assert server.count == 0 and run_verdicts(demo_store, "openai/gpt-4o-mini") == []


def test_single_order_dry_run_halves_the_calls(demo_store, server, capsys):
    assert main([*JUDGE_ARGS, "--dry-run", "--single-order", "--seed", "3"]) == 0
    assert "128 calls to send" in capsys.readouterr().out


def test_run_prints_totals_and_a_progress_bar(demo_store, server, capsys, cli_admin):
    assert main([*JUDGE_ARGS, "--concurrency", "16", "--rpm", "100000", "--tpm", "10000000"]) == 0
    captured = capsys.readouterr()
    assert "256 verdicts stored (256 parsed, 0 unparsed), 0 failed" in captured.out
    assert "status complete" in captured.out
    assert "256/256 calls" in captured.err
    assert len(set(run_verdicts(demo_store, "openai/gpt-4o-mini"))) == 256


def test_failed_calls_exit_1_with_one_line_and_list_themselves(
    demo_store, server, capsys, monkeypatch, cli_admin
):
    monkeypatch.setenv("REVIEW_APP_JUDGE_MAX_ATTEMPTS", "1")
    server.script = [Reply(status=500)]
    assert main([*JUDGE_ARGS, "--concurrency", "16"]) == 1
    err = capsys.readouterr().err
    assert "error: 1 calls failed after retries and were not stored" in err
    assert "failed: pair" in err and "HTTP 500" in err
    assert len(run_verdicts(demo_store, "openai/gpt-4o-mini")) == 255


def test_missing_key_is_one_line(demo_store, capsys, monkeypatch, cli_admin):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main(JUDGE_ARGS) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "OPENAI_API_KEY" in err and "\n" not in err


def test_judge_runs_lists_totals_and_failures(demo_store, server, capsys, monkeypatch, cli_admin):
    server.answer = lambda request: Reply(content="I think A is better.")
    monkeypatch.setenv("REVIEW_APP_JUDGE_PARSE_RETRIES", "0")
    assert main([*JUDGE_ARGS, "--single-order"]) == 0
    capsys.readouterr()
    assert main(["judge-runs", "--study", "demo"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "openai/gpt-4o-mini · general-pairwise v1 · single order" in lines[0]
    assert "128 verdicts (128 unparsed, 0 missing)" in lines[0]
    run_id = lines[0].split("\t")[0]
    assert main(["judge-runs", "--study", "demo", "--failures", run_id]) == 0
    out = capsys.readouterr().out
    assert "malformed JSON" in out and "raw: I think A is better." in out


def test_killed_run_resumes_without_duplicates_or_repeated_calls(demo_store, cli_admin):
    with FakeJudgeServer(latency_s=0.05) as server:
        env = {
            **os.environ,
            "REVIEW_APP_DB": demo_store.path,
            "OPENAI_API_KEY": "test-key",
            "OPENAI_BASE_URL": server.openai_base_url,
        }
        command = [sys.executable, "-m", "review_app.cli", *JUDGE_ARGS, "--concurrency", "4"]
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        give_up = time.monotonic() + 60
        while len(run_verdicts(demo_store, "openai/gpt-4o-mini")) < 40:
            assert process.poll() is None, "the run finished before it could be killed"
            assert time.monotonic() < give_up, "no verdicts were stored"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait()
        kept = len(run_verdicts(demo_store, "openai/gpt-4o-mini"))
        assert 40 <= kept < 256
        # Requests the killed process had already written may still be read by the server's
        # threads: count them before measuring what the resumed run sends.
        sent_before = -1
        while sent_before != server.count:
            sent_before = server.count
            time.sleep(0.3)

        finished = subprocess.run(command, env=env, capture_output=True, text=True)
        assert finished.returncode == 0, finished.stderr
        assert f"{256 - kept} calls to send, {kept} of 256 already stored" in finished.stderr
        # Only the missing calls were sent: what was stored is never bought twice.
        assert server.count - sent_before == 256 - kept

    rows = run_verdicts(demo_store, "openai/gpt-4o-mini")
    assert len(rows) == len(set(rows)) == 256
    runs = demo_store.db.execute(
        "SELECT status FROM judge_runs WHERE judge = 'openai/gpt-4o-mini'"
    ).fetchall()
    assert runs == [("complete",)]
