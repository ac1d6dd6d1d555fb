"""Benchmark retention and aggregation on a month of events, and ingestion beside them.

    .venv/bin/python -m benchmarks.retention [--events 1000000]

In one run, on a fresh database:
(a) drop a month partition of N events (DETACH PARTITION CONCURRENTLY + DROP TABLE) vs
    DELETE of the same N rows from an identical table (same columns, same indexes);
    targets: drop >= 100x faster than DELETE, and under 1 s;
(b) aggregate one day holding all N events (sdk.usage.aggregation.aggregate_day); target < 10 s;
(c) batch ingestion through the live API with and without partition maintenance
    (create + attach, detach + drop of a future month, in a loop) running beside it;
    target: throughput reduced by at most 10 %.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import psycopg
from rich.console import Console
from rich.table import Table

from benchmarks.harness import benchmark_api, count_rows, event_row, fresh_database
from sdk.cli.launch import ApiServer
from sdk.db.engine import create_engine
from sdk.db.partitions import PARENT, Month, create_missing_partitions
from sdk.db.schema import WORKFLOW_EVENT_COLUMNS
from sdk.telemetry.values import new_ulid
from sdk.usage.aggregation import aggregate_day

console = Console()
COLUMNS = ", ".join(WORKFLOW_EVENT_COLUMNS)


def load_month(url: str, month: Month, events: int) -> date:
    """COPY ``events`` step events into ``month``'s partition, all on one day; returns it."""
    day = (month.start + timedelta(days=14)).date()
    base = datetime(day.year, day.month, day.day, tzinfo=UTC)
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY telemetry.workflow_events ({COLUMNS}) FROM STDIN") as copy:
            for n in range(events):
                moment = base + timedelta(milliseconds=n * 86_000_000 // events)
                ms = int(moment.timestamp() * 1000)
                payload = {
                    "node": f"node-{n % 7}",
                    "step": n % 50,
                    "status": "error" if n % 97 == 0 else "ok",
                    "duration_ms": float(n % 1000),
                    "model": f"model-{n % 3}",
                    "tokens_in": n % 500,
                    "tokens_out": n % 200,
                    "cost_usd_est": (n % 100) / 10_000,
                }
                copy.write_row(
                    event_row(
                        new_ulid(ms),
                        "workflow.step_completed",
                        moment,
                        json.dumps(payload),
                        event_time=moment,
                        run_id=f"run-{n % 5000}",
                        item_id=f"item-{n % 2000}",
                        workflow_name=f"wf-{n % 4}",
                    )
                )
        conn.commit()
    return day


def drop_vs_delete(url: str, month: Month) -> dict[str, float]:
    partition = f"telemetry.{month.table_name}"
    with psycopg.connect(url, autocommit=True) as conn:
        # The DELETE baseline runs on an identical plain table: the real partition is
        # append-only (its trigger would refuse the DELETE), which is the point of wdp.
        conn.execute(f"CREATE TABLE bench_delete (LIKE {partition} INCLUDING ALL)")
        conn.execute(f"INSERT INTO bench_delete SELECT * FROM {partition}")
        conn.execute("VACUUM ANALYZE bench_delete")
        rows = conn.execute("SELECT count(*) FROM bench_delete").fetchone()
        started = time.perf_counter()
        with conn.transaction():
            conn.execute("DELETE FROM bench_delete")
        delete_s = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute("VACUUM bench_delete")  # what it takes to actually get the space back
        vacuum_s = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {partition} CONCURRENTLY")
        detach_s = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute(f"DROP TABLE {partition}")
        drop_table_s = time.perf_counter() - started
        conn.execute("DROP TABLE bench_delete")
    return {
        "rows": float(rows[0] if rows else 0),
        "delete_s": delete_s,
        "vacuum_s": vacuum_s,
        "detach_s": detach_s,
        "drop_table_s": drop_table_s,
        "drop_s": detach_s + drop_table_s,
    }


def aggregate(url: str, day: date) -> dict[str, float]:
    engine = create_engine(url)
    try:
        started = time.perf_counter()
        with engine.begin() as conn:
            written = aggregate_day(conn, day)
        seconds = time.perf_counter() - started
        return {"seconds": seconds, "rows": written.rows, "events": written.events}
    finally:
        engine.dispose()


def _batches(run_id: str, events: int, size: int = 500) -> list[bytes]:
    now = datetime.now(UTC).isoformat()
    bodies = []
    for start in range(0, events, size):
        batch = [
            {
                "event_id": new_ulid(),
                "event_name": "workflow.step_completed",
                "ts": now,
                "run_id": run_id,
                "payload": {"node": "n", "step": n, "status": "ok", "duration_ms": 1.0},
            }
            for n in range(start, min(events, start + size))
        ]
        bodies.append(json.dumps({"events": batch}).encode())
    return bodies


def ingest(api: ApiServer, db_url: str, events: int) -> float:
    """events/s posting 500-event batches from 2 threads; every row verified."""
    run_id = f"bench-ret-{uuid.uuid4().hex[:8]}"
    bodies = _batches(run_id, events)
    headers = {**api.auth, "Content-Type": "application/json"}

    def worker(part: list[bytes]) -> None:
        with httpx.Client(base_url=api.base_url, headers=headers, timeout=120) as client:
            for body in part:
                client.post("/telemetry/events/batch", content=body).raise_for_status()

    threads = [threading.Thread(target=worker, args=(bodies[i::2],)) for i in range(2)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if count_rows(db_url, run_id) != events:
        raise SystemExit("ingestion lost events")
    return events / seconds


def maintenance_loop(url: str, stop: threading.Event, counter: list[int]) -> None:
    """Create + attach, then detach + drop, a far-future month, over and over."""
    engine = create_engine(url)
    month = Month.current().plus(20)
    try:
        while not stop.is_set():
            with engine.begin() as conn:
                create_missing_partitions(conn, [month], lock_timeout_ms=2000)
            with engine.connect() as conn:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                table = f"telemetry.{month.table_name}"
                conn.exec_driver_sql(f"ALTER TABLE {PARENT} DETACH PARTITION {table} CONCURRENTLY")
                conn.exec_driver_sql(f"DROP TABLE {table}")
            counter[0] += 1
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the month")
    parser.add_argument("--ingest-events", type=int, default=40_000, help="events per (c) run")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    with fresh_database(keep=False) as (url, _, _):
        month = Month.current().plus(-4)
        engine = create_engine(url)
        with engine.begin() as conn:
            create_missing_partitions(conn, [month])
        engine.dispose()
        console.print(f"loading {args.events:,} events into {month} …")
        started = time.perf_counter()
        day = load_month(url, month, args.events)
        console.print(f"loaded in {time.perf_counter() - started:.1f} s")
        console.print("(b) aggregating the day …")
        results["aggregate"] = aggregate(url, day)
        console.print("(a) DELETE vs detach + drop …")
        results["retention"] = drop_vs_delete(url, month)
        console.print("(c) ingestion with and without partition maintenance …")
        with benchmark_api(url, workers=2) as server:
            ingest(server, url, 5_000)  # warm-up
            quiet = ingest(server, url, args.ingest_events)
            stop, cycles = threading.Event(), [0]
            maint = threading.Thread(target=maintenance_loop, args=(url, stop, cycles))
            maint.start()
            busy = ingest(server, url, args.ingest_events)
            stop.set()
            maint.join()
            quiet_again = ingest(server, url, args.ingest_events)
        results["ingest"] = {
            "quiet": (quiet + quiet_again) / 2,
            "with_maintenance": busy,
            "maintenance_cycles": cycles[0],
        }

    ret, agg, ing = results["retention"], results["aggregate"], results["ingest"]
    speedup = ret["delete_s"] / ret["drop_s"]
    loss = 1 - ing["with_maintenance"] / ing["quiet"]
    table = Table(title=f"retention and aggregation ({ret['rows']:,.0f} events)")
    for column in ("measure", "value", "baseline", "ratio", "target", "verdict"):
        table.add_column(column)
    table.add_row(
        "detach concurrently + drop (s)", f"{ret['drop_s']:.3f}",
        f"DELETE {ret['delete_s']:.2f} s", f"{speedup:,.0f}x faster", ">= 100x and < 1 s",
        "PASS" if speedup >= 100 and ret["drop_s"] < 1 else "MISS",
    )  # fmt: skip
    table.add_row(
        "  of which DROP TABLE (s)", f"{ret['drop_table_s']:.3f}",
        f"DELETE + VACUUM {ret['delete_s'] + ret['vacuum_s']:.2f} s",
        f"{(ret['delete_s'] + ret['vacuum_s']) / ret['drop_table_s']:,.0f}x faster", "", "",
    )  # fmt: skip
    table.add_row(
        "aggregate one day (s)", f"{agg['seconds']:.2f}", f"{agg['events']:,} events",
        "", "< 10 s", "PASS" if agg["seconds"] < 10 else "MISS",
    )  # fmt: skip
    table.add_row(
        "ingest during maintenance (events/s)", f"{ing['with_maintenance']:,.0f}",
        f"{ing['quiet']:,.0f} without", f"{-loss:+.1%}", "<= 10 % lower",
        "PASS" if loss <= 0.10 else "MISS",
    )  # fmt: skip
    console.print(table)
    console.print(f"maintenance cycles during (c): {ing['maintenance_cycles']}")
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
