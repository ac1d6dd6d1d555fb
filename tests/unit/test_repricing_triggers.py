"""What starts ``usage_repricing``: each model_prices materialisation, and a daily tick."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from platform_defs.assets.repricing import (
    JOB_NAME,
    PRICES_ASSET,
    usage_repricing_after_prices,
    usage_repricing_daily,
)
from platform_defs.definitions import defs


def test_each_price_sync_requests_one_repricing_run() -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        repo = defs.get_repository_def()

        def tick(cursor: str | None) -> dg.SensorExecutionData:
            context = dg.build_sensor_context(instance=instance, cursor=cursor, repository_def=repo)
            return usage_repricing_after_prices.evaluate_tick(context)

        nothing = tick(None)
        assert not nothing.run_requests
        instance.report_runless_asset_event(dg.AssetMaterialization(PRICES_ASSET))
        first = tick(nothing.cursor)
        assert len(first.run_requests or []) == 1
        assert not tick(first.cursor).run_requests  # the same sync is not re-priced twice
        instance.report_runless_asset_event(dg.AssetMaterialization(PRICES_ASSET))
        second = tick(first.cursor)
        (run,) = second.run_requests or []
        assert run.run_key != (first.run_requests or [])[0].run_key
    assert usage_repricing_after_prices.job_name == JOB_NAME


def test_the_daily_tick_requests_a_run_after_the_nightly_aggregation() -> None:
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 3, 2, 3, 30, tzinfo=UTC),
        repository_def=defs.get_repository_def(),
    )
    (run,) = usage_repricing_daily.evaluate_tick(context).run_requests or []
    assert usage_repricing_daily.job_name == JOB_NAME
    assert usage_repricing_daily.cron_schedule == "30 3 * * *"  # after the 02:00 lookback
    assert run.partition_key is None


def test_the_asset_depends_on_the_price_table_by_key() -> None:
    graph = defs.resolve_asset_graph()
    node = graph.get(dg.AssetKey("usage_repricing"))
    assert PRICES_ASSET in node.parent_keys
