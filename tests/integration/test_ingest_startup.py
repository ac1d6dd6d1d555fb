"""How the API behaves around its own start: keys required, readiness tied to migrations."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from sdk.db import migrate
from tests.support.servers import free_port, run_api

ROOT = Path(__file__).resolve().parents[2]


def test_the_api_refuses_to_start_without_keys(empty_db_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    env["DATABASE_URL"] = empty_db_url
    result = subprocess.run(
        [sys.executable, "-m", "sdk.cli.main", "api", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "INGEST_API_KEYS is empty" in result.stderr
    assert "INGEST_AUTH_DISABLED=true" in result.stderr


def test_auth_can_be_disabled_explicitly(migrated_db_url: str, tmp_path: Path) -> None:
    with run_api(
        migrated_db_url,
        tmp_path / "api.log",
        extra_env={"INGEST_API_KEYS": "", "INGEST_AUTH_DISABLED": "true"},
    ) as server:
        response = httpx.post(f"{server.base_url}/telemetry/events", json={})
        assert response.status_code == 422
        # Everything is open then; a probe that happens to send a header is not a failure.
        for headers in ({}, {"Authorization": "Bearer anything"}):
            ready = httpx.get(f"{server.base_url}/readyz", headers=headers)
            assert ready.status_code == 200
            assert ready.json()["revision"] == migrate.head_revision()


def test_readiness_is_503_until_the_database_is_migrated(empty_db_url: str, tmp_path: Path) -> None:
    with run_api(empty_db_url, tmp_path / "api.log", wait_for="/healthz") as server:
        not_ready = httpx.get(f"{server.base_url}/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json()["status"] == "unavailable"
        assert migrate.head_revision() not in not_ready.text  # anonymous: no revisions
        keyed = httpx.get(f"{server.base_url}/readyz", headers=server.auth)
        assert keyed.status_code == 503
        assert migrate.head_revision() in keyed.json()["detail"]
        migrate.upgrade(empty_db_url)
        ready = httpx.get(f"{server.base_url}/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready"}
        keyed = httpx.get(f"{server.base_url}/readyz", headers=server.auth)
        assert keyed.status_code == 200
        assert keyed.json()["revision"] == migrate.head_revision()


def test_logs_are_json_lines_without_secrets(migrated_db_url: str, tmp_path: Path) -> None:
    import json

    log = tmp_path / "api.log"
    with run_api(migrated_db_url, log) as server:
        httpx.post(
            f"{server.base_url}/telemetry/events",
            json={},
            headers={"Authorization": "Bearer not-a-key"},
        )
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert lines
    records = [json.loads(line) for line in lines]
    assert all({"ts", "level", "logger", "msg"} <= r.keys() for r in records)
    assert "test-key-primary" not in log.read_text()


def test_no_code_path_updates_or_deletes_events() -> None:
    """Append-only in practice, not just by trigger: no statement targets the events."""
    offenders = []
    for path in [*ROOT.glob("sdk/**/*.py"), *ROOT.glob("ingest_api/**/*.py")]:
        text = " ".join(path.read_text().split()).lower()
        for verb in ("update telemetry.workflow_events", "delete from telemetry.workflow_events"):
            if verb in text:
                offenders.append(f"{path.relative_to(ROOT)}: {verb}")
    assert offenders == []
