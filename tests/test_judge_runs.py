"""Judge runs in the workspace: planning, resuming, storing verdicts, failures, demo baselines."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from judge.fake_server import FakeJudgeServer, Reply
from judge.rubric import load_rubric
from review_app import baselines
from review_app.errors import InputError, JudgeUnavailable
from review_app.services import demo, judging
from tests.acting import acting
from tests.conftest import ROOT

RUBRICS = ROOT / "rubrics"
GENERAL = RUBRICS / "general-pairwise.yaml"


@pytest.fixture
def server(monkeypatch):
    with FakeJudgeServer() as fake:
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        monkeypatch.setenv("OPENAI_BASE_URL", fake.openai_base_url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.anthropic_base_url)
        yield fake


@pytest.fixture
def fast(settings):
    """Settings with short retries so failure paths finish quickly."""
    return replace(settings, judge_timeout=2.0, judge_backoff_cap=0.05, judge_max_attempts=2)


def demo_study(store) -> dict:
    return store.studies.require_study(demo.DEMO_STUDY)


def test_demo_seeds_every_baseline_in_both_orders(demo_store, settings):
    runs = {r["label"]: r for r in judging.judge_runs(demo_store, settings, "demo")}
    n_pairs = len(demo_store.frames.pairs_frame(demo_study(demo_store)["id"]))
    for name in ("longest", "shortest", "first", "random"):
        run = runs[f"baseline/{name}"]
        assert run["status"] == "complete"
        assert run["verdicts"] == run["parsed"] == 2 * n_pairs
        assert run["missing"] == 0 and run["cost"] == 0.0
    # Seeding again is a no-op: nothing is judged twice.
    demo.seed_demo(demo_store, settings)
    counts = demo_store.studies.study_counts(demo_study(demo_store)["id"])
    # Four baseline runs plus the imported example judge (both orders of every pair).
    assert counts["judge_runs"] == 5 and counts["verdicts"] == 8 * n_pairs + 2 * n_pairs


def test_stored_baselines_match_the_statistics_own_baselines(demo_store):
    study_id = demo_study(demo_store)["id"]
    pairs = demo_store.frames.pairs_frame(study_id)
    stored = demo_store.frames.verdicts_frame(study_id)
    stored = stored[stored.judge.map(baselines.is_baseline)]
    expected = baselines.computed_verdicts(pairs)
    key = ["judge", "pair_id", "first_system", "outcome"]
    assert sorted(map(tuple, stored[key].values.tolist())) == sorted(
        map(tuple, expected[key].values.tolist())
    )


def test_plan_counts_calls_and_cost_without_calling(demo_store, settings, server):
    plan = judging.plan_judge_run(demo_store, settings, "demo", GENERAL, "openai/gpt-4o-mini")
    n_pairs = len(demo_store.frames.pairs_frame(demo_study(demo_store)["id"]))
    assert plan.n_total == plan.n_missing == 2 * n_pairs and plan.run_id is None
    assert plan.estimate.cost > 0 and plan.estimate.max_cost > plan.estimate.cost
    assert f"{2 * n_pairs} calls to send" in plan.line()
    single = judging.plan_judge_run(
        demo_store, settings, "demo", GENERAL, "openai/gpt-4o-mini", both_orders=False
    )
    assert single.n_total == n_pairs
    local = judging.plan_judge_run(demo_store, settings, "demo", GENERAL, "openai/my-local")
    assert local.estimate.cost is None and "cost unknown" in local.line()
    assert server.count == 0


def test_a_run_stores_every_verdict_with_its_costs_and_resumes_to_nothing(
    demo_store, settings, server
):
    outcome = judging.start_judge_run(
        acting(demo_store, "demo", settings=settings), GENERAL, "openai/gpt-4o-mini", concurrency=8
    )
    n_calls = 2 * len(demo_store.frames.pairs_frame(demo_study(demo_store)["id"]))
    assert outcome.status == "complete" and outcome.progress.parsed == n_calls
    assert server.count == n_calls
    run = next(
        r for r in judging.judge_runs(demo_store, settings, "demo") if r["id"] == outcome.run_id
    )
    assert run["label"] == "openai/gpt-4o-mini · general-pairwise v1"
    assert run["rubric"] == "general-pairwise v1"
    assert run["verdicts"] == n_calls and run["missing"] == 0
    assert run["tokens_in"] == 120 * n_calls
    assert run["cost"] == pytest.approx(n_calls * (120 * 0.15 + 30 * 0.60) / 1e6)
    stored = demo_store.judging.judge_run(outcome.run_id)
    assert stored["rubric_hash"] == load_rubric(GENERAL).content_hash
    assert json.loads(stored["params"])["both_orders"] is True

    again = judging.start_judge_run(
        acting(demo_store, "demo", settings=settings), GENERAL, "openai/gpt-4o-mini"
    )
    assert again.run_id == outcome.run_id and again.progress.total == 0
    assert server.count == n_calls


def test_an_edited_rubric_is_a_new_run(demo_store, settings, server, tmp_path):
    edited = tmp_path / "general.yaml"
    edited.write_text(GENERAL.read_text().replace("impartial judge", "strict, impartial judge"))
    first = judging.start_judge_run(
        acting(demo_store, "demo", settings=settings), GENERAL, "openai/gpt-4o-mini"
    )
    second = judging.start_judge_run(
        acting(demo_store, "demo", settings=settings), edited, "openai/gpt-4o-mini"
    )
    assert second.run_id != first.run_id
    # Same name and version but different content: the label still tells them apart.
    assert second.label == "openai/gpt-4o-mini · general-pairwise v1 #2"
    hashes = {demo_store.judging.judge_run(r)["rubric_hash"] for r in (first.run_id, second.run_id)}
    assert len(hashes) == 2


def test_unparsed_answers_are_stored_with_their_raw_text_and_never_counted(
    demo_store, settings, server
):
    bad = '{"explanation": "cut off'
    server.answer = lambda request: Reply(content=bad, finish_reason="length")
    outcome = judging.start_judge_run(
        acting(demo_store, "demo", settings=replace(settings, judge_parse_retries=1)),
        GENERAL,
        "openai/gpt-4o",
    )
    n_calls = outcome.progress.total
    assert outcome.progress.unparsed == n_calls and outcome.status == "complete"
    assert server.count == 2 * n_calls  # one retry each
    failures = judging.judge_run_failures(demo_store, outcome.run_id)
    assert failures[0]["raw_text"] == bad and "truncated" in failures[0]["parse_error"]
    assert failures[0]["attempts"] == 2
    frame = demo_store.frames.verdicts_frame(demo_study(demo_store)["id"])
    mine = frame[frame["run_id"] == outcome.run_id]
    assert mine["outcome"].isna().all() and mine["winner"].isna().all()


def test_calls_that_keep_failing_are_reported_and_resent_next_time(demo_store, fast, server):
    pairs = demo_store.frames.pairs_frame(demo_study(demo_store)["id"])
    prompt = pairs[pairs["item_key"] == "support-001"]["prompt"].iloc[0]

    def unavailable_for_one_item(request):
        # Both comparisons of support-001, in both orders: four calls that never succeed.
        return Reply(status=503) if prompt in request["messages"][-1]["content"] else Reply()

    server.answer = unavailable_for_one_item
    first = judging.start_judge_run(
        acting(demo_store, "demo", settings=fast), GENERAL, "openai/gpt-4o-mini"
    )
    assert first.status == "incomplete" and len(first.failures) == 4
    assert "HTTP 503" in first.failures[0] and "gave up after 2 attempts" in first.failures[0]
    run = next(r for r in judging.judge_runs(demo_store, fast, "demo") if r["id"] == first.run_id)
    assert run["missing"] == 4 and run["status"] == "incomplete"
    server.answer = None
    before = server.count
    second = judging.start_judge_run(
        acting(demo_store, "demo", settings=fast), GENERAL, "openai/gpt-4o-mini"
    )
    assert second.run_id == first.run_id
    assert second.status == "complete" and server.count - before == 4


def test_pointwise_scores_are_stored_by_system_name(demo_store, settings, server):
    rubric = RUBRICS / "pointwise-quality.yaml"
    outcome = judging.start_judge_run(
        acting(demo_store, "demo", settings=settings),
        rubric,
        "anthropic/claude-haiku-4-5",
        both_orders=False,
    )
    row = demo_store.db.execute(
        "SELECT first_system, winner, scores FROM verdicts WHERE run_id = ? LIMIT 1",
        [outcome.run_id],
    ).fetchone()
    first_system, winner, scores = row
    scores = json.loads(scores)
    assert winner == first_system  # the fake judge scores A (shown first) highest
    assert scores[first_system]["accuracy"] == 5
    assert len(scores) == 2


def test_missing_key_is_one_line_naming_the_variable(demo_store, settings, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(JudgeUnavailable, match="ANTHROPIC_API_KEY"):
        judging.start_judge_run(
            acting(demo_store, "demo", settings=settings), GENERAL, "anthropic/claude-opus-4-1"
        )
    assert demo_store.studies.study_counts(demo_study(demo_store)["id"])["judge_runs"] == 5


def test_rejected_key_marks_the_run_failed(demo_store, settings, server):
    server.script = [Reply(status=401)]
    # A rejected key is the provider refusing, not a malformed input.
    with pytest.raises(JudgeUnavailable, match="HTTP 401") as raised:
        judging.start_judge_run(
            acting(demo_store, "demo", settings=settings),
            GENERAL,
            "openai/gpt-4o-mini",
            concurrency=1,
        )
    assert not isinstance(raised.value, InputError)
    runs = judging.judge_runs(demo_store, settings, "demo")
    assert runs[0]["status"] == "failed"


@pytest.mark.parametrize(
    "judge,message",
    [("gpt-4o", "PROVIDER/MODEL"), ("baseline/median", "unknown baseline judge")],
)
def test_bad_judge_names_are_input_errors(demo_store, settings, judge, message):
    with pytest.raises(InputError, match=message):
        judging.start_judge_run(acting(demo_store, "demo", settings=settings), GENERAL, judge)


def test_a_bad_rubric_file_is_an_input_error_naming_it(demo_store, settings, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(GENERAL.read_text() + "temperature: 0\n")
    with pytest.raises(InputError, match=r"bad\.yaml:\d+: temperature: unknown key"):
        judging.plan_judge_run(demo_store, settings, "demo", path, "openai/gpt-4o")


def test_available_rubrics_include_the_users_folder_and_flag_invalid_files(settings, tmp_path):
    (tmp_path / "mine.yaml").write_text(GENERAL.read_text().replace("general-pairwise", "mine"))
    (tmp_path / "broken.yaml").write_text("name: [")
    choices = judging.available_rubrics(replace(settings, judge_rubrics_dir=str(tmp_path)))
    titles = [c.title for c in choices]
    assert "mine v1 (pairwise)" in titles and "general-pairwise v1 (pairwise)" in titles
    broken = next(c for c in choices if c.path.name == "broken.yaml")
    assert broken.rubric is None and "not valid YAML" in broken.error
