"""``telemetry.model_prices``: the only code that reads or writes it.

Rows are only ever inserted (the table's trigger refuses UPDATE and DELETE): a price
change or a correction is a new row, see :mod:`sdk.prices.book`. Reading is a sans-IO
query (:mod:`sdk.db.queries`), so the async read API and the synchronous CLI, Dagster
and aggregation code load the same book with the same SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from sdk.db.locks import PRICES_LOCK_KEY
from sdk.db.queries import Query, Row, Statement, single
from sdk.db.schema import TELEMETRY_SCHEMA, model_prices
from sdk.prices.book import NewPrice, PriceBook, PriceRow
from sdk.prices.errors import PriceError
from sdk.prices.model import KINDS, Kind, Price, Tier

__all__ = [
    "NewPrice",
    "book_query",
    "insert_prices",
    "load_book",
    "lock_prices",
    "normalised",
    "price_of_row",
    "tiers_json",
]

TABLE = f"{TELEMETRY_SCHEMA}.{model_prices.name}"
_COLUMNS = [c.name for c in model_prices.columns]
_RATE_COLUMNS: dict[Kind, str] = {k: f"{k}_per_mtok" for k in KINDS}


def normalised(price: NewPrice) -> NewPrice:
    """``price`` as it is stored: the model stripped, the provider and exact names
    stripped and lower-cased (names sorted, without duplicates). A sync compares
    candidates in this form with the stored rows."""
    return replace(
        price,
        model=price.model.strip(),
        provider=price.provider.strip().lower(),
        exact=tuple(sorted({n.strip().lower() for n in price.exact if n.strip()})),
    )


def lock_prices(conn: sa.Connection) -> None:
    """Take the prices lock (:data:`~sdk.db.locks.PRICES_LOCK_KEY`) until the caller's
    transaction ends: writers that read the table to decide what to insert (a sync, a
    manual override beside a seed) take turns, and each sees what the previous one
    committed (READ COMMITTED: every statement after the lock has a fresh snapshot)."""
    try:
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PRICES_LOCK_KEY})")
    except DBAPIError as exc:
        raise PriceError(f"could not lock the price table: {exc.orig}") from exc


def tiers_json(price: Price) -> dict[str, list[list[object]]]:
    return {k: [[t.above, str(t.per_mtok)] for t in v] for k, v in price.tiers.items()}


def price_of_row(row: Row) -> Price:
    """The :class:`Price` of a table row (a dict by column name)."""
    tiers: dict[Kind, tuple[Tier, ...]] = {}
    for kind, pairs in (row.get("tiers") or {}).items():
        tiers[kind] = tuple(Tier(int(above), Decimal(str(rate))) for above, rate in pairs)
    rates = {k: row[c] for k, c in _RATE_COLUMNS.items()}
    return Price(
        input=Decimal(rates["input"]),
        output=Decimal(rates["output"]),
        cache_read=None if rates["cache_read"] is None else Decimal(rates["cache_read"]),
        cache_write=None if rates["cache_write"] is None else Decimal(rates["cache_write"]),
        reasoning=None if rates["reasoning"] is None else Decimal(rates["reasoning"]),
        tiers=tiers,
    )


def _row(r: Row) -> PriceRow:
    return PriceRow(
        price_id=int(r["price_id"]),
        model=r["model"],
        provider=r["provider"],
        exact=frozenset(r["match_exact"] or ()),
        pattern=r["match_pattern"],
        valid_from=r["valid_from"],
        source=r["source"],
        price=price_of_row(r),
        provider_rank=int(r["provider_rank"]),
        rank=int(r["rank"]),
        provider_pattern=r["provider_pattern"],
        created_at=r["created_at"],
        note=r["note"],
    )


def book_query() -> Query[PriceBook]:
    """Every price row, as a :class:`PriceBook` (a few thousand rows: read whole)."""
    sql = f"SELECT {', '.join(_COLUMNS)} FROM {TABLE} ORDER BY price_id"
    return single(Statement(sql), lambda rows: PriceBook(_row(r) for r in rows))


def load_book(conn: sa.Connection) -> PriceBook:
    """The book, read on a SQLAlchemy connection (aggregation, Dagster, the CLI)."""
    result = conn.execute(sa.text(next(book_query()).sql))
    return PriceBook(_row(dict(r._mapping)) for r in result)


def insert_prices(conn: sa.Connection, prices: Sequence[NewPrice]) -> list[PriceRow]:
    """Insert ``prices`` in the caller's transaction; the stored rows, in order."""
    if not prices:
        return []
    values = [
        {
            "model": p.model,
            "provider": p.provider,
            "match_exact": list(p.exact),
            "match_pattern": p.pattern,
            "valid_from": p.valid_from,
            **{c: getattr(p.price, k) for k, c in _RATE_COLUMNS.items()},
            "tiers": tiers_json(p.price),
            "source": p.source,
            "provider_rank": p.provider_rank,
            "rank": p.rank,
            "provider_pattern": p.provider_pattern,
            "note": p.note,
        }
        for p in map(normalised, prices)
    ]
    try:
        result = conn.execute(
            sa.insert(model_prices).returning(*model_prices.c, sort_by_parameter_order=True), values
        )
        stored = [_row(dict(r._mapping)) for r in result]
    except DBAPIError as exc:
        raise PriceError(f"could not store {len(values)} price row(s): {exc.orig}") from exc
    return stored
