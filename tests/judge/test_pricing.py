"""Price table: built-in prices, user price files, cost estimates before a run."""

from __future__ import annotations

import pytest

from judge.errors import JudgeError
from judge.pricing import estimate_cost, load_prices


def test_dated_snapshot_uses_its_family_price():
    prices = load_prices()
    assert prices.price("openai/gpt-4o-mini-2024-07-18") == prices.price("openai/gpt-4o-mini")
    assert prices.price("openai/gpt-4o-2024-08-06") == prices.price("openai/gpt-4o")
    assert prices.price("openai/some-local-model") is None
    assert prices.cost("openai/some-local-model", 100, 100) is None


def test_user_price_file_overrides_and_extends(tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text(
        "openai/gpt-4o-mini: {input_per_mtok: 1, output_per_mtok: 2}\n"
        "openai/my-vllm-model: {input_per_mtok: 0, output_per_mtok: 0}\n"
    )
    prices = load_prices(path)
    assert prices.cost("openai/gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(3.0)
    assert prices.cost("openai/my-vllm-model", 5000, 5000) == 0.0
    assert prices.price("anthropic/claude-haiku-4-5") is not None


def test_json_price_file_is_accepted(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text('{"anthropic/new-model": {"input_per_mtok": 4, "output_per_mtok": 20}}')
    assert load_prices(path).cost("anthropic/new-model", 1_000_000, 0) == pytest.approx(4.0)


@pytest.mark.parametrize(
    "text,message",
    [
        ("openai/x: {input: 1, output: 2}", "expected input_per_mtok and output_per_mtok"),
        ("openai/x: {input_per_mtok: -1, output_per_mtok: 2}", "non-negative numbers"),
        ("- a list", "expected a mapping"),
        ("openai/x: {input_per_mtok: 1", "not valid JSON or YAML"),
    ],
)
def test_bad_price_file_names_the_file_and_the_problem(tmp_path, text, message):
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    with pytest.raises(JudgeError, match=message) as info:
        load_prices(path)
    assert str(path) in str(info.value)


def test_estimate_before_a_run():
    prices = load_prices()
    estimate = estimate_cost(prices, "openai/gpt-4o-mini", [4000, 4000], max_tokens=1000)
    assert estimate.n_calls == 2
    assert estimate.tokens_in == 2002 and estimate.tokens_out == 400
    assert estimate.cost == pytest.approx((2002 * 0.15 + 400 * 0.60) / 1e6)
    assert estimate.max_cost == pytest.approx((2002 * 0.15 + 2000 * 0.60) / 1e6)
    assert estimate_cost(prices, "baseline/longest", [4000], 1000).cost == 0.0
    assert estimate_cost(prices, "openai/local", [4000], 1000).cost is None


def test_batch_price_is_half_the_list_price_by_default():
    prices = load_prices()
    for judge in ("openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5"):
        listed = prices.cost(judge, 10_000, 2_000, tokens_cached=4_000)
        assert prices.cost(judge, 10_000, 2_000, tokens_cached=4_000, batch=True) == (
            pytest.approx(listed / 2)
        )
    assert prices.cost("baseline/longest", 1000, 1000, batch=True) == 0.0


def test_price_file_may_set_cached_and_batch_prices(tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text(
        "openai/my-model: {input_per_mtok: 2, output_per_mtok: 4, cached_input_per_mtok: 0.5,"
        " batch_discount: 0.25}\n"
    )
    prices = load_prices(path)
    # 1M input of which 0.5M cached, 1M output; then 25% off in a batch.
    assert prices.cost("openai/my-model", 1_000_000, 1_000_000, 500_000) == pytest.approx(5.25)
    assert prices.cost("openai/my-model", 1_000_000, 1_000_000, 500_000, batch=True) == (
        pytest.approx(5.25 * 0.75)
    )
    # Without a cached price, cached input costs the plain input price.
    plain = load_prices(write(tmp_path, "openai/x: {input_per_mtok: 2, output_per_mtok: 4}"))
    assert plain.cost("openai/x", 1_000_000, 0, 500_000) == pytest.approx(2.0)


def test_a_batch_discount_of_one_or_more_is_refused(tmp_path):
    path = write(tmp_path, "openai/x: {input_per_mtok: 1, output_per_mtok: 2, batch_discount: 1}")
    with pytest.raises(JudgeError, match="batch_discount is the share taken off"):
        load_prices(path)


def write(tmp_path, text: str):
    path = tmp_path / "extra.yaml"
    path.write_text(text)
    return path
