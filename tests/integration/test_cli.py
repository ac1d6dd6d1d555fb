"""The ``wdp`` command line, run as a real subprocess the way a newcomer runs it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
import pytest

from sdk.db import embedded, migrate
from sdk.db.url import to_sqlalchemy_url
from sdk.telemetry.values import new_ulid
from tests.integration.test_cli_logs import assert_json_lines, assert_text_lines
from tests.support.servers import free_port

WDP = [sys.executable, "-m", "sdk.cli.main"]
HEAD = migrate.head_revision()


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["WDP_DATA_DIR"] = str(data_dir)
    env.update(extra)
    return env


def _wdp(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*WDP, *args], env=env, capture_output=True, text=True, timeout=120, check=check
    )


def test_embedded_database_lifecycle(tmp_path: Path) -> None:
    env = _env(tmp_path / "wdp")
    try:
        url = _wdp("db", "start", env=env).stdout.strip()
        assert url.startswith("postgresql://")
        assert _wdp("db", "url", env=env).stdout.strip() == url
        migrated = _wdp("migrate", env=env)
        assert f"database at revision {HEAD}" in migrated.stderr
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT to_regclass('telemetry.workflow_events')").fetchone() == (
                "telemetry.workflow_events",
            )
    finally:
        stopped = _wdp("db", "stop", env=env)
    assert "embedded Postgres stopped" in stopped.stderr
    assert "was not running" in _wdp("db", "stop", env=env).stderr
    assert not (tmp_path / "wdp" / "pg" / "postmaster.pid").exists()


def test_migrate_accepts_a_sqlalchemy_url(empty_db_url: str, tmp_path: Path) -> None:
    env = _env(tmp_path, DATABASE_URL=to_sqlalchemy_url(empty_db_url))
    assert f"database at revision {HEAD}" in _wdp("migrate", env=env).stderr
    # Nothing embedded was started when DATABASE_URL is set.
    assert not (tmp_path / "pg").exists()


def test_a_bad_database_url_is_a_clear_error_without_traceback(tmp_path: Path) -> None:
    result = _wdp("db", "url", env=_env(tmp_path, DATABASE_URL="mysql://x@y/z"), check=False)
    assert result.returncode == 2
    assert "scheme 'mysql' is not supported" in result.stderr
    assert "Traceback" not in result.stderr


def _wait_for(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.2)


def _start_stack(
    data_dir: Path,
    log: Path,
    port: int,
    *extra: str,
    command: str = "run",
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    argv = [*WDP, command, "--api-port", str(port), *(extra or ("--no-dagster",))]
    with log.open("w") as out:
        proc = subprocess.Popen(argv, env=_env(data_dir, **(env or {})), stdout=out, stderr=out)
    _wait_for(lambda: "wdp is running" in log.read_text() or proc.poll() is not None, 120)
    assert proc.poll() is None, log.read_text()
    return proc


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_run_starts_the_stack_and_shuts_down_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    data_dir = tmp_path / "wdp"
    log = tmp_path / "run.log"
    port = free_port()
    proc = _start_stack(data_dir, log, port)
    try:
        assert f"migrations at {HEAD}" in log.read_text()
        assert embedded.is_running(data_dir)
        # The API is up, and takes the key the stack generated for it.
        key = (data_dir / "ingest-api-key").read_text().strip()
        assert oct((data_dir / "ingest-api-key").stat().st_mode & 0o777) == "0o600"
        assert key not in log.read_text()
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/readyz").status_code == 200
        denied = httpx.post(f"{base}/telemetry/events", json={})
        assert denied.status_code == 401
        allowed = httpx.post(
            f"{base}/telemetry/events", json={}, headers={"Authorization": f"Bearer {key}"}
        )
        assert allowed.status_code == 422
        # And a read key of its own: the ingest key cannot read, the read key cannot write.
        read_key = (data_dir / "read-api-key").read_text().strip()
        assert oct((data_dir / "read-api-key").stat().st_mode & 0o777) == "0o600"
        assert read_key != key
        assert read_key not in log.read_text()
        assert f"read API key (local): in {data_dir / 'read-api-key'}" in log.read_text()
        runs = httpx.get(f"{base}/telemetry/runs", headers={"Authorization": f"Bearer {read_key}"})
        assert runs.status_code == 200, runs.text
        assert runs.json()["runs"] == []
        as_ingest = httpx.get(f"{base}/telemetry/runs", headers={"Authorization": f"Bearer {key}"})
        assert as_ingest.status_code == 403
        proc.send_signal(sig)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert "stopped ingest API" in text
    assert "embedded Postgres stopped" in text
    assert not embedded.is_running(data_dir)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/healthz")


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_run_prints_one_log_format(tmp_path: Path, log_format: str) -> None:
    """wdp's own lines, the API's (relayed), Postgres and migrations: all alike."""
    log = tmp_path / "run.log"
    env = {"WDP_LOG_FORMAT": log_format, "FORCE_COLOR": "1"}  # colours must not leak in
    proc = _start_stack(tmp_path / "wdp", log, free_port(), env=env)
    try:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    if log_format == "text":
        assert_text_lines(text)
        assert "INFO uvicorn.error: Application startup complete." in text
        return
    records = assert_json_lines(text)
    loggers = {r["logger"] for r in records}
    assert {"wdp.run", "uvicorn.error"} <= loggers, loggers
    relayed = [r for r in records if r.get("service") == "wdp.api"]
    assert relayed
    assert all(r["logger"] == "uvicorn.error" for r in relayed)


def test_run_leaves_a_database_it_did_not_start_running(tmp_path: Path) -> None:
    data_dir = tmp_path / "wdp"
    env = _env(data_dir)
    _wdp("db", "start", env=env)
    try:
        proc = _start_stack(data_dir, tmp_path / "run.log", free_port())
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        assert embedded.is_running(data_dir)
    finally:
        _wdp("db", "stop", env=env)
    assert not embedded.is_running(data_dir)


def test_alembic_command_line_uses_database_url_from_the_environment(
    empty_db_url: str, tmp_path: Path
) -> None:
    env = _env(tmp_path, DATABASE_URL=empty_db_url)
    alembic = [sys.executable, "-m", "alembic"]
    root = Path(__file__).resolve().parents[2]
    for command in (["upgrade", "head"], ["check"], ["downgrade", "base"], ["upgrade", "head"]):
        result = subprocess.run(
            [*alembic, *command], env=env, cwd=root, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
    assert (
        "No new upgrade operations detected"
        in subprocess.run(
            [*alembic, "check"], env=env, cwd=root, capture_output=True, text=True, check=True
        ).stdout
        + subprocess.run(
            [*alembic, "check"], env=env, cwd=root, capture_output=True, text=True, check=True
        ).stderr
    )


def test_invalid_settings_name_the_variable(tmp_path: Path) -> None:
    result = _wdp("db", "url", env=_env(tmp_path, EVENT_PARTITIONS_AHEAD="abc"), check=False)
    assert result.returncode == 2
    assert "EVENT_PARTITIONS_AHEAD" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_data_dir_with_spaces_is_refused_clearly(tmp_path: Path) -> None:
    result = _wdp("db", "start", env=_env(tmp_path / "has space"), check=False)
    assert result.returncode == 2
    assert "spaces" in result.stderr


def test_events_schema_prints_every_event_or_one(tmp_path: Path) -> None:
    import json

    everything = json.loads(_wdp("events", "schema", env=_env(tmp_path)).stdout)
    assert len(everything) == 11
    assert "workflow.step_completed" in everything
    one = json.loads(_wdp("events", "schema", "learning.policy_updated", env=_env(tmp_path)).stdout)
    assert list(one) == ["learning.policy_updated"]
    assert "event_name" in one["learning.policy_updated"]["required"]
    unknown = _wdp("events", "schema", "nope", env=_env(tmp_path), check=False)
    assert unknown.returncode == 2
    assert "unknown event" in unknown.stderr


GRAPHQL_OVERVIEW = """
query {
  repositoriesOrError {
    ... on RepositoryConnection {
      nodes {
        schedules { name }
        sensors { name }
        assetNodes {
          assetKey { path }
          assetChecksOrError { ... on AssetChecks { checks { name } } }
        }
      }
    }
  }
}
"""


def test_dev_runs_api_and_dagster_and_stops_every_child(tmp_path: Path) -> None:
    import psutil

    data_dir = tmp_path / "wdp"
    api_port, ui_port = free_port(), free_port()
    log = tmp_path / "dev.log"
    proc = _start_stack(
        data_dir,
        log,
        api_port,
        "--dagster-port",
        str(ui_port),
        command="dev",
        env={"WDP_LOG_FORMAT": "json"},
    )
    try:
        text = log.read_text()
        assert "Dagster UI ready" in text, text
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 3
        key = (data_dir / "ingest-api-key").read_text().strip()
        event = {
            "event_id": new_ulid(),
            "event_name": "workflow.run_started",
            "ts": "2026-11-28T06:00:00Z",
            "run_id": "dev-run",
        }
        posted = httpx.post(
            f"http://127.0.0.1:{api_port}/telemetry/events",
            json=event,
            headers={"Authorization": f"Bearer {key}"},
        )
        assert posted.status_code == 201
        answer = httpx.post(
            f"http://127.0.0.1:{ui_port}/graphql", json={"query": GRAPHQL_OVERVIEW}, timeout=60
        ).json()
        (repo,) = answer["data"]["repositoriesOrError"]["nodes"]
        assets = {"/".join(a["assetKey"]["path"]) for a in repo["assetNodes"]}
        assert {"event_partitions", "daily_event_aggregates", "event_retention"} <= assets
        checks = [
            c["name"] for a in repo["assetNodes"] for c in a["assetChecksOrError"].get("checks", [])
        ]
        assert len(checks) >= 3
        assert len(repo["schedules"]) >= 3
        assert repo["sensors"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=90) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    time.sleep(0.5)
    alive = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"orphans: {alive}"
    assert "embedded Postgres stopped" in log.read_text()
    # Dagster's lines too come out as wdp's JSON, with no colours; an idle stack warns
    # about nothing (the daemon's retired code servers log their heartbeat WARNING at a
    # level wdp does not ask for).
    records = assert_json_lines(log.read_text())
    services = {r.get("service") for r in records}
    assert {"wdp.api", "dagster-webserver"} <= services, services
    loud = [r for r in records if r["level"] not in ("debug", "info")]
    assert loud == [], loud
