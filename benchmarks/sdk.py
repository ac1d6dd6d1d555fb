"""Benchmark the telemetry SDK: caller-thread cost of one emit, and sustained throughput.

    .venv/bin/python -m benchmarks.sdk [--events 60000] [--samples 20000] [--phases a,b,c]

(a) cost of ``emit_step_completed`` on the caller's thread (validation + enqueue), median
    and p99, next to a baseline in the same run: pydantic validating the same event
    from a dict, the floor for "typed and validated" (target: median <= 25 us);
(b) sustained throughput SDK -> live ingest API -> Postgres, next to a baseline of
    the same events posted as ready-made batches straight to the API with no SDK in
    the way (target: >= 10,000 events/s). Every row is counted afterwards;
(c) cost of one emit with TELEMETRY_DURABILITY=disk (each event written to the spool
    directory before emit returns) next to memory mode, in interleaved A/B rounds
    (memory, disk, disk, memory, ...) so drift hits both alike (target: disk <= 2x
    memory for the builders; instrumentation's deferred events are shown too).
The machine is a shared 2-core box: compare the ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from benchmarks.harness import benchmark_api, count_rows, fresh_database, verdict
from sdk.cli.launch import ApiServer
from sdk.telemetry import TelemetryClient, emit_step_completed
from sdk.telemetry.builders import emit_deferred
from sdk.telemetry.client import Durability
from sdk.telemetry.custody import Queued
from sdk.telemetry.events import EventBase, StepCompleted
from sdk.telemetry.modes import BatchMode
from sdk.telemetry.values import new_ulid
from sdk.telemetry.worker import BatchWorker

console = Console()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def caller_side_only(client: TelemetryClient) -> BatchWorker[Queued, EventBase]:
    """The client's queue-and-worker with its threads kept from starting: what is timed
    is the caller's side only. Returned so a round can empty its queue."""
    mode = client._mode
    assert isinstance(mode, BatchMode)
    mode.worker._start = lambda: None  # type: ignore[method-assign]
    return mode.worker


def emit_cost(samples: int) -> dict[str, float]:
    """Microsecond timings of one call each: ``emit_step_completed`` and, as the floor,
    ``StepCompleted.model_validate`` of the very dict that builder validates, finished
    outside the timer (its ULID minted, ``ts`` a datetime). The two alternate call by
    call, and which goes first alternates too, so noise and a warm cache favour neither.
    The queue is emptied whenever it holds a batch, as the sender would empty it (an
    ever-growing queue would time the garbage collector walking it instead)."""
    client = TelemetryClient(endpoint="http://127.0.0.1:9", queue_size=10**9, flush_interval_s=3600)
    worker = caller_side_only(client)

    def ours(step: int) -> EventBase:
        return emit_step_completed(
            node="plan", step=step, status="ok", duration_ms=12.5, model="gpt-x",
            tokens_in=100, tokens_out=20, cost_usd_est=0.001, run_id="run-1",
            item_id="item-1", workflow_name="wf", agent_role="planner", client=client,
        )  # fmt: skip

    # What the builder hands pydantic: the envelope and its whole payload, defaults and all.
    template = ours(0).model_dump()
    worker._queue.clear()
    timed: dict[str, list[float]] = {"ours": [], "floor": []}
    gc.collect()
    for i in range(samples):
        finished = {**template, "event_id": new_ulid(), "ts": datetime.now(UTC)}
        finished["payload"] = {**template["payload"], "step": i}
        for turn in ("ours", "floor") if i % 2 == 0 else ("floor", "ours"):
            t0 = time.perf_counter_ns()
            if turn == "ours":
                ours(i)
            else:
                StepCompleted.model_validate(finished)
            timed[turn].append((time.perf_counter_ns() - t0) / 1000)
        if len(worker._queue) >= worker._batch_size:
            worker._queue.clear()
    return {
        "median_us": statistics.median(timed["ours"]),
        "p99_us": _percentile(timed["ours"], 0.99),
        "floor_median_us": statistics.median(timed["floor"]),
        "floor_p99_us": _percentile(timed["floor"], 0.99),
    }


def durability_cost(samples: int, spool_root: Path, *, rounds: int = 40) -> dict[str, float]:
    """Median and p99 microseconds of one emit per mode, builders and deferred events.

    No sender runs (as in (a)); after each round the queue is acknowledged the way the
    sender would after a delivery, so disk mode's journal is cleared as in real use.
    """
    modes: tuple[Durability, Durability] = ("memory", "disk")
    clients = {
        mode: TelemetryClient(
            endpoint="http://127.0.0.1:9",
            spool_dir=spool_root / mode,
            durability=mode,
            queue_size=10**9,
            flush_interval_s=3600,
        )
        for mode in modes
    }
    workers = {mode: caller_side_only(client) for mode, client in clients.items()}
    payload = {"node": "plan", "step": 1, "status": "ok", "duration_ms": 12.5, "tokens_in": 9}
    kinds = ("builder", "deferred")
    timings: dict[str, list[float]] = {f"{m}_{k}": [] for m in modes for k in kinds}
    per_round = max(1, samples // rounds)
    gc.collect()
    for number in range(rounds):
        mode = modes[(number + number // 2) % 2]  # memory, disk, disk, memory, memory, ...
        client = clients[mode]
        builder, deferred = timings[f"{mode}_builder"], timings[f"{mode}_deferred"]
        for i in range(per_round):
            t0 = time.perf_counter_ns()
            emit_step_completed(
                node="plan", step=i, status="ok", duration_ms=12.5, model="gpt-x",
                tokens_in=100, tokens_out=20, cost_usd_est=0.001, run_id="run-1",
                item_id="item-1", workflow_name="wf", agent_role="planner", client=client,
            )  # fmt: skip
            t1 = time.perf_counter_ns()
            emit_deferred(StepCompleted, payload, run_id="run-1", client=client)
            t2 = time.perf_counter_ns()
            builder.append((t1 - t0) / 1000)
            deferred.append((t2 - t1) / 1000)
        acknowledged = list(workers[mode]._queue)
        workers[mode]._queue.clear()
        journal = client._mode._journal  # type: ignore[attr-defined]
        if journal is not None:
            journal.settle(acknowledged)
    for client in clients.values():
        client.shutdown(timeout=0)
    result: dict[str, float] = {}
    for name, values in timings.items():
        result[f"{name}_median_us"] = statistics.median(values)
        result[f"{name}_p99_us"] = _percentile(values, 0.99)
    for kind in ("builder", "deferred"):
        memory, disk = result[f"memory_{kind}_median_us"], result[f"disk_{kind}_median_us"]
        result[f"{kind}_ratio"] = disk / memory
    return result


def throughput(
    api: ApiServer, db_url: str, events: int, spool: Path, *, batch_size: int
) -> dict[str, float]:
    """Events/s through the SDK, and through plain batch POSTs, each verified in Postgres."""
    run_sdk = f"bench-sdk-{uuid.uuid4().hex[:8]}"
    client = TelemetryClient(
        endpoint=api.base_url,
        api_key=api.api_key,
        spool_dir=spool,
        batch_size=batch_size,
        queue_size=events + 1,
        flush_interval_s=0.05,
    )
    started = time.perf_counter()
    for n in range(events):
        emit_step_completed(
            node="plan", step=n, status="ok", duration_ms=1.0, tokens_in=10, run_id=run_sdk,
            client=client,
        )  # fmt: skip
    if not client.flush(timeout=600):
        raise SystemExit("SDK flush did not finish")
    sdk_seconds = time.perf_counter() - started
    stats = client.stats()
    client.shutdown()
    stored = count_rows(db_url, run_sdk)
    if stored != events or stats.dropped or stats.rejected:
        raise SystemExit(f"SDK lost events: stored {stored} of {events}, {stats}")

    run_raw = f"bench-raw-{uuid.uuid4().hex[:8]}"
    bodies = []
    for start in range(0, events, batch_size):
        batch = [
            {
                "event_id": new_ulid(),
                "event_name": "workflow.step_completed",
                "ts": "2026-11-28T06:00:00Z",
                "run_id": run_raw,
                "payload": {"node": "plan", "step": n, "status": "ok", "duration_ms": 1.0},
            }
            for n in range(start, min(events, start + batch_size))
        ]
        bodies.append(json.dumps({"events": batch}).encode())
    headers = {**api.auth, "Content-Type": "application/json"}
    started = time.perf_counter()
    with httpx.Client(base_url=api.base_url, headers=headers, timeout=120) as http:
        for body in bodies:
            response = http.post("/telemetry/events/batch", content=body)
            response.raise_for_status()
    raw_seconds = time.perf_counter() - started
    if count_rows(db_url, run_raw) != events:
        raise SystemExit("direct batches lost events")
    return {
        "sdk_events_per_s": events / sdk_seconds,
        "raw_events_per_s": events / raw_seconds,
        "retried": float(stats.retried),
        "spooled": float(stats.spooled),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=20_000, help="emit calls to time")
    parser.add_argument("--events", type=int, default=60_000, help="events for throughput")
    parser.add_argument("--workers", type=int, default=1, help="API worker processes")
    parser.add_argument("--batch-size", type=int, default=500, help="SDK batch size")
    parser.add_argument("--phases", default="a,b,c", help="which of a,b,c to run")
    parser.add_argument(
        "--spool-dir", type=Path, default=None, help="where (c) writes (default: a temp dir)"
    )
    parser.add_argument("--json", action="store_true", help="also print JSON results")
    args = parser.parse_args(argv)
    phases = set(args.phases.split(","))
    results: dict[str, dict[str, float]] = {}

    table = Table(title="telemetry SDK")
    for column in ("measure", "wdp SDK", "baseline", "ratio", "target", "verdict"):
        table.add_column(column)
    if "a" in phases:
        console.print(f"(a) timing {args.samples} emit calls on the caller's thread…")
        cost = results["emit"] = emit_cost(args.samples)
        ratio = cost["median_us"] / cost["floor_median_us"]
        tail = cost["p99_us"] / cost["median_us"]
        table.add_row(
            "emit median (us)",
            f"{cost['median_us']:.1f}",
            f"{cost['floor_median_us']:.1f} (validate only)",
            f"{ratio:.2f}x",
            "<= 25 us; <= 1.2x validate",
            verdict(cost["median_us"] <= 25 and ratio <= 1.2),
        )
        table.add_row(
            "emit p99 (us)",
            f"{cost['p99_us']:.1f}",
            f"{cost['floor_p99_us']:.1f}",
            f"{tail:.2f}x median",
            "<= 3x emit median",
            verdict(tail <= 3),
        )
    if "b" in phases:
        console.print(f"(b) {args.events} events SDK -> API -> Postgres, then without SDK…")
        with (
            tempfile.TemporaryDirectory() as tmp,
            fresh_database(keep=False) as (url, _, _),
            benchmark_api(url, workers=args.workers) as server,
        ):
            flow = results["throughput"] = throughput(
                server, url, args.events, Path(tmp) / "spool", batch_size=args.batch_size
            )
        table.add_row(
            "throughput (events/s)",
            f"{flow['sdk_events_per_s']:,.0f}",
            f"{flow['raw_events_per_s']:,.0f} (direct batches)",
            f"{flow['sdk_events_per_s'] / flow['raw_events_per_s']:.2f}x",
            ">= 10,000",
            "PASS" if flow["sdk_events_per_s"] >= 10_000 else "MISS",
        )
    if "c" in phases:
        console.print(f"(c) {args.samples} emits per mode, memory and disk durability, A/B…")
        with tempfile.TemporaryDirectory(dir=args.spool_dir) as tmp:
            durable = results["durability"] = durability_cost(args.samples, Path(tmp))
        for kind, label, target in (
            ("builder", "emit_step_completed", 2.0),
            ("deferred", "emit_deferred", None),
        ):
            ratio = durable[f"{kind}_ratio"]
            table.add_row(
                f"{label} disk mode, median (p99) us",
                f"{durable[f'disk_{kind}_median_us']:.1f} ({durable[f'disk_{kind}_p99_us']:.1f})",
                f"{durable[f'memory_{kind}_median_us']:.1f} "
                f"({durable[f'memory_{kind}_p99_us']:.1f}) memory mode",
                f"{ratio:.2f}x",
                f"<= {target:.0f}x" if target else "",
                ("PASS" if ratio <= target else "MISS") if target else "",
            )
    console.print(table)
    if "b" in phases:
        flow = results["throughput"]
        console.print(
            f"retries {flow['retried']:.0f}, spooled {flow['spooled']:.0f}; all rows verified"
        )
    if "c" in phases:
        console.print(f"disk/memory emit ratio: {results['durability']['builder_ratio']:.2f}x")
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
