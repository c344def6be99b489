"""Fixtures for the judge engine: a local fake OpenAI/Anthropic server and sample data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from judge.fake_server import FakeJudgeServer
from judge.rubric import Rubric, load_rubric

RUBRICS = Path(__file__).resolve().parents[2] / "rubrics"


@pytest.fixture
def server() -> Iterator[FakeJudgeServer]:
    with FakeJudgeServer() as fake:
        yield fake


@pytest.fixture
def general() -> Rubric:
    return load_rubric(RUBRICS / "general-pairwise.yaml")


@pytest.fixture
def pointwise() -> Rubric:
    return load_rubric(RUBRICS / "pointwise-quality.yaml")


def sample_pairs(n: int = 3) -> list[dict]:
    """Pairs shaped like `store.frames.pairs_frame` rows."""
    return [
        {
            "pair_id": i,
            "system_x": "base",
            "system_y": "finetuned",
            "prompt": f"Question {i}?",
            "output_x": f"short answer {i}",
            "output_y": f"a much longer and more detailed answer {i}",
            "reference": f"reference {i}",
            "category": "support",
        }
        for i in range(1, n + 1)
    ]
