"""Writing a day's ``telemetry.daily_model_usage`` rows at aggregation, priced.

:func:`sdk.usage.aggregation.aggregate_day` calls :func:`replace_day_usage` in its own
transaction, under its locks, after its refusal of a day whose raw events are gone: the
day's usage rows are grouped by :data:`sdk.usage.model_usage.MODEL_USAGE_SQL` and priced
with :func:`sdk.usage.pricing.price_usage_row` - the rule re-pricing applies later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from sdk.db.schema import cost_sources
from sdk.prices.book import PriceBook
from sdk.usage.model_usage import MODEL_USAGE_COLUMNS, MODEL_USAGE_SQL, SUM_COLUMNS, TABLE
from sdk.usage.pricing import PriceResolver, price_usage_row

__all__ = ["UsageWritten", "replace_day_usage"]


@dataclass(frozen=True)
class UsageWritten:
    """What :func:`replace_day_usage` stored: rows, rows per cost source, the known cost
    and the calls of unknown cost beside it."""

    rows: int
    by_source: Mapping[str, int]
    cost_usd: Decimal
    unknown_calls: int


_TYPES = {"day": "date", "input_band": "bigint", "reported_usd": "numeric"}
_TYPES |= {c: "bigint" for c in SUM_COLUMNS if c != "reported_usd"}
_TYPES |= {"cost_usd": "numeric", "price_id": "bigint"}
_COLUMNS = (*MODEL_USAGE_COLUMNS, "cost_usd", "cost_source", "price_id")
_INSERT = (
    f"INSERT INTO {TABLE} ({', '.join(_COLUMNS)}) SELECT * FROM unnest("
    + ", ".join(f"CAST(%({c})s AS {_TYPES.get(c, 'text')}[])" for c in _COLUMNS)
    + ")"
)


def replace_day_usage(
    conn: sa.Connection, day: date, lo: datetime, hi: datetime, book: PriceBook
) -> UsageWritten:
    """Replace ``day``'s usage rows with :data:`MODEL_USAGE_SQL` over ``[lo, hi)``, priced
    with ``book``, in the caller's transaction. The caller holds the day's lock and has
    checked that its raw events are all there."""
    conn.exec_driver_sql(f"DELETE FROM {TABLE} WHERE day = %(day)s", {"day": day})
    resolver = PriceResolver(book)
    grouped = conn.exec_driver_sql(MODEL_USAGE_SQL, {"day": day, "lo": lo, "hi": hi})
    columns: dict[str, list[Any]] = {c: [] for c in _COLUMNS}
    by_source = dict.fromkeys(cost_sources, 0)
    known, unknown_calls = Decimal(0), 0
    for row in grouped.mappings():
        priced = price_usage_row(row, resolver, day)
        for c in MODEL_USAGE_COLUMNS:
            columns[c].append(row[c])
        columns["cost_usd"].append(priced.cost_usd)
        columns["cost_source"].append(priced.cost_source)
        columns["price_id"].append(priced.price_id)
        by_source[priced.cost_source] += 1
        if priced.cost_usd is None:
            unknown_calls += row["calls"]
        else:
            known += priced.cost_usd
    rows = len(columns["day"])
    if rows:
        conn.exec_driver_sql(_INSERT, columns)
    return UsageWritten(rows=rows, by_source=by_source, cost_usd=known, unknown_calls=unknown_calls)
