"""The ``kb_ingestion`` asset and its sensor, run by Dagster against a real Postgres."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from platform_defs.assets.knowledge_base import kb_ingestion, kb_ingestion_sensor
from platform_defs.definitions import defs
from platform_defs.resources import KnowledgeBaseResource, PostgresResource
from sdk.artifacts import ArtifactService
from sdk.artifacts.stores import FileStore
from sdk.db import migrate
from sdk.db.engine import create_engine
from sdk.settings import reset_settings_cache
from tests.integration.kb_support import KB_INLINE_MAX, documents, pending, write_mixed_set
from tests.support.cli import run_wdp


@pytest.fixture
def setup(
    database_factory: Callable[[], str],
    wdp_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[str, sa.Engine, ArtifactService]]:
    """A migrated database with the mixed artifact set written to a file store that the
    settings (ARTIFACT_DIR) also point at, as in the local stack."""
    url = database_factory()
    migrate.upgrade(url)
    store_dir = tmp_path / "store"
    monkeypatch.setenv("ARTIFACT_DIR", str(store_dir))
    monkeypatch.setenv("KB_BATCH_SIZE", "4")
    reset_settings_cache()
    eng = create_engine(url)
    artifacts = ArtifactService(
        engine=eng, store=FileStore(store_dir), inline_max_bytes=KB_INLINE_MAX
    )
    yield url, eng, artifacts
    eng.dispose()


def test_the_asset_ingests_everything_pending_and_reports_counts(
    setup: tuple[str, sa.Engine, ArtifactService],
) -> None:
    url, eng, artifacts = setup
    write_mixed_set(artifacts)
    result = dg.materialize(
        [kb_ingestion],
        instance=dg.DagsterInstance.ephemeral(),
        resources={"kb": KnowledgeBaseResource(database_url=url)},
    )
    assert result.success
    [materialization] = result.asset_materializations_for_node("kb_ingestion")
    meta = {k: v.value for k, v in materialization.metadata.items()}
    assert meta["versions"] == 6
    assert meta["batches"] == 2
    assert meta["skipped"] == 2
    assert meta["pending_after"] == 0
    assert meta["chunks"] > 4
    assert meta["embedder"] == "none"
    assert len(documents(eng)) == 6

    again = dg.materialize(
        [kb_ingestion],
        instance=dg.DagsterInstance.ephemeral(),
        resources={"kb": KnowledgeBaseResource(database_url=url)},
    )
    [second] = again.asset_materializations_for_node("kb_ingestion")
    assert second.metadata["versions"].value == 0


def test_the_sensor_requests_a_run_only_while_versions_wait(
    setup: tuple[str, sa.Engine, ArtifactService],
) -> None:
    url, eng, artifacts = setup
    instance = dg.DagsterInstance.ephemeral()
    resources = {"postgres": PostgresResource(database_url=url)}
    idle = kb_ingestion_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    assert isinstance(idle, dg.SkipReason)

    write_mixed_set(artifacts)
    result = kb_ingestion_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    assert isinstance(result, dg.SensorResult)
    [request] = result.run_requests or []
    assert request.tags["wdp/pending_versions"] == "6"
    assert request.run_key

    dg.materialize(
        [kb_ingestion], instance=instance, resources={"kb": KnowledgeBaseResource(database_url=url)}
    )
    assert pending(eng) == 0
    after = kb_ingestion_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    assert isinstance(after, dg.SkipReason)


def test_the_code_location_has_the_kb_asset_job_and_sensor() -> None:
    repo = defs.get_repository_def()
    assert repo.has_job("kb_ingestion_job")
    assert "kb_ingestion_sensor" in {s.name for s in repo.sensor_defs}
    assert dg.AssetKey("kb_ingestion") in defs.resolve_asset_graph().get_all_asset_keys()


def test_cli_reindex_redoes_everything_with_progress(
    setup: tuple[str, sa.Engine, ArtifactService], wdp_env: dict[str, str]
) -> None:
    url, eng, artifacts = setup
    write_mixed_set(artifacts)
    env = {**os.environ, "DATABASE_URL": url}
    first = run_wdp(env, "kb", "reindex", "--pending")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["versions"] == 6
    before = {key: doc.chunk_count for key, doc in documents(eng).items()}

    again = run_wdp(env, "kb", "reindex", "--type", "report")
    assert again.returncode == 0, again.stderr
    assert "1 artifact versions to ingest" in again.stderr
    assert json.loads(again.stdout)["versions"] == 1
    assert {key: doc.chunk_count for key, doc in documents(eng).items()} == before

    stats = run_wdp(env, "kb", "stats", "--json")
    assert json.loads(stats.stdout) == {
        "documents": 6,
        "chunks": sum(before.values()),
        "pending": 0,
        "skipped": 2,
        "vector_column": True,
        "embedder": None,  # KB_EMBEDDER is unset here: nothing embedded
        "embedded_chunks": 0,
    }
