"""Read API latency on a 10,000-run / 1M-event database: ``python -m benchmarks.read_api``.

Targets (issue 14): p95 <= 50 ms for one run (``GET /telemetry/runs/{id}``) and
<= 200 ms for a 30-day usage query (``GET /telemetry/usage``); the runs list is
measured too. The usage query's worst case is measured: yesterday's aggregates are
not written by the seeding (as before the 00:30 schedule has run), so two of its 30 days,
yesterday (a full day of events) and today, are computed live from raw events.

Every request goes over HTTP to the real API (``wdp api``, one uvicorn worker) on a
seeded database (:mod:`benchmarks.read_api.seed`). The floor is ``GET /healthz`` on the
same server, interleaved request by request with the measured calls, so a noisy machine
shows in both. ``--explain`` prints the plans (EXPLAIN ANALYZE, BUFFERS) of the very
statements the endpoints run (:mod:`benchmarks.read_api.plans`).
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from rich.table import Table

from benchmarks.harness import console, fresh_database, machine, percentile
from benchmarks.read_api.seed import Seeded, seed
from sdk.cli.launch import run_api

Call = Callable[[httpx.Client], httpx.Response]


def _timed(client: httpx.Client, call: Call) -> float:
    started = time.perf_counter()
    response = call(client)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"{response.request.url} -> {response.status_code}: {response.text}")
    return elapsed


def calls(seeded: Seeded, rng: random.Random) -> dict[str, Call]:
    today = datetime.now(UTC).date()
    month_ago = (today - timedelta(days=29)).isoformat()
    pages: list[str] = []

    def one_run(c: httpx.Client) -> httpx.Response:
        return c.get(f"/telemetry/runs/{rng.choice(seeded.run_ids)}")

    def first_page(c: httpx.Client) -> httpx.Response:
        response = c.get("/telemetry/runs", params={"limit": 50})
        cursor = response.json().get("next_cursor")
        if cursor:
            pages.append(cursor)
        return response

    def later_page(c: httpx.Client) -> httpx.Response:
        params: dict[str, Any] = {"limit": 50}
        if pages:
            params["cursor"] = pages[-1]
        response = c.get("/telemetry/runs", params=params)
        cursor = response.json().get("next_cursor")
        pages.append(cursor) if cursor else pages.clear()
        return response

    def by_workflow(c: httpx.Client) -> httpx.Response:
        wf = rng.choice(seeded.workflows)
        return c.get("/telemetry/runs", params={"limit": 50, "workflow_name": wf})

    def failed(c: httpx.Client) -> httpx.Response:
        return c.get("/telemetry/runs", params={"limit": 50, "status": "failed"})

    def running(c: httpx.Client) -> httpx.Response:
        return c.get("/telemetry/runs", params={"limit": 50, "status": "running"})

    def usage_by_day(c: httpx.Client) -> httpx.Response:
        return c.get("/telemetry/usage", params={"from": month_ago, "group_by": "day"})

    def usage_by_node(c: httpx.Client) -> httpx.Response:
        params = {"from": month_ago, "group_by": "day,workflow_name,node,model"}
        return c.get("/telemetry/usage", params=params)

    return {
        "GET /telemetry/runs/{id}": one_run,
        "GET /telemetry/runs (first page)": first_page,
        "GET /telemetry/runs (next pages)": later_page,
        "GET /telemetry/runs?workflow_name=": by_workflow,
        "GET /telemetry/runs?status=failed (3 %)": failed,
        "GET /telemetry/runs?status=running (5 runs)": running,
        "GET /telemetry/usage 30 d by day": usage_by_day,
        "GET /telemetry/usage 30 d by day,workflow,node,model": usage_by_node,
    }


TARGETS = {
    "GET /telemetry/runs/{id}": 50.0,
    "GET /telemetry/usage 30 d by day": 200.0,
    "GET /telemetry/usage 30 d by day,workflow,node,model": 200.0,
}


def measure(base_url: str, key: str, seeded: Seeded, rounds: int) -> dict[str, dict[str, float]]:
    rng = random.Random(11)
    headers = {"Authorization": f"Bearer {key}"}
    measured = calls(seeded, rng)
    samples: dict[str, list[float]] = {name: [] for name in measured}
    floor: list[float] = []
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        for call in measured.values():  # warm-up: plans cached, pages in shared buffers
            for _ in range(5):
                _timed(client, call)
        for _ in range(rounds):
            for name, call in measured.items():
                floor.append(_timed(client, lambda c: c.get("/healthz")))
                samples[name].append(_timed(client, call))
    results = {}
    floor.sort()
    for name, values in samples.items():
        values.sort()
        results[name] = {
            "p50_ms": percentile(values, 0.5),
            "p95_ms": percentile(values, 0.95),
            "max_ms": values[-1],
            "floor_p95_ms": percentile(floor, 0.95),
        }
    return results


def explain(url: str, seeded: Seeded) -> None:
    """EXPLAIN ANALYZE every statement the endpoints run, from the query layer itself."""
    from benchmarks.read_api.plans import statements

    with psycopg.connect(url) as conn:
        for title, statement in list(statements(conn, seeded)):
            console.rule(title)
            rows = conn.execute(
                f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {statement.sql}", statement.params
            ).fetchall()
            console.print("\n".join(r[0] for r in rows), markup=False, highlight=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90, help="days the runs are spread over")
    parser.add_argument("--rounds", type=int, default=200, help="samples per endpoint")
    parser.add_argument("--explain", action="store_true", help="print the SQL plans")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with fresh_database(keep=False) as (url, _, where):
        console.print(f"database: {where}")
        started = time.perf_counter()
        seeded = seed(url, runs=args.runs, events=args.events, days=args.days)
        console.print(
            f"seeded {seeded.runs:,} runs, {seeded.events:,} events over {args.days} days "
            f"(past days aggregated) in {time.perf_counter() - started:.0f} s"
        )
        if args.explain:
            explain(url, seeded)
        key = secrets.token_urlsafe(24)
        with tempfile.TemporaryDirectory(prefix="wdp-bench-read-") as tmp:
            env = {"READ_API_KEYS": key}
            ingest_key = secrets.token_urlsafe(24)  # the API needs one; never used here
            with run_api(url, Path(tmp) / "api.log", api_keys=[ingest_key], extra_env=env) as api:
                results = measure(api.base_url, key, seeded, args.rounds)
    table = Table(title=f"read API over HTTP ({seeded.runs:,} runs, {seeded.events:,} events)")
    for column in ("endpoint", "p50 ms", "p95 ms", "max ms", "/healthz p95", "target", "verdict"):
        table.add_column(column)
    failed = False
    for name, r in results.items():
        target = TARGETS.get(name)
        ok = target is None or r["p95_ms"] <= target
        failed |= not ok
        table.add_row(
            name, f"{r['p50_ms']:.1f}", f"{r['p95_ms']:.1f}", f"{r['max_ms']:.1f}",
            f"{r['floor_p95_ms']:.1f}", f"<= {target:.0f} ms" if target else "",
            ("PASS" if ok else "MISS") if target else "",
        )  # fmt: skip
    console.print(table)
    if args.json:
        print(json.dumps({"machine": machine(), "results": results}))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
