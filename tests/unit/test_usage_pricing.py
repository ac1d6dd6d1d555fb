"""The cost of a daily_model_usage row (sdk.usage.pricing.price_usage_row), by hand."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal as D
from typing import Any

from sdk.prices import ALWAYS, MANUAL, Price, PriceBook, PriceRow, Tier
from sdk.usage.pricing import Priced, PriceResolver, price_usage_row

DAY = date(2026, 3, 10)
PLAIN = Price(input=D(2), output=D(8), cache_read=D("0.5"))
TIERED = Price(
    input=D("1.25"),
    output=D(10),
    tiers={"input": (Tier(200_000, D("2.5")),), "output": (Tier(200_000, D(15)),)},
)


def price_row(price_id: int, model: str, price: Price, **kw: Any) -> PriceRow:
    fields: dict[str, Any] = {"provider": "", "exact": frozenset({model}), "pattern": None}
    fields |= {"valid_from": ALWAYS, "source": MANUAL} | kw
    return PriceRow(price_id=price_id, model=model, price=price, **fields)


BOOK = PriceBook([price_row(1, "plain", PLAIN), price_row(2, "tiered", TIERED)])


def usage(model: str, basis: str = "tokens", **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"model": model, "provider": "", "input_band": 0, "basis": basis}
    row |= dict.fromkeys(
        ("tokens_in", "tokens_cached_in", "tokens_cache_write", "tokens_out", "tokens_reasoning"), 0
    )
    return row | {"reported_usd": None} | kw


def test_token_sums_are_priced_per_kind_with_the_price_row_named() -> None:
    row = usage("plain", tokens_in=1_000_000, tokens_cached_in=200_000, tokens_out=100_000)
    # 800k input at $2, 200k cache reads at $0.50, 100k output at $8 (per million)
    assert price_usage_row(row, BOOK, DAY) == Priced(D("2.5"), "computed", 1)


def test_the_band_picks_the_tier_a_250k_call_pays_and_a_100k_one_does_not() -> None:
    big = usage("tiered", input_band=200_000, tokens_in=250_000, tokens_out=1_000)
    small = usage("tiered", input_band=32_000, tokens_in=100_000, tokens_out=1_000)
    assert price_usage_row(big, BOOK, DAY).cost_usd == D("0.64")  # 250k x 2.5 + 1k x 15
    assert price_usage_row(small, BOOK, DAY).cost_usd == D("0.135")  # 100k x 1.25 + 1k x 10


def test_reported_and_estimated_costs_stand_and_no_usage_is_unknown() -> None:
    reported = usage("plain", "reported", tokens_in=1_000_000, reported_usd=D("0.01"))
    assert price_usage_row(reported, BOOK, DAY) == Priced(D("0.01"), "reported")
    assert price_usage_row(usage("x", "estimate", reported_usd=D("0.3")), BOOK, DAY) == Priced(
        D("0.3"), "estimate"
    )
    assert price_usage_row(usage("plain", "none"), BOOK, DAY) == Priced(None, "unknown")


def test_a_model_without_a_price_is_unknown_never_zero() -> None:
    row = usage("nobody-prices-me", tokens_in=10, tokens_out=10)
    assert price_usage_row(row, BOOK, DAY) == Priced(None, "unknown")
    assert price_usage_row(usage("plain"), BOOK, DAY) == Priced(D(0), "computed", 1)  # no tokens


def test_the_resolver_answers_as_the_book_on_every_day() -> None:
    """One lookup per price epoch must be the book's own lookup, day by day."""
    start = date(2026, 1, 1)
    book = PriceBook([
        price_row(1, "m", PLAIN, valid_from=date(2026, 1, 10)),
        price_row(2, "m", TIERED, valid_from=date(2026, 2, 1)),
        price_row(3, "m", PLAIN, valid_from=date(2026, 2, 1)),  # a correction, same day
        price_row(4, "n", PLAIN, valid_from=date(2026, 1, 20), provider="acme"),
        price_row(5, "p", PLAIN, valid_from=ALWAYS, exact=frozenset(), pattern="^m"),
    ])  # fmt: skip
    resolver = PriceResolver(book)
    for offset in range(-3, 70):
        day = start + timedelta(days=offset)
        for model, provider in (("m", ""), ("n", "acme"), ("n", ""), ("mx", "")):
            assert resolver.resolve(model, provider, day) == book.resolve(model, provider, day)
    assert resolver.resolve("m", "", date(2026, 1, 9)).price_id == 5  # type: ignore[union-attr]
    assert resolver.resolve("m", "", date(2026, 2, 1)).price_id == 3  # type: ignore[union-attr]
