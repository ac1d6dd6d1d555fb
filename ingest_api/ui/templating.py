"""The UI's Jinja environment: autoescaping on for every template, and the filters that
format figures the same way on every page ("unknown" is never printed as $0)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

__all__ = ["TEMPLATE_CONFIG", "environment"]

TEMPLATES = Path(__file__).parent / "templates"
STATUS_CLASSES = {
    "ok": "ok",
    "succeeded": "ok",
    "error": "error",
    "failed": "error",
    "running": "running",
    "interrupted": "interrupted",
    "cancelled": "cancelled",
}


def seg(value: Any) -> str:
    """``value`` as one URL path segment (a run id may hold ``/``, ``?`` or ``#``)."""
    return quote(str(value), safe="")


def when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def dur(ms: float | None) -> str:
    if ms is None:
        return "—"
    if ms < 1:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 120_000:
        return f"{ms / 1000:.2f} s"
    return f"{ms / 60_000:.1f} min"


def num(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def usd(value: Decimal | float | None) -> str:
    if value is None:
        return "unknown"
    v = Decimal(value)
    if v == 0:
        return "$0"
    if abs(v) < Decimal("0.01"):  # small but not nothing: up to 8 places, no trailing zeros
        return "$" + f"{v:.8f}".rstrip("0")
    return f"${v:,.4f}" if abs(v) < 1 else f"${v:,.2f}"


def cost(value: Decimal | float | None, unknown: int = 0) -> str:
    """A known cost, and what is unknown beside it: "unknown" alone when nothing is known."""
    if value is None or (unknown and not value):
        return "unknown"
    return usd(value) + (" + unknown" if unknown else "")


def size(value: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value} B"


def status_class(value: str | None) -> str:
    return STATUS_CLASSES.get(value or "", "other")


def tojson_pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,  # every template, whatever its name: event data is user data
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        seg=seg,
        when=when,
        dur=dur,
        num=num,
        usd=usd,
        cost=cost,
        bytes=size,
        status_class=status_class,
        tojson_pretty=tojson_pretty,
    )
    return env


TEMPLATE_CONFIG: TemplateConfig[JinjaTemplateEngine] = TemplateConfig(
    instance=JinjaTemplateEngine.from_environment(environment())
)
