"""Log formatting and the relay of a service's lines: one format, no escapes."""

from __future__ import annotations

import json
import logging

import pytest

from sdk.cli.relay import to_record
from sdk.logs import JsonFormatter, TextFormatter, strip_ansi

ESC = "\x1b"


def _record(msg: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, msg, None, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_json_drops_uvicorns_color_message_and_strips_escapes() -> None:
    record = _record(
        "Started server process [42]",
        color_message="Started server process [\x1b[36m%d\x1b[0m]",
        note="\x1b[1mbold\x1b[0m",
    )
    line = JsonFormatter().format(record)
    assert ESC not in json.loads(line)["note"]
    assert "color_message" not in json.loads(line)
    assert "\\u001b" not in line
    assert json.loads(line)["msg"] == "Started server process [42]"


def test_text_is_one_plain_line() -> None:
    line = TextFormatter().format(_record("\x1b[32mready\x1b[0m"))
    assert line.endswith(" INFO uvicorn.error: ready")
    assert ESC not in line


def test_strip_ansi_removes_colours_cursor_moves_and_stray_escapes() -> None:
    assert strip_ansi("\x1b[1;31mred\x1b[0m \x1b[2K\x1b[1Aup \x1bMx \x1b") == "red up x "


def test_a_json_line_keeps_its_logger_level_time_and_fields() -> None:
    line = (
        '{"ts": "2026-12-02T00:54:48.822+00:00", "level": "warning", "logger": "uvicorn.error", '
        '"msg": "slow", "color_message": "\\u001b[1mslow", "process": 7, "path": "/x"}\n'
    )
    record = to_record(line, service="wdp.api")
    assert (record.name, record.levelno, record.getMessage()) == (
        "uvicorn.error",
        logging.WARNING,
        "slow",
    )
    assert record.created == pytest.approx(1796172888.822)
    out = json.loads(JsonFormatter().format(record))
    assert out["ts"] == "2026-12-02T00:54:48.822+00:00"
    assert (out["service"], out["path"], out["child_process"]) == ("wdp.api", "/x", 7)
    assert "color_message" not in out


def test_dagster_json_and_coloured_lines_keep_their_level() -> None:
    structlog = json.dumps(
        {"event": "tick", "logger": "dagster.daemon", "level": "error", "timestamp": "2026-12-02Z"}
    )
    record = to_record(structlog, service="dagster-daemon")
    assert (record.name, record.levelno, record.getMessage()) == (
        "dagster.daemon",
        logging.ERROR,
        "tick",
    )
    coloured = (
        "\x1b[32m2026-12-02 00:56:34 +0000\x1b[0m - dagster.code_server - "
        "\x1b[34mWARNING\x1b[0m - No heartbeat received in 20 seconds, shutting down"
    )
    record = to_record(coloured, service="dagster-daemon")
    assert (record.name, record.levelno) == ("dagster.code_server", logging.WARNING)
    assert record.getMessage() == "No heartbeat received in 20 seconds, shutting down"


def test_any_other_line_is_a_message_of_the_service() -> None:
    record = to_record("Traceback (most recent call last):\n", service="wdp.api", default_level=30)
    assert (record.name, record.levelno, record.getMessage()) == (
        "wdp.api",
        logging.WARNING,
        "Traceback (most recent call last):",
    )
    assert to_record("{not json", service="s").getMessage() == "{not json"
    assert to_record("[1, 2]", service="s").getMessage() == "[1, 2]"
