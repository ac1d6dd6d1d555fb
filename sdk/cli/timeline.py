"""The duration bar of ``wdp runs show``: each step placed on the run's time line.

A step event is written when the step ends (its ``ts``) and says how long it took, so
it ran from ``ts - duration_ms`` to ``ts``. The bar spans the run, from its start to
whatever came last (its end, or its last step), in ``width`` cells; a step is drawn
where it ran, in eighths of a cell, so steps that fanned out show side by side and a
slow one stands out. A dim dotted track marks the rest of the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from rich.text import Text

EIGHTHS = " ▏▎▍▌▋▊▉█"
TRACK = "·"


@dataclass(frozen=True)
class Span:
    """When a step ran, in milliseconds since the run started."""

    start_ms: float
    end_ms: float


def step_span(run_start: datetime, ts: datetime, duration_ms: float | None) -> Span:
    end = (ts - run_start) / timedelta(milliseconds=1)
    took = max(duration_ms or 0.0, 0.0)
    # A clock that disagrees with the run's start must not draw left of the run.
    return Span(max(end - took, 0.0), max(end, 0.0))


def bar(span: Span, total_ms: float, width: int) -> str:
    """``width`` cells: the track, with the step's part of the run filled in."""
    if total_ms <= 0:
        return "█" + TRACK * (width - 1)
    scale = width * 8 / total_ms
    first = min(int(span.start_ms * scale), width * 8 - 1)
    # At least an eighth of a cell, so an instant step still shows where it happened.
    eighths = max(round((span.end_ms - span.start_ms) * scale), 1)
    eighths = min(eighths, width * 8 - first)
    cells, part = divmod(first, 8)
    # A bar starts on a cell boundary (block characters fill from the left).
    full, rest = divmod(eighths + part, 8)
    drawn = "█" * full + (EIGHTHS[rest] if rest else "")
    drawn = drawn[: width - cells]
    return TRACK * cells + drawn + TRACK * (width - cells - len(drawn))


def bar_text(span: Span, total_ms: float, width: int, style: str) -> Text:
    """:func:`bar` with the step in ``style`` and the track dim."""
    text = Text()
    for char in bar(span, total_ms, width):
        text.append(char, style="dim" if char == TRACK else style)
    return text
