"""Per-model prices (USD per million tokens), the cost of a call, and cost estimates before a run.

The built-in table covers common judge models; prices change, so a user can override or extend it
with a JSON or YAML file mapping `provider/model` to `{input_per_mtok, output_per_mtok}`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from judge.errors import JudgeError
from judge.providers.baseline import is_baseline

# Assumed answer length for estimates: a short explanation plus the verdict.
ESTIMATED_OUTPUT_TOKENS = 200
# Rough tokens-per-character ratio for English text, used only for estimates before a run.
CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class Price:
    input_per_mtok: float
    output_per_mtok: float


# List prices in USD per million tokens. Override them in a price file when they change.
DEFAULT_PRICES: dict[str, Price] = {
    "openai/gpt-4o": Price(2.50, 10.00),
    "openai/gpt-4o-mini": Price(0.15, 0.60),
    "openai/gpt-4.1": Price(2.00, 8.00),
    "openai/gpt-4.1-mini": Price(0.40, 1.60),
    "openai/gpt-4.1-nano": Price(0.10, 0.40),
    "openai/gpt-5": Price(1.25, 10.00),
    "openai/gpt-5-mini": Price(0.25, 2.00),
    "openai/gpt-5-nano": Price(0.05, 0.40),
    "anthropic/claude-opus-4-1": Price(15.00, 75.00),
    "anthropic/claude-sonnet-4-5": Price(3.00, 15.00),
    "anthropic/claude-sonnet-4-0": Price(3.00, 15.00),
    "anthropic/claude-haiku-4-5": Price(1.00, 5.00),
    "anthropic/claude-3-5-haiku-latest": Price(0.80, 4.00),
}


@dataclass(frozen=True)
class PriceTable:
    """Prices by `provider/model`. Baseline judges are always free."""

    prices: Mapping[str, Price]

    def price(self, judge: str) -> Price | None:
        """The price of `judge`, matching a dated snapshot (e.g. `openai/gpt-4o-2024-08-06`) to its
        family by the longest known prefix; None when unknown."""
        if is_baseline(judge):
            return Price(0.0, 0.0)
        if judge in self.prices:
            return self.prices[judge]
        prefixes = [name for name in self.prices if judge.startswith(name + "-")]
        return self.prices[max(prefixes, key=len)] if prefixes else None

    def cost(self, judge: str, tokens_in: int, tokens_out: int) -> float | None:
        """USD cost of the given token counts, or None when the model's price is unknown."""
        price = self.price(judge)
        if price is None:
            return None
        return (tokens_in * price.input_per_mtok + tokens_out * price.output_per_mtok) / 1e6


def load_prices(path: str | Path | None = None) -> PriceTable:
    """The built-in table, overridden and extended by the file at `path` if given."""
    prices = dict(DEFAULT_PRICES)
    if path is None:
        return PriceTable(prices)
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise JudgeError(f"{path}: cannot read price file: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise JudgeError(f"{path}: not valid JSON or YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise JudgeError(f"{path}: expected a mapping of provider/model to prices")
    for judge, entry in data.items():
        keys = {"input_per_mtok", "output_per_mtok"}
        if not isinstance(entry, dict) or set(entry) != keys:
            raise JudgeError(
                f"{path}: {judge}: expected exactly input_per_mtok and output_per_mtok "
                f"(USD per million tokens), got {json.dumps(entry, default=str)}"
            )
        values = [entry["input_per_mtok"], entry["output_per_mtok"]]
        if not all(
            isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in values
        ):
            raise JudgeError(f"{path}: {judge}: prices must be non-negative numbers")
        prices[str(judge)] = Price(float(values[0]), float(values[1]))
    return PriceTable(prices)


@dataclass(frozen=True)
class Estimate:
    """What a run would cost before it starts. `cost` is None when the model's price is unknown;
    `max_cost` assumes every answer uses all of `max_tokens`."""

    n_calls: int
    tokens_in: int
    tokens_out: int
    cost: float | None
    max_cost: float | None


def estimate_cost(
    prices: PriceTable, judge: str, prompt_chars: list[int], max_tokens: int
) -> Estimate:
    """Estimate a run from the rendered prompt length (characters) of each call to be made."""
    if is_baseline(judge):
        return Estimate(len(prompt_chars), 0, 0, 0.0, 0.0)
    tokens_in = sum(chars // CHARS_PER_TOKEN + 1 for chars in prompt_chars)
    tokens_out = len(prompt_chars) * min(ESTIMATED_OUTPUT_TOKENS, max_tokens)
    return Estimate(
        n_calls=len(prompt_chars),
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        cost=prices.cost(judge, tokens_in, tokens_out),
        max_cost=prices.cost(judge, tokens_in, len(prompt_chars) * max_tokens),
    )
