"""Asset ``daily_event_aggregates``: one row per day and grouping, kept forever.

The aggregation itself (what is counted, the one transaction per day, the refusal of a
day whose raw events retention dropped) is :mod:`sdk.usage.aggregation`'s, which owns
the table; this module makes it a partitioned Dagster asset that shows what it wrote.
The same transaction writes the day's ``telemetry.daily_model_usage`` rows, priced
(:mod:`sdk.usage.pricing`); their counts are metadata too (``model_usage``).
Re-pricing stored days after a price correction is the ``usage_repricing`` asset's.

**Today is a partition** (``end_offset=1``): the ``daily_aggregates_today`` schedule
re-aggregates it every hour, so the day in progress is visible in the UI and the read
side's live figures have a stored counterpart a few minutes old at most. Yesterday is
aggregated once more after midnight, and the ``AGGREGATE_LOOKBACK_DAYS`` days before it
at 02:00 (late events); see :mod:`platform_defs.schedules`.

**Freshness**: a :class:`dagster.FreshnessPolicy` (time window) on the asset. Dagster's
freshness daemon (part of ``dagster-daemon run``, on by default) marks the asset WARN
once its latest materialisation is :data:`FRESH_WARN` old and FAIL (degraded, in the
asset's health and on its overview page) at :data:`FRESH_FAIL`. The hourly refresh of
today is normally the latest materialisation, so "stale" means "today's partition is that
old". The policy looks at the asset's latest materialisation of any partition, so a
manual backfill of an old day also counts as fresh for that window.

**Why schedules, not declarative automation**: late events reach Postgres through the
ingest API, not through Dagster, so no ``AutomationCondition`` can see them arrive
(there is no upstream materialisation to react to). What remains is time-based:
``in_latest_time_window(lookback_delta=...) & cron_tick_passed(...).since_last_handled()``
does request the recent partitions (today included) once per tick, as
``dagster.evaluate_automation_conditions`` shows, but it is evaluated only while the
``default_automation_condition_sensor`` runs in the daemon (Dagster creates it stopped),
its lookback is fixed when the definitions load, and each tick's decision is buried in an
evaluation tree. The schedules say the same in a few lines, read
``AGGREGATE_LOOKBACK_DAYS`` at every tick, are unit-tested tick by tick, and list each
request on the Schedules page. docs/usage.md says the same for operators.
"""

from datetime import date, timedelta
from typing import Any

import dagster as dg

from platform_defs.assets.usage_metadata import day_metadata, definition_metadata
from platform_defs.resources import PostgresResource
from platform_defs.spend_checks import budget_result, check_specs, prices_result
from sdk.settings import WdpSettings, get_settings
from sdk.usage.aggregation import aggregate_day
from sdk.usage.day_usage import UsageWritten
from sdk.usage.errors import RawEventsDropped
from sdk.usage.summary import stored_versions, summarise_day

GROUP = "telemetry"
# Today is refreshed hourly: two missed refreshes warn, six hours of none fail.
FRESH_WARN = timedelta(hours=2)
FRESH_FAIL = timedelta(hours=6)


def daily_partitions_definition(
    settings: WdpSettings | None = None,
) -> dg.DailyPartitionsDefinition:
    """The asset's daily partitions, from ``AGGREGATE_START_DATE`` (the first day operators
    can backfill; earlier days never had raw partitions) through today (``end_offset=1``:
    the day in progress is a partition too, refreshed hourly).

    Dagster needs a partitions definition's first day when the asset is defined, so this
    is the one setting read when the definitions load rather than when a run starts
    (a fresh ``WdpSettings``, leaving the cached settings alone): change it, then reload
    the code location.
    """
    start = (settings or WdpSettings()).aggregate_start_date
    return dg.DailyPartitionsDefinition(start_date=start.isoformat(), timezone="UTC", end_offset=1)


daily_partitions = daily_partitions_definition()
# The first aggregate day, as the partitions definition has it (retention needs it too).
AGGREGATES_START: date = daily_partitions.start.date()


def usage_metadata(usage: UsageWritten) -> dict[str, dg.MetadataValue[Any]]:
    """The day's model-usage rows as one JSON entry: how many, per cost source (computed
    from the price table, provider-reported, emitted estimate, unknown) and the calls of
    unknown cost. JSON, not numbers: the Plots view keeps the figures docs/usage.md lists."""
    return {
        "model_usage": dg.MetadataValue.json(
            {"rows": usage.rows, **usage.by_source, "unknown_calls": usage.unknown_calls}
        )
    }


class RawMonthDropped(dg.Failure):
    """The day's raw events are gone; its aggregates are history and must not be rewritten."""


VERSION_MEANING = {
    1: "computed before migration 0005: no node; unknown-cost steps, cached tokens and max "
    "duration not recorded",
    2: "complete",
}


def kept_text(versions: dict[int, int]) -> str:
    """What a refused day keeps, e.g. "Kept: 3 rows of aggregate_version 1 (...)"."""
    if not versions:
        return "No aggregates are stored for it."
    parts = [
        f"{rows} row{'s' if rows != 1 else ''} of aggregate_version {version} "
        f"({VERSION_MEANING.get(version, 'unknown version')})"
        for version, rows in versions.items()
    ]
    return "Kept unchanged: " + "; ".join(parts) + "."


@dg.asset(
    group_name=GROUP,
    partitions_def=daily_partitions,
    deps=["event_partitions"],
    description=(
        "telemetry.daily_event_aggregates for one UTC day, and its telemetry.daily_model_usage "
        "(model calls per model, provider, context band and basis, priced from the price "
        "table valid that day: computed, provider-reported, emitted estimate or unknown). "
        "Aggregates: events, distinct runs and items, "
        "tokens (cached too), known cost and unknown-cost steps, errors and step duration "
        "p50/p95/max per (event_name, workflow_name, agent_role, model, node). "
        "Re-materialising replaces the day atomically; a day whose raw month was dropped "
        "fails instead of being overwritten. Never pruned. Partitions run through today, "
        "refreshed hourly. Each materialisation records the day's figures (see Plots) and "
        "its top workflows, nodes and models by cost (top_spend). Figures: docs/usage.md."
    ),
    kinds={"postgres"},
    metadata=definition_metadata(),
    check_specs=check_specs,
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=FRESH_FAIL, warn_window=FRESH_WARN),
)
def daily_event_aggregates(
    context: dg.AssetExecutionContext, postgres: PostgresResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]  # Dagster needs it bare with checks
    day = date.fromisoformat(context.partition_key)
    try:
        with postgres.engine() as engine, engine.begin() as conn:
            written = aggregate_day(conn, day)
            summary = summarise_day(conn, day)
    except RawEventsDropped as exc:
        with postgres.engine() as engine, engine.connect() as conn:
            versions = stored_versions(conn, day)
        raise RawMonthDropped(
            description=f"{str(exc).capitalize()} {kept_text(versions)}",
            metadata={
                "day": str(day),
                "partition": exc.partition,
                "stored_rows_by_version": dg.MetadataValue.json(
                    {str(v): n for v, n in versions.items()}
                ),
            },
        ) from exc
    usage = written.usage
    context.log.info(
        f"{day}: {written.events} events in {written.rows} aggregate rows; {usage.rows} "
        f"model-usage rows, {usage.by_source['unknown']} of unknown cost"
    )
    return dg.MaterializeResult(
        metadata=day_metadata(summary, rows=written.rows) | usage_metadata(usage),
        check_results=[
            budget_result(summary, get_settings().usage_daily_budget_usd),
            prices_result(summary),
        ],
    )
