"""Model prices: validation, per-million conversion, cached input, and lookup rules."""

from __future__ import annotations

import pytest

from sdk.langgraph.prices import DEFAULT_PRICES, ModelPrice, find_price, merged_prices


@pytest.mark.parametrize(
    "kwargs",
    [
        {"input": -1e-6, "output": 0.0},
        {"input": 0.0, "output": -0.5},
        {"input": 0.0, "output": 0.0, "cached_input": -1.0},
        {"input": "1", "output": 0.0},
        {"input": 0.0, "output": None},
        {"input": None, "output": 0.0},
        {"input": float("nan"), "output": 0.0},
        {"input": 0.0, "output": float("inf")},
        {"input": True, "output": 0.0},
    ],
)
def test_a_price_must_be_non_negative_numbers(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="non-negative number"):
        ModelPrice(**kwargs)  # type: ignore[arg-type]


def test_zero_prices_and_an_absent_cached_price_are_valid() -> None:
    price = ModelPrice(input=0, output=0)
    assert price.cached_input is None
    assert price.cost(tokens_in=10, tokens_out=10) == 0


def test_per_million_divides_every_price_by_a_million() -> None:
    price = ModelPrice.per_million(input=2.5, output=10.0, cached_input=1.25)
    assert price == ModelPrice(input=2.5e-6, output=1e-5, cached_input=1.25e-6)
    assert ModelPrice.per_million(input=1, output=2).cached_input is None


def test_cost_prices_input_and_output_tokens() -> None:
    price = ModelPrice.per_million(input=1.0, output=2.0)
    assert price.cost(tokens_in=1_000_000, tokens_out=500_000) == pytest.approx(2.0)
    assert price.cost(tokens_in=7, tokens_out=3) == pytest.approx(13e-6)


def test_cached_input_tokens_are_priced_separately() -> None:
    price = ModelPrice.per_million(input=3.0, output=15.0, cached_input=0.3)
    # 4 in of which 2 cached, 3 out: 2*3 + 2*0.3 + 3*15 = 51.6 per 1M
    assert price.cost(tokens_in=4, tokens_out=3, cached_in=2) == pytest.approx(51.6e-6)


def test_cached_tokens_are_clamped_to_the_input_tokens_and_never_negative() -> None:
    price = ModelPrice.per_million(input=3.0, output=0.0, cached_input=0.3)
    assert price.cost(tokens_in=4, tokens_out=0, cached_in=99) == pytest.approx(4 * 0.3e-6)
    assert price.cost(tokens_in=4, tokens_out=0, cached_in=-5) == pytest.approx(12e-6)


def test_without_a_cached_price_cached_tokens_cost_the_normal_input_price() -> None:
    price = ModelPrice.per_million(input=3.0, output=0.0)
    assert price.cost(tokens_in=4, tokens_out=0, cached_in=4) == pytest.approx(12e-6)


def test_find_price_exact_name() -> None:
    table = {"gpt-4o": ModelPrice(1, 2), "gpt-4o-mini": ModelPrice(3, 4)}
    assert find_price(table, "gpt-4o") == ModelPrice(1, 2)
    assert find_price(table, "gpt-4o-mini") == ModelPrice(3, 4)


@pytest.mark.parametrize(
    ("name", "same_as"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("claude-3-5-sonnet-latest", "claude-3-5-sonnet-20241022"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
    ],
)
def test_dated_and_latest_releases_are_listed_by_their_exact_names(name: str, same_as: str) -> None:
    assert find_price(DEFAULT_PRICES, name) is DEFAULT_PRICES[same_as]


def test_a_dated_release_with_another_price_is_not_guessed() -> None:
    # gpt-4o-2024-05-13 lists at $5 / $15, twice gpt-4o: absent, so unknown.
    assert find_price(DEFAULT_PRICES, "gpt-4o-2024-05-13") is None


def test_anthropic_cache_writes_cost_more_than_input() -> None:
    sonnet = DEFAULT_PRICES["claude-3-5-sonnet-20241022"]
    cost = sonnet.cost(tokens_in=1000, tokens_out=0, cached_in=200, cache_written=300)
    assert cost == pytest.approx((500 * 3.00 + 200 * 0.30 + 300 * 3.75) / 1e6)


@pytest.mark.parametrize(
    "name",
    [
        "gpt-4o-audio-preview",
        "gpt-4o-realtime",
        "gpt-4o-2024",  # not a full date
        "gpt-4o-latest-preview",
        "gpt-4",  # a prefix of a priced model is not that model
        "GPT-4O",
        "mystery-model",
        "",
    ],
)
def test_find_price_does_not_guess_other_suffixes(name: str) -> None:
    assert find_price(DEFAULT_PRICES, name) is None


def test_find_price_takes_the_first_name_found_and_skips_empty_names() -> None:
    table = {"a": ModelPrice(1, 1), "b": ModelPrice(2, 2)}
    assert find_price(table, None, "", "unknown", "b", "a") == ModelPrice(2, 2)
    assert find_price(table, "a-2025-01-01", "b") == ModelPrice(2, 2)
    assert find_price(table) is None
    assert find_price(table, None) is None


def test_merged_prices_overrides_and_extends_the_defaults_without_changing_them() -> None:
    cheap = ModelPrice(0.0, 0.0)
    before = dict(DEFAULT_PRICES)
    table = merged_prices({"gpt-4o": cheap, "house-model": ModelPrice(1e-6, 2e-6)})
    assert table["gpt-4o"] is cheap
    assert table["house-model"] == ModelPrice(1e-6, 2e-6)
    assert table["gpt-4.1"] is DEFAULT_PRICES["gpt-4.1"]
    assert set(table) == set(DEFAULT_PRICES) | {"house-model"}
    assert before == DEFAULT_PRICES
    assert merged_prices(None) == DEFAULT_PRICES
    assert merged_prices(None) is not DEFAULT_PRICES


@pytest.mark.parametrize("bad", [0.5, {"input": 1, "output": 2}, (1, 2), None])
def test_merged_prices_rejects_values_that_are_not_model_prices(bad: object) -> None:
    with pytest.raises(TypeError, match=r"prices\['x'\] must be a ModelPrice"):
        merged_prices({"x": bad})  # type: ignore[dict-item]


def test_every_default_price_is_per_token_and_cached_input_is_cheaper() -> None:
    for model, price in DEFAULT_PRICES.items():
        # per token, not per million: a million tokens cost dollars, not millions
        assert 0 < price.input < 1e-4, model
        assert 0 < price.output < 1e-4, model
        assert price.cached_input is not None, model
        assert price.cached_input < price.input, model
