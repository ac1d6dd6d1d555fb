"""``python -m benchmarks.ingest``: options, targets and the report (see the package)."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
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
from benchmarks.ingest.events import SINGLE_CONNECTIONS, Phase, Runner
from benchmarks.ingest.floors import bare_framework, phase_bare_copy
from benchmarks.ingest.stages import stage_costs
from sdk.db.url import redact

# Issue 18's targets (ratios in one run), beside issue 3's, which stay printed.
TARGET_BATCH_VS_BARE_COPY = 0.7
TARGET_SINGLE_VS_FRAMEWORK = 0.6
TARGET_P99_MS = 20.0
TARGET_BATCH_VS_CEILING = 0.5
TARGET_SINGLE_VS_BASELINE = 2.0
# Phases measured once per round, in this order (ABAB... across rounds).
ROUND_PHASES = ("ceiling", "bare_copy", "batch", "single", "framework", "lean")


def make_runner() -> tuple[Runner, str]:
    """Run coroutines on uvloop when it is there (the API runs on uvloop too)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run, "asyncio"
    return (lambda coro: uvloop.run(coro)), "uvloop"


def _ratio(target: str, measured: str, ratio: float, required: float) -> dict[str, Any]:
    return {
        "target": target,
        "measured": measured,
        "ratio": ratio,
        "required": required,
        "pass": ratio <= required if target.startswith("p99") else ratio >= required,
    }


def evaluate(
    phases: dict[str, Phase], rate: float, rounds: dict[str, list[Phase]]
) -> list[dict[str, Any]]:
    """Each ratio as the median of the per-round ratios (phases of one round ran
    back to back), and the figures of the median round."""

    def per_round(a: str, b: str) -> float:
        return statistics.median(x.rate / y.rate for x, y in zip(rounds[a], rounds[b], strict=True))

    bare, ceiling, batch = phases["bare_copy"].rate, phases["ceiling"].rate, phases["batch"].rate
    single, framework = phases["single"].rate, phases["framework"].rate
    lean = phases["lean"].rate
    baseline = phases["baseline"].rate
    p99 = phases["open"].p99_ms or math.nan
    return [
        _ratio(
            f"batch >= {TARGET_BATCH_VS_BARE_COPY} x COPY into a bare table",
            f"{batch:,.0f} / {bare:,.0f} events/s",
            per_round("batch", "bare_copy"),
            TARGET_BATCH_VS_BARE_COPY,
        ),
        _ratio(
            f"single >= {TARGET_SINGLE_VS_FRAMEWORK} x the bare framework",
            f"{single:,.0f} / {framework:,.0f} req/s",
            per_round("single", "framework"),
            TARGET_SINGLE_VS_FRAMEWORK,
        ),
        _ratio(
            f"p99 <= {TARGET_P99_MS:g} ms at {rate:g} req/s",
            f"p99 {p99:.1f} ms",
            p99 / TARGET_P99_MS,
            1.0,
        ),
        _ratio(
            f"(issue 3) batch >= {TARGET_BATCH_VS_CEILING} x COPY + INSERT…SELECT, own table",
            f"{batch:,.0f} / {ceiling:,.0f} events/s",
            per_round("batch", "ceiling"),
            TARGET_BATCH_VS_CEILING,
        ),
        _ratio(
            f"(issue 3) single >= {TARGET_SINGLE_VS_BASELINE:g} x commit-per-event baseline",
            f"{single:,.0f} req/s / {baseline:,.0f} events/s",
            single / baseline,
            TARGET_SINGLE_VS_BASELINE,
        ),
        _ratio(
            "(for reference) single / the lean framework (body from receive, ASGIResponse)",
            f"{single:,.0f} / {lean:,.0f} req/s",
            per_round("single", "lean"),
            0.0,
        ),
        _ratio(
            "(for reference) own-table ceiling / bare-table COPY: the CHECK, trigger, partitions",
            f"{ceiling:,.0f} / {bare:,.0f} events/s",
            per_round("ceiling", "bare_copy"),
            0.0,
        ),
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
            f"{'<=' if row['target'].startswith('p99') else '>='} {row['required']:g}"
            if row["required"]
            else "",
            ("[green]PASS[/green]" if row["pass"] else "[red]MISS[/red]")
            if row["required"]
            else "",
        )
    console.print(t)


def _median(results: list[Phase]) -> Phase:
    return sorted(results, key=lambda p: p.rate)[len(results) // 2]


def report_rounds(rounds: dict[str, list[Phase]]) -> None:
    table = Table(title="Rounds (rate per phase: min / median / max)", title_justify="left")
    for col in ("phase", "min", "median", "max", "api µs/ev (median)"):
        table.add_column(col, justify="left" if col == "phase" else "right")
    for results in rounds.values():
        rates = sorted(p.rate for p in results)
        median = _median(results)
        table.add_row(
            median.name,
            f"{rates[0]:,.0f}",
            f"{statistics.median(rates):,.0f}",
            f"{rates[-1]:,.0f}",
            _fmt(median.api_us_per_event, ".0f"),
        )
    console.print(table)


def report_stages(phases: dict[str, Phase], stages: dict[str, tuple[float, float]]) -> None:
    """The API's CPU per event (batch) and per request (single) as the phases measured
    it, beside what each step costs alone: the remainder is framework, driver, commit."""
    table = Table(title="Where the API's CPU goes (µs)", title_justify="left")
    for col in ("", "batch, per event", "single, per request"):
        table.add_column(col, justify="left" if not col else "right")
    batch, single = phases["batch"].api_us_per_event, phases["single"].api_us_per_event
    framework = phases["framework"].api_us_per_event
    table.add_row("API CPU, measured in the phase", _fmt(batch, ".1f"), _fmt(single, ".1f"))
    table.add_row("bare framework (parse the body, answer)", "", _fmt(framework, ".1f"))
    shown = [k for k in stages if not k.startswith("validation + row")]
    for name in stages:
        table.add_row(f"  {name}", f"{stages[name][0]:.1f}", f"{stages[name][1]:.1f}")
    steps_batch = sum(stages[k][0] for k in shown)
    steps_single = sum(stages[k][1] for k in shown)
    rest_batch = None if batch is None else batch - steps_batch
    rest_single = None if single is None or framework is None else single - steps_single - framework
    table.add_row(
        "rest: framework, driver, group commit (batch); driver, group commit (single)",
        _fmt(rest_batch, ".1f"),
        _fmt(rest_single, ".1f"),
    )
    console.print(table)


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
    parser.add_argument("--rate", type=float, default=1000.0, help="open-loop req/s (1000)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds of the compared phases (3)"
    )
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
    if (
        min(args.events, args.single_events, args.baseline_events, args.rounds) < 1
        or args.workers < 1
    ):
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
    rounds: dict[str, list[Phase]] = {name: [] for name in ROUND_PHASES}
    once: dict[str, Phase] = {}
    started = time.perf_counter()
    try:
        with fresh_database(args.keep_db) as (url, pg_pid, desc):
            console.print(f"[bold]database[/bold]: {redact(desc)}")
            with (
                benchmark_api(url, workers=args.workers, server=args.server) as server,
                bare_framework(server.api_key) as bare,
                bare_framework(server.api_key, "lean_app") as lean,
            ):
                load = Load(server, args.client, args.workers, run)
                # The framework floors, (f) and (g): the same loop, no rows to count.
                floors = {
                    "framework": (Load(bare, args.client, 1, run), "(f) bare framework"),
                    "lean": (Load(lean, args.client, 1, run), "(g) lean framework"),
                }
                warm_up(load)
                for floor, _ in floors.values():
                    meter = CpuMeter(pg_pid, floor.server.process.pid)
                    phase_single(floor, None, 2_000, meter, "warm")
                for r in range(args.rounds):
                    console.print(f"round {r + 1} of {args.rounds}…")
                    rounds["ceiling"].append(
                        phase_ceiling(url, args.events, CpuMeter(pg_pid), f"ceiling{r}")
                    )
                    rounds["bare_copy"].append(
                        phase_bare_copy(url, args.events, CpuMeter(pg_pid), f"bare{r}")
                    )
                    api_meter = CpuMeter(pg_pid, server.process.pid)
                    rounds["batch"].append(
                        phase_batch(load, url, args.events, api_meter, f"batch{r}")
                    )
                    rounds["single"].append(
                        phase_single(load, url, args.single_events, api_meter, f"single{r}")
                    )
                    for key, (floor, label) in floors.items():
                        meter = CpuMeter(pg_pid, floor.server.process.pid)
                        name = f"{label}, {SINGLE_CONNECTIONS} conns"
                        rounds[key].append(
                            phase_single(
                                floor, None, args.single_events, meter, f"{key}{r}", name=name
                            )
                        )
                console.print(f"running (c) open loop at {args.rate:g} req/s…")
                once["open"] = phase_open(
                    load, url, args.rate, args.rate_seconds, CpuMeter(pg_pid, server.process.pid)
                )
            console.print(f"running (d) baseline with {args.baseline_events:,} events…")
            once["baseline"] = phase_baseline(url, args.baseline_events, CpuMeter(pg_pid))
    except BenchmarkError as exc:
        console.print(f"[bold red]BENCHMARK FAILED:[/bold red] {exc}")
        return 1
    # The median round of each phase stands for it; the table shows min and median.
    phases = {name: _median(results) for name, results in rounds.items()} | once
    order = ("ceiling", "bare_copy", "batch", "single", "framework", "lean", "open", "baseline")
    phases = {k: phases[k] for k in order}
    targets = evaluate(phases, args.rate, rounds)
    report(phases, targets)
    report_rounds(rounds)
    report_stages(phases, stage_costs())
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
