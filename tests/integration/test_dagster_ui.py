"""Acceptance: the real Dagster webserver shows what the aggregates recorded.

One webserver for the module (a private DAGSTER_HOME, a loopback port, the module's
database): three days are materialised into its instance, then its GraphQL API is asked
over HTTP for the latest materialisation and the asset's definition, and a headless
Chromium photographs the Plots view. The functions are those of
``python -m benchmarks.screenshots``, which writes docs/images/aggregates-plots.png.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from benchmarks.screenshots import (
    CHROMIUM,
    DAY_SHAPES,
    NODES,
    ROOT,
    DagsterUi,
    materialise,
    prepare_home,
    run_webserver,
    screenshot_plots,
    seed,
    showcase_days,
)
from platform_defs.assets.usage_metadata import NUMERIC_FIGURES

pytestmark = pytest.mark.slow
DAYS = showcase_days()


@pytest.fixture(scope="module")
def ui(migrated_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterUi]:
    seed(migrated_db_url, DAYS)
    home = prepare_home(tmp_path_factory.mktemp("dagster-home"))
    materialise(home, migrated_db_url, DAYS)
    with run_webserver(home, migrated_db_url, first_day=DAYS[0]) as server:
        yield server


LATEST = """
query Latest($path: [String!]!) {
  assetOrError(assetKey: {path: $path}) {
    __typename
    ... on Asset {
      assetMaterializations(limit: 1) {
        partition
        metadataEntries {
          __typename
          label
          ... on IntMetadataEntry { intValue }
          ... on FloatMetadataEntry { floatValue }
          ... on MarkdownMetadataEntry { mdStr }
        }
      }
    }
  }
}
"""


def expected_figures(runs: int) -> dict[str, Any]:
    """A day of :func:`benchmarks.screenshots.seed` with ``runs`` runs, by hand: each step
    is one call, priced from its manual price (in and out alike) on its tokens."""
    failed = sum(1 for r in range(runs) if r % 6 == 5)
    priced = [(tin, tout, price) for *_, tin, tout, price in NODES if price is not None]
    computed = sum(
        Decimal(str(p)) * (i + 13 * r + o + 5 * r) / 1000 for i, o, p in priced for r in range(runs)
    )
    judge_out = next(tout for _, node, *_, tout, _ in NODES if node == "judge")
    return {
        "cost_usd": float(computed),
        "cost_unknown_calls": runs,  # rerank's model has no price
        "cost_computed_usd": float(computed),
        "cost_reported_usd": 0.0,
        "cost_estimate_usd": 0.0,
        "calls": runs * len(NODES),
        "tokens_in": sum(tin + 13 * r for *_, tin, _, _ in NODES for r in range(runs)),
        "tokens_out": sum(tout + 5 * r for *_, tout, _ in NODES for r in range(runs)),
        "tokens_cached_in": runs * (3000 // 2),  # summarise reads half its input from cache
        "tokens_cache_write": 0,
        "tokens_reasoning": sum((judge_out + 5 * r) // 2 for r in range(runs)),
        "events": runs * (len(NODES) + 1),
        "steps": runs * len(NODES),
        "runs": runs,
        "errors": 2 * failed,  # the failed judge step, and its run
    }


def test_graphql_serves_the_latest_materialisations_numeric_metadata(ui: DagsterUi) -> None:
    asset = ui.graphql(LATEST, {"path": ["daily_event_aggregates"]})["assetOrError"]
    assert asset["__typename"] == "Asset"
    (latest,) = asset["assetMaterializations"]
    assert latest["partition"] == DAYS[-1].isoformat()
    entries = {e["label"]: e for e in latest["metadataEntries"]}
    numeric = {
        label: e.get("intValue", e.get("floatValue"))
        for label, e in entries.items()
        if e["__typename"] in ("IntMetadataEntry", "FloatMetadataEntry")
    }
    assert set(numeric) == {"rows", *NUMERIC_FIGURES}
    assert entries["cost_usd"]["__typename"] == "FloatMetadataEntry"
    assert entries["step_p95_ms"]["__typename"] == "FloatMetadataEntry"
    runs, _ = DAY_SHAPES[-1]
    expected = expected_figures(runs)
    assert {k: numeric[k] for k in expected} == expected | {
        k: pytest.approx(expected[k]) for k in ("cost_usd", "cost_computed_usd")
    }
    assert numeric["step_p95_ms"] > 0
    assert "local\\-reranker" in entries["top_spend"]["mdStr"]


DEFINITION = """
query Definition($path: [String!]!) {
  assetNodeOrError(assetKey: {path: $path}) {
    ... on AssetNode {
      partitionKeys
      metadataEntries {
        label
        ... on TextMetadataEntry { text }
        ... on TableSchemaMetadataEntry { schema { columns { name description } } }
      }
      internalFreshnessPolicy {
        ... on TimeWindowFreshnessPolicy { failWindowSeconds warnWindowSeconds }
      }
      assetChecksOrError { ... on AssetChecks { checks { name } } }
    }
  }
}
"""


def test_the_ui_knows_the_table_its_checks_and_its_freshness(ui: DagsterUi) -> None:
    node = ui.graphql(DEFINITION, {"path": ["daily_event_aggregates"]})["assetNodeOrError"]
    entries = {e["label"]: e for e in node["metadataEntries"]}
    assert entries["dagster/table_name"]["text"] == "telemetry.daily_event_aggregates"
    columns = entries["dagster/column_schema"]["schema"]["columns"]
    assert "cost_unknown_steps" in {c["name"] for c in columns}
    assert all(c["description"] for c in columns)
    assert entries["model_usage/table_name"]["text"] == "telemetry.daily_model_usage"
    usage_columns = entries["model_usage/column_schema"]["schema"]["columns"]
    assert {"cost_source", "price_id", "tokens_reasoning"} <= {c["name"] for c in usage_columns}
    assert all(c["description"] for c in usage_columns)
    assert node["internalFreshnessPolicy"] == {
        "failWindowSeconds": 21600,
        "warnWindowSeconds": 7200,
    }
    checks = {c["name"] for c in node["assetChecksOrError"]["checks"]}
    assert checks == {"spend_within_budget", "models_have_prices", "aggregates_reconcile"}
    # The partitions run through today (AGGREGATE_START_DATE = the first day shown).
    assert node["partitionKeys"][0] == DAYS[0].isoformat()
    assert node["partitionKeys"][-1] == date.fromordinal(DAYS[-1].toordinal() + 1).isoformat()


FRESHNESS = """
query Freshness($path: [String!]!) {
  assetNodeOrError(assetKey: {path: $path}) {
    ... on AssetNode { freshnessStatusInfo { freshnessStatus } }
  }
}
"""


def test_freshness_shows_warning_then_degraded_as_the_latest_materialisation_ages(
    ui: DagsterUi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dagster's own freshness daemon evaluates the policy (as ``dagster-daemon run`` does
    every 30 s) at a shifted "now"; the webserver then serves the state the UI shows."""
    import dagster as dg
    import dagster._core.definitions.freshness_evaluator as evaluator
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import ModuleTarget
    from dagster._daemon.freshness import FreshnessDaemon

    from platform_defs.assets.aggregates import FRESH_FAIL, FRESH_WARN

    def status() -> str:
        node = ui.graphql(FRESHNESS, {"path": ["daily_event_aggregates"]})["assetNodeOrError"]
        return str(node["freshnessStatusInfo"]["freshnessStatus"])

    assert status() == "UNKNOWN"  # never evaluated yet
    target = ModuleTarget(
        module_name="platform_defs.definitions",
        attribute="defs",
        working_directory=str(ROOT),
        location_name="wdp",
    )
    seen = []
    real_now = evaluator.get_current_timestamp
    with (
        dg.DagsterInstance.from_config(str(ui.home)) as instance,
        WorkspaceProcessContext(instance, target) as workspace,
    ):
        for age in (timedelta(0), FRESH_WARN + timedelta(minutes=1), FRESH_FAIL):
            later = real_now() + age.total_seconds()
            monkeypatch.setattr(evaluator, "get_current_timestamp", lambda t=later: t)
            asyncio.run(FreshnessDaemon()._evaluate_assets(workspace))
            seen.append(status())
    assert seen == ["HEALTHY", "WARNING", "DEGRADED"]


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_chromium_photographs_the_plots_of_three_days(
    ui: DagsterUi, tmp_path_factory: pytest.TempPathFactory
) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (.ci/run installs it with apt-get where it can)")
    pytest.importorskip("playwright.sync_api", reason="the dev extra's playwright is missing")
    out = tmp_path_factory.mktemp("screenshots") / "aggregates-plots.png"
    # Returns only once every chart's canvas has ink and has stopped changing.
    screenshot_plots(ui, out, charts=len(NUMERIC_FIGURES) + 1)
    width, height = png_size(out)
    assert width > 600
    assert height > 1000  # eleven charts, two per row
    print(f"screenshot (test artefact): {out}")
