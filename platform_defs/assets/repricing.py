"""Asset ``usage_repricing``: price every stored usage day again with the current price table.

A price row dated in the past (a correction, a price the library learnt late, a manual
override) changes what those days cost. This asset prices every stored
``telemetry.daily_model_usage`` row again with :func:`sdk.usage.pricing.price_usage_row`
- the rule the aggregation used - and writes only the rows whose cost, source or price
row changed, so a run after which nothing changed writes nothing. Days whose raw events
retention has dropped are re-priced too, from their token sums; no day is
re-aggregated. The events' own estimates are never touched (events are immutable).

**When**: after every ``model_prices`` materialisation (the sync from genai-prices),
through the sensor ``usage_repricing_after_prices``, and once a day at 03:30 UTC
(``usage_repricing_daily``), which also covers prices set by hand with ``wdp prices
set`` (no materialisation announces them). By hand: materialise it from the UI.

**Alongside aggregation**: both take the per-day lock ``AGGREGATE_DAY_LOCK_CLASS``
(re-pricing in ascending day order, a batch of days per transaction), so for any day one
waits for the other, and each reads the (append-only) price table after taking it: the
one that runs second sees every price the first saw, so a day is never left priced with
an older table. Neither holds the other's locks while waiting, so they cannot deadlock;
two re-pricing runs take the days in the same order.
"""

from typing import Any

import dagster as dg

from platform_defs.assets.usage_metadata import markdown_text, usd
from platform_defs.resources import PostgresResource
from sdk.prices.book import PriceRow
from sdk.prices.repository import load_book
from sdk.usage.pricing import DayRepriced, RepriceReport, reprice_all

GROUP = "telemetry"
PRICES_ASSET = dg.AssetKey("model_prices")
TABLE_DAYS = 60  # days listed in the per-day table (the largest changes first)
MODELS_PER_DAY = 5


def _models(day: DayRepriced) -> str:
    names = sorted(day.changed_models)
    shown = ", ".join(markdown_text(n) for n in names[:MODELS_PER_DAY])
    return shown + (
        f" \\+{len(names) - MODELS_PER_DAY} more" if len(names) > MODELS_PER_DAY else ""
    )


def days_markdown(report: RepriceReport, limit: int = TABLE_DAYS) -> str:
    """The re-priced days: known cost before and after, unknown calls, what changed."""
    changed = report.changed_days
    if not changed:
        return "_No stored day changed: every row already had the cost the price table gives._\n"
    shown = sorted(changed, key=lambda d: (-abs(d.after_usd - d.before_usd), d.day))[:limit]
    total = RepriceReport(changed)
    lines = [
        f"**{len(changed)} day{'s' if len(changed) != 1 else ''} re-priced**: known cost "
        f"{usd(total.before_usd)} → {usd(total.after_usd)}, calls of unknown cost "
        f"{total.unknown_before} → {total.unknown_after}"
        + (f" (the {len(shown)} largest changes below)" if len(shown) < len(changed) else ""),
        "",
        "| Day | Rows re-priced | Known cost before | After | Unknown calls before → after "
        "| Models | Price rows |",
        "|---|---|---|---|---|---|---|",
    ]
    for d in sorted(shown, key=lambda d: d.day):
        ids = ", ".join(str(i) for i in sorted(d.changed_price_ids)) or "none"
        lines.append(
            f"| {d.day} | {d.rows_changed} | {usd(d.before_usd)} | {usd(d.after_usd)} "
            f"| {d.unknown_before} → {d.unknown_after} | {_models(d)} | {ids} |"
        )
    return "\n".join(lines) + "\n"


def _price_row(row: PriceRow) -> dict[str, Any]:
    return {
        "price_id": row.price_id,
        "model": row.model,
        "provider": row.provider,
        "valid_from": row.valid_from.isoformat(),
        "source": row.source,
        "price": row.price.as_json(),
    }


def repricing_metadata(
    report: RepriceReport, rows: dict[int, PriceRow]
) -> dict[str, dg.MetadataValue[Any]]:
    changed = RepriceReport(report.changed_days)
    return {
        "days_checked": dg.MetadataValue.int(len(report.days)),
        "days_repriced": dg.MetadataValue.int(len(changed.days)),
        "rows_repriced": dg.MetadataValue.int(report.rows_changed),
        # Over the re-priced days; the other days' costs did not move.
        "cost_before_usd": dg.MetadataValue.float(float(changed.before_usd)),
        "cost_after_usd": dg.MetadataValue.float(float(changed.after_usd)),
        "unknown_calls_before": dg.MetadataValue.int(changed.unknown_before),
        "unknown_calls_after": dg.MetadataValue.int(changed.unknown_after),
        "days": dg.MetadataValue.md(days_markdown(report)),
        "price_rows_used": dg.MetadataValue.json(
            [_price_row(rows[i]) for i in sorted(report.price_ids) if i in rows]
        ),
    }


@dg.asset(
    group_name=GROUP,
    deps=[PRICES_ASSET],
    description=(
        "Re-prices every stored day of telemetry.daily_model_usage with the current price "
        "table (also days whose raw events retention dropped: from their token sums) and "
        "writes only the rows whose cost changed. Metadata: the days re-priced with their "
        "known cost before and after, unknown calls, and the price rows used. Runs after "
        "each model_prices sync and daily; safe alongside aggregation (per-day locks)."
    ),
    kinds={"postgres"},
)
def usage_repricing(
    context: dg.AssetExecutionContext, postgres: PostgresResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    with postgres.engine() as engine:
        report = reprice_all(engine)
        with engine.connect() as conn:
            rows = {r.price_id: r for r in load_book(conn).rows}  # append-only: ids stay
    changed = report.changed_days
    context.log.info(
        f"{len(report.days)} stored days checked; {len(changed)} re-priced "
        f"({report.rows_changed} rows)"
    )
    return dg.MaterializeResult(metadata=repricing_metadata(report, rows))


JOB_NAME = "usage_repricing_job"
usage_repricing_job = dg.define_asset_job(
    JOB_NAME,
    selection=dg.AssetSelection.assets(usage_repricing),
    description="Re-price stored usage days with the current price table.",
)

usage_repricing_daily = dg.ScheduleDefinition(
    name="usage_repricing_daily",
    job=usage_repricing_job,
    cron_schedule="30 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily: re-price stored days (covers prices set by hand, which no sync announces).",
)


@dg.asset_sensor(
    name="usage_repricing_after_prices",
    asset_key=PRICES_ASSET,
    job=usage_repricing_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Re-prices stored usage days after each model_prices materialisation.",
)
def usage_repricing_after_prices(
    context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry
) -> dg.RunRequest:
    # One run per materialisation of the price table (the sensor moves its cursor past
    # the event only after this returns, so the key names the event itself).
    return dg.RunRequest(run_key=f"prices-{asset_event.run_id}-{asset_event.timestamp}")
