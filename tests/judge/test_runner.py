"""The runner with in-process providers: orders, concurrency, resume, rate limits, backoff,
progress, costs, and the provider registry."""

from __future__ import annotations

import asyncio
import json
import random

import pytest

from judge.errors import JudgeError, TransientError
from judge.pricing import load_prices
from judge.providers.base import Completion, JudgeRequest, get_provider, split_spec
from judge.providers.fake import ScriptedProvider
from judge.rubric import load_rubric
from judge.runner import (
    JudgeParams,
    RunOptions,
    Throttle,
    backoff_delay,
    build_calls,
    missing_calls,
    run_judge,
)
from tests.judge.conftest import RUBRICS, sample_pairs


def run(provider, rubric, calls, **kwargs):
    results = []
    summary = asyncio.run(run_judge(provider, rubric, calls, results.append, **kwargs))
    return results, summary


def test_both_orders_by_default_and_winners_map_back_to_systems(general):
    calls = build_calls(sample_pairs(3))
    assert len(calls) == 6
    assert {(c.pair_id, c.first_system) for c in calls} == {
        (i, s) for i in (1, 2, 3) for s in ("base", "finetuned")
    }
    swapped = next(c for c in calls if c.first_system == "finetuned")
    assert swapped.first_text.startswith("a much longer") and swapped.second_text.startswith(
        "short"
    )
    results, _ = run(ScriptedProvider(), general, calls)
    # The scripted judge always says "A": a judge with total position bias.
    for result in results:
        assert result.winner_system == result.call.first_system


def test_single_order_is_seeded_and_uses_both_orientations():
    pairs = sample_pairs(40)
    calls = build_calls(pairs, both_orders=False, seed=7)
    assert len(calls) == 40
    assert calls == build_calls(pairs, both_orders=False, seed=7)
    firsts = [c.first_system for c in calls]
    assert 5 < firsts.count("base") < 35
    other_seed = [c.first_system for c in build_calls(pairs, both_orders=False, seed=8)]
    assert other_seed != firsts


def test_concurrency_is_bounded_and_used(general):
    provider = ScriptedProvider(latency_s=0.01)
    results, summary = run(
        provider, general, build_calls(sample_pairs(20)), options=RunOptions(concurrency=5)
    )
    assert len(results) == 40 and summary.progress.done == 40
    assert provider.max_in_flight == 5


def test_a_huge_concurrency_starts_no_more_workers_than_calls(general):
    tasks_seen = []

    class CountingProvider(ScriptedProvider):
        async def complete(self, request):
            tasks_seen.append(len(asyncio.all_tasks()))
            return await super().complete(request)

    calls = build_calls(sample_pairs(2))
    results, _ = run(CountingProvider(), general, calls, options=RunOptions(concurrency=100_000))
    assert len(results) == 4
    assert max(tasks_seen) <= len(calls) + 1  # the workers and the run itself


def test_each_result_is_handed_over_while_other_calls_are_still_in_flight(general):
    provider = ScriptedProvider(latency_s=0.01)
    in_flight_at_result = []

    def persist(result):
        in_flight_at_result.append(provider.in_flight)

    asyncio.run(
        run_judge(
            provider,
            general,
            build_calls(sample_pairs(10)),
            persist,
            options=RunOptions(concurrency=4),
        )
    )
    assert len(in_flight_at_result) == 20
    assert max(in_flight_at_result) > 0


def test_resume_sends_only_the_missing_calls(general):
    calls = build_calls(sample_pairs(5))
    stored = {}

    def persist(result):
        key = (result.call.pair_id, result.call.first_system)
        assert key not in stored
        stored[key] = result

    first = ScriptedProvider()
    asyncio.run(run_judge(first, general, calls[:4], persist))
    second = ScriptedProvider()
    todo = missing_calls(calls, set(stored))
    asyncio.run(run_judge(second, general, todo, persist))
    assert len(first.requests) == 4 and len(second.requests) == 6
    assert len(stored) == 10
    assert missing_calls(calls, set(stored)) == []


def test_a_failing_persist_stops_the_run(general):
    provider = ScriptedProvider(latency_s=0.005)

    def persist(result):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        asyncio.run(
            run_judge(
                provider, general, build_calls(sample_pairs(50)), persist, options=RunOptions()
            )
        )
    assert len(provider.requests) < 100


def test_progress_reports_every_call(general):
    script = [Completion(text="nonsense")] * 3  # first call: unparsed after 2 retries
    provider = ScriptedProvider(script=script)
    seen = []
    results, summary = run(
        provider,
        general,
        build_calls(sample_pairs(2)),
        options=RunOptions(concurrency=1, parse_retries=2),
        on_progress=lambda p: seen.append((p.done, p.parsed, p.unparsed)),
        prices=load_prices(),
    )
    assert seen == [(1, 0, 1), (2, 1, 1), (3, 2, 1), (4, 3, 1)]
    assert summary.progress.total == 4
    # fake/scripted has no price: the cost is unknown, not zero.
    assert summary.progress.cost_unknown and results[0].cost is None


def test_transient_errors_are_retried_and_counted(general):
    provider = ScriptedProvider(script=[TransientError("HTTP 502"), TransientError("HTTP 502")])
    results, _ = run(
        provider, general, build_calls(sample_pairs(1), both_orders=False), sleep=_no_sleep
    )
    assert results[0].attempts == 3 and results[0].verdict.parsed


def test_rubric_that_cannot_render_an_item_reports_a_failure_not_a_verdict():
    rubric = load_rubric(RUBRICS / "reference-pairwise.yaml")
    pairs = sample_pairs(2)
    pairs[0]["reference"] = None
    provider = ScriptedProvider()
    results, summary = run(provider, rubric, build_calls(pairs, both_orders=False))
    assert len(results) == 1 and summary.progress.failed == 1
    assert "needs reference" in summary.failures[0].error
    assert len(provider.requests) == 1


async def _no_sleep(seconds: float) -> None:
    await asyncio.sleep(0)


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    options = RunOptions(backoff_base_s=1.0, backoff_cap_s=10.0, retry_after_cap_s=5.0)
    rng = random.Random(0)
    for failures, ceiling in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (9, 10)]:
        delays = [backoff_delay(failures, None, options, rng) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1
    assert 3.0 <= backoff_delay(1, 3.0, options, rng) <= 3.3
    assert backoff_delay(1, 3600.0, options, rng) == 5.0


class VirtualClock:
    """Time that only moves when the throttle sleeps, so spacing is exact and tests are instant."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_requests_per_minute_space_out_call_starts():
    clock = VirtualClock()
    throttle = Throttle(rpm=120, tpm=None, clock=clock, sleep=clock.sleep)
    starts = []

    async def go():
        for _ in range(5):
            await throttle.acquire(100)
            starts.append(clock.now)

    asyncio.run(go())
    assert starts == [0.0, 0.5, 1.0, 1.5, 2.0]


def test_tokens_per_minute_bucket_waits_for_refill():
    clock = VirtualClock()
    throttle = Throttle(rpm=None, tpm=6000, clock=clock, sleep=clock.sleep)
    starts = []

    async def go():
        for _ in range(4):
            await throttle.acquire(3000)
            starts.append(clock.now)

    asyncio.run(go())
    # A full bucket pays for two calls; then 3000 tokens refill every 30 seconds.
    assert starts == pytest.approx([0.0, 0.0, 30.0, 60.0])


def test_no_limits_means_no_waiting():
    clock = VirtualClock()
    throttle = Throttle(rpm=None, tpm=None, clock=clock, sleep=clock.sleep)
    asyncio.run(throttle.acquire(10**9))
    assert clock.now == 0.0


def test_params_hash_identifies_what_changes_answers():
    assert JudgeParams().params_hash == JudgeParams().params_hash
    assert JudgeParams(both_orders=False).params_hash != JudgeParams().params_hash
    assert JudgeParams(max_tokens=10).params_hash != JudgeParams().params_hash


@pytest.mark.parametrize(
    "name,expected_first_wins",
    [("longest", [False, True]), ("shortest", [True, False]), ("first", [True, True])],
)
def test_baseline_judges_decide_locally(general, name, expected_first_wins):
    provider = get_provider(f"baseline/{name}")
    calls = build_calls(sample_pairs(1))  # base has the shorter output
    results, summary = run(provider, general, calls)
    by_first = {r.call.first_system: r.verdict.winner == "first" for r in results}
    assert [by_first["base"], by_first["finetuned"]] == expected_first_wins
    assert summary.progress.cost == 0.0 and not summary.progress.cost_unknown
    assert all(r.tokens_in == 0 for r in results)


def test_random_baseline_is_reproducible_per_seed(general):
    calls = build_calls(sample_pairs(30))

    def winners(seed):
        results, _ = run(
            get_provider("baseline/random"), general, calls, params=JudgeParams(seed=seed)
        )
        return sorted((r.call.key, r.verdict.winner) for r in results)

    assert winners(1) == winners(1)
    assert winners(1) != winners(2)
    assert {w for _, w in winners(1)} == {"first", "second"}


@pytest.mark.parametrize(
    "spec,message",
    [
        ("gpt-4o", "not of the form PROVIDER/MODEL"),
        ("azure/gpt-4o", "unknown judge provider 'azure'"),
        ("fake/scripted", "unknown judge provider 'fake'"),
        ("baseline/median", "unknown baseline judge 'median'"),
    ],
)
def test_bad_judge_names_explain_themselves(spec, message):
    with pytest.raises(JudgeError, match=message):
        get_provider(spec)


def test_split_spec_keeps_slashes_in_model_names():
    assert split_spec("openai/meta-llama/Llama-3-8B") == ("openai", "meta-llama/Llama-3-8B")


def test_scripted_provider_records_what_it_was_asked(general):
    provider = ScriptedProvider()
    run(provider, general, build_calls(sample_pairs(1), both_orders=False))
    [request] = provider.requests
    assert isinstance(request, JudgeRequest)
    assert request.schema == general.output_schema()
    assert json.dumps(request.messages).count("Question 1?") == 1
