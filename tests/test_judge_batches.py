"""`review-app judge --batch` on a workspace: verdicts stored like interactive ones at the batch
price, the batch recorded before polling, a killed process resuming the same batch, calls in an
open batch never sent again (not even interactively), cancelling, the screen's batch option."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from streamlit.testing.v1 import AppTest

from judge.fake_server import FakeJudgeServer, Reply
from judge.pricing import load_prices
from review_app.cli import main
from review_app.errors import Conflict, InputError
from review_app.migrations import MIGRATIONS
from review_app.services import judging
from review_app.settings import Settings
from review_app.store import Store, now_iso
from review_app.store.connection import SQLiteDatabase
from tests.conftest import ROOT

GENERAL = str(ROOT / "rubrics" / "general-pairwise.yaml")
PAGE = str(ROOT / "review_app" / "app_pages" / "judge_runs.py")
N_CALLS = 256  # the demo study: 128 pairs, both orders


def judge_args(judge: str = "openai/gpt-4o-mini") -> list[str]:
    return ["judge", "--study", "demo", "--rubric", GENERAL, "--judge", judge]


@pytest.fixture
def server(monkeypatch):
    with FakeJudgeServer() as fake:
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        monkeypatch.setenv("OPENAI_BASE_URL", fake.openai_base_url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.anthropic_base_url)
        monkeypatch.setenv("REVIEW_APP_JUDGE_BATCH_POLL", "0.05")
        yield fake


def stored(store, judge: str) -> list[tuple]:
    return store.db.execute(
        "SELECT v.pair_id, v.first_system, v.tokens_in, v.tokens_cached, v.cost, v.latency_ms "
        "FROM verdicts v JOIN judge_runs j ON j.id = v.run_id WHERE j.judge = ?",
        [judge],
    ).fetchall()


def batch_rows(store) -> list[dict]:
    return list(store.db.query("SELECT * FROM judge_batches ORDER BY id"))


@pytest.mark.parametrize("judge", ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"])
def test_a_batch_run_stores_every_verdict_at_the_batch_price(
    demo_store, server, capsys, judge, cli_admin
):
    server.answer = lambda request: Reply(tokens_in=1200, tokens_cached=1024, tokens_out=30)
    server.batch_delay_s = 0.3
    assert main([*judge_args(judge), "--batch"]) == 0
    out, err = capsys.readouterr()
    assert f"{N_CALLS} calls sent in batches, {N_CALLS} verdicts stored ({N_CALLS} parsed" in out
    assert "status complete" in out
    assert f"0/{N_CALLS} done" in err and f"{N_CALLS}/{N_CALLS} done" in err  # state and counts
    rows = stored(demo_store, judge)
    assert len(rows) == len({(r[0], r[1]) for r in rows}) == N_CALLS
    each = load_prices().cost(judge, 1200, 30, tokens_cached=1024) / 2
    assert all(r[2] == 1200 and r[3] == 1024 and r[5] is None for r in rows)
    assert all(r[4] == pytest.approx(each) for r in rows)
    [batch] = batch_rows(demo_store)
    assert batch["state"] == "collected" and batch["n_answered"] == N_CALLS
    run = judging.judge_runs(demo_store, Settings.from_env(), "demo")[0]
    assert run["tokens_cached"] == 1024 * N_CALLS and run["missing"] == 0
    assert run["cost"] == pytest.approx(N_CALLS * each)


def test_batch_and_interactive_calls_belong_to_the_same_run(demo_store, server, capsys, cli_admin):
    assert main([*judge_args(), "--batch"]) == 0
    sent = server.count
    assert main(judge_args()) == 0  # nothing left to send interactively
    assert server.count == sent
    assert "0 verdicts stored" in capsys.readouterr().out


def test_the_dry_run_shows_the_batch_price(demo_store, server, capsys):
    assert main([*judge_args(), "--dry-run"]) == 0
    listed = capsys.readouterr().out
    assert main([*judge_args(), "--dry-run", "--batch"]) == 0
    batched = capsys.readouterr().out
    assert "at the batch price" in batched and "at the batch price" not in listed

    def cost(line: str) -> float:
        return float(line.split("estimated cost $")[1].split()[0])

    assert cost(batched) == pytest.approx(cost(listed) / 2, abs=1e-4)
    assert server.count == 0 and not server.batches


def test_calls_waiting_in_an_open_batch_are_never_sent_again(demo_store, server, capsys, cli_admin):
    server.batch_delay_s = 60
    assert main([*judge_args(), "--batch", "--no-wait"]) == 0
    out = capsys.readouterr().out
    assert "1 batches still running" in out and "status batched" in out
    assert "run the same command again to collect" in out
    [batch] = batch_rows(demo_store)
    assert batch["batch_id"] and batch["state"] == "in_progress" and batch["sent_at"]

    assert main([*judge_args(), "--dry-run"]) == 0
    assert f"0 calls to send, 0 of {N_CALLS} already stored, {N_CALLS} in open batches" in (
        capsys.readouterr().out
    )
    assert main(judge_args()) == 0  # interactive: nothing to send
    assert main([*judge_args(), "--batch", "--no-wait"]) == 0  # batch: the same batch
    assert server.count == 0 and len(server.batch_custom_ids) == N_CALLS
    assert main(["judge-runs", "--study", "demo"]) == 0
    assert f"{N_CALLS} in 1 open batches" in capsys.readouterr().out

    server.batch_delay_s = 0
    assert main([*judge_args(), "--batch"]) == 0
    assert len(stored(demo_store, "openai/gpt-4o-mini")) == N_CALLS
    assert len(server.batch_custom_ids) == N_CALLS and len(server.batches) == 1


def test_requests_without_an_answer_fail_the_command_and_go_out_again(
    demo_store, server, capsys, cli_admin
):
    server.script = [Reply(status=500), Reply(expired=True)]
    assert main([*judge_args("anthropic/claude-haiku-4-5"), "--batch"]) == 1
    err = capsys.readouterr().err
    assert "error: 2 calls came back without an answer and were not stored" in err
    assert "no answer: pair" in err and "expired" in err
    assert main([*judge_args("anthropic/claude-haiku-4-5"), "--batch"]) == 0
    assert len(server.batches) == 2 and len(server.batch_custom_ids) == N_CALLS + 2
    assert len(stored(demo_store, "anthropic/claude-haiku-4-5")) == N_CALLS


def test_cancel_from_the_command_line(demo_store, server, capsys, cli_admin):
    server.batch_delay_s = 60
    assert main([*judge_args(), "--batch", "--no-wait"]) == 0
    run_id = batch_rows(demo_store)[0]["run_id"]
    capsys.readouterr()
    assert main(["judge-runs", "--study", "demo", "--cancel", str(run_id)]) == 0
    out = capsys.readouterr().out
    assert "cancelled" in out and "0 verdicts stored" in out
    assert next(iter(server.batches.values())).cancel_requested
    assert batch_rows(demo_store)[0]["state"] == "collected"
    assert demo_store.judging.judge_run(run_id)["status"] == "cancelled"
    # Nothing is open any more: cancelling again says so.
    assert main(["judge-runs", "--study", "demo", "--cancel", str(run_id)]) == 1
    assert "no batch still running" in capsys.readouterr().err
    # Starting the run again sends every call anew.
    server.batch_delay_s = 0
    assert main([*judge_args(), "--batch"]) == 0
    assert len(server.batches) == 2 and len(stored(demo_store, "openai/gpt-4o-mini")) == N_CALLS


def test_two_processes_never_record_the_same_call(demo_store, server, cli_admin):
    """Another process sent the run's calls between this one's look and its record."""
    server.batch_delay_s = 60
    assert main([*judge_args(), "--batch", "--no-wait"]) == 0
    [batch] = batch_rows(demo_store)
    journal = judging._RunJournal(demo_store, batch["run_id"])
    requests = demo_store.batches.judge_batch_requests(batch["id"])
    pair, first = next(iter(requests.values()))
    with pytest.raises(Conflict, match="another process is judging run"):
        journal.record_batch("0123456789abcdef", {"0123456789abcdef-0": (pair, first)})
    assert len(batch_rows(demo_store)) == 1


def test_batch_mistakes_are_one_line(demo_store, server, capsys):
    assert main([*judge_args("baseline/longest"), "--batch"]) == 1
    assert "has no batch API" in capsys.readouterr().err
    assert main([*judge_args(), "--no-wait"]) == 1
    assert "--no-wait only applies with --batch" in capsys.readouterr().err
    with pytest.raises(InputError, match="has no batch API"):
        judging.plan_judge_run(
            demo_store, Settings.from_env(), "demo", GENERAL, "baseline/first", batch=True
        )


def test_a_refused_batch_is_one_line_and_reserves_nothing(demo_store, server, capsys, cli_admin):
    server.refuse_batches = 401
    assert main([*judge_args(), "--batch"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "HTTP 401" in err[-1]
    [run] = [
        r
        for r in judging.judge_runs(demo_store, Settings.from_env(), "demo")
        if r["judge"] == "openai/gpt-4o-mini"
    ]
    assert run["status"] == "failed" and run["in_batches"] == 0 and run["missing"] == N_CALLS


def test_killed_while_polling_resumes_the_same_batch(demo_store, cli_admin):
    """The batch id is stored before polling; a killed process's batch is collected by the next
    run, and nothing is sent twice."""
    with FakeJudgeServer(batch_delay_s=3.0) as server:
        env = {
            **os.environ,
            "REVIEW_APP_DB": demo_store.path,
            "OPENAI_API_KEY": "test-key",
            "OPENAI_BASE_URL": server.openai_base_url,
            "REVIEW_APP_JUDGE_BATCH_POLL": "0.1",
        }
        command = [sys.executable, "-m", "review_app.cli", *judge_args(), "--batch"]
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        give_up = time.monotonic() + 60
        while not (batch_rows(demo_store) and batch_rows(demo_store)[0]["batch_id"]):
            assert process.poll() is None, "the run finished before it could be killed"
            assert time.monotonic() < give_up, "no batch was recorded"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert len(server.batches) == 1 and not stored(demo_store, "openai/gpt-4o-mini")

        finished = subprocess.run(command, env=env, capture_output=True, text=True)
        assert finished.returncode == 0, finished.stderr
        assert f"0 calls to send, 0 of {N_CALLS} already stored, {N_CALLS} in open batches" in (
            finished.stderr
        )
        assert f"0 calls sent in batches, {N_CALLS} verdicts stored" in finished.stdout
        assert len(server.batches) == 1 and len(server.batch_custom_ids) == N_CALLS
        rows = stored(demo_store, "openai/gpt-4o-mini")
        assert len(rows) == len({(r[0], r[1]) for r in rows}) == N_CALLS


def open_page(store) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params["token"] = store.demo_links["demo-admin"].split("token=")[1]
    return at.run()


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_the_screen_sends_checks_and_cancels_batches(demo_store, server):
    server.batch_delay_s = 60
    at = open_page(demo_store)
    at.text_input(key="judge_name").set_value("openai/gpt-4o-mini").run()
    listed = float(metric(at, "Estimated cost").lstrip("$"))
    at.checkbox(key="judge_batch").check().run()
    assert float(metric(at, "Estimated cost").lstrip("$")) == pytest.approx(listed / 2, abs=1e-4)
    assert at.button(key="judge_start").label == "Send batch"
    at.button(key="judge_start").click().run()
    assert not at.exception
    assert "status batched" in at.info[0].value
    assert metric(at, "Calls to send") == "0"
    batches_table = at.dataframe[0].value  # above the runs table
    assert list(batches_table["state"]) == ["in_progress"]

    at.button(key="judge_batch_refresh").click().run()
    assert not at.exception and "status batched" in at.info[0].value
    at.button(key="judge_batch_cancel").click().run()
    assert not at.exception
    assert next(iter(server.batches.values())).cancel_requested
    assert batch_rows(demo_store)[0]["state"] == "collected"
    assert len(server.batches) == 1 and server.count == 0


def test_migration_5_keeps_earlier_verdicts_with_no_cached_tokens(tmp_path):
    path = tmp_path / "v3.db"
    db = SQLiteDatabase(str(path))
    db.execute("CREATE TABLE _migrations (version INTEGER PRIMARY KEY, name TEXT, applied_at TEXT)")
    for version, name, apply in [m for m in MIGRATIONS if m[0] <= 3]:
        apply(db)
        db.execute("INSERT INTO _migrations VALUES (?, ?, ?)", [version, name, now_iso()])
    db.execute("INSERT INTO eval_sets (id, name, created_at) VALUES (1, 'e', 'now')")
    db.execute("INSERT INTO items (id, eval_set_id, item_key, prompt) VALUES (1, 1, 'a', 'p')")
    db.execute("INSERT INTO studies (id, name, eval_set_id, created_at) VALUES (1, 's', 1, 'now')")
    db.execute(
        "INSERT INTO pairs (id, study_id, item_id, system_x, system_y) VALUES (1, 1, 1, 'x', 'y')"
    )
    db.execute(
        "INSERT INTO judge_runs (id, study_id, label, judge, params_hash, created_at) "
        "VALUES (1, 1, 'j', 'openai/gpt-4o-mini', 'p', 'now')"
    )
    db.execute(
        "INSERT INTO verdicts (run_id, pair_id, winner, tokens_in, cost, created_at) "
        "VALUES (1, 1, 'x', 100, 0.01, 'now')"
    )
    db.conn.commit()  # nothing open: autocommit
    db.close()

    store = Store.open(path)
    assert store.db.execute("SELECT tokens_in, tokens_cached FROM verdicts").fetchall() == [
        (100, 0)
    ]
    assert store.batches.open_batch_keys(1) == set() and store.batches.provider_batch_ids() == set()
    store.close()
