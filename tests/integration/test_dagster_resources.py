"""The artifact-store resource hands Dagster assets the same service agents use."""

from __future__ import annotations

from pathlib import Path

import pytest

from platform_defs.resources import ArtifactStoreResource


def test_the_artifact_resource_writes_and_reads_through_the_shared_service(
    migrated_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sdk.settings import reset_settings_cache

    monkeypatch.setenv("WDP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ARTIFACT_STORE", "file")
    reset_settings_cache()
    try:
        resource = ArtifactStoreResource(database_url=migrated_db_url)
        with resource.service() as service:
            written = service.write_artifact(type="report", content="# from dagster\n")
            assert service.read_content(written.artifact_id) == b"# from dagster\n"
    finally:
        reset_settings_cache()
