"""wdp's log lines: one format per process, text or JSON (``WDP_LOG_FORMAT``).

Every line wdp prints as a log goes through the root logger with one of the two
formatters here, so a process never mixes formats. JSON lines carry no terminal
escapes: uvicorn's ``color_message`` (the message again, with ANSI colours) is dropped
and escapes in any string are removed, so a log collector gets clean values.
``wdp run`` relays the output of its services through the same formatters
(:mod:`sdk.cli.relay`).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal

LogFormat = Literal["text", "json"]

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}
# Extras that only repeat the message for a terminal.
DROPPED_FIELDS = frozenset({"color_message"})
# CSI sequences (colours, cursor moves) and the two-byte escapes; what terminals act on.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def strip_ansi(text: str) -> str:
    """``text`` without terminal escape sequences (stray ESC bytes included)."""
    return _ANSI.sub("", text).replace("\x1b", "")


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return strip_ansi(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON object; ``extra=`` fields become keys.

    The standard library formatter covers everything else, so this stays small
    instead of pulling a logging framework into every process.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": strip_ansi(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in STANDARD_ATTRS and key not in DROPPED_FIELDS and not key.startswith("_"):
                entry[key] = _clean(value)
        if record.exc_info:
            entry["exc"] = strip_ansi(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """``2026-01-31 12:00:00,123 INFO logger: message``, without terminal escapes."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        return strip_ansi(super().format(record))


_configured: LogFormat | None = None


def configured_format() -> LogFormat | None:
    """The format :func:`configure_logging` last set in this process, if any."""
    return _configured


def formatter(fmt: LogFormat) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else TextFormatter()


def resolve_format(fmt: LogFormat | None = None, *, default: LogFormat = "text") -> LogFormat:
    """``fmt``, else ``WDP_LOG_FORMAT``, else the caller's default."""
    if fmt is not None:
        return fmt
    from sdk.settings import get_settings

    return get_settings().wdp_log_format or default


def configure_logging(
    fmt: LogFormat | None = None, *, default: LogFormat = "text", level: int = logging.INFO
) -> LogFormat:
    """Send every log record (and Python warnings) to stderr in one format; idempotent.

    Returns the format chosen. In JSON mode an uncaught exception is logged as one
    record too, so not even a crash breaks the one-object-per-line contract.
    """
    global _configured
    chosen = resolve_format(fmt, default=default)
    _configured = chosen
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(chosen))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)
    if chosen == "json":
        sys.excepthook = _log_uncaught
    elif sys.excepthook is _log_uncaught:
        sys.excepthook = sys.__excepthook__
    return chosen


def configure_json_logging(level: int = logging.INFO) -> None:
    """Send every log record to stderr as JSON (idempotent)."""
    configure_logging("json", level=level)


def logging_dict_config(fmt: LogFormat, level: str = "INFO") -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` for servers that take one (granian): the root
    logger in wdp's format, and the named server loggers propagating into it."""
    name = "JsonFormatter" if fmt == "json" else "TextFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"wdp": {"()": f"sdk.logs.{name}"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "wdp",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "_granian": {"handlers": [], "propagate": True, "level": level},
            "granian.access": {"handlers": [], "propagate": True, "level": level},
        },
    }


def _log_uncaught(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    logging.getLogger("wdp").critical("uncaught exception", exc_info=(exc_type, exc, tb))
