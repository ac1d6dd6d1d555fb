"""Relay a child process's output into wdp's own log format, line by line.

``wdp run`` asks its services to log JSON (the API through ``WDP_LOG_FORMAT``, Dagster
through ``--log-format json``) and turns each line back into a :class:`logging.LogRecord`,
which the root handler prints in the one format of this process (sdk.logs). Lines that
are not JSON (a traceback, a Python warning, a Dagster run worker's coloured log) are
relayed too, with their escapes removed: Dagster's ``ts - logger - LEVEL - message``
keeps its logger and level, anything else becomes a message of the service.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from datetime import datetime
from typing import IO, Any

from sdk.logs import DROPPED_FIELDS, STANDARD_ATTRS, strip_ansi

# Dagster's "colored" format, once its colours are stripped.
_DAGSTER_LINE = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:[.,]\d+)? [+-]\d{4}) - (?P<logger>\S+) - "
    r"(?P<level>[A-Z]+) - (?P<msg>.*)$"
)
# Keys other JSON loggers use for the fields wdp calls ts, level, logger and msg.
_TS_KEYS = ("ts", "timestamp", "time", "asctime")
_LEVEL_KEYS = ("level", "levelname", "log_level")
_LOGGER_KEYS = ("logger", "name", "logger_name")
_MSG_KEYS = ("msg", "event", "message")


def _level(name: object, default: int) -> int:
    if name is None:
        return default
    value = logging.getLevelName(str(name).upper())  # a number for a known name
    return value if isinstance(value, int) else default


def _created(value: object) -> float:
    """Seconds since the epoch from an ISO 8601 string or a number; now if neither."""
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip().replace(",", ".").replace(" +", "+").replace(" -", "-")
        try:
            return datetime.fromisoformat(text).timestamp()
        except ValueError:
            pass
    return time.time()


def _pop(fields: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in fields:
            return fields.pop(key)
    return None


def to_record(line: str, *, service: str, default_level: int = logging.INFO) -> logging.LogRecord:
    """One line of a service's output as a log record of this process."""
    text = strip_ansi(line.rstrip("\r\n"))
    extras: dict[str, Any] = {}
    fields: Any = None
    if text.startswith("{"):
        try:
            fields = json.loads(text)
        except ValueError:
            fields = None
    if isinstance(fields, dict):
        created = _created(_pop(fields, _TS_KEYS))
        level = _level(_pop(fields, _LEVEL_KEYS), default_level)
        name = str(_pop(fields, _LOGGER_KEYS) or service)
        msg = strip_ansi(str(_pop(fields, _MSG_KEYS) or ""))
        exc = fields.pop("exc", None) or fields.pop("exception", None)
        if exc:
            msg = f"{msg}\n{strip_ansi(str(exc))}"
        for key, value in fields.items():
            if key in DROPPED_FIELDS or key.startswith("_"):
                continue
            # A key the LogRecord uses itself would corrupt it: keep it under another name.
            extras[f"child_{key}" if key in STANDARD_ATTRS else key] = value
    elif match := _DAGSTER_LINE.match(text):
        created = _created(match["ts"])
        level = _level(match["level"], default_level)
        name, msg = match["logger"], match["msg"]
    else:
        created, level, name, msg = time.time(), default_level, service, text
    record = logging.makeLogRecord(
        {
            "name": name,
            "levelno": level,
            "levelname": logging.getLevelName(level),
            "msg": msg,
            "args": None,
            "created": created,
            "msecs": (created - int(created)) * 1000,
            "service": service,
            **extras,
        }
    )
    return record


def relay(stream: IO[bytes], *, service: str, default_level: int = logging.INFO) -> None:
    """Log every line of ``stream`` until it closes (run in a thread)."""
    root = logging.getLogger()
    with stream:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace")
            if line.strip():
                root.handle(to_record(line, service=service, default_level=default_level))


def start_relay(
    stream: IO[bytes] | None, *, service: str, default_level: int = logging.INFO
) -> threading.Thread | None:
    if stream is None:
        return None
    thread = threading.Thread(
        target=relay,
        args=(stream,),
        kwargs={"service": service, "default_level": default_level},
        name=f"relay {service}",
        daemon=True,
    )
    thread.start()
    return thread
