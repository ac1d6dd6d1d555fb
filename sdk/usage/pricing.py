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
both read the table once they hold the lock (:func:`fresh_book`: a book passed in is
used only if the table still has exactly its rows), so whichever runs second sees
every price the first saw: neither can leave a day priced with an older table than the
other used.

**Cost**: a year of 50 models (146,000 rows) re-prices in about 4 s, 1 s when nothing
changed (``benchmarks/reprice.py``, docs/benchmarks.md). A stored computed cost whose
lookup finds the same price row again is kept without redoing its arithmetic (price
rows never change, nor do a stored row's token sums); changed rows are written back in
one statement per batch.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from sdk.db.locks import AGGREGATE_DAY_LOCK_CLASS
from sdk.db.schema import TELEMETRY_SCHEMA, model_prices
from sdk.prices.book import PriceBook, PriceRow
from sdk.prices.model import CallTokens, cost
from sdk.prices.repository import load_book
from sdk.usage.errors import UsageError
from sdk.usage.model_usage import TABLE

__all__ = [
    "DayRepriced",
    "PriceResolver",
    "Priced",
    "RepriceReport",
    "fresh_book",
    "lock_days",
    "price_days",
    "price_usage_row",
    "reprice_all",
    "stored_days",
]

UNKNOWN = "unknown"
BATCH = 50_000  # rows per UPDATE: one statement for a quarter of 50 models' rows
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


_PRICE_ROWS = f"SELECT count(*) FROM {TELEMETRY_SCHEMA}.{model_prices.name}"


def fresh_book(conn: sa.Connection, book: PriceBook | None) -> PriceBook:
    """``book`` (loaded earlier with :func:`load_book`) if the table still holds exactly
    its rows, else the table read now. Rows are only ever added, so the same count means
    the same rows: a re-pricing of many days reads the table once, and again only when a
    price arrived meanwhile."""
    if book is not None and conn.exec_driver_sql(_PRICE_ROWS).scalar_one() == len(book.rows):
        return book
    return load_book(conn)


def reprice_all(
    engine: sa.Engine, days_per_transaction: int = DAYS_PER_TRANSACTION
) -> RepriceReport:
    """Re-price every stored day with the price table as it is now, a transaction per
    ``days_per_transaction`` days (so aggregation waits at most for one such batch, and
    a run over years of history holds a bounded number of locks). Days whose raw events
    retention has dropped are priced like any other: from their token sums."""
    with engine.connect() as conn:
        days = stored_days(conn)
    report, book = RepriceReport(()), None
    for start in range(0, len(days), days_per_transaction):
        chunk = days[start : start + days_per_transaction]
        with engine.begin() as conn:
            lock_days(conn, chunk)
            book = fresh_book(conn, book)
            report += price_days(conn, chunk, book)
    return report


def stored_days(conn: sa.Connection) -> list[date]:
    """Every day with stored usage rows, ascending."""
    rows = conn.exec_driver_sql(f"SELECT DISTINCT day FROM {TABLE} ORDER BY day")
    return [r[0] for r in rows]


# What pricing reads of a stored row, and its ctid: the rows are written back by it
# (cheaper than matching nine key columns), which is safe because every writer of the
# table holds the day's lock, as price_days does from its read to its commit, so no row
# read can move before the update; the update checks that it found every one.
_READ_COLUMNS = (
    "day", "model", "provider", "input_band", "basis", "calls", "tokens_in",
    "tokens_cached_in", "tokens_cache_write", "tokens_out", "tokens_reasoning",
    "reported_usd", "cost_usd", "cost_source", "price_id",
)  # fmt: skip
_READ = f"SELECT ctid::text, {', '.join(_READ_COLUMNS)} FROM {TABLE} WHERE day = ANY(%(days)s)"
_UPDATE = (
    f"UPDATE {TABLE} u SET cost_usd = v.cost_usd, cost_source = v.cost_source, "
    "price_id = v.price_id, priced_at = now() "
    "FROM unnest(CAST(%(ctid)s AS tid[]), CAST(%(cost_usd)s AS numeric[]), "
    "CAST(%(cost_source)s AS text[]), CAST(%(price_id)s AS bigint[])) "
    "AS v(ctid, cost_usd, cost_source, price_id) WHERE u.ctid = v.ctid"
)
_DAY, _MODEL, _PROVIDER, _BASIS, _CALLS = 1, 2, 3, 5, 6
_COST, _SOURCE, _PRICE_ID = 13, 14, 15


def _write(conn: sa.Connection, changes: list[tuple[str, Priced]]) -> None:
    raw = conn.connection.driver_connection
    assert raw is not None
    for start in range(0, len(changes), BATCH):
        batch = changes[start : start + BATCH]
        params = {
            "ctid": [ctid for ctid, _ in batch],
            "cost_usd": [p.cost_usd for _, p in batch],
            "cost_source": [p.cost_source for _, p in batch],
            "price_id": [p.price_id for _, p in batch],
        }
        with raw.cursor() as cur:
            cur.execute(_UPDATE, params)
            if cur.rowcount != len(batch):  # a row changed without the day's lock
                raise UsageError(
                    f"re-pricing found {cur.rowcount} of the {len(batch)} usage rows it "
                    "read: the table was written without the day's lock; run it again"
                )


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

    def day(self, day: date) -> DayRepriced:
        return DayRepriced(
            day=day,
            rows=self.rows,
            rows_changed=self.changed,
            before_usd=self.before,
            after_usd=self.after,
            unknown_before=self.unknown_before,
            unknown_after=self.unknown_after,
            price_ids=frozenset(self.price_ids),
            changed_price_ids=frozenset(self.changed_price_ids),
            changed_models=frozenset(self.changed_models),
        )


def _priced(row: tuple[Any, ...], resolver: PriceResolver) -> Priced:
    """:func:`price_usage_row` of a stored row, without repeating its arithmetic when
    the lookup finds the very price row its computed cost came from: price rows never
    change and neither do a stored row's token sums, so neither can its cost."""
    if row[_BASIS] == "tokens" and row[_SOURCE] == "computed":
        found = resolver.resolve(row[_MODEL], row[_PROVIDER], row[_DAY])
        if found is not None and found.price_id == row[_PRICE_ID]:
            return Priced(row[_COST], "computed", found.price_id)
    return price_usage_row(dict(zip(_READ_COLUMNS, row[1:], strict=True)), resolver, row[_DAY])


def price_days(
    conn: sa.Connection, days: Iterable[date], book: PriceBook | None = None
) -> RepriceReport:
    """Re-price the stored usage rows of ``days`` in the caller's transaction with
    :func:`price_usage_row`; only rows whose cost, source or price row changed are
    written (with ``priced_at``). Takes the days' aggregation locks first, then uses
    ``book`` if the table has not grown since it was loaded, else reads the table (see
    the module docstring)."""
    ordered = lock_days(conn, days)
    if not ordered:
        return RepriceReport(())
    resolver = PriceResolver(fresh_book(conn, book))
    tallies = {day: _Tally() for day in ordered}
    changes: list[tuple[str, Priced]] = []
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur:
        cur.execute(_READ, {"days": ordered})
        rows = cur.fetchall()
    for row in rows:
        priced = _priced(row, resolver)
        tally = tallies[row[_DAY]]
        tally.rows += 1
        if row[_COST] is None:
            tally.unknown_before += row[_CALLS]
        else:
            tally.before += row[_COST]
        if priced.cost_usd is None:
            tally.unknown_after += row[_CALLS]
        else:
            tally.after += priced.cost_usd
        if priced.price_id is not None:
            tally.price_ids.add(priced.price_id)
        stored = (row[_COST], row[_SOURCE], row[_PRICE_ID])
        if stored != (priced.cost_usd, priced.cost_source, priced.price_id):  # 1.50 == 1.5
            tally.changed += 1
            tally.changed_models.add(row[_MODEL])
            if priced.price_id is not None:
                tally.changed_price_ids.add(priced.price_id)
            changes.append((row[0], priced))
    _write(conn, changes)
    return RepriceReport(tuple(t.day(day) for day, t in tallies.items()))
