"""``python -m benchmarks.ui``: options and the report (see the package)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from rich.table import Table

from benchmarks.harness import (
    BenchmarkError,
    CpuMeter,
    console,
    fresh_database,
    machine,
    percentile,
    verdict,
    warn_if_busy,
)
from benchmarks.ui.measure import JSON_RUN, UI_RUN, Endpoint, Keys, measure, profile, ui_api
from benchmarks.ui.seed import TARGET_MS, Seeded, seed

# --- report -----------------------------------------------------------------------------


def summary(e: Endpoint) -> dict[str, Any]:
    c, s = sorted(e.client_ms), sorted(e.server_ms)
    return {
        "n": len(c),
        "client_p50_ms": percentile(c, 0.5),
        "client_p95_ms": percentile(c, 0.95),
        "client_max_ms": c[-1] if c else None,
        "server_n": len(s),
        "server_p50_ms": percentile(s, 0.5),
        "server_p95_ms": percentile(s, 0.95),
        "server_max_ms": s[-1] if s else None,
        "kb": e.bytes / 1024,
    }


def report(measured: dict[str, Endpoint], seeded: Seeded, args: argparse.Namespace) -> bool:
    sums = {name: summary(e) for name, e in measured.items()}
    table = Table(
        title=f"UI over HTTP: a run of {seeded.steps} steps ({seeded.events} events), "
        f"{args.rounds} rounds x {args.requests} requests per endpoint, 1 uvicorn worker"
    )
    for column in ("endpoint", "KB", "p50 ms", "p95 ms", "max ms", "server p50", "server p95",
                   "server max", "target (p95)"):  # fmt: skip
        table.add_column(column, justify="left" if column == "endpoint" else "right")
    ok = True
    for name, s in sums.items():
        target = ""
        if name == UI_RUN:
            # Both figures: the client's includes the transfer, so it bounds the server's.
            server = s["server_p95_ms"]
            ok = s["client_p95_ms"] <= TARGET_MS and (math.isnan(server) or server <= TARGET_MS)
            target = f"<= {TARGET_MS:.0f} ms: {verdict(ok)}"
        table.add_row(
            name, f"{s['kb']:.0f}", f"{s['client_p50_ms']:.1f}", f"{s['client_p95_ms']:.1f}",
            f"{s['client_max_ms']:.1f}", f"{s['server_p50_ms']:.1f}",
            f"{s['server_p95_ms']:.1f}", f"{s['server_max_ms'] or float('nan'):.1f}", target,
        )  # fmt: skip
    console.print(table)
    ui, js = measured[UI_RUN], measured[JSON_RUN]
    per_round = [
        u["client_p50_ms"] / j["client_p50_ms"]
        for u, j in zip(ui.blocks, js.blocks, strict=True)
        if j["client_p50_ms"] > 0
    ]
    ratio = Table(title="run page: UI (HTML) / read API (JSON), same run, same rounds")
    for column in ("figure", "p50 ratio", "p95 ratio", "per-round p50 ratios (min-max)"):
        ratio.add_column(column, justify="left" if column == "figure" else "right")
    u, j = sums[UI_RUN], sums[JSON_RUN]
    ratio.add_row(
        "client time to last byte",
        f"{u['client_p50_ms'] / j['client_p50_ms']:.1f}x",
        f"{u['client_p95_ms'] / j['client_p95_ms']:.1f}x",
        f"{min(per_round):.1f}-{max(per_round):.1f}x" if per_round else "",
    )
    if j["server_n"] and u["server_n"]:
        ratio.add_row(
            "server (latency histogram)",
            f"{u['server_p50_ms'] / j['server_p50_ms']:.1f}x",
            f"{u['server_p95_ms'] / j['server_p95_ms']:.1f}x",
            "",
        )
    console.print(ratio)
    for e in measured.values():
        missing = len(e.client_ms) - len(e.server_ms)
        if missing:
            console.print(f"[yellow]{e.name}: {missing} requests without a server figure[/yellow]")
    warn_if_busy(
        [(f"{e.name} round {b['round']}", b["cpu"]["other"]) for e in measured.values()
         for b in e.blocks]
    )  # fmt: skip
    return ok


def print_profile(stages: dict[str, float], text: str) -> None:
    table = Table(title="one run page in this process (best of 5)")
    table.add_column("step")
    table.add_column("ms (KB)", justify="right")
    for name, value in stages.items():
        table.add_row(name, f"{value:.1f}")
    console.print(table)
    console.print("cProfile of one run page (query, waterfall, render), by own time:")
    lines = text.strip().splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    console.print("\n".join(lines[max(0, start - 4) :]), markup=False, highlight=False)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ui", description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=500, help="steps of the big run (default 500)")
    p.add_argument("--rounds", type=int, default=6, help="rounds of every endpoint (default 6)")
    p.add_argument("--requests", type=int, default=30, help="requests per endpoint per round")
    p.add_argument("--warmup", type=int, default=5, help="warm-up requests per endpoint")
    p.add_argument("--no-profile", action="store_true", help="skip the in-process profile")
    p.add_argument("--json", action="store_true", help="also print the results as JSON")
    p.add_argument("--keep-db", action="store_true")
    args = p.parse_args(argv)
    if args.steps < 1 or args.rounds < 1 or args.requests < 1:
        p.error("--steps, --rounds and --requests must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine()
    console.print(f"machine: {info}")
    keys = Keys()
    stages: dict[str, float] = {}
    try:
        with fresh_database(args.keep_db) as (url, pg_pid, desc):
            console.print(f"database: {desc}")
            with ui_api(url, keys) as api:
                seeded = seed(api, url, args.steps)
                console.print(
                    f"seeded {seeded.events} events (run {seeded.run_id}: {seeded.steps} steps; "
                    f"run {seeded.other_run_id}: 12) through the ingest API in "
                    f"{seeded.seconds:.1f} s"
                )
                meter = CpuMeter(pg_pid, api.process.pid)
                measured = measure(api, keys, seeded, args, meter)
            if not args.no_profile:
                stages, text = profile(url, seeded.run_id)
    except BenchmarkError as exc:
        console.print(f"[red]invalid run: {exc}[/red]")
        return 1
    ok = report(measured, seeded, args)
    if stages:
        print_profile(stages, text)
    if args.json:
        print(
            json.dumps(
                {
                    "when": datetime.now(UTC).isoformat(timespec="seconds"),
                    "machine": info,
                    "args": vars(args),
                    "target_ms": TARGET_MS,
                    "pass": ok,
                    "results": {name: summary(e) for name, e in measured.items()},
                    "rounds": {name: e.blocks for name, e in measured.items()},
                    "profile_ms": stages,
                },
                indent=2,
                default=str,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
