"""Geometry of the UI's two pictures, drawn as SVG by the templates: a run's waterfall
and the usage report's bars by day.

Hand-written rather than a charting library: both are rectangles on a linear axis (a
few lines of arithmetic each), and as server-side SVG they need no JavaScript at all -
they render with scripts off, under a Content-Security-Policy without inline scripts,
and offline, with nothing to vendor. Everything here is numbers; the templates escape
every label, which is event data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

__all__ = ["Bars", "Waterfall", "usage_bars", "waterfall"]

# A palette readable on white and by most colour-blind viewers (Okabe-Ito, plus grey).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
OTHER_COLOUR = "#999999"
STATUS_COLOURS = {"ok": "#009E73", "error": "#D55E00"}


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Row:
    """One step's bar: its row, where it starts and how wide it is (in SVG units)."""

    y: float
    x: float
    width: float
    colour: str
    step: Any  # sdk.usage.models.Step
    branch: str  # "2/3" for the second of three steps of one fan-out, else ""


@dataclass(frozen=True)
class Waterfall:
    width: float
    height: float
    plot_x: float  # where the time axis starts (labels are to its left)
    row_height: float
    rows: list[Row]
    ticks: list[Tick]


def waterfall(
    steps: Sequence[Any], *, width: float = 1000, label_width: float = 260, row_height: float = 18
) -> Waterfall:
    """Each step as a bar from its start (``ts`` - ``duration_ms``) to its end ``ts``,
    one row per step in start order. Steps of one LangGraph step number that overlap in
    time are one fan-out: their bars sit on adjacent rows, side by side in time, and
    their rows are numbered ``k/n``."""
    spans = []
    for s in steps:
        end = s.ts.timestamp()
        start = end - max(0.0, (s.duration_ms or 0.0) / 1000)
        spans.append((start, end, s))
    spans.sort(key=lambda t: (t[0], t[1], t[2].node or ""))
    t0 = min((t[0] for t in spans), default=0.0)
    t1 = max((t[1] for t in spans), default=0.0)
    total = max(t1 - t0, 1e-3)
    plot = width - label_width - 10
    scale = plot / total
    branches = _branches(spans)
    rows = [
        Row(
            y=12 + i * row_height,
            x=label_width + (start - t0) * scale,
            width=max(1.5, (end - start) * scale),
            colour=STATUS_COLOURS.get(step.status or "", OTHER_COLOUR),
            step=step,
            branch=branches.get(id(step), ""),
        )
        for i, (start, end, step) in enumerate(spans)
    ]
    ticks = [
        Tick(label_width + offset * scale, _duration_label(offset)) for offset in _nice_ticks(total)
    ]
    return Waterfall(width, 24 + len(rows) * row_height, label_width, row_height, rows, ticks)


def _branches(spans: list[tuple[float, float, Any]]) -> dict[int, str]:
    """``k/n`` for steps of one fan-out: same LangGraph step number, overlapping."""
    groups: dict[Any, list[tuple[float, float, Any]]] = {}
    for span in spans:
        # A retry (attempt 2 and later) is no branch of its own: it is marked #n.
        if span[2].step is not None and (getattr(span[2], "attempt", None) or 1) == 1:
            groups.setdefault(span[2].step, []).append(span)
    labels: dict[int, str] = {}
    for members in groups.values():
        if len(members) < 2:
            continue
        overlapping = [
            m for m in members if any(o is not m and o[0] < m[1] and m[0] < o[1] for o in members)
        ]
        for k, member in enumerate(overlapping, 1):
            labels[id(member[2])] = f"{k}/{len(overlapping)}"
    return labels


def _nice_ticks(total_s: float, most: int = 6) -> list[float]:
    """Offsets (seconds) of at most ``most`` ticks at a round interval."""
    raw = total_s / most
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    interval = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    count = int(total_s / interval) + 1
    return [i * interval for i in range(count)]


def _duration_label(seconds: float) -> str:
    if seconds == 0:
        return "0"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.3g} s"
    return f"{seconds / 60:.3g} min"


@dataclass(frozen=True)
class Segment:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str  # the tooltip: series, day and value (escaped by the template)


@dataclass(frozen=True)
class Bars:
    """Stacked bars by day: cost (or tokens) per day, split by one grouping."""

    width: float
    height: float
    plot_top: float
    plot_bottom: float
    segments: list[Segment]
    day_labels: list[Tick]
    value_ticks: list[tuple[float, str]]  # (y, label)
    legend: list[tuple[str, str]]  # (colour, series)
    empty: bool = False
    notes: list[str] = field(default_factory=list)


def usage_bars(
    days: Sequence[date],
    values: dict[tuple[date, str], Decimal | int],
    *,
    unit: str,
    width: float = 1000,
    height: float = 260,
    most_series: int = 7,
) -> Bars:
    """``values`` by (day, series) as stacked bars, one per day of ``days``; the
    ``most_series`` largest series have their own colour, the rest are "other"."""
    totals: dict[str, Decimal] = {}
    for (_, series), value in values.items():
        totals[series] = totals.get(series, Decimal(0)) + Decimal(value)
    # Only what is drawn is in the legend: a series of zero (cost unknown) has no bar.
    ranked = sorted((s for s in totals if totals[s] > 0), key=lambda s: (-totals[s], s))
    shown = ranked[:most_series]
    colours = {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(shown)}
    per_day: dict[date, list[tuple[str, Decimal]]] = {d: [] for d in days}
    for (day, series), value in sorted(values.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        if day in per_day:
            name = series if series in colours else "other"
            per_day[day].append((name, Decimal(value)))
    top_value = max(
        (sum((v for _, v in parts), Decimal(0)) for parts in per_day.values()), default=Decimal(0)
    )
    left, right, top, bottom = 70.0, 10.0, 10.0, height - 30.0
    plot_w, plot_h = width - left - right, bottom - top
    slot = plot_w / max(len(days), 1)
    scale = float(plot_h) / float(top_value) if top_value > 0 else 0.0
    segments: list[Segment] = []
    labels: list[Tick] = []
    for i, day in enumerate(days):
        x = left + i * slot + slot * 0.15
        y = bottom
        for series, value in _merged(per_day[day]):
            h = float(value) * scale
            if h <= 0:
                continue
            y -= h
            segments.append(
                Segment(
                    x,
                    y,
                    slot * 0.7,
                    h,
                    colours.get(series, OTHER_COLOUR),
                    f"{series} · {day.isoformat()} · {_value_label(value, unit)}",
                )
            )
        # Every day up to 10, else every k-th counted back from the last (today's bar is
        # always labelled).
        if len(days) <= 10 or (len(days) - 1 - i) % math.ceil(len(days) / 10) == 0:
            labels.append(Tick(left + i * slot + slot / 2, day.strftime("%m-%d")))
    ticks = [(bottom - float(v) * scale, _value_label(v, unit)) for v in _value_ticks(top_value)]
    legend = [(colours[s], s) for s in shown]
    if len(ranked) > len(shown):
        legend.append((OTHER_COLOUR, f"other ({len(ranked) - len(shown)})"))
    return Bars(width, height, top, bottom, segments, labels, ticks, legend, empty=top_value <= 0)


def _merged(parts: list[tuple[str, Decimal]]) -> list[tuple[str, Decimal]]:
    merged: dict[str, Decimal] = {}
    for series, value in parts:
        merged[series] = merged.get(series, Decimal(0)) + value
    return list(merged.items())


def _value_ticks(top: Decimal, most: int = 4) -> list[Decimal]:
    if top <= 0:
        return [Decimal(0)]
    ticks = _nice_ticks(float(top), most)
    return [Decimal(str(t)) for t in ticks]


def _value_label(value: Decimal | int | float, unit: str) -> str:
    if unit == "usd":
        from ingest_api.ui.templating import usd  # the tables' format, small costs kept

        return usd(Decimal(str(value)))
    v = float(value)
    if v >= 999_500:
        return f"{v / 1_000_000:.1f}M".replace(".0M", "M")
    if v >= 1_000:
        return f"{v / 1_000:.1f}k".replace(".0k", "k")
    return f"{v:.0f}"


def last_days(today: date, count: int) -> list[date]:
    """The ``count`` days ending ``today``, oldest first."""
    return [today - timedelta(days=count - 1 - i) for i in range(count)]


def instant(ts: datetime) -> str:
    """An instant as the pages show it: UTC to the second."""
    return ts.strftime("%Y-%m-%d %H:%M:%S") + "Z"
