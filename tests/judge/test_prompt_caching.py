"""Prompt caching: the rubric's static part comes first in every call, Anthropic calls mark it
with cache_control, cached input tokens are recorded and priced at the cached rate, and estimates
count on the cache."""

from __future__ import annotations

import asyncio

import pytest

from judge.fake_server import Reply
from judge.pricing import estimate_cost, load_prices
from judge.providers.base import get_provider
from judge.rubric import parse_rubric
from judge.runner import JudgeParams, build_calls, render_call, run_judge
from tests.judge.conftest import sample_pairs

PROVIDERS = ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"]

NO_EXAMPLES = """
name: plain
version: 1
mode: pairwise
instructions: |
  Judge the two responses. {{criteria}}
criteria:
  - name: accuracy
    description: Facts are correct.
template: |
  {{prompt}} A: {{response_a}} B: {{response_b}}
"""

ITEM_IN_INSTRUCTIONS = NO_EXAMPLES.replace("Judge the two responses.", "Judge ({{category}}).")


def judge_once(spec, server, rubric) -> list:
    results = []

    async def go():
        base_url = (
            server.openai_base_url if spec.startswith("openai/") else server.anthropic_base_url
        )
        provider = get_provider(spec, api_key="test-key", base_url=base_url)
        try:
            await run_judge(
                provider,
                rubric,
                build_calls(sample_pairs(1), both_orders=False),
                results.append,
                params=JudgeParams(max_tokens=300),
            )
        finally:
            await provider.aclose()

    asyncio.run(go())
    return results


def test_the_static_part_comes_first_and_is_the_same_in_every_call(general):
    calls = build_calls(sample_pairs(3))
    rendered = [render_call(general, call) for call in calls]
    n = general.static_messages
    assert n == 1 + 2 * len(general.examples) and n >= 3
    assert all(messages[:n] == rendered[0][:n] for messages in rendered)
    assert rendered[0][0]["role"] == "system" and "accuracy" in rendered[0][0]["content"]
    # Only the last message is the item's.
    assert len(rendered[0]) == n + 1 and "Question 1?" in rendered[0][-1]["content"]


def test_instructions_that_use_an_item_variable_have_no_static_part():
    assert parse_rubric(NO_EXAMPLES).static_messages == 1
    assert parse_rubric(ITEM_IN_INSTRUCTIONS).static_messages == 0


def test_anthropic_marks_the_end_of_the_examples_as_the_cache_breakpoint(server, general):
    judge_once("anthropic/claude-haiku-4-5", server, general)
    body = server.requests[0]
    assert isinstance(body["system"], str) and "impartial judge" in body["system"]
    marked = [m for m in body["messages"] if isinstance(m["content"], list)]
    assert len(marked) == 1 and marked[0] is body["messages"][-2]
    assert marked[0]["role"] == "assistant"
    assert marked[0]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert isinstance(body["messages"][-1]["content"], str)  # the item is never cached


def test_anthropic_marks_the_system_prompt_when_there_are_no_examples(server):
    judge_once("anthropic/claude-haiku-4-5", server, parse_rubric(NO_EXAMPLES))
    system = server.requests[0]["system"]
    assert system[0]["cache_control"] == {"type": "ephemeral"}
    assert system[0]["text"].startswith("Judge the two responses.")


def test_anthropic_marks_nothing_when_nothing_is_static(server):
    judge_once("anthropic/claude-haiku-4-5", server, parse_rubric(ITEM_IN_INSTRUCTIONS))
    body = server.requests[0]
    assert isinstance(body["system"], str)
    assert all(isinstance(m["content"], str) for m in body["messages"])


def test_openai_requests_keep_plain_messages_for_automatic_caching(server, general):
    judge_once("openai/gpt-4o-mini", server, general)
    messages = server.requests[0]["messages"]
    assert all(isinstance(m["content"], str) for m in messages)
    assert messages[0]["role"] == "system"


@pytest.mark.parametrize("spec", PROVIDERS)
def test_cached_input_tokens_are_recorded_and_priced_at_the_cached_rate(spec, server, general):
    server.script = [Reply(tokens_in=2000, tokens_cached=1500, tokens_out=40)]
    result = judge_once(spec, server, general)[0]
    assert result.tokens_in == 2000 and result.tokens_cached == 1500
    expected = {
        "openai/gpt-4o-mini": (500 * 0.15 + 1500 * 0.075 + 40 * 0.60) / 1e6,
        "anthropic/claude-haiku-4-5": (500 * 1.00 + 1500 * 0.10 + 40 * 5.00) / 1e6,
    }[spec]
    assert result.cost == pytest.approx(expected)


def test_anthropic_cache_writes_are_priced_at_the_write_rate(server, general):
    server.script = [Reply(tokens_in=2000, tokens_cache_write=1500, tokens_out=40)]
    result = judge_once("anthropic/claude-haiku-4-5", server, general)[0]
    assert result.tokens_in == 2000 and result.tokens_cached == 0
    assert result.cost == pytest.approx((500 * 1.00 + 1500 * 1.25 + 40 * 5.00) / 1e6)


def test_the_estimate_counts_on_the_cache_once_the_prefix_is_long_enough():
    prices = load_prices()
    prompts = [20_000] * 10  # 5,000 tokens each
    plain = estimate_cost(prices, "openai/gpt-4o-mini", prompts, 1000)
    cached = estimate_cost(prices, "openai/gpt-4o-mini", prompts, 1000, prefix_chars=16_000)
    assert plain.tokens_cached == 0
    # The first call writes the 4,000-token prefix, the nine others read it.
    assert cached.tokens_cached == 9 * 4000
    saved = cached.tokens_cached * (0.15 - 0.075) / 1e6
    assert cached.cost == pytest.approx(plain.cost - saved)
    assert cached.max_cost == plain.max_cost  # the ceiling assumes no cache hit
    short = estimate_cost(prices, "openai/gpt-4o-mini", prompts, 1000, prefix_chars=2000)
    assert short.tokens_cached == 0  # 500 tokens: below what either provider caches


def test_the_estimate_at_the_batch_price_is_half():
    prices = load_prices()
    listed = estimate_cost(prices, "anthropic/claude-haiku-4-5", [8000] * 4, 500, 6000)
    batched = estimate_cost(prices, "anthropic/claude-haiku-4-5", [8000] * 4, 500, 6000, True)
    assert batched.batch and batched.cost == pytest.approx(listed.cost / 2)
    assert batched.max_cost == pytest.approx(listed.max_cost / 2)
