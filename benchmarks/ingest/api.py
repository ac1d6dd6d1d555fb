"""Phases (b) and (c): events through the running API, and the warm-up before them.

(b) batches of 500 from 4 concurrent clients; (c) single events from 32 keep-alive
connections as fast as they are answered (closed loop), then at a fixed offered rate
(open loop), where latency counts from each request's scheduled send time.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from benchmarks.harness import BenchmarkError, CpuMeter, percentile
from benchmarks.ingest.clients import HttpxPool, RawPool, client_pool
from benchmarks.ingest.events import (
    BATCH_CLIENTS,
    BATCH_SIZE,
    SINGLE_CONNECTIONS,
    Phase,
    Runner,
    dumps,
    make_events,
    run_id,
    verify_rows,
)
from sdk.cli.launch import ApiServer


@dataclass(frozen=True)
class Load:
    """The API under test and how to load it (--client, --workers)."""

    server: ApiServer
    client: str
    workers: int
    run: Runner

    def pool(self, connections: int) -> RawPool | HttpxPool:
        return client_pool(self.client, self.server, connections)


async def _batch_load(load: Load, bodies: list[bytes], expect: list[int]) -> float:
    queue = list(enumerate(bodies))
    queue.reverse()

    async with load.pool(BATCH_CLIENTS) as client:

        async def worker() -> None:
            while queue:
                i, body = queue.pop()
                status, answer = await client.post("/telemetry/events/batch", body)
                if status != 200:
                    raise BenchmarkError(f"batch: HTTP {status}: {answer[:500]!r}")
                created = json.loads(answer)["counts"]["created"]
                if created != expect[i]:
                    raise BenchmarkError(f"batch: {created} of {expect[i]} events created")

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(BATCH_CLIENTS)))
        return time.perf_counter() - t0


def phase_batch(load: Load, url: str, n: int, meter: CpuMeter, tag: str = "batch") -> Phase:
    events = make_events(n, run_id(tag))
    chunks = [events[i : i + BATCH_SIZE] for i in range(0, n, BATCH_SIZE)]
    bodies = [dumps({"events": c}) for c in chunks]
    del events
    before = meter.snapshot()
    elapsed = load.run(_batch_load(load, bodies, [len(c) for c in chunks]))
    after = meter.snapshot()
    verify_rows(url, run_id(tag), n)
    cpu = meter.split(before, after)
    name = f"(b) batch API {BATCH_SIZE} x {BATCH_CLIENTS}"
    return Phase(name, n, elapsed, n / elapsed, "events/s", cpu=cpu)


async def _post_single(client: RawPool | HttpxPool, body: bytes) -> None:
    status, answer = await client.post("/telemetry/events", body)
    if status != 201:
        raise BenchmarkError(f"single: HTTP {status}: {answer[:500]!r}")


async def _closed_loop(load: Load, bodies: list[bytes]) -> tuple[float, list[float]]:
    queue = list(bodies)
    queue.reverse()
    latencies: list[float] = []

    async with load.pool(SINGLE_CONNECTIONS) as client:

        async def worker() -> None:
            while queue:
                body = queue.pop()
                t = time.perf_counter()
                await _post_single(client, body)
                latencies.append(time.perf_counter() - t)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(SINGLE_CONNECTIONS)))
        return time.perf_counter() - t0, latencies


async def _open_loop(
    load: Load, bodies: list[bytes], rate: float
) -> tuple[float, list[float], float]:
    """Send at a fixed rate whatever the answers; latency counts from the scheduled time."""
    latencies: list[float] = []
    max_lag = 0.0

    async with load.pool(SINGLE_CONNECTIONS) as client:

        async def one(body: bytes, scheduled: float) -> None:
            await _post_single(client, body)
            latencies.append(time.perf_counter() - scheduled)

        # Warm every connection first so the open loop does not pay for TCP handshakes.
        await asyncio.gather(*(_post_single(client, b) for b in bodies[:SINGLE_CONNECTIONS]))
        tasks = []
        t0 = time.perf_counter() + 0.05
        for i, body in enumerate(bodies[SINGLE_CONNECTIONS:]):
            scheduled = t0 + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                max_lag = max(max_lag, -delay)
            tasks.append(asyncio.create_task(one(body, scheduled)))
        await asyncio.gather(*tasks)
        return time.perf_counter() - t0, latencies, max_lag


def group_commits(load: Load) -> tuple[float, float] | None:
    """(events, transactions) of the group-commit writer so far, from GET /metrics.

    Only meaningful with one worker: with several, each scrape reaches any one of them.
    """
    if load.workers != 1:
        return None
    text = httpx.get(f"{load.server.base_url}/metrics", timeout=10).text
    found = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("wdp_ingest_group_commit_events_sum", "wdp_ingest_group_commit_events_count"):
            found[name.rsplit("_", 1)[1]] = float(value)
    return (found["sum"], found["count"]) if len(found) == 2 else None


def _group_mean(
    before: tuple[float, float] | None, after: tuple[float, float] | None
) -> float | None:
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def _single_phase(
    load: Load, meter: CpuMeter, name: str, n: int, loop: Callable[[], Any]
) -> tuple[Phase, Any]:
    """Time ``loop()`` (a closed or open loop of single events): the phase, with its
    latency percentiles and group-commit size, and what else the loop returned."""
    groups = group_commits(load)
    before = meter.snapshot()
    elapsed, latencies, *rest = load.run(loop())
    after = meter.snapshot()
    groups_after = group_commits(load)
    latencies.sort()
    phase = Phase(
        name,
        n,
        elapsed,
        n / elapsed,
        "req/s",
        p50_ms=percentile(latencies, 0.5) * 1e3,
        p99_ms=percentile(latencies, 0.99) * 1e3,
        max_ms=latencies[-1] * 1e3,
        cpu=meter.split(before, after),
        group_mean=_group_mean(groups, groups_after),
    )
    return phase, rest


def phase_single(
    load: Load,
    url: str | None,
    n: int,
    meter: CpuMeter,
    tag: str = "single",
    name: str = f"(c) single API, {SINGLE_CONNECTIONS} conns",
) -> Phase:
    """``n`` single-event POSTs in a closed loop; their rows are counted unless ``url``
    is None (the bare framework stores nothing)."""
    bodies = [dumps(e) for e in make_events(n, run_id(tag))]
    phase, _ = _single_phase(load, meter, name, n, lambda: _closed_loop(load, bodies))
    if url is not None:
        verify_rows(url, run_id(tag), n)
    return phase


def phase_open(load: Load, url: str, rate: float, seconds: float, meter: CpuMeter) -> Phase:
    n = int(rate * seconds)
    bodies = [dumps(e) for e in make_events(n + SINGLE_CONNECTIONS, run_id("open"))]
    name = f"(c) single API @ {rate:g}/s"
    phase, (lag,) = _single_phase(load, meter, name, n, lambda: _open_loop(load, bodies, rate))
    verify_rows(url, run_id("open"), n + SINGLE_CONNECTIONS)
    phase.note = f"generator lag max {lag * 1e3:.1f} ms"
    return phase


def warm_up(load: Load) -> None:
    """Open the pools, prepare the statements and load the partition cache."""

    async def go() -> None:
        async with load.pool(SINGLE_CONNECTIONS) as client:
            events = make_events(2 * BATCH_SIZE + 2 * SINGLE_CONNECTIONS, run_id("warmup"))
            for i in range(2):
                chunk = events[i * BATCH_SIZE : (i + 1) * BATCH_SIZE]
                status, answer = await client.post(
                    "/telemetry/events/batch", dumps({"events": chunk})
                )
                if status != 200:
                    raise BenchmarkError(f"warm-up batch: HTTP {status}: {answer[:500]!r}")
            singles = events[2 * BATCH_SIZE :]
            await asyncio.gather(*(_post_single(client, dumps(e)) for e in singles))

    load.run(go())
