"""Asset ``daily_event_aggregates``: one row per day and grouping, kept forever.

The aggregation itself (what is counted, the one transaction per day, the refusal of a
day whose raw events retention dropped) is :mod:`sdk.usage.aggregation`'s, which owns
the table; this module makes it a partitioned Dagster asset.
"""

from datetime import date

import dagster as dg

from platform_defs.resources import PostgresResource
from sdk.settings import WdpSettings
from sdk.usage.aggregation import aggregate_day
from sdk.usage.errors import RawEventsDropped

GROUP = "telemetry"


def daily_partitions_definition(
    settings: WdpSettings | None = None,
) -> dg.DailyPartitionsDefinition:
    """The asset's daily partitions, from ``AGGREGATE_START_DATE`` (the first day operators
    can backfill; earlier days never had raw partitions).

    Dagster needs a partitions definition's first day when the asset is defined, so this
    is the one setting read when the definitions load rather than when a run starts
    (a fresh ``WdpSettings``, leaving the cached settings alone): change it, then reload
    the code location.
    """
    start = (settings or WdpSettings()).aggregate_start_date
    return dg.DailyPartitionsDefinition(start_date=start.isoformat(), timezone="UTC")


daily_partitions = daily_partitions_definition()
# The first aggregate day, as the partitions definition has it (retention needs it too).
AGGREGATES_START: date = daily_partitions.start.date()


class RawMonthDropped(dg.Failure):
    """The day's raw events are gone; its aggregates are history and must not be rewritten."""


@dg.asset(
    group_name=GROUP,
    partitions_def=daily_partitions,
    deps=["event_partitions"],
    description=(
        "telemetry.daily_event_aggregates for one UTC day: events, distinct runs and items, "
        "tokens, cost, unknown-cost steps, errors and step duration p50/p95/max per "
        "(event_name, workflow_name, agent_role, model, node). Re-materialising replaces "
        "the day atomically; a day whose raw month was dropped fails instead of being "
        "overwritten. Never pruned."
    ),
    kinds={"postgres"},
)
def daily_event_aggregates(
    context: dg.AssetExecutionContext, postgres: PostgresResource
) -> dg.MaterializeResult[None]:
    day = date.fromisoformat(context.partition_key)
    try:
        with postgres.engine() as engine, engine.begin() as conn:
            written = aggregate_day(conn, day)
    except RawEventsDropped as exc:
        raise RawMonthDropped(
            description=str(exc).capitalize(),
            metadata={"day": str(day), "partition": exc.partition},
        ) from exc
    context.log.info(f"{day}: {written.events} events in {written.rows} aggregate rows")
    return dg.MaterializeResult(
        metadata={"day": str(day), "rows": written.rows, "events": written.events}
    )
