"""The real OpenAI and Anthropic SDK clients against a local fake server on 127.0.0.1:
structured output, rate limits, server errors, timeouts and bad answers."""

from __future__ import annotations

import asyncio
import json
import random

import httpx2
import pytest

from judge.errors import FatalProviderError, MissingCredentials
from judge.fake_server import FakeJudgeServer, Reply
from judge.providers.base import get_provider
from judge.runner import JudgeParams, RunOptions, build_calls, run_judge
from tests.judge.conftest import sample_pairs

PROVIDERS = ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"]


def make_provider(spec: str, server: FakeJudgeServer):
    if spec.startswith("openai/"):
        return get_provider(spec, api_key="test-key", base_url=server.openai_base_url)
    return get_provider(spec, api_key="test-key", base_url=server.anthropic_base_url)


def judge(spec, server, rubric, pairs=1, options=None, both_orders=False):
    """Run the judge over `pairs` sample pairs; return (results, summary, recorded sleeps)."""
    results = []
    sleeps: list[float] = []

    async def record_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def go():
        provider = make_provider(spec, server)
        try:
            return await run_judge(
                provider,
                rubric,
                build_calls(sample_pairs(pairs), both_orders=both_orders),
                results.append,
                params=JudgeParams(max_tokens=300),
                options=options or RunOptions(concurrency=4, timeout_s=5),
                sleep=record_sleep,
                rng=random.Random(1),
            )
        finally:
            await provider.aclose()

    summary = asyncio.run(go())
    return results, summary, sleeps


@pytest.mark.parametrize("spec", PROVIDERS)
def test_structured_output_request_and_parsed_verdict(spec, server, general):
    results, summary, _ = judge(spec, server, general, pairs=2, both_orders=True)
    assert summary.progress.parsed == 4 and not summary.failures
    body = server.requests[0]
    if spec.startswith("openai/"):
        fmt = body["response_format"]
        assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
        assert fmt["json_schema"]["schema"] == general.output_schema()
        assert body["messages"][0]["role"] == "system"
        assert body["max_tokens"] == 300
    else:
        assert body["output_config"]["format"] == {
            "type": "json_schema",
            "schema": general.output_schema(),
        }
        assert "impartial judge" in body["system"]
        assert all(m["role"] != "system" for m in body["messages"])
    # The fake server always answers "A": the winner is whichever system was shown first.
    for result in results:
        assert result.verdict.winner == "first"
        assert result.winner_system == result.call.first_system
        assert result.tokens_in == 120 and result.tokens_out == 30
        assert result.attempts == 1
        assert result.latency_ms >= 0
    assert {r.call.first_system for r in results} == {"base", "finetuned"}


@pytest.mark.parametrize("spec", PROVIDERS)
def test_latency_of_the_answering_call_is_measured(spec, server, general):
    server.script = [Reply(delay_s=0.15)]
    results, _, _ = judge(spec, server, general)
    assert results[0].latency_ms >= 150


@pytest.mark.parametrize("spec", PROVIDERS)
def test_cost_comes_from_the_price_table(spec, server, general):
    results, summary, _ = judge(spec, server, general)
    expected = {
        "openai/gpt-4o-mini": (120 * 0.15 + 30 * 0.60) / 1e6,
        "anthropic/claude-haiku-4-5": (120 * 1.00 + 30 * 5.00) / 1e6,
    }[spec]
    assert results[0].cost == pytest.approx(expected)
    assert summary.progress.cost == pytest.approx(expected)


@pytest.mark.parametrize("spec", PROVIDERS)
def test_pointwise_scores_through_the_sdk(spec, server, pointwise):
    results, _, _ = judge(spec, server, pointwise)
    assert results[0].verdict.winner == "first"
    assert results[0].verdict.scores["first"]["accuracy"] == 5
    assert results[0].verdict.scores["second"]["accuracy"] == 1


@pytest.mark.parametrize("spec", PROVIDERS)
def test_429_retry_after_is_honoured_and_the_sdk_does_not_retry_by_itself(spec, server, general):
    server.script = [Reply(status=429, headers={"retry-after": "0.05"})]
    results, summary, sleeps = judge(spec, server, general)
    assert server.count == 2
    assert results[0].attempts == 2 and results[0].verdict.parsed
    assert len(sleeps) == 1 and 0.05 <= sleeps[0] <= 0.055


@pytest.mark.parametrize("spec", PROVIDERS)
def test_huge_retry_after_is_capped(spec, server, general):
    server.script = [Reply(status=429, headers={"retry-after": "86400"})]
    options = RunOptions(timeout_s=5, retry_after_cap_s=2.0)
    results, _, sleeps = judge(spec, server, general, options=options)
    assert sleeps == [2.0]
    assert results[0].verdict.parsed and server.count == 2


def test_retry_after_ms_header_is_understood(server, general):
    server.script = [Reply(status=429, headers={"retry-after-ms": "30"})]
    _, _, sleeps = judge("openai/gpt-4o-mini", server, general)
    assert 0.03 <= sleeps[0] <= 0.033


@pytest.mark.parametrize("spec", PROVIDERS)
def test_server_error_is_retried_with_capped_exponential_backoff(spec, server, general):
    server.script = [Reply(status=500), Reply(status=503), Reply(status=502)]
    options = RunOptions(timeout_s=5, backoff_base_s=1.0, backoff_cap_s=3.0)
    results, _, sleeps = judge(spec, server, general, options=options)
    assert results[0].attempts == 4 and results[0].verdict.parsed
    assert server.count == 4
    # Jittered between half and all of 1, 2, then 4 capped to 3 seconds.
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0 and 1.5 <= sleeps[2] <= 3.0


@pytest.mark.parametrize("spec", PROVIDERS)
def test_exhausted_retries_are_reported_and_nothing_is_stored(spec, server, general):
    server.script = [Reply(status=500)] * 3
    options = RunOptions(timeout_s=5, max_attempts=3)
    results, summary, _ = judge(spec, server, general, options=options)
    assert results == []
    assert summary.progress.failed == 1 and summary.progress.parsed == 0
    assert "HTTP 500" in summary.failures[0].error
    assert "gave up after 3 attempts" in summary.failures[0].error
    assert server.count == 3


@pytest.mark.parametrize("spec", PROVIDERS)
def test_timeout_is_retried(spec, server, general):
    server.script = [Reply(delay_s=3.0)]
    options = RunOptions(timeout_s=0.3)
    results, _, sleeps = judge(spec, server, general, options=options)
    assert results[0].verdict.parsed and results[0].attempts == 2
    assert len(sleeps) == 1


@pytest.mark.parametrize("spec", PROVIDERS)
def test_timeouts_until_gave_up_are_reported(spec, server, general):
    server.script = [Reply(delay_s=3.0)] * 2
    options = RunOptions(timeout_s=0.2, max_attempts=2)
    results, summary, _ = judge(spec, server, general, options=options)
    assert results == []
    assert "timed out" in summary.failures[0].error


@pytest.mark.parametrize("spec", PROVIDERS)
@pytest.mark.parametrize(
    "reply,reason",
    [
        (Reply(content='{"explanation": "A is better", "winner": '), "malformed JSON"),
        (Reply(content='{"explanation": "fine", "winner": "C"}'), "label 'C'"),
        (Reply(content='{"explanation": "A is bet', finish_reason="length"), "truncated"),
        (Reply(content=""), "empty answer"),
    ],
    ids=["malformed", "bad-label", "truncated", "empty"],
)
def test_bad_answers_are_stored_unparsed_after_retries(spec, server, general, reply, reason):
    server.script = [reply] * 3
    options = RunOptions(timeout_s=5, parse_retries=2)
    results, summary, _ = judge(spec, server, general, options=options)
    assert server.count == 3
    [result] = results
    assert result.verdict.winner is None and result.winner_system is None
    assert reason in result.verdict.parse_error
    assert result.raw_text == reply.content
    assert result.attempts == 3
    assert result.tokens_in == 3 * 120  # every paid attempt is counted
    assert summary.progress.unparsed == 1 and summary.progress.parsed == 0


@pytest.mark.parametrize("spec", PROVIDERS)
def test_refusal_is_unparsed(spec, server, general):
    if spec.startswith("openai/"):
        reply = Reply(refusal="I can't judge this.")
    else:
        reply = Reply(content="I can't judge this.", finish_reason="refusal")
    server.script = [reply]
    results, _, _ = judge(spec, server, general, options=RunOptions(parse_retries=0))
    assert results[0].verdict.winner is None
    assert results[0].verdict.parse_error.startswith("refusal")


@pytest.mark.parametrize("spec", PROVIDERS)
def test_an_unparsed_answer_then_a_good_one_counts_as_parsed(spec, server, general):
    server.script = [Reply(content="not json")]
    results, _, _ = judge(spec, server, general)
    assert results[0].verdict.parsed and results[0].attempts == 2


@pytest.mark.parametrize("spec", PROVIDERS)
def test_rejected_key_stops_the_run(spec, server, general):
    server.script = [Reply(status=401)]
    with pytest.raises(FatalProviderError, match="HTTP 401"):
        judge(spec, server, general, pairs=1)
    assert server.count == 1


@pytest.mark.parametrize(
    "spec,variable",
    [("openai/gpt-4o", "OPENAI_API_KEY"), ("anthropic/claude-sonnet-4-5", "ANTHROPIC_API_KEY")],
)
def test_missing_key_is_one_line_naming_the_variable(spec, variable, monkeypatch):
    monkeypatch.delenv(variable, raising=False)
    with pytest.raises(MissingCredentials) as info:
        get_provider(spec)
    assert variable in str(info.value) and "\n" not in str(info.value)


def test_openai_compatible_server_through_environment_variables(server, general, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "local")
    monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)

    async def go():
        provider = get_provider("openai/llama-3.1-8b-instruct")
        results = []
        await run_judge(
            provider, general, build_calls(sample_pairs(1), both_orders=False), results.append
        )
        await provider.aclose()
        return results

    [result] = asyncio.run(go())
    assert result.verdict.parsed
    assert server.requests[0]["model"] == "llama-3.1-8b-instruct"
    assert result.cost is None  # a local model has no known price


def test_anthropic_base_url_environment_variable(server, general, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.anthropic_base_url)

    async def go():
        provider = get_provider("anthropic/claude-haiku-4-5")
        results = []
        await run_judge(
            provider, general, build_calls(sample_pairs(1), both_orders=False), results.append
        )
        await provider.aclose()
        return results

    assert asyncio.run(go())[0].verdict.parsed
    assert server.count == 1


def test_openai_sdk_through_an_httpx2_mock_transport(general):
    seen = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        seen.append(json.loads(request.content))
        return httpx2.Response(
            200,
            json={
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": "gpt-4o-mini",
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": '{"explanation":"","winner":"B"}',
                        },
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            },
        )

    async def go():
        client = httpx2.AsyncClient(transport=httpx2.MockTransport(handle))
        provider = get_provider("openai/gpt-4o-mini", api_key="k", http_client=client)
        results = []
        await run_judge(
            provider, general, build_calls(sample_pairs(1), both_orders=False), results.append
        )
        await provider.aclose()
        return results

    [result] = asyncio.run(go())
    assert result.verdict.winner == "second"
    assert result.winner_system == result.call.second_system
    assert seen[0]["response_format"]["json_schema"]["name"] == "pairwise_verdict"
