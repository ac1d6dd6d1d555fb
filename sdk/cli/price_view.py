"""How ``wdp prices`` shows price rows, a lookup and a sync report.

Rates are USD per million tokens, written as plain decimals (``2.5``, ``0.075``); a blank
rate is billed at its parent kind's (cache reads and writes as input, reasoning as
output). A price without a start date is in force ``always`` (stored as 1970-01-01).
Names and notes are whatever someone stored: they are printed as ``Text`` through
:func:`~sdk.cli.reads.shown`, never as markup.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from rich.console import Console
from rich.text import Text

from sdk.cli import tables
from sdk.cli.reads import shown
from sdk.prices.book import ALWAYS, PriceRow
from sdk.prices.sync import KIND_LABELS, PriceChange, SyncReport, describe_price, mtok

ALL_PROVIDERS = "(all)"
SHOWN_ADDED = 20  # added rows a sync lists (the first sync adds thousands)
SHOWN_NAMES = 8  # model names listed per skip reason
OPTIONAL_RATES = (
    ("cache_read", "cache read"),
    ("cache_write", "cache write"),
    ("reasoning", "reasoning"),
)


def day_text(day: date) -> str:
    return "always" if day == ALWAYS else day.isoformat()


def provider_text(row: PriceRow) -> str | Text:
    return shown(row.provider) if row.provider else Text(ALL_PROVIDERS, style="dim")


def match_text(row: PriceRow) -> str:
    parts = sorted(row.exact)
    if row.pattern is not None:
        parts.append(f"/{row.pattern}/")
    return shown(", ".join(parts))


def tiers_text(row: PriceRow) -> str:
    return ", ".join(
        f"{KIND_LABELS[k]} >{t.above:,}: {mtok(t.per_mtok)}"
        for k, ts in row.price.tiers.items()
        for t in ts
    )


def source_text(row: PriceRow) -> Text:
    return Text(shown(row.source), style="bold" if row.manual else "")


def _rate(kind: str) -> Any:
    def cell(row: PriceRow) -> str:
        value = getattr(row.price, kind)
        return "" if value is None else mtok(value)

    return cell


def row_columns(
    rows: list[PriceRow], chosen: PriceRow | None = None
) -> list[tables.Column[PriceRow]]:
    """The table's columns: a kind's rate, the tiers and the note only when some row has
    one (most models price neither cache writes nor reasoning apart)."""
    C = tables.Column
    right = {"justify": "right"}
    columns: list[tables.Column[PriceRow]] = []
    if chosen is not None:
        columns.append(C("", lambda r: Text("→", style="green") if r == chosen else ""))
    columns += [
        C("model", lambda r: shown(r.model), 0, {"no_wrap": True}),
        C("provider", provider_text),
        C("valid from", lambda r: day_text(r.valid_from)),
        C("input", _rate("input"), 0, right),
        C("output", _rate("output"), 0, right),
    ]
    for rank, (kind, name) in enumerate(OPTIONAL_RATES, start=2):
        if any(getattr(r.price, kind) is not None for r in rows):
            columns.append(C(name, _rate(kind), rank, right))
    if any(r.price.tiers for r in rows):
        columns.append(C("tiers", tiers_text, 5, squeeze=24))
    columns += [
        C("match", match_text, 6, squeeze=24),
        C("source", source_text, 1),
        C("price_id", lambda r: str(r.price_id), 0, right),
    ]
    if any(r.note for r in rows):
        columns.append(C("note", lambda r: shown(r.note), 7, squeeze=20))
    return columns


def print_rows(console: Console, rows: list[PriceRow], chosen: PriceRow | None = None) -> None:
    """The rows as a table (rates in USD per 1M tokens), and what blank rates mean."""
    tables.print_table(console, row_columns(rows, chosen), rows)
    if any(getattr(r.price, k) is None for r in rows for k, _ in OPTIONAL_RATES):
        console.print(
            Text(
                "USD per 1M tokens; a blank or absent rate is billed as input (cache) or "
                "output (reasoning)",
                style="dim",
            ),
            highlight=False,
        )


def row_json(row: PriceRow) -> dict[str, Any]:
    return {
        "price_id": row.price_id,
        "model": row.model,
        "provider": row.provider,
        "exact": sorted(row.exact),
        "pattern": row.pattern,
        "valid_from": row.valid_from.isoformat(),
        "source": row.source,
        "per_mtok": row.price.as_json(),
        "provider_rank": row.provider_rank,
        "rank": row.rank,
        "provider_pattern": row.provider_pattern,
        "note": row.note,
        "created_at": None if row.created_at is None else row.created_at.isoformat(),
    }


def why(row: PriceRow, name: str, provider: str | None) -> str:
    """Why the book chose ``row`` for ``name``: the rule of :mod:`sdk.prices.book`."""
    how = (
        "by its exact name" if name.strip().lower() in row.exact else f"by pattern /{row.pattern}/"
    )
    if row.manual:
        scope = f"for {row.provider}" if row.provider else "for every provider"
        return f"a manual row ({scope}), {how}; manual rows win over synced ones"
    if provider and row.provider == provider.strip().lower():
        return f"synced ({row.source}) at {row.provider}, the call's provider, {how}"
    return (
        f"synced ({row.source}) at {row.provider}, the first provider (genai-prices' order) "
        f"whose names it serves match, {how}"
    )


def resolution_text(name: str, provider: str | None, day: date, row: PriceRow | None) -> Text:
    at = f" at {provider}" if provider else ""
    head = Text.assemble((shown(name), "bold"), f"{shown(at)} on {day.isoformat()}: ")
    if row is None:
        head.append(
            "no price; its calls have an unknown cost (counted, never $0). Add one with "
            "`wdp prices set`.",
            style="yellow",
        )
        return head
    head.append(f"price_id {row.price_id}, {describe_price(row.price)} per 1M tokens")
    head.append(f" - {shown(why(row, name, provider))}", style="dim")
    return head


# --- a sync ------------------------------------------------------------------------------


def _change_columns(*, dry_run: bool) -> list[tables.Column[PriceChange]]:
    """A dry run rolls its rows back: their ids were never kept, so none is shown."""
    C = tables.Column
    columns: list[tables.Column[PriceChange]] = [
        C("", lambda c: Text(c.kind, style="yellow" if c.kind == "changed" else "green")),
        C("model", lambda c: shown(c.model), 0, {"no_wrap": True}),
        C("provider", lambda c: shown(c.provider)),
        C("valid from", lambda c: day_text(c.valid_from)),
        C("what", lambda c: ", ".join(c.what), 2),
        C("old", lambda c: "" if c.old is None else describe_price(c.old.price), 1, squeeze=24),
        C("new", lambda c: describe_price(c.new.price), 0, squeeze=24),
    ]
    if not dry_run:
        columns.append(C("price_id", lambda c: str(c.new.price_id), 3, {"justify": "right"}))
    return columns


def print_report(console: Console, report: SyncReport, *, dry_run: bool) -> None:
    title = "Dry run, nothing stored: " if dry_run else "Prices synced from "
    console.print(Text.assemble((title, "bold"), report.summary()), highlight=False)
    changed = [c for c in report.changes if c.kind == "changed"]
    added = [c for c in report.changes if c.kind == "added"]
    shown_rows = changed + added[:SHOWN_ADDED]
    if shown_rows:
        tables.print_table(console, _change_columns(dry_run=dry_run), shown_rows)
    if len(added) > SHOWN_ADDED:
        console.print(
            Text(
                f"... and {len(added) - SHOWN_ADDED:,} more added (`wdp prices ls` lists them)",
                style="dim",
            ),
            highlight=False,
        )
    if report.reordered_only:
        console.print(
            Text(
                f"{report.reordered_only:,} changed row(s) differ only in the source's order "
                "(which provider or pattern is tried first), not in price",
                style="dim",
            ),
            highlight=False,
        )
    for row in report.seeded:
        console.print(
            Text(
                f"manual seed row: {shown(row.model)} (price_id {row.price_id}), "
                f"{describe_price(row.price)}"
            ),
            highlight=False,
        )
    reasons: dict[str, list[str]] = defaultdict(list)
    for skip in report.skipped:
        reasons[skip.reason].append(
            f"{skip.provider}/{skip.model}" if skip.provider else skip.model
        )
    for reason, names in reasons.items():
        listed = ", ".join(names[:SHOWN_NAMES]) + (", ..." if len(names) > SHOWN_NAMES else "")
        console.print(
            Text(f"skipped {len(names):,}: {shown(reason)} ({shown(listed)})", style="yellow"),
            highlight=False,
        )
    if report.not_in_source:
        console.print(
            Text(
                f"{len(report.not_in_source):,} synced model(s) no longer in the source: "
                "their rows are kept and still price the days they cover",
                style="dim",
            ),
            highlight=False,
        )
