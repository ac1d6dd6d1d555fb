"""What a ``daily_model_usage`` row costs, and re-pricing stored days from their token sums.

A row's cost follows from its basis (see :mod:`sdk.usage.model_usage`):

* ``reported``: the provider's own figure (``reported_usd``) wins, source ``reported``;
* ``estimate``: the cost the step event emitted (no per-call usage), source ``estimate``;
* ``none``: the calls reported no usage: unknown (cost NULL), never $0;
* ``tokens``: the token sums priced with :func:`sdk.prices.cost` at the price
  :meth:`~sdk.prices.PriceBook.resolve` finds for the row's model and provider on the
  row's day, in the row's band; source ``computed``, with that row's ``price_id``. No
  price: unknown, counted, never $0.

:func:`price_usage_row` is that rule, the only one: the aggregation prices the rows it
writes with it, and :func:`price_days` prices stored rows again with it - also of days
whose raw events retention has dropped, since the rows keep every token sum. Re-pricing
writes only the rows whose cost, source or price row changed.

**Concurrency**: :func:`price_days` takes each day's aggregation lock
(``AGGREGATE_DAY_LOCK_CLASS``, the one :func:`sdk.usage.aggregation.aggregate_day`
holds) in ascending day order before reading the day, so an aggregation of that day
and a re-pricing take turns; held to the caller's commit. Prices are append-only, and
the book is loaded after the locks (unless the caller passes one), so whichever runs
second sees every price the first saw: neither can leave a day priced with an older
table than the other used.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from sdk.db.locks import AGGREGATE_DAY_LOCK_CLASS
from sdk.prices.book import PriceBook, PriceRow
from sdk.prices.model import CallTokens, cost
from sdk.prices.repository import load_book
from sdk.usage.model_usage import (
    KEY_COLUMNS,
    MODEL_USAGE_COLUMNS,
    MODEL_USAGE_SQL,
    SUM_COLUMNS,
    TABLE,
)

__all__ = [
    "DayRepriced",
    "PriceResolver",
    "Priced",
    "RepriceReport",
    "UsageWritten",
    "lock_days",
    "price_days",
    "price_usage_row",
    "replace_day_usage",
    "reprice_all",
    "stored_days",
]

UNKNOWN = "unknown"
BATCH = 5_000  # rows per UPDATE
DAYS_PER_TRANSACTION = 92  # about a quarter: a year is four transactions


@dataclass(frozen=True, slots=True)
class Priced:
    """A row's cost (None: unknown), where it came from, and the price row it used."""

    cost_usd: Decimal | None
    cost_source: str
    price_id: int | None = None


_UNKNOWN = Priced(None, UNKNOWN)


class PriceResolver:
    """:meth:`PriceBook.resolve` with one lookup per model and *price epoch* instead of
    per day: which rows are in force changes only on the book's ``valid_from`` dates, so
    every day between two of them resolves alike (365 days of 50 models: a few hundred
    lookups, not 18,250)."""

    def __init__(self, book: PriceBook) -> None:
        self.book = book
        self._starts = sorted({r.valid_from for r in book.rows})

    def resolve(self, model: str, provider: str, day: date) -> PriceRow | None:
        i = bisect.bisect_right(self._starts, day)
        epoch = self._starts[i - 1] if i else day  # before every row: nothing is in force
        return self.book.resolve(model, provider or None, epoch)


def _resolver(book: PriceBook | PriceResolver) -> PriceResolver:
    return book if isinstance(book, PriceResolver) else PriceResolver(book)


def price_usage_row(row: Mapping[Any, Any], book: PriceBook | PriceResolver, day: date) -> Priced:
    """The cost of one usage row (a mapping with the table's column names: ``basis``,
    ``model``, ``provider``, ``input_band``, the token sums and ``reported_usd``) on
    ``day``. A :class:`PriceResolver` may be passed for many rows of one book."""
    basis = row["basis"]
    if basis in ("reported", "estimate"):
        usd = row["reported_usd"]
        if usd is None:  # cannot come from MODEL_USAGE_SQL; a hand-written row
            return _UNKNOWN
        return Priced(Decimal(usd), "reported" if basis == "reported" else "estimate")
    if basis != "tokens":
        return _UNKNOWN
    found = _resolver(book).resolve(row["model"], row["provider"], day)
    if found is None:
        return _UNKNOWN
    tokens = CallTokens(
        input=int(row["tokens_in"]),
        output=int(row["tokens_out"]),
        cache_read=int(row["tokens_cached_in"]),
        cache_write=int(row["tokens_cache_write"]),
        reasoning=int(row["tokens_reasoning"]),
    )
    usd = cost(found.price, tokens, band=int(row["input_band"]))
    return Priced(usd, "computed", found.price_id)


@dataclass(frozen=True)
class DayRepriced:
    """One day before and after re-pricing. Costs are known costs (unknown rows add
    nothing); ``unknown_*`` count the calls of unknown cost beside them."""

    day: date
    rows: int
    rows_changed: int
    before_usd: Decimal
    after_usd: Decimal
    unknown_before: int
    unknown_after: int
    price_ids: frozenset[int]  # the price rows the day's computed costs use now
    changed_price_ids: frozenset[int] = frozenset()  # those the changed rows use now
    changed_models: frozenset[str] = frozenset()  # models of the changed rows

    @property
    def changed(self) -> bool:
        return self.rows_changed > 0


@dataclass(frozen=True)
class RepriceReport:
    """What :func:`price_days` did, day by day (every day asked for, changed or not)."""

    days: tuple[DayRepriced, ...]

    @property
    def changed_days(self) -> tuple[DayRepriced, ...]:
        return tuple(d for d in self.days if d.changed)

    @property
    def rows_changed(self) -> int:
        return sum(d.rows_changed for d in self.days)

    @property
    def before_usd(self) -> Decimal:
        return sum((d.before_usd for d in self.days), Decimal(0))

    @property
    def after_usd(self) -> Decimal:
        return sum((d.after_usd for d in self.days), Decimal(0))

    @property
    def unknown_before(self) -> int:
        return sum(d.unknown_before for d in self.days)

    @property
    def unknown_after(self) -> int:
        return sum(d.unknown_after for d in self.days)

    @property
    def price_ids(self) -> frozenset[int]:
        """The price rows the re-priced rows use now."""
        return frozenset().union(*(d.changed_price_ids for d in self.days))

    def __add__(self, other: RepriceReport) -> RepriceReport:
        return RepriceReport(self.days + other.days)


def lock_days(conn: sa.Connection, days: Iterable[date]) -> list[date]:
    """Take the aggregation lock of each day, ascending (two re-pricings of overlapping
    days cannot deadlock), until the caller's transaction ends; the days, sorted."""
    ordered = sorted(set(days))
    for day in ordered:
        conn.exec_driver_sql(
            f"SELECT pg_advisory_xact_lock({AGGREGATE_DAY_LOCK_CLASS}, {day.toordinal()})"
        )
    return ordered


def reprice_all(
    engine: sa.Engine, days_per_transaction: int = DAYS_PER_TRANSACTION
) -> RepriceReport:
    """Re-price every stored day with the price table as it is now, a transaction per
    ``days_per_transaction`` days (so aggregation waits at most for one such batch, and
    a run over years of history holds a bounded number of locks). Days whose raw events
    retention has dropped are priced like any other: from their token sums."""
    with engine.connect() as conn:
        days = stored_days(conn)
    report = RepriceReport(())
    for start in range(0, len(days), days_per_transaction):
        with engine.begin() as conn:
            report += price_days(conn, days[start : start + days_per_transaction])
    return report


def stored_days(conn: sa.Connection) -> list[date]:
    """Every day with stored usage rows, ascending."""
    rows = conn.exec_driver_sql(f"SELECT DISTINCT day FROM {TABLE} ORDER BY day")
    return [r[0] for r in rows]


_READ_COLUMNS = (*KEY_COLUMNS, *SUM_COLUMNS, "cost_usd", "cost_source", "price_id")
_READ = f"SELECT {', '.join(_READ_COLUMNS)} FROM {TABLE} WHERE day = ANY(%(days)s)"
_TYPES = {"day": "date", "input_band": "bigint", "cost_usd": "numeric", "price_id": "bigint"}
_SET = ("cost_usd", "cost_source", "price_id")
_UPDATE_COLUMNS = (*KEY_COLUMNS, *_SET)
_UPDATE = (
    f"UPDATE {TABLE} u SET "
    + ", ".join(f"{c} = v.{c}" for c in _SET)
    + ", priced_at = now() FROM unnest("
    + ", ".join(f"CAST(%({c})s AS {_TYPES.get(c, 'text')}[])" for c in _UPDATE_COLUMNS)
    + f") AS v({', '.join(_UPDATE_COLUMNS)}) WHERE "
    + " AND ".join(f"u.{c} = v.{c}" for c in KEY_COLUMNS)
)


def _same(row: Mapping[Any, Any], priced: Priced) -> bool:
    stored = (row["cost_usd"], row["cost_source"], row["price_id"])
    return stored == (priced.cost_usd, priced.cost_source, priced.price_id)  # 1.50 == 1.5


def _write(conn: sa.Connection, changes: Sequence[tuple[Mapping[Any, Any], Priced]]) -> None:
    for start in range(0, len(changes), BATCH):
        batch = changes[start : start + BATCH]
        params: dict[str, list[Any]] = {c: [row[c] for row, _ in batch] for c in KEY_COLUMNS}
        params["cost_usd"] = [p.cost_usd for _, p in batch]
        params["cost_source"] = [p.cost_source for _, p in batch]
        params["price_id"] = [p.price_id for _, p in batch]
        conn.exec_driver_sql(_UPDATE, params)


@dataclass
class _Tally:
    rows: int = 0
    changed: int = 0
    before: Decimal = Decimal(0)
    after: Decimal = Decimal(0)
    unknown_before: int = 0
    unknown_after: int = 0
    price_ids: set[int] = field(default_factory=set)
    changed_price_ids: set[int] = field(default_factory=set)
    changed_models: set[str] = field(default_factory=set)


def price_days(
    conn: sa.Connection, days: Iterable[date], book: PriceBook | None = None
) -> RepriceReport:
    """Re-price the stored usage rows of ``days`` in the caller's transaction: every row
    is priced again with :func:`price_usage_row`, and only rows whose cost, source or
    price row changed are written (with ``priced_at``). Takes the days' aggregation locks
    first (see the module docstring); ``book`` None loads the book after them."""
    ordered = lock_days(conn, days)
    if not ordered:
        return RepriceReport(())
    resolver = PriceResolver(load_book(conn) if book is None else book)
    tallies = {day: _Tally() for day in ordered}
    changes: list[tuple[Mapping[Any, Any], Priced]] = []
    result = conn.exec_driver_sql(_READ, {"days": ordered})
    for row in result.mappings():
        day = row["day"]
        priced = price_usage_row(row, resolver, day)
        tally = tallies[day]
        tally.rows += 1
        if row["cost_usd"] is None:
            tally.unknown_before += row["calls"]
        else:
            tally.before += row["cost_usd"]
        if priced.cost_usd is None:
            tally.unknown_after += row["calls"]
        else:
            tally.after += priced.cost_usd
        if priced.price_id is not None:
            tally.price_ids.add(priced.price_id)
        if not _same(row, priced):
            tally.changed += 1
            tally.changed_models.add(row["model"])
            if priced.price_id is not None:
                tally.changed_price_ids.add(priced.price_id)
            changes.append((row, priced))
    _write(conn, changes)
    return RepriceReport(
        tuple(
            DayRepriced(
                day=day,
                rows=t.rows,
                rows_changed=t.changed,
                before_usd=t.before,
                after_usd=t.after,
                unknown_before=t.unknown_before,
                unknown_after=t.unknown_after,
                price_ids=frozenset(t.price_ids),
                changed_price_ids=frozenset(t.changed_price_ids),
                changed_models=frozenset(t.changed_models),
            )
            for day, t in tallies.items()
        )
    )


@dataclass(frozen=True)
class UsageWritten:
    """What :func:`replace_day_usage` stored: rows, rows per cost source, the known cost
    and the calls of unknown cost beside it."""

    rows: int
    by_source: Mapping[str, int]
    cost_usd: Decimal
    unknown_calls: int


_INSERT_COLUMNS = (*MODEL_USAGE_COLUMNS, *_SET)
_INSERT_TYPES = _TYPES | {c: "bigint" for c in SUM_COLUMNS} | {"reported_usd": "numeric"}
_INSERT = (
    f"INSERT INTO {TABLE} ({', '.join(_INSERT_COLUMNS)}) SELECT * FROM unnest("
    + ", ".join(f"CAST(%({c})s AS {_INSERT_TYPES.get(c, 'text')}[])" for c in _INSERT_COLUMNS)
    + ")"
)


def replace_day_usage(
    conn: sa.Connection, day: date, lo: datetime, hi: datetime, book: PriceBook
) -> UsageWritten:
    """Replace ``day``'s usage rows with :data:`MODEL_USAGE_SQL` over ``[lo, hi)``, priced
    with ``book``, in the caller's transaction. The caller holds the day's lock and has
    checked that its raw events are all there (:func:`sdk.usage.aggregation.aggregate_day`
    is the one caller)."""
    conn.exec_driver_sql(f"DELETE FROM {TABLE} WHERE day = %(day)s", {"day": day})
    resolver = PriceResolver(book)
    grouped = conn.exec_driver_sql(MODEL_USAGE_SQL, {"day": day, "lo": lo, "hi": hi})
    columns: dict[str, list[Any]] = {c: [] for c in _INSERT_COLUMNS}
    by_source = dict.fromkeys(("computed", "reported", "estimate", UNKNOWN), 0)
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
