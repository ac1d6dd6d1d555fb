"""The book orders providers and models by their newest rows (what the last sync said)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from sdk.prices import ALWAYS, Price, PriceBook, PriceRow

DAY = date(2026, 1, 1)


def row(price_id: int, model: str, provider: str, *, provider_rank: int, rank: int = 0,
        pattern: str | None = None, valid_from: date = ALWAYS) -> PriceRow:  # fmt: skip
    return PriceRow(
        price_id=price_id,
        model=model,
        provider=provider,
        exact=frozenset() if pattern else frozenset({model}),
        pattern=pattern,
        valid_from=valid_from,
        source="genai-prices 0.2.3",
        price=Price(input=D(price_id), output=D(price_id)),
        provider_rank=provider_rank,
        rank=rank,
        provider_pattern="llama",
    )


def test_a_provider_is_ranked_by_its_newest_row_not_its_oldest_model() -> None:
    # "alpha" was third (rank 2) when llama-old was synced; the source dropped llama-old
    # and a later sync moved alpha first (rank 0) with its other model's new row.
    rows = [
        row(1, "llama-old", "alpha", provider_rank=2),
        row(2, "llama-x", "alpha", provider_rank=2, pattern="^llama-x"),
        row(3, "llama-x", "beta", provider_rank=1, pattern="^llama-x"),
        row(4, "llama-x", "alpha", provider_rank=0, pattern="^llama-x"),
    ]
    assert PriceBook(rows).resolve("llama-x-70b", None, DAY) == rows[3]


def test_models_are_ranked_by_their_newest_row_whatever_days_it_covers() -> None:
    # Two patterns claim the name; "b" was first, then the newest rows put "z" first,
    # while b's row dated later (the last by valid_from) still has the old rank.
    rows = [
        row(1, "z", "p", provider_rank=0, rank=1, pattern="^llama"),
        row(2, "b", "p", provider_rank=0, rank=0, pattern="^llama", valid_from=date(2025, 1, 1)),
        row(3, "z", "p", provider_rank=0, rank=0, pattern="^llama"),
        row(4, "b", "p", provider_rank=0, rank=1, pattern="^llama"),
    ]
    assert PriceBook(rows).resolve("llama-3", None, DAY) == rows[2]
