"""Keep ``telemetry.model_prices`` in step with a price source, inserting only differences.

A sync gets *candidates* - the rows the source (genai-prices, :mod:`sdk.prices.genai`)
says should exist - and compares each with the stored rows of its *series* (synced, the
candidate's provider, its model):

* the series already has a row with the candidate's ``valid_from`` and the same rates,
  tiers, match (exact names, pattern) and order (provider rank, model rank, provider
  pattern): **unchanged**, nothing is written;
* it has a row with that ``valid_from`` that differs: **changed** - the candidate is
  inserted as a new row, which wins over the old one on the same days (the later
  ``price_id`` is the correction, :mod:`sdk.prices.book`); the old row stays (the table
  refuses updates), so the costs it gave can still be explained;
* it has none: **added** (a new model, or a new dated version of one).

Only the same ``valid_from`` is compared, never "the price in force": a dated version that
repeats the previous price is stored once, so a later correction of the earlier version
cannot leak into the days the source says it does not cover. The source version alone
(``genai-prices 0.2.3`` -> ``0.2.4``) is not a change: rows keep the source that first
said so.

The whole sync is one transaction under :data:`~sdk.db.locks.PRICES_LOCK_KEY`: two syncs
at once take turns and the second finds the first's rows (unchanged), never inserting
them twice. Manual seed rows (models the source lacks) are inserted once each, only for
a model without any manual row, so an operator's ``wdp prices set`` is never shadowed by
the seed. Rows are read and written by :mod:`sdk.prices.repository` only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Literal

import sqlalchemy as sa

from sdk.prices.book import MANUAL, PriceRow
from sdk.prices.model import KINDS, Price
from sdk.prices.repository import NewPrice, insert_prices, load_book, lock_prices, normalised

__all__ = [
    "PriceChange",
    "Skipped",
    "SyncReport",
    "describe_price",
    "mtok",
    "sync_prices",
]

Progress = Callable[[str], None]
ChangeKind = Literal["added", "changed"]
# What differs between a stored row and a candidate, in the order reports list them.
ASPECTS = ("rates", "tiers", "match", "order")
KIND_LABELS = {
    "input": "in",
    "output": "out",
    "cache_read": "cache read",
    "cache_write": "cache write",
    "reasoning": "reasoning",
}


def mtok(value: Decimal) -> str:
    """A rate per million tokens as plain decimals: ``2.5``, ``10``, ``0.075``."""
    text = format(value.normalize(), "f") if value.is_finite() else str(value)
    return "0" if text in ("0", "-0") else text


def describe_price(price: Price) -> str:
    """``in 2.5, out 10, cache read 1.25; in >200000: 5``: every rate per Mtok."""
    rates = ", ".join(
        f"{KIND_LABELS[k]} {mtok(v)}" for k in KINDS if (v := getattr(price, k)) is not None
    )
    tiers = ", ".join(
        f"{KIND_LABELS[k]} >{t.above:,}: {mtok(t.per_mtok)}"
        for k, ts in price.tiers.items()
        for t in ts
    )
    return f"{rates}; {tiers}" if tiers else rates


@dataclass(frozen=True)
class Skipped:
    """A model of the source that was not synced, and why."""

    model: str
    provider: str
    reason: str

    def as_json(self) -> dict[str, str]:
        return {"model": self.model, "provider": self.provider, "reason": self.reason}


@dataclass(frozen=True)
class PriceChange:
    """One inserted row of a sync: ``old`` is the series' row it replaces on the same
    ``valid_from`` (changed) or the row in force on that day before (added; None for a
    new model); ``what`` names the aspects that differ from ``old``."""

    kind: ChangeKind
    new: PriceRow
    old: PriceRow | None
    what: tuple[str, ...]

    @property
    def model(self) -> str:
        return self.new.model

    @property
    def provider(self) -> str:
        return self.new.provider

    @property
    def valid_from(self) -> date:
        return self.new.valid_from

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "model": self.model,
            "provider": self.provider,
            "valid_from": self.valid_from.isoformat(),
            "what": list(self.what),
            "price_id": self.new.price_id,
            "new": self.new.price.as_json(),
            "old_price_id": None if self.old is None else self.old.price_id,
            "old": None if self.old is None else self.old.price.as_json(),
        }


@dataclass
class SyncReport:
    """What a sync compared and wrote (counts, and every inserted row)."""

    sources: tuple[str, ...] = ()
    candidates: int = 0
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    changes: list[PriceChange] = field(default_factory=list)
    seeded: list[PriceRow] = field(default_factory=list)
    seed_kept: int = 0  # seed models that already had a manual row
    not_in_source: list[tuple[str, str]] = field(default_factory=list)  # (provider, model)
    rows_before: int = 0

    @property
    def inserted(self) -> int:
        return self.added + self.changed + len(self.seeded)

    @property
    def rows_total(self) -> int:
        return self.rows_before + self.inserted

    @property
    def reordered_only(self) -> int:
        """Changed rows whose only difference is the order (same prices, same match)."""
        return sum(1 for c in self.changes if c.kind == "changed" and c.what == ("order",))

    def summary(self) -> str:
        """One line: ``genai-prices 0.2.3: 812 added, 3 changed, 1510 unchanged, ...``."""
        parts = [
            f"{self.added:,} added",
            f"{self.changed:,} changed",
            f"{self.unchanged:,} unchanged",
            f"{len(self.skipped):,} skipped",
            f"{len(self.seeded):,} manual seed row(s) added",
        ]
        source = ", ".join(self.sources) or "no source rows"
        return f"{source}: " + ", ".join(parts) + f"; {self.rows_total:,} rows in the table"

    def as_json(self) -> dict[str, Any]:
        return {
            "sources": list(self.sources),
            "candidates": self.candidates,
            "added": self.added,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "skipped": [s.as_json() for s in self.skipped],
            "seeded": [
                {"model": r.model, "provider": r.provider, "price_id": r.price_id}
                for r in self.seeded
            ],
            "seed_kept": self.seed_kept,
            "not_in_source": [{"provider": p, "model": m} for p, m in self.not_in_source],
            "rows_total": self.rows_total,
            "changes": [c.as_json() for c in self.changes],
        }


def _tiers(price: Price) -> dict[str, tuple[object, ...]]:
    return {k: tuple(v) for k, v in price.tiers.items() if v}


def differences(old: PriceRow, new: NewPrice) -> tuple[str, ...]:
    """The :data:`ASPECTS` in which a stored row and a (normalised) candidate differ."""
    found = []
    if any(getattr(old.price, k) != getattr(new.price, k) for k in KINDS):
        found.append("rates")
    if _tiers(old.price) != _tiers(new.price):
        found.append("tiers")
    if old.exact != frozenset(new.exact) or old.pattern != new.pattern:
        found.append("match")
    if (old.provider_rank, old.rank, old.provider_pattern) != (
        new.provider_rank,
        new.rank,
        new.provider_pattern,
    ):
        found.append("order")
    return tuple(found)


@dataclass
class _Planned:
    candidate: NewPrice
    kind: ChangeKind
    old: PriceRow | None
    what: tuple[str, ...]


def _in_force(rows: Sequence[PriceRow], day: date) -> PriceRow | None:
    live = [r for r in rows if r.valid_from <= day]
    return max(live, key=lambda r: (r.valid_from, r.price_id), default=None)


def _plan(
    candidates: Iterable[NewPrice],
    stored: dict[tuple[str, str], list[PriceRow]],
    report: SyncReport,
    seen: set[tuple[str, str, date]],
) -> list[_Planned]:
    """Compare each candidate with its series; ``seen`` collects (provider, model,
    valid_from) of every candidate synced."""
    planned: list[_Planned] = []
    sources: dict[str, None] = {}
    for raw in candidates:
        report.candidates += 1
        candidate = normalised(raw)
        if candidate.source == MANUAL:
            report.skipped.append(
                Skipped(candidate.model, candidate.provider,
                        "a manual row is not synced: set it with `wdp prices set`")
            )  # fmt: skip
            continue
        key = (candidate.provider, candidate.model, candidate.valid_from)
        if key in seen:
            report.skipped.append(
                Skipped(candidate.model, candidate.provider,
                        f"listed twice for {candidate.valid_from}: the first one is synced")
            )  # fmt: skip
            continue
        seen.add(key)
        sources.setdefault(candidate.source)
        rows = stored.get((candidate.provider, candidate.model), [])
        same_day = [r for r in rows if r.valid_from == candidate.valid_from]
        if same_day:
            current = max(same_day, key=lambda r: r.price_id)
            what = differences(current, candidate)
            if not what:
                report.unchanged += 1
                continue
            report.changed += 1
            planned.append(_Planned(candidate, "changed", current, what))
        else:
            report.added += 1
            before = _in_force(rows, candidate.valid_from)
            what = ("new",) if before is None else differences(before, candidate)
            planned.append(_Planned(candidate, "added", before, what or ("dated",)))
    report.sources = tuple(sources)
    return planned


def _seeds(seed: Iterable[NewPrice], manual_models: set[str], report: SyncReport) -> list[NewPrice]:
    wanted: list[NewPrice] = []
    for raw in seed:
        row = normalised(raw)
        if row.source != MANUAL:
            report.skipped.append(
                Skipped(row.model, row.provider, f"a seed row must be manual, not {row.source!r}")
            )
            continue
        if row.model.lower() in manual_models:
            report.seed_kept += 1
            continue
        manual_models.add(row.model.lower())
        wanted.append(row)
    return wanted


def sync_prices(
    conn: sa.Connection,
    candidates: Iterable[NewPrice],
    *,
    seed: Iterable[NewPrice] = (),
    skipped: Iterable[Skipped] = (),
    progress: Progress | None = None,
) -> SyncReport:
    """Insert the candidates that are new or changed, and the seed rows no manual row
    covers yet, in the caller's transaction (which holds the prices lock until it ends;
    roll it back for a dry run). ``skipped``: what the source itself could not convert
    (a model without token prices), carried into the report."""
    say = progress or (lambda _message: None)
    lock_prices(conn)
    book = load_book(conn)
    report = SyncReport(skipped=list(skipped), rows_before=len(book.rows))
    stored: dict[tuple[str, str], list[PriceRow]] = defaultdict(list)
    manual_models: set[str] = set()
    for row in book.rows:
        if row.manual:
            manual_models.add(row.model.lower())
        else:
            stored[(row.provider, row.model)].append(row)
    say(f"comparing with {report.rows_before:,} stored price rows")
    seen: set[tuple[str, str, date]] = set()
    planned = _plan(candidates, stored, report, seen)
    seeds = _seeds(seed, manual_models, report)
    named = {(p, m) for p, m, _ in seen}
    report.not_in_source = sorted(k for k in stored if k not in named)
    say(
        f"{report.candidates:,} source rows: {report.added:,} added, {report.changed:,} changed, "
        f"{report.unchanged:,} unchanged; {len(seeds):,} seed row(s) to add"
    )
    rows = insert_prices(conn, [p.candidate for p in planned] + seeds)
    for plan, row in zip(planned, rows, strict=False):
        report.changes.append(PriceChange(plan.kind, row, plan.old, plan.what))
    report.seeded = rows[len(planned) :]
    report.changes.sort(key=lambda c: (c.model, c.provider, c.valid_from))
    return report


def sync_bundled(conn: sa.Connection, *, progress: Progress | None = None) -> SyncReport:
    """:func:`sync_prices` from the genai-prices data of the installed (pinned) package,
    with :data:`~sdk.prices.genai.SEED_MANUAL`: what ``wdp prices sync`` and the Dagster
    asset ``model_prices`` run. The data changes only when the pin does (``make lock``)."""
    from sdk.prices.genai import GENAI_SOURCE, SEED_MANUAL, genai_rows

    if progress is not None:
        progress(f"reading {GENAI_SOURCE} (the installed package's data)")
    converted = genai_rows()
    skipped = [Skipped(model, provider, why) for provider, model, why in converted.skipped]
    return sync_prices(conn, converted.rows, seed=SEED_MANUAL, skipped=skipped, progress=progress)
