"""The ``wdp`` command line, run as a real subprocess the way a newcomer runs it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from sdk.db.url import to_sqlalchemy_url

WDP = [sys.executable, "-m", "sdk.cli.main"]


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
        assert "database at revision 0001" in migrated.stderr
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
    assert "database at revision 0001" in _wdp("migrate", env=env).stderr
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


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_run_starts_the_stack_and_shuts_down_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    data_dir = tmp_path / "wdp"
    log = tmp_path / "run.log"
    with log.open("w") as out:
        proc = subprocess.Popen([*WDP, "run"], env=_env(data_dir), stdout=out, stderr=out)
    try:
        _wait_for(lambda: "wdp is running" in log.read_text(), timeout=90)
        assert "migrations at 0001" in log.read_text()
        assert (data_dir / "pg" / "postmaster.pid").exists()
        proc.send_signal(sig)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "embedded Postgres stopped" in log.read_text()
    assert not (data_dir / "pg" / "postmaster.pid").exists()
