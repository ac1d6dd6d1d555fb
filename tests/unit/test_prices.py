"""The price arithmetic and the lookup of the price valid for a call (sdk.prices)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from sdk.prices import (
    ALWAYS,
    BANDS,
    MANUAL,
    CallTokens,
    InvalidPrice,
    Price,
    PriceBook,
    PriceRow,
    Tier,
    band_of,
    cost,
)

GPT = Price(input=D("2.5"), output=D("10"), cache_read=D("1.25"))


def row(
    price_id: int,
    model: str,
    price: Price = GPT,
    *,
    exact: tuple[str, ...] = (),
    pattern: str | None = None,
    provider: str = "openai",
    valid_from: date = ALWAYS,
    source: str = "genai-prices 0.2.3",
    rank: int = 0,
    provider_rank: int = 0,
    provider_pattern: str | None = "^gpt",
) -> PriceRow:
    return PriceRow(
        price_id=price_id,
        model=model,
        provider=provider,
        exact=frozenset(exact or ((model,) if pattern is None else ())),
        pattern=pattern,
        valid_from=valid_from,
        source=source,
        price=price,
        rank=rank,
        provider_rank=provider_rank,
        provider_pattern=None if source == MANUAL else provider_pattern,
    )


def test_band_is_the_largest_threshold_exceeded() -> None:
    assert band_of(0) == 0
    assert band_of(200_000) == 199_999  # tiers apply above their threshold
    assert band_of(200_001) == 200_000
    assert band_of(10**12) == BANDS[-1]


def test_cost_bills_cache_and_reasoning_at_their_own_rates_or_their_parents() -> None:
    tokens = CallTokens(input=1_000_000, output=1_000_000, cache_read=400_000, reasoning=300_000)
    # 600k input at 2.5 + 400k cache reads at 1.25 + 1M output (reasoning as output) at 10
    assert cost(GPT, tokens) == D("1.5") + D("0.5") + D("10")
    claude = Price(input=D(3), output=D(15), cache_read=D("0.3"), cache_write=D("3.75"))
    written = CallTokens(input=1_000_000, cache_read=200_000, cache_write=300_000)
    assert cost(claude, written) == D("1.5") + D("0.06") + D("1.125")
    no_cache_price = Price(input=D(1), output=D(2))
    assert cost(no_cache_price, written) == D(1)  # cache tokens billed as input


def test_a_tier_applies_to_every_token_of_a_call_above_its_threshold() -> None:
    tiered = Price(
        input=D(3),
        output=D(15),
        tiers={"input": (Tier(200_000, D(6)),), "output": (Tier(200_000, D("22.5")),)},
    )
    below = CallTokens(input=200_000, output=1_000)
    above = CallTokens(input=200_001, output=1_000)
    assert cost(tiered, below) == (200_000 * D(3) + 1_000 * D(15)) / 1_000_000
    assert cost(tiered, above) == (200_001 * D(6) + 1_000 * D("22.5")) / 1_000_000
    # sums of calls priced in the band they were kept in
    assert cost(tiered, CallTokens(input=400_002, output=2_000), band=200_000) == 2 * cost(
        tiered, above
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input": D(-1), "output": D(1)}, "input"),
        ({"input": D("NaN"), "output": D(1)}, "input"),
        ({"input": D(1), "output": D(1), "tiers": {"input": (Tier(150_000, D(2)),)}}, "150000"),
        ({"input": D(1), "output": D(1), "tiers": {"cache_read": (Tier(200_000, D(2)),)}}, "kind"),
        (
            {
                "input": D(1),
                "output": D(1),
                "tiers": {"input": (Tier(272_000, D(2)), Tier(200_000, D(3)))},
            },
            "ascending",
        ),
    ],
)
def test_bad_prices_are_refused_with_the_reason(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidPrice, match=message):
        Price(**kwargs)  # type: ignore[arg-type]


def test_exact_name_beats_a_pattern_and_manual_beats_synced() -> None:
    family = row(1, "gpt-4o", pattern="^gpt-4o", rank=0)
    dated = row(2, "gpt-4o-2024-05-13", Price(input=D(5), output=D(15)), rank=1)
    book = PriceBook([family, dated])
    day = date(2026, 1, 1)
    assert book.resolve("GPT-4o-2024-05-13", None, day) == dated  # exact, any case
    assert book.resolve("gpt-4o-mini-x", None, day) == family  # pattern
    assert book.resolve("claude-3", None, day) is None  # no provider claims it
    override = row(
        3, "gpt-4o-2024-05-13", Price(input=D(1), output=D(1)), source=MANUAL, provider=""
    )
    book = PriceBook([family, dated, override])
    assert book.resolve("gpt-4o-2024-05-13", None, day) == override
    assert book.resolve("gpt-4o-2024-05-13", "openai", day) == override


def test_the_version_valid_on_a_day_and_a_correction_of_it() -> None:
    first = row(1, "m", Price(input=D(1), output=D(1)), provider_pattern="^m")
    change = row(
        2, "m", Price(input=D(2), output=D(2)), valid_from=date(2026, 6, 1), provider_pattern="^m"
    )
    correction = row(
        3, "m", Price(input=D(3), output=D(3)), valid_from=date(2026, 6, 1), provider_pattern="^m"
    )
    book = PriceBook([correction, first, change])
    assert book.resolve("m", None, date(2026, 5, 31)) == first
    assert book.resolve("m", None, date(2026, 6, 1)) == correction  # same day: the later row
    assert PriceBook([first]).resolve("m", None, date(1999, 1, 1)) == first  # ALWAYS


def test_a_named_provider_is_priced_at_its_own_rows() -> None:
    openai = row(1, "gpt-4o", provider="openai", provider_rank=1)
    azure = row(2, "gpt-4o", Price(input=D(9), output=D(9)), provider="azure", provider_rank=0)
    book = PriceBook([openai, azure])
    day = date(2026, 1, 1)
    assert book.resolve("gpt-4o", "azure", day) == azure
    assert book.resolve("gpt-4o", "OpenAI", day) == openai
    assert book.resolve("gpt-4o", None, day) == azure  # the library's provider order
    assert book.resolve("gpt-4o", "nowhere", day) == azure  # unknown provider: inferred
    assert book.resolve("", None, day) is None
