"""telemetry.model_prices: stored rows read back as the same book; never updated."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
import sqlalchemy as sa

from sdk.db.queries import run_sync
from sdk.prices import MANUAL, Price, Tier
from sdk.prices.errors import InvalidPrice
from sdk.prices.repository import NewPrice, book_query, insert_prices, load_book

TIERED = Price(
    input=D("1.25"),
    output=D(10),
    cache_read=D("0.125"),
    tiers={"input": (Tier(200_000, D("2.5")),), "output": (Tier(200_000, D(15)),)},
)


def test_rows_round_trip_and_are_looked_up(engine: sa.Engine) -> None:
    new = [
        NewPrice(model="gemini-x", price=TIERED, valid_from=date(2026, 1, 1),
                 source="genai-prices 0.2.3", exact=("Gemini-X",), pattern="^gemini-x-",
                 provider="google", provider_pattern="gemini"),
        NewPrice(model="gemini-x", price=Price(input=D(9), output=D(9)),
                 valid_from=date(2026, 3, 1), source=MANUAL, exact=("gemini-x",),
                 note="negotiated"),
    ]  # fmt: skip
    with engine.begin() as conn:
        stored = insert_prices(conn, new)
    assert [r.model for r in stored] == ["gemini-x", "gemini-x"]
    assert stored[0].exact == frozenset({"gemini-x"})  # lower-cased
    assert stored[0].price == TIERED
    with engine.connect() as conn:
        book = load_book(conn)
        raw = conn.connection.dbapi_connection
        assert raw is not None
        same = run_sync(raw, book_query())  # type: ignore[arg-type]
    assert book.rows == same.rows == tuple(stored)
    assert book.resolve("gemini-x-001", None, date(2026, 2, 1)) == stored[0]
    assert book.resolve("gemini-x", None, date(2026, 3, 1)) == stored[1]


def test_a_stored_price_is_never_updated_or_deleted(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        insert_prices(
            conn,
            [
                NewPrice(
                    model="m",
                    price=TIERED,
                    valid_from=date(2026, 1, 1),
                    source=MANUAL,
                    exact=("m",),
                )
            ],
        )
    for statement in (
        "UPDATE telemetry.model_prices SET input_per_mtok = 0",
        "DELETE FROM telemetry.model_prices",
    ):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text(statement))


def test_a_row_that_matches_nothing_is_refused_before_the_database() -> None:
    with pytest.raises(InvalidPrice, match="exact name or a pattern"):
        NewPrice(model="m", price=TIERED, valid_from=date(2026, 1, 1), source=MANUAL)
    with pytest.raises(InvalidPrice, match="regular expression"):
        NewPrice(model="m", price=TIERED, valid_from=date(2026, 1, 1), source=MANUAL, pattern="(")
