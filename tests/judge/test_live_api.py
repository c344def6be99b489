"""Live calls to the real OpenAI and Anthropic APIs: opt-in (REVIEW_APP_LIVE_API=1 and a key),
skipped by default. They check that the structured-output request is accepted and parses."""

from __future__ import annotations

import asyncio

import pytest

from judge.providers.base import get_provider
from judge.runner import JudgeParams, build_calls, run_judge
from tests.judge.conftest import sample_pairs

pytestmark = pytest.mark.api


@pytest.mark.parametrize("spec", ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"])
@pytest.mark.parametrize("rubric_fixture", ["general", "pointwise"])
def test_live_judge_answers_in_the_rubric_schema(spec, rubric_fixture, request):
    rubric = request.getfixturevalue(rubric_fixture)

    async def go():
        provider = get_provider(spec)
        results = []
        try:
            await run_judge(
                provider,
                rubric,
                build_calls(sample_pairs(1), both_orders=False),
                results.append,
                params=JudgeParams(max_tokens=400),
            )
        finally:
            await provider.aclose()
        return results

    [result] = asyncio.run(go())
    assert result.verdict.parsed, result.verdict.parse_error
    assert result.tokens_in > 0 and result.cost is not None
