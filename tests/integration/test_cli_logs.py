"""What ``wdp api`` prints: one log format (WDP_LOG_FORMAT), never terminal escapes.

``wdp run`` relays its services' output in the same format: tests/integration/test_cli.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.support.servers import run_api


def lines_of(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def assert_json_lines(text: str) -> list[dict[str, object]]:
    """Every line one JSON object with wdp's keys, and no escape anywhere in it."""
    records = []
    for line in lines_of(text):
        assert "\x1b" not in line, line
        assert "\\u001b" not in line, line  # an escape inside a JSON string
        record = json.loads(line)
        assert isinstance(record, dict), line
        assert {"ts", "level", "logger", "msg"} <= record.keys(), line
        assert "color_message" not in record, line
        records.append(record)
    assert records, "no output at all"
    return records


def assert_text_lines(text: str) -> None:
    lines = lines_of(text)
    assert lines, "no output at all"
    for line in lines:
        assert not line.lstrip().startswith("{"), line
        assert "\x1b" not in line, line


@pytest.mark.parametrize("server", ["uvicorn", "granian"])
def test_the_api_logs_json_lines_without_escapes(
    migrated_db_url: str, tmp_path: Path, server: str
) -> None:
    log = tmp_path / "api.log"
    env = {"WDP_LOG_FORMAT": "json"}
    with run_api(migrated_db_url, log, extra_env=env, server=server) as api:
        assert httpx.post(f"{api.base_url}/telemetry/events", json={}).status_code == 401
    records = assert_json_lines(log.read_text())
    assert any(server in str(r["logger"]) or server in str(r["msg"]).lower() for r in records)


@pytest.mark.parametrize("server", ["uvicorn", "granian"])
def test_the_api_logs_text_lines_when_told(
    migrated_db_url: str, tmp_path: Path, server: str
) -> None:
    log = tmp_path / "api.log"
    with run_api(migrated_db_url, log, extra_env={"WDP_LOG_FORMAT": "text"}, server=server):
        pass
    assert_text_lines(log.read_text())
    assert " INFO " in log.read_text()
