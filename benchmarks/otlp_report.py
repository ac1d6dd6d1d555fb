"""The OTLP benchmark's report: per-stage costs in process, the summary and the tables
(apart from :mod:`benchmarks.otlp` to keep both modules small)."""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from rich.table import Table

from benchmarks.harness import (
    best_of,
    console,
    verdict,
)
from benchmarks.otlp import MODES, PATHS, RUN_TAG, TARGET, Round, dumps, exports, mapped_events
from ingest_api.otlp.mapping import map_export
from ingest_api.otlp.rows import direct_row, fits
from ingest_api.otlp.spans import iter_spans
from ingest_api.parsing import check_event, check_row
from sdk.db.partitions import Month
from sdk.telemetry.values import json_text_is_plain


def stage_costs(args: argparse.Namespace, repeat: int = 5) -> dict[str, float]:
    """µs per span of each step the two endpoints run on one export, in this process
    (best of ``repeat``): what the API's CPU goes to besides HTTP and Postgres."""
    (request,) = exports(f"stages-{RUN_TAG}", args.traces_per_export, args.agents, 10**9)
    raw = request.SerializeToString()
    spans = sum(len(s.spans) for rs in request.resource_spans for s in rs.scope_spans)
    events = mapped_events(request)
    body = dumps({"events": events})
    months = [Month.current().plus(-1), Month.current(), Month.current().plus(1)]

    def best(fn: Callable[[], Any]) -> float:
        return best_of(fn, repeat)[0] / spans * 1e6

    def parse() -> ExportTraceServiceRequest:
        r = ExportTraceServiceRequest()
        r.ParseFromString(raw)
        return r

    parsed = parse()
    view = list(iter_spans(parsed))
    decoded = json.loads(body)["events"]
    plain = json_text_is_plain(body)
    costs = {
        "otlp: protobuf ParseFromString": best(parse),
        "otlp: iter_spans": best(lambda: list(iter_spans(parsed))),
        "otlp: map_export": best(lambda: map_export(view)),
        "otlp: rows (direct_row where fits, else check_event)": best(
            lambda: [
                check_row(i, direct_row(e), months)
                if fits(e)
                else check_event(i, e, months, prescreened=True)
                for i, e in enumerate(events)
            ]
        ),
        "batch: json.loads + screen": best(lambda: (json.loads(body), json_text_is_plain(body))),
        f"batch: check_event (screen {'passed' if plain else 'failed'})": best(
            lambda: [check_event(i, e, months, prescreened=plain) for i, e in enumerate(decoded)]
        ),
    }
    return costs


# --- report -----------------------------------------------------------------------------


def _f(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def summarise(rounds: list[Round]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in MODES:
        mine = [r for r in rounds if r.mode == mode]
        ev = [r.events_per_s for r in mine]
        sp = [r.spans_per_s for r in mine]
        api = [x for r in mine if (x := r.api_us_per_event) is not None]
        out[mode] = {
            "events_per_s": {"min": min(ev), "median": statistics.median(ev), "max": max(ev)},
            "spans_per_s": {"min": min(sp), "median": statistics.median(sp), "max": max(sp)},
            "api_us_per_event": statistics.median(api) if api else None,
            "cpu": {
                k: statistics.median(v)
                for k in ("client", "api", "postgres", "other")
                if (v := [x for r in mine if (x := getattr(r.cpu, k)) is not None])
            },
        }
    otlp = {r.round: r for r in rounds if r.mode == "otlp"}
    paired = [otlp[r.round].events_per_s / r.events_per_s for r in rounds if r.mode == "batch"]
    out["ratio"] = {
        "paired_median": statistics.median(paired),
        "paired_min": min(paired),
        "paired_max": max(paired),
        "of_medians_events": out["otlp"]["events_per_s"]["median"]
        / out["batch"]["events_per_s"]["median"],
        "of_medians_spans": out["otlp"]["spans_per_s"]["median"]
        / out["batch"]["spans_per_s"]["median"],
    }
    return out


def report(
    args: argparse.Namespace, rounds: list[Round], summary: dict[str, Any], costs: dict[str, float]
) -> None:
    per_round = Table(title="Rounds", title_justify="left")
    for col in ("round", "mode", "requests", "spans", "events", "s", "spans/s", "events/s",
                "api µs/ev", "cpu api", "cpu pg", "cpu other"):  # fmt: skip
        per_round.add_column(col, justify="left" if col == "mode" else "right")
    for r in rounds:
        per_round.add_row(
            str(r.round), r.mode, str(r.requests), f"{r.spans:,}", f"{r.events:,}",
            f"{r.seconds:.2f}", f"{r.spans_per_s:,.0f}", f"{r.events_per_s:,.0f}",
            _f(r.api_us_per_event, ".1f"), _f(r.cpu.api, ".2f"), _f(r.cpu.postgres, ".2f"),
            _f(r.cpu.other, ".2f"),
        )  # fmt: skip
    console.print(per_round)

    table = Table(title=f"OTLP vs batch, {args.rounds} rounds each", title_justify="left")
    columns = ("endpoint", "spans/s min", "spans/s median", "events/s min", "events/s median",
               "events/s max", "api µs/event", "cpu api", "cpu pg")  # fmt: skip
    for col in columns:
        table.add_column(col, justify="left" if col == "endpoint" else "right")
    for mode in MODES:
        s = summary[mode]
        table.add_row(
            f"{PATHS[mode]}" + (" (same events as JSON)" if mode == "batch" else " (protobuf)"),
            f"{s['spans_per_s']['min']:,.0f}", f"{s['spans_per_s']['median']:,.0f}",
            f"{s['events_per_s']['min']:,.0f}", f"{s['events_per_s']['median']:,.0f}",
            f"{s['events_per_s']['max']:,.0f}", _f(s["api_us_per_event"], ".1f"),
            _f(s["cpu"].get("api"), ".2f"), _f(s["cpu"].get("postgres"), ".2f"),
        )  # fmt: skip
    console.print(table)

    stages = Table(title="In-process cost per span, one export (best of 5)", title_justify="left")
    stages.add_column("step")
    stages.add_column("µs/span", justify="right")
    for name, us in costs.items():
        stages.add_row(name, f"{us:.1f}")
    console.print(stages)

    ratio = summary["ratio"]
    console.print(
        f"OTLP / batch, events stored per second (the same events): median of per-round "
        f"ratios {ratio['paired_median']:.2f}x (range {ratio['paired_min']:.2f}-"
        f"{ratio['paired_max']:.2f}), ratio of medians {ratio['of_medians_events']:.2f}x; "
        f"spans/s ratio of medians {ratio['of_medians_spans']:.2f}x. "
        f"Target ≥ {TARGET}x: {verdict(ratio['paired_median'] >= TARGET)}"
    )


# --- main -------------------------------------------------------------------------------
