"""Which price applies to a call: versioned price rows and the one lookup over them.

A :class:`PriceRow` is one version of one price *series* - a model's price from one
source (synced from genai-prices, or set by hand) at one provider. Rows are never
updated: a price change, or a correction of a past one, is a new row. The version of a
series valid on a day is its row with the latest ``valid_from`` on or before that day;
of two rows with the same ``valid_from`` the later one (higher ``price_id``) is the
correction and wins. That is what makes costs re-computable: a day is priced by the
rows valid on it, and adding a row changes exactly the days it covers.

The lookup (:meth:`PriceBook.resolve`) of a model name, as a call reported it:

1. manual rows before synced ones (an override wins over the library);
2. within each, an exact name or alias before a pattern (a dated release can cost
   something else than its family: ``gpt-4o-2024-05-13`` is twice ``gpt-4o``);
3. a call that names its provider is priced at that provider's rows when one matches;
   otherwise, as genai-prices does, the providers whose model patterns claim the name
   are tried in the library's order, each by exact name, then by its models' patterns
   in the library's order. Manual rows with a provider apply to that provider's calls
   and to calls naming none; a manual row's empty provider applies to all.

Names are compared lower-cased (genai-prices' rule); patterns are Python regular
expressions searched in the lower-cased name. No match: the cost is unknown - counted,
never $0.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property

from sdk.prices.errors import InvalidPrice
from sdk.prices.model import Price

__all__ = ["ALWAYS", "MANUAL", "NewPrice", "PriceBook", "PriceRow", "compile_pattern"]

# valid_from of a price without a start date: in force for every day.
ALWAYS = date(1970, 1, 1)
MANUAL = "manual"


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A row's pattern, compiled; :class:`InvalidPrice` names a bad one."""
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise InvalidPrice(f"pattern {pattern!r} is not a valid regular expression: {exc}") from exc


@dataclass(frozen=True, slots=True)
class PriceRow:
    """One version of one price series (see the module docstring)."""

    price_id: int
    model: str
    provider: str  # '' for a manual row that applies to every provider
    exact: frozenset[str]  # lower-cased names and aliases
    pattern: str | None  # regex searched in the lower-cased name
    valid_from: date
    source: str  # "genai-prices 0.2.3" or "manual"
    price: Price
    provider_rank: int = 0  # synced rows: the provider's position in genai-prices
    rank: int = 0  # synced rows: the model's position within its provider
    provider_pattern: str | None = None  # synced rows: the names the provider serves
    created_at: datetime | None = None
    note: str | None = None

    @property
    def manual(self) -> bool:
        return self.source == MANUAL

    @property
    def series(self) -> tuple[bool, str, str]:
        return (self.manual, self.provider, self.model)

    def matches(self, name: str) -> bool:
        """``name`` is lower-cased already."""
        return name in self.exact or self.matches_pattern(name)

    def matches_pattern(self, name: str) -> bool:
        return self.pattern is not None and _compiled(self.pattern).search(name) is not None


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    compiled = _PATTERNS.get(pattern)
    if compiled is None:
        compiled = _PATTERNS[pattern] = compile_pattern(pattern)
    return compiled


@dataclass
class _Series:
    rows: list[PriceRow] = field(default_factory=list)

    @property
    def newest(self) -> PriceRow:
        """The row inserted last: its rank and provider pattern are the series' current
        order, whatever days the rows cover."""
        return max(self.rows, key=lambda r: r.price_id)

    def on(self, day: date) -> PriceRow | None:
        found = None
        for row in self.rows:  # sorted by (valid_from, price_id): the last one in force wins
            if row.valid_from > day:
                break
            found = row
        return found


class PriceBook:
    """Every price row, and the lookup over them. Built once per use (a sync, an
    aggregation, a handler); lookups are cached per (name, provider, day)."""

    def __init__(self, rows: Iterable[PriceRow]) -> None:
        series: dict[tuple[bool, str, str], _Series] = defaultdict(_Series)
        for row in rows:
            series[row.series].rows.append(row)
        for s in series.values():
            s.rows.sort(key=lambda r: (r.valid_from, r.price_id))
        self._series = dict(series)
        self._cache: dict[tuple[str, str, date], PriceRow | None] = {}

    @cached_property
    def rows(self) -> tuple[PriceRow, ...]:
        return tuple(r for s in self._series.values() for r in s.rows)

    @cached_property
    def _synced_providers(self) -> list[tuple[int, str, str | None]]:
        # A provider's rank and pattern are those of its newest row: a sync that moves a
        # provider writes new rows for the models the source still lists, while models
        # it dropped keep rows with the old rank.
        newest: dict[str, PriceRow] = {}
        for (manual, provider, _), s in self._series.items():
            last = s.newest
            if not manual and (provider not in newest or last.price_id > newest[provider].price_id):
                newest[provider] = last
        return sorted((r.provider_rank, p, r.provider_pattern) for p, r in newest.items())

    @cached_property
    def _by_provider(self) -> dict[tuple[bool, str], list[_Series]]:
        grouped: dict[tuple[bool, str], list[_Series]] = defaultdict(list)
        for (manual, provider, _), s in self._series.items():
            grouped[(manual, provider)].append(s)
        for group in grouped.values():  # by the rank of each series' newest row
            group.sort(key=lambda s: (s.newest.rank, s.newest.model))
        return dict(grouped)

    def resolve(self, name: str | None, provider: str | None, day: date) -> PriceRow | None:
        """The row that prices a call of ``name`` (at ``provider``, if known) on ``day``;
        None when nothing matches (the cost is unknown)."""
        if not name or not name.strip():
            return None
        key = (name.strip().lower(), (provider or "").strip().lower(), day)
        if key not in self._cache:
            self._cache[key] = self._resolve(*key)
        return self._cache[key]

    def _first(self, groups: Iterable[list[_Series]], name: str, day: date) -> PriceRow | None:
        live = [row for group in groups for s in group if (row := s.on(day)) is not None]
        for row in live:
            if name in row.exact:
                return row
        for row in live:
            if row.matches_pattern(name):
                return row
        return None

    def _resolve(self, name: str, provider: str, day: date) -> PriceRow | None:
        manual = [self._by_provider.get((True, provider), [])] if provider else []
        if not provider:  # a call naming no provider: any manual row may price it
            manual = [g for (m, _), g in sorted(self._by_provider.items()) if m]
        manual.append(self._by_provider.get((True, ""), []))
        # newest override first among manual rows of one kind
        ordered = [sorted(g, key=lambda s: -s.rows[-1].price_id) for g in manual]
        row = self._first(ordered, name, day)
        if row is not None:
            return row
        if provider:
            row = self._first([self._by_provider.get((False, provider), [])], name, day)
            if row is not None:
                return row
        for _, candidate, pattern in self._synced_providers:
            if pattern is None or _compiled(pattern).search(name) is None:
                continue
            row = self._first([self._by_provider[(False, candidate)]], name, day)
            if row is not None:
                return row
        return None


@dataclass(frozen=True)
class NewPrice:
    """A row to insert (``price_id`` and ``created_at`` are the database's)."""

    model: str
    price: Price
    valid_from: date
    source: str
    exact: tuple[str, ...] = ()
    pattern: str | None = None
    provider: str = ""
    provider_rank: int = 0
    rank: int = 0
    provider_pattern: str | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        if not self.model.strip():
            raise InvalidPrice("model: must not be empty")
        if not self.exact and self.pattern is None:
            raise InvalidPrice(f"{self.model}: give an exact name or a pattern to match")
        for pattern in (self.pattern, self.provider_pattern):
            if pattern is not None:
                _compiled(pattern)  # refuses a bad one; kept for the lookups
