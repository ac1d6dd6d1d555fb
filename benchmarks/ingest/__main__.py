"""``python -m benchmarks.ingest``: options, targets and the report (see the package)."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from rich.table import Table

from benchmarks.harness import (
    BenchmarkError,
    CpuMeter,
    benchmark_api,
    console,
    fresh_database,
    machine,
    warn_if_busy,
)
from benchmarks.ingest.api import Load, phase_batch, phase_open, phase_single, warm_up
from benchmarks.ingest.clients import KINDS
from benchmarks.ingest.direct import phase_baseline, phase_ceiling
from benchmarks.ingest.events import Phase, Runner
from sdk.db.url import redact

TARGET_BATCH_VS_CEILING = 0.5
TARGET_SINGLE_VS_BASELINE = 2.0
TARGET_P99_MS = 50.0


def make_runner() -> tuple[Runner, str]:
    """Run coroutines on uvloop when it is there (the API runs on uvloop too)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run, "asyncio"
    return (lambda coro: uvloop.run(coro)), "uvloop"


def evaluate(phases: dict[str, Phase], rate: float) -> list[dict[str, Any]]:
    ceiling, batch = phases["ceiling"].rate, phases["batch"].rate
    single, baseline = phases["single"].rate, phases["baseline"].rate
    p99 = phases["open"].p99_ms or math.nan
    return [
        {
            "target": f"batch >= {TARGET_BATCH_VS_CEILING} x COPY ceiling",
            "measured": f"{batch:,.0f} / {ceiling:,.0f} events/s",
            "ratio": batch / ceiling,
            "required": TARGET_BATCH_VS_CEILING,
            "pass": batch / ceiling >= TARGET_BATCH_VS_CEILING,
        },
        {
            "target": f"single >= {TARGET_SINGLE_VS_BASELINE:g} x commit-per-event baseline",
            "measured": f"{single:,.0f} req/s / {baseline:,.0f} events/s",
            "ratio": single / baseline,
            "required": TARGET_SINGLE_VS_BASELINE,
            "pass": single / baseline >= TARGET_SINGLE_VS_BASELINE,
        },
        {
            "target": f"p99 <= {TARGET_P99_MS:g} ms at {rate:g} req/s",
            "measured": f"p99 {p99:.1f} ms",
            "ratio": p99 / TARGET_P99_MS,
            "required": 1.0,
            "pass": p99 <= TARGET_P99_MS,
        },
    ]


def _fmt(v: float | None, spec: str = ".2f") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def report(phases: dict[str, Phase], targets: list[dict[str, Any]]) -> None:
    table = Table(title="Ingest benchmark", title_justify="left")
    for col in ("phase", "events", "s", "rate", "p50 ms", "p99 ms", "max ms", "group", "api µs/ev"):
        table.add_column(col, justify="left" if col == "phase" else "right", no_wrap=True)
    for col in ("client", "api", "pg", "other"):
        table.add_column(f"cpu {col}", justify="right")
    for p in phases.values():
        table.add_row(
            p.name,
            f"{p.events:,}",
            f"{p.seconds:.2f}",
            f"{p.rate:,.0f} {p.unit}",
            _fmt(p.p50_ms, ".1f"),
            _fmt(p.p99_ms, ".1f"),
            _fmt(p.max_ms, ".1f"),
            _fmt(p.group_mean, ".1f"),
            _fmt(p.api_us_per_event, ".0f"),
            _fmt(p.cpu.client),
            _fmt(p.cpu.api),
            _fmt(p.cpu.postgres),
            _fmt(p.cpu.other),
        )
    console.print(table)
    console.print(
        "[dim]group: mean single-event requests per group-commit transaction (1 worker only); "
        "api µs/ev: API CPU per event or request; cpu columns: cores used on average "
        "during the phase (CPU s / wall s) by the load generator (this process), the API "
        "processes, Postgres, and the rest of the machine (other users).[/dim]"
    )
    for p in phases.values():
        if p.note:
            console.print(f"[dim]{p.name}: {p.note}[/dim]")
    warn_if_busy([(p.name, p.cpu.other) for p in phases.values()])
    t = Table(title="Targets", title_justify="left")
    for col in ("target", "measured", "ratio", "required", "result"):
        t.add_column(col, justify="left" if col in ("target", "measured") else "right")
    for row in targets:
        t.add_row(
            row["target"],
            row["measured"],
            f"{row['ratio']:.2f}",
            f"{'<=' if row['target'].startswith('p99') else '>='} {row['required']:g}",
            "[green]PASS[/green]" if row["pass"] else "[red]MISS[/red]",
        )
    console.print(t)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.ingest",
        description="Benchmark the ingest API against Postgres COPY and a naive baseline.",
    )
    parser.add_argument(
        "--events",
        type=int,
        default=100_000,
        help="events for the COPY ceiling and the batch API phase (default %(default)s)",
    )
    parser.add_argument(
        "--single-events",
        type=int,
        default=10_000,
        help="requests in the closed-loop single-event phase (default %(default)s)",
    )
    parser.add_argument(
        "--baseline-events",
        type=int,
        default=3_000,
        help="events in the INSERT + COMMIT per event baseline (default %(default)s)",
    )
    parser.add_argument("--rate", type=float, default=500.0, help="open-loop req/s (500)")
    parser.add_argument("--rate-seconds", type=float, default=5.0, help="open-loop length (5)")
    parser.add_argument("--workers", type=int, default=1, help="API worker processes (1)")
    parser.add_argument(
        "--server", choices=("uvicorn", "granian"), default="uvicorn", help="ASGI server"
    )
    parser.add_argument(
        "--client",
        choices=KINDS,
        default="raw",
        help="load generator: a minimal keep-alive HTTP/1.1 client (default) or "
        "httpx.AsyncClient, which needs ~1-3 ms CPU per request and saturates first",
    )
    parser.add_argument("--json", action="store_true", help="also print results as JSON")
    parser.add_argument(
        "--keep-db", action="store_true", help="do not drop the benchmark database at the end"
    )
    args = parser.parse_args(argv)
    if min(args.events, args.single_events, args.baseline_events) < 1 or args.workers < 1:
        parser.error("counts and --workers must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    run, loop_name = make_runner()
    info = machine()
    console.print(
        f"[bold]machine[/bold]: nproc={info['nproc']} python={info['python']} "
        f"cpu={info.get('cpu', '?')} load={info.get('load_avg_before', '?')}; "
        f"API workers={args.workers} ({args.server}); "
        f"client: {args.client} on {loop_name}, one thread"
    )
    phases: dict[str, Phase] = {}
    started = time.perf_counter()
    try:
        with fresh_database(args.keep_db) as (url, pg_pid, desc):
            console.print(f"[bold]database[/bold]: {redact(desc)}")
            meter = CpuMeter(pg_pid)
            console.print(f"running (a) ceiling with {args.events:,} events…")
            phases["ceiling"] = phase_ceiling(url, args.events, meter)
            with benchmark_api(url, workers=args.workers, server=args.server) as server:
                load = Load(server, args.client, args.workers, run)
                meter = CpuMeter(pg_pid, server.process.pid)
                warm_up(load)
                console.print(f"running (b) batch API with {args.events:,} events…")
                phases["batch"] = phase_batch(load, url, args.events, meter)
                console.print(f"running (c) single API, {args.single_events:,} requests…")
                phases["single"] = phase_single(load, url, args.single_events, meter)
                console.print(f"running (c) open loop at {args.rate:g} req/s…")
                phases["open"] = phase_open(load, url, args.rate, args.rate_seconds, meter)
            meter = CpuMeter(pg_pid)
            console.print(f"running (d) baseline with {args.baseline_events:,} events…")
            phases["baseline"] = phase_baseline(url, args.baseline_events, meter)
    except BenchmarkError as exc:
        console.print(f"[bold red]BENCHMARK FAILED:[/bold red] {exc}")
        return 1
    order = ("ceiling", "batch", "single", "open", "baseline")
    phases = {k: phases[k] for k in order}
    targets = evaluate(phases, args.rate)
    report(phases, targets)
    console.print(f"[dim]total {time.perf_counter() - started:.0f} s[/dim]")
    if args.json:
        out = {
            "machine": info,
            "args": vars(args),
            "database": redact(desc),
            "phases": {
                k: asdict(v) | {"api_us_per_event": v.api_us_per_event} for k, v in phases.items()
            },
            "targets": targets,
        }
        print(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
