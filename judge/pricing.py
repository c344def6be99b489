"""Per-model prices (USD per million tokens), the cost of a call, and cost estimates before a run.

A price covers plain, cached and cache-write input, output, and the batch discount. The built-in
table covers common judge models; prices change, so a user can override or extend it with a JSON
or YAML file mapping `provider/model` to `{input_per_mtok, output_per_mtok}` and optionally
`cached_input_per_mtok`, `cache_write_per_mtok` and `batch_discount`.
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
# Both providers' batch APIs cost half the list price.
BATCH_DISCOUNT = 0.5
# Neither provider caches a prompt prefix shorter than this; estimates assume no caching below it.
MIN_CACHED_PREFIX_TOKENS = 1024


@dataclass(frozen=True)
class Price:
    """USD per million tokens. Input read from the provider's prompt cache costs
    `cached_input_per_mtok`; input written to it (Anthropic) `cache_write_per_mtok`; both default
    to the plain input price. A batch costs `1 - batch_discount` of all of it."""

    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float | None = None
    cache_write_per_mtok: float | None = None
    batch_discount: float = BATCH_DISCOUNT


def _anthropic(input_per_mtok: float, output_per_mtok: float) -> Price:
    # Anthropic bills cache reads at a tenth of the input price and 5-minute cache writes at 1.25x.
    return Price(input_per_mtok, output_per_mtok, input_per_mtok * 0.1, input_per_mtok * 1.25)


# List prices in USD per million tokens. Override them in a price file when they change.
DEFAULT_PRICES: dict[str, Price] = {
    "openai/gpt-4o": Price(2.50, 10.00, 1.25),
    "openai/gpt-4o-mini": Price(0.15, 0.60, 0.075),
    "openai/gpt-4.1": Price(2.00, 8.00, 0.50),
    "openai/gpt-4.1-mini": Price(0.40, 1.60, 0.10),
    "openai/gpt-4.1-nano": Price(0.10, 0.40, 0.025),
    "openai/gpt-5": Price(1.25, 10.00, 0.125),
    "openai/gpt-5-mini": Price(0.25, 2.00, 0.025),
    "openai/gpt-5-nano": Price(0.05, 0.40, 0.005),
    "anthropic/claude-opus-4-1": _anthropic(15.00, 75.00),
    "anthropic/claude-sonnet-4-5": _anthropic(3.00, 15.00),
    "anthropic/claude-sonnet-4-0": _anthropic(3.00, 15.00),
    "anthropic/claude-haiku-4-5": _anthropic(1.00, 5.00),
    "anthropic/claude-3-5-haiku-latest": _anthropic(0.80, 4.00),
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

    def cost(
        self,
        judge: str,
        tokens_in: int,
        tokens_out: int,
        tokens_cached: int = 0,
        tokens_cache_write: int = 0,
        batch: bool = False,
    ) -> float | None:
        """USD cost of the given token counts, or None when the model's price is unknown.

        `tokens_in` counts every input token; `tokens_cached` of them were read from the prompt
        cache and `tokens_cache_write` written to it. `batch` applies the batch discount.
        """
        price = self.price(judge)
        if price is None:
            return None
        cached_rate = price.input_per_mtok
        if price.cached_input_per_mtok is not None:
            cached_rate = price.cached_input_per_mtok
        write_rate = price.input_per_mtok
        if price.cache_write_per_mtok is not None:
            write_rate = price.cache_write_per_mtok
        plain_in = max(0, tokens_in - tokens_cached - tokens_cache_write)
        usd = (
            plain_in * price.input_per_mtok
            + tokens_cached * cached_rate
            + tokens_cache_write * write_rate
            + tokens_out * price.output_per_mtok
        ) / 1e6
        return usd * (1 - price.batch_discount) if batch else usd


_REQUIRED_KEYS = ("input_per_mtok", "output_per_mtok")
_OPTIONAL_KEYS = ("cached_input_per_mtok", "cache_write_per_mtok", "batch_discount")


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
        if (
            not isinstance(entry, dict)
            or not set(_REQUIRED_KEYS) <= set(entry)
            or not set(entry) <= {*_REQUIRED_KEYS, *_OPTIONAL_KEYS}
        ):
            raise JudgeError(
                f"{path}: {judge}: expected input_per_mtok and output_per_mtok (USD per million "
                f"tokens), optionally {', '.join(_OPTIONAL_KEYS)}; "
                f"got {json.dumps(entry, default=str)}"
            )
        if not all(
            isinstance(v, int | float) and not isinstance(v, bool) and v >= 0
            for v in entry.values()
        ):
            raise JudgeError(f"{path}: {judge}: prices must be non-negative numbers")
        if entry.get("batch_discount", 0) >= 1:
            raise JudgeError(
                f"{path}: {judge}: batch_discount is the share taken off (0.5 = half price), "
                "so it must be below 1"
            )
        prices[str(judge)] = Price(**{key: float(value) for key, value in entry.items()})
    return PriceTable(prices)


@dataclass(frozen=True)
class Estimate:
    """What a run would cost before it starts. `cost` is None when the model's price is unknown.
    `tokens_cached` is the input expected from the prompt cache; `max_cost` assumes no cache hit
    and every answer using all of `max_tokens`."""

    n_calls: int
    tokens_in: int
    tokens_out: int
    cost: float | None
    max_cost: float | None
    tokens_cached: int = 0
    batch: bool = False


def estimate_cost(
    prices: PriceTable,
    judge: str,
    prompt_chars: list[int],
    max_tokens: int,
    prefix_chars: int = 0,
    batch: bool = False,
) -> Estimate:
    """Estimate a run from the rendered prompt length (characters) of each call to be made.

    `prefix_chars` is the length of the prompt's static start (instructions, criteria, examples),
    the same in every call: when it is long enough to be cached, the first call writes it to the
    provider's prompt cache and every later call reads it from there.
    """
    if is_baseline(judge):
        return Estimate(len(prompt_chars), 0, 0, 0.0, 0.0, batch=batch)
    n_calls = len(prompt_chars)
    tokens_in = sum(chars // CHARS_PER_TOKEN + 1 for chars in prompt_chars)
    tokens_out = n_calls * min(ESTIMATED_OUTPUT_TOKENS, max_tokens)
    prefix_tokens = prefix_chars // CHARS_PER_TOKEN
    tokens_cached = tokens_cache_write = 0
    if prefix_tokens >= MIN_CACHED_PREFIX_TOKENS and n_calls:
        tokens_cache_write = prefix_tokens
        tokens_cached = prefix_tokens * (n_calls - 1)
    return Estimate(
        n_calls=n_calls,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        cost=prices.cost(judge, tokens_in, tokens_out, tokens_cached, tokens_cache_write, batch),
        max_cost=prices.cost(judge, tokens_in, n_calls * max_tokens, batch=batch),
        tokens_cached=tokens_cached,
        batch=batch,
    )
