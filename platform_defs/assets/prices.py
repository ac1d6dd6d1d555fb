"""Asset ``model_prices``: keep ``telemetry.model_prices`` in step with genai-prices.

Each materialisation runs :func:`sdk.prices.sync.sync_bundled`: the pinned genai-prices
package's data (and wdp's manual seed rows, once) compared with the stored rows, and only
what is new or changed inserted - as new rows, never updates; manual rows (``wdp prices
set``) are never touched and keep winning. The data changes only when the pin changes
(``make lock``), so most daily runs insert nothing and say so; the run after an upgrade
lists every changed price, old and new rates side by side.

Scheduled daily (``model_prices_daily``, 00:20 UTC) ahead of the aggregation of
yesterday (00:30), so a day is first aggregated with the prices of the day's data. Days
already aggregated keep their stored costs until ``usage_repricing`` re-prices them.
"""

from collections import Counter
from typing import Any

import dagster as dg

from platform_defs.assets.usage_metadata import column_schema, markdown_text
from platform_defs.resources import PostgresResource
from sdk.db.schema import TELEMETRY_SCHEMA
from sdk.db.schema import model_prices as model_prices_table
from sdk.prices.book import ALWAYS
from sdk.prices.sync import PriceChange, SyncReport, describe_price, sync_bundled

GROUP = "telemetry"
TABLE = f"{TELEMETRY_SCHEMA}.{model_prices_table.name}"
SHOWN_CHANGES = 100  # rows of the changes table (the first sync adds thousands)


def _day(change: PriceChange) -> str:
    return "always" if change.valid_from == ALWAYS else change.valid_from.isoformat()


def changes_markdown(report: SyncReport, top: int = SHOWN_CHANGES) -> str:
    """The inserted rows as a table, changed ones first: model, provider, valid from, what
    differs, old and new rates (USD per 1M tokens). Names are escaped: they come from a
    package's data, and a table cell must stay a cell."""
    ordered = sorted(report.changes, key=lambda c: c.kind != "changed")
    if not ordered and not report.seeded:
        return "_nothing new: every price of the source is stored already_\n"
    lines = []
    if ordered:
        shown = ordered[:top]
        more = f" (first {len(shown)} of {len(ordered)})" if len(ordered) > len(shown) else ""
        lines += [
            f"**Inserted price rows**{more}: USD per 1M tokens",
            "",
            "| Kind | Model | Provider | Valid from | What | Old | New | price_id |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for c in shown:
            old = "" if c.old is None else markdown_text(describe_price(c.old.price))
            lines.append(
                f"| {c.kind} | {markdown_text(c.model)} | {markdown_text(c.provider)} | "
                f"{_day(c)} | {', '.join(c.what)} | {old} | "
                f"{markdown_text(describe_price(c.new.price))} | {c.new.price_id} |"
            )
        lines.append("")
    if report.seeded:
        names = ", ".join(markdown_text(r.model) for r in report.seeded)
        lines += [f"**Manual seed rows added**: {names}", ""]
    return "\n".join(lines).rstrip() + "\n"


def sync_metadata(report: SyncReport) -> dict[str, dg.MetadataValue[Any]]:
    """A materialisation's metadata: the counts (plotted per run), the changes, the reasons
    for what was skipped."""
    reasons = Counter(s.reason for s in report.skipped)
    return {
        "source": dg.MetadataValue.text(", ".join(report.sources) or "no source rows"),
        "added": dg.MetadataValue.int(report.added),
        "changed": dg.MetadataValue.int(report.changed),
        "unchanged": dg.MetadataValue.int(report.unchanged),
        "skipped": dg.MetadataValue.int(len(report.skipped)),
        "seeded": dg.MetadataValue.int(len(report.seeded)),
        "not_in_source": dg.MetadataValue.int(len(report.not_in_source)),
        "rows_total": dg.MetadataValue.int(report.rows_total),
        "dagster/row_count": dg.MetadataValue.int(report.rows_total),
        "changes": dg.MetadataValue.md(changes_markdown(report)),
        "skipped_by_reason": dg.MetadataValue.json(dict(reasons)),
    }


@dg.asset(
    group_name=GROUP,
    description=(
        "telemetry.model_prices: model prices per token kind, context tiers and valid_from, "
        "synced from the pinned genai-prices data (MIT) plus manual rows (`wdp prices set`), "
        "which win. Only new or changed prices are inserted, as new rows (the table is "
        "append-only); each run lists them, old and new rates. See docs/prices.md."
    ),
    kinds={"postgres"},
    metadata={
        "dagster/table_name": dg.MetadataValue.text(TABLE),
        "dagster/column_schema": dg.MetadataValue.table_schema(column_schema(model_prices_table)),
    },
)
def model_prices(
    context: dg.AssetExecutionContext, postgres: PostgresResource
) -> dg.MaterializeResult[None]:
    with postgres.engine() as engine, engine.begin() as conn:
        report = sync_bundled(conn, progress=context.log.info)
    context.log.info(report.summary())
    return dg.MaterializeResult(metadata=sync_metadata(report))
