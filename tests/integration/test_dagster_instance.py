"""deploy/dagster/dagster.yaml, loaded by Dagster itself against a real Postgres.

No Docker engine on CI, so the compose stack's Dagster instance is checked the way the
containers will load it: Dagster's own config schema and every configured class, with
the storage on a fresh database of the test server.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from dagster import DagsterInstance
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config
from dagster._core.launcher import DefaultRunLauncher
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager

ROOT = Path(__file__).resolve().parents[2]
INSTANCE_YAML = ROOT / "deploy" / "dagster" / "dagster.yaml"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_db_url: str) -> Path:
    """A DAGSTER_HOME holding the stack's dagster.yaml, its storage on a fresh database."""
    shutil.copy(INSTANCE_YAML, tmp_path / "dagster.yaml")
    # As compose passes it: dagster-postgres needs the psycopg2 driver named.
    monkeypatch.setenv(
        "WDP_DAGSTER_PG_URL", "postgresql+psycopg2://" + empty_db_url.split("://")[1]
    )
    return tmp_path


def test_dagster_accepts_the_stack_instance_config(home: Path) -> None:
    config, custom_class = dagster_instance_config(str(home))
    assert custom_class is None
    assert config["compute_logs"]["config"] == {"base_dir": "/var/lib/wdp/dagster-logs"}


def test_the_stack_instance_loads_with_shared_run_logs(home: Path) -> None:
    with DagsterInstance.from_config(str(home)) as instance:
        logs = instance.compute_log_manager
        assert isinstance(logs, LocalComputeLogManager)
        assert logs._base_dir == "/var/lib/wdp/dagster-logs"  # the compose volume
        # Runs execute in the code server's container, which mounts that volume.
        assert isinstance(instance.run_launcher, DefaultRunLauncher)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        assert instance.get_runs() == []  # the storage is really on Postgres
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"


def test_the_schema_check_is_not_vacuous(home: Path) -> None:
    path = home / "dagster.yaml"
    path.write_text(path.read_text().replace("base_dir:", "base_directory:"))
    with (
        DagsterInstance.from_config(str(home)) as instance,
        pytest.raises(DagsterInvalidConfigError, match="base_dir"),
    ):
        instance.compute_log_manager  # noqa: B018 - built (and validated) on first use
