"""Acceptance: the real Dagster webserver shows the ``model_prices`` asset, its latest
sync and its daily schedule (GraphQL over HTTP, as the UI asks)."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pytest

from benchmarks.screenshots import DagsterUi, prepare_home, run_webserver
from platform_defs.assets.prices import model_prices
from platform_defs.resources import PostgresResource
from sdk.prices.genai import GENAI_SOURCE, SEED_MANUAL, genai_rows

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ui(migrated_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterUi]:
    home = prepare_home(tmp_path_factory.mktemp("dagster-home"))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for _ in range(2):  # the second run finds everything stored
            dg.materialize(
                [model_prices],
                instance=instance,
                resources={"postgres": PostgresResource(database_url=migrated_db_url)},
            )
    with run_webserver(home, migrated_db_url) as server:
        yield server


ASSET = """
query Asset($path: [String!]!) {
  assetNodeOrError(assetKey: {path: $path}) {
    ... on AssetNode {
      groupName
      description
      jobNames
      metadataEntries { label ... on TextMetadataEntry { text } }
    }
  }
  assetOrError(assetKey: {path: $path}) {
    ... on Asset {
      assetMaterializations(limit: 2) {
        metadataEntries {
          label
          ... on IntMetadataEntry { intValue }
          ... on TextMetadataEntry { text }
          ... on MarkdownMetadataEntry { mdStr }
        }
      }
    }
  }
}
"""

SCHEDULES = """
query {
  workspaceOrError {
    ... on Workspace {
      locationEntries {
        locationOrLoadError {
          ... on RepositoryLocation {
            repositories { schedules { name cronSchedule executionTimezone pipelineName } }
          }
        }
      }
    }
  }
}
"""


def test_the_ui_shows_the_asset_and_its_latest_sync(ui: DagsterUi) -> None:
    data = ui.graphql(ASSET, {"path": ["model_prices"]})
    node = data["assetNodeOrError"]
    assert node["groupName"] == "telemetry"
    assert "genai-prices" in node["description"]
    assert "model_prices_job" in node["jobNames"]
    definition = {e["label"]: e.get("text") for e in node["metadataEntries"]}
    assert definition["dagster/table_name"] == "telemetry.model_prices"
    latest, first = data["assetOrError"]["assetMaterializations"]  # newest first
    rows = len(genai_rows().rows)

    def entries(m: dict[str, object]) -> dict[str, object]:
        return {
            e["label"]: e.get("intValue", e.get("text", e.get("mdStr")))
            for e in m["metadataEntries"]  # type: ignore[attr-defined]
        }

    latest_e, first_e = entries(latest), entries(first)
    assert first_e["added"] == rows
    assert (latest_e["added"], latest_e["changed"], latest_e["unchanged"]) == (0, 0, rows)
    assert latest_e["source"] == GENAI_SOURCE
    assert latest_e["rows_total"] == rows + len(SEED_MANUAL)
    assert "**Inserted price rows**" in str(first_e["changes"])


def test_the_ui_lists_the_daily_schedule(ui: DagsterUi) -> None:
    workspace = ui.graphql(SCHEDULES)["workspaceOrError"]
    schedules = {
        s["name"]: s
        for entry in workspace["locationEntries"]
        for repo in entry["locationOrLoadError"]["repositories"]
        for s in repo["schedules"]
    }
    assert schedules["model_prices_daily"] == {
        "name": "model_prices_daily",
        "cronSchedule": "20 0 * * *",
        "executionTimezone": "UTC",
        "pipelineName": "model_prices_job",
    }
