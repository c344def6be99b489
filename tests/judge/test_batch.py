"""Batch judging (`judge.batch`) through the real OpenAI and Anthropic SDKs against the local fake
of their batch endpoints: same parser, batch price, splitting, resuming, re-sending only what came
back without an answer, never sending a request twice, cancelling."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime

import pytest

from judge.batch import OpenBatch, cancel_batches, new_batch_key, run_batches
from judge.errors import FatalProviderError, NotFoundAtProvider
from judge.fake_server import FakeJudgeServer, Reply
from judge.pricing import load_prices
from judge.providers.base import BatchLimits, get_provider
from judge.runner import JudgeParams, RunOptions, build_calls, judge_request, run_judge
from tests.judge.conftest import sample_pairs

PROVIDERS = ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"]
PARAMS = JudgeParams(max_tokens=300)


class MemoryJournal:
    """The BatchJournal of one run, in memory: what the app's store does, without SQL."""

    def __init__(self) -> None:
        self.batches: dict[int, dict] = {}
        self.answers: dict[tuple[int, str], object] = {}
        self.stored_twice = 0

    def open_batches(self) -> list[OpenBatch]:
        return [
            OpenBatch(i, b["key"], b["batch_id"], b["created_at"], b["requests"])
            for i, b in self.batches.items()
            if not b["collected"]
        ]

    def taken(self) -> set[tuple[int, str]]:
        waiting = {key for b in self.open_batches() for key in b.requests.values()}
        return set(self.answers) | waiting

    def known_batch_ids(self) -> set[str]:
        return {b["batch_id"] for b in self.batches.values() if b["batch_id"]}

    def record_batch(self, key, requests) -> int:
        local_id = len(self.batches) + 1
        self.batches[local_id] = {
            "key": key,
            "batch_id": None,
            "created_at": datetime.now(UTC),
            "requests": requests,
            "collected": False,
            "status": None,
        }
        return local_id

    def update_batch(self, local_id, status) -> None:
        self.batches[local_id].update(batch_id=status.batch_id, status=status)

    def store_answers(self, results) -> None:
        for result in results:
            key = (result.call.pair_id, result.call.first_system)
            self.stored_twice += key in self.answers
            self.answers.setdefault(key, result)

    def batch_collected(self, local_id, answered, failed, error) -> None:
        self.batches[local_id].update(collected=True, answered=answered, failed=failed)


def make_provider(spec: str, server: FakeJudgeServer, **options):
    base_url = server.openai_base_url if spec.startswith("openai/") else server.anthropic_base_url
    return get_provider(spec, api_key="test-key", base_url=base_url, **options)


def run(spec, server, rubric, journal, pairs=2, submit=True, wait=True, cancel=False, **options):
    """One `review-app judge --batch` invocation, in a fresh provider (as a new process would)."""
    sleeps: list[float] = []

    async def record_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        await asyncio.sleep(0.05)

    async def go():
        provider = make_provider(spec, server, **options)
        try:
            if cancel:
                await cancel_batches(provider, journal)
            return await run_batches(
                provider,
                rubric,
                build_calls(sample_pairs(pairs)),
                journal,
                params=PARAMS,
                prices=load_prices(),
                options=RunOptions(backoff_cap_s=0.01),
                submit=submit,
                wait=wait,
                poll_interval_s=0.05,
                sleep=record_sleep,
            )
        finally:
            await provider.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize("spec", PROVIDERS)
def test_batch_answers_are_parsed_like_interactive_ones_at_the_batch_price(spec, server, general):
    journal = MemoryJournal()
    progress = run(spec, server, general, journal)
    assert len(server.batches) == 1 and len(server.batch_custom_ids) == 4
    assert progress.submitted == 4 and progress.answers.parsed == 4 and progress.failed == 0
    assert progress.open == 0
    for (_, first), result in journal.answers.items():
        assert result.verdict.winner == "first" and result.winner_system == first
        assert result.tokens_in == 120 and result.tokens_out == 30 and result.latency_ms is None
    list_price = load_prices().cost(spec, 120, 30)
    assert all(r.cost == pytest.approx(list_price / 2) for r in journal.answers.values())
    assert progress.answers.cost == pytest.approx(4 * list_price / 2)


@pytest.mark.parametrize("spec", PROVIDERS)
def test_a_batch_request_is_the_interactive_request(spec, server, general):
    """Same model, prompt, schema and limits whichever way a call goes out."""
    run(spec, server, general, MemoryJournal(), pairs=1)
    batched = dict(next(iter(server.batches.values())).requests)

    async def interactive():
        provider = make_provider(spec, server)
        try:
            await run_judge(
                provider, general, build_calls(sample_pairs(1)), lambda r: None, params=PARAMS
            )
        finally:
            await provider.aclose()

    server.requests.clear()
    asyncio.run(interactive())

    def canonical(bodies):
        return sorted(json.dumps(body, sort_keys=True) for body in bodies)

    assert canonical(batched.values()) == canonical(server.requests)


@pytest.mark.parametrize("spec", PROVIDERS)
def test_a_large_run_is_split_within_the_providers_limits(spec, general):
    with FakeJudgeServer(max_batch_requests=3) as server:
        journal = MemoryJournal()
        limits = BatchLimits(max_requests=3, max_bytes=10**9)
        progress = run(spec, server, general, journal, pairs=5, batch_limits=limits)
    assert sorted(len(b.requests) for b in server.batches.values()) == [1, 3, 3, 3]
    assert progress.answers.parsed == 10 and len(journal.answers) == 10
    assert len(server.batch_custom_ids) == len(set(server.batch_custom_ids)) == 10


@pytest.mark.parametrize("spec", PROVIDERS)
def test_the_byte_limit_splits_too(spec, server, general):
    one = len(json.dumps(make_request_body(spec, server, general))) + 1
    limits = BatchLimits(max_requests=1000, max_bytes=2 * one + 10)
    journal = MemoryJournal()
    run(spec, server, general, journal, pairs=3, batch_limits=limits)
    assert sorted(len(b.requests) for b in server.batches.values()) == [2, 2, 2]
    assert len(journal.answers) == 6


def make_request_body(spec, server, rubric) -> dict:
    provider = make_provider(spec, server)
    call = build_calls(sample_pairs(1))[0]
    body = provider.batch_request(
        "0123456789abcdef-0", judge_request(provider, rubric, call, PARAMS)
    )
    asyncio.run(provider.aclose())
    return body


@pytest.mark.parametrize("spec", PROVIDERS)
def test_errored_and_expired_requests_go_out_again_on_the_next_run_only(spec, server, general):
    server.script = [Reply(status=500), Reply(expired=True)]
    journal = MemoryJournal()
    first = run(spec, server, general, journal)
    assert first.answers.parsed == 2 and first.failed == 2
    assert any("500" in e for e in first.errors) and any("expired" in e for e in first.errors)
    missing = {(1, "base"), (1, "finetuned"), (2, "base"), (2, "finetuned")} - set(journal.answers)
    assert len(missing) == 2

    second = run(spec, server, general, journal)
    assert second.submitted == 2 and second.answers.parsed == 2
    assert len(journal.answers) == 4 and journal.stored_twice == 0
    resent = list(server.batches.values())[-1].requests
    assert len(resent) == 2 and len(server.batch_custom_ids) == 6


@pytest.mark.parametrize("spec", PROVIDERS)
def test_an_open_batch_is_resumed_never_sent_again(spec, server, general):
    server.batch_delay_s = 60
    journal = MemoryJournal()
    first = run(spec, server, general, journal, wait=False)
    assert first.open == 1 and first.submitted == 4 and not journal.answers
    # Days later, another process: it looks at the same batch and sends nothing new.
    again = run(spec, server, general, journal, wait=False)
    assert again.submitted == 0 and again.open == 1
    assert len(server.batches) == 1 and len(server.batch_custom_ids) == 4

    server.batch_delay_s = 0
    done = run(spec, server, general, journal)
    assert done.submitted == 0 and done.answers.parsed == 4 and len(journal.answers) == 4
    assert len(server.batch_custom_ids) == 4 and journal.stored_twice == 0


@pytest.mark.parametrize("spec", PROVIDERS)
def test_a_batch_sent_just_before_a_crash_is_found_not_sent_again(spec, server, general):
    """The process died after the provider accepted the batch but before its id was recorded."""
    journal = MemoryJournal()
    calls = build_calls(sample_pairs(2))
    key = new_batch_key()
    requests = {f"{key}-{i}": (c.pair_id, c.first_system) for i, c in enumerate(calls)}
    journal.record_batch(key, requests)

    async def send_and_crash():
        provider = make_provider(spec, server)
        bodies = [
            provider.batch_request(custom_id, judge_request(provider, general, call, PARAMS))
            for custom_id, call in zip(requests, calls, strict=True)
        ]
        await provider.submit_batch(key, bodies)
        await provider.aclose()

    asyncio.run(send_and_crash())
    progress = run(spec, server, general, journal)
    assert len(server.batches) == 1 and len(server.batch_custom_ids) == 4
    assert progress.submitted == 0 and progress.answers.parsed == 4


@pytest.mark.parametrize("spec", PROVIDERS)
def test_a_lost_acknowledgement_is_looked_up_before_sending_again(spec, general):
    with FakeJudgeServer(lost_batch_acks=1) as server:
        journal = MemoryJournal()
        progress = run(spec, server, general, journal)
    assert len(server.batches) == 1 and len(server.batch_custom_ids) == 4
    assert progress.answers.parsed == 4 and journal.stored_twice == 0


@pytest.mark.parametrize("spec", PROVIDERS)
def test_a_batch_that_never_reached_the_provider_is_sent_on_resume(spec, server, general):
    journal = MemoryJournal()
    calls = build_calls(sample_pairs(1))
    key = new_batch_key()
    journal.record_batch(
        key, {f"{key}-{i}": (c.pair_id, c.first_system) for i, c in enumerate(calls)}
    )
    progress = run(spec, server, general, journal, pairs=1)
    assert len(server.batches) == 1 and progress.answers.parsed == 2
    assert server.batch_custom_ids == [f"{key}-0", f"{key}-1"]


@pytest.mark.parametrize("spec", PROVIDERS)
def test_cancel_stops_a_batch_and_its_calls_go_out_again_next_run(spec, server, general):
    server.batch_delay_s = 60
    journal = MemoryJournal()
    run(spec, server, general, journal, wait=False)
    cancelled = run(spec, server, general, journal, submit=False, wait=False, cancel=True)
    batch = next(iter(server.batches.values()))
    assert batch.cancel_requested
    assert cancelled.open == 0 and cancelled.failed == 4 and not journal.answers
    assert list(cancelled.statuses.values())[0].provider_status in ("cancelled", "ended")

    server.batch_delay_s = 0
    again = run(spec, server, general, journal)
    assert again.submitted == 4 and len(journal.answers) == 4 and len(server.batches) == 2


def test_an_unrelated_batch_is_not_taken_for_ours(server, general):
    """Anthropic batches carry no metadata: a batch of another size is never adopted."""
    run("anthropic/claude-haiku-4-5", server, general, MemoryJournal(), pairs=1)  # someone else's
    journal = MemoryJournal()
    key = new_batch_key()
    calls = build_calls(sample_pairs(2))
    journal.record_batch(
        key, {f"{key}-{i}": (c.pair_id, c.first_system) for i, c in enumerate(calls)}
    )
    run("anthropic/claude-haiku-4-5", server, general, journal, pairs=2)
    assert len(server.batches) == 2 and len(journal.answers) == 4


def test_a_batch_the_provider_refused_is_reported_and_sent_again_next_run(general):
    with FakeJudgeServer(invalid_batches="the input file is not valid") as server:
        journal = MemoryJournal()
        first = run("openai/gpt-4o-mini", server, general, journal)
        assert first.failed == 4 and not journal.answers
        assert "failed: the input file is not valid" in first.errors[0]
        server.invalid_batches = None
        again = run("openai/gpt-4o-mini", server, general, journal)
    assert again.submitted == 4 and len(journal.answers) == 4


@pytest.mark.parametrize("spec", PROVIDERS)
def test_a_batch_the_provider_no_longer_knows_is_never_given_up_silently(spec, server, general):
    server.batch_delay_s = 60
    journal = MemoryJournal()
    run(spec, server, general, journal, wait=False)
    server.batches.clear()  # another API key, or gone for good
    with pytest.raises(NotFoundAtProvider, match="does not know batch .* cancel the run"):
        run(spec, server, general, journal, wait=False)
    assert len(journal.open_batches()) == 1  # its calls are still taken: nothing resent
    # Cancelling closes it; the next run sends its calls again.
    run(spec, server, general, journal, submit=False, wait=False, cancel=True)
    assert journal.open_batches() == []
    server.batch_delay_s = 0
    again = run(spec, server, general, journal)
    assert again.submitted == 4 and len(journal.answers) == 4


@pytest.mark.parametrize("spec", PROVIDERS)
def test_cancelling_an_ended_batch_collects_it(spec, server, general):
    server.batch_delay_s = 0.3
    journal = MemoryJournal()
    run(spec, server, general, journal, wait=False)
    time.sleep(0.4)
    done = run(spec, server, general, journal, submit=False, wait=False, cancel=True)
    assert not next(iter(server.batches.values())).cancel_requested
    assert done.answers.parsed == 4 and len(journal.answers) == 4


@pytest.mark.parametrize("spec", PROVIDERS)
def test_a_refused_batch_keeps_no_call_reserved(spec, general):
    with FakeJudgeServer(refuse_batches=401) as server:
        journal = MemoryJournal()
        with pytest.raises(FatalProviderError, match="401"):
            run(spec, server, general, journal)
        assert journal.open_batches() == [] and journal.taken() == set()
        server.refuse_batches = 0
        again = run(spec, server, general, journal)
    assert again.submitted == 4 and len(journal.answers) == 4
