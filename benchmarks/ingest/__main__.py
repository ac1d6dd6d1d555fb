"""Benchmark of the ingest API against what Postgres itself can do (issue 3).

One run, one machine, one fresh database (made on ``$DATABASE_URL``'s server, or on an
embedded pgserver in a temporary directory, and dropped at the end):

(a) ceiling   COPY into a temp staging table + INSERT … SELECT … ON CONFLICT DO NOTHING
              into telemetry.workflow_events, one psycopg connection;
(b) batch     POST /telemetry/events/batch, 500 events per request, 4 concurrent clients;
(c) single    POST /telemetry/events, 32 concurrent connections (closed loop), then an
              open loop at a fixed offered rate (500 req/s for 5 s) for its p99 latency;
(d) baseline  one INSERT + COMMIT per event, one psycopg connection.

Targets: batch >= 0.5 x ceiling; single >= 2 x baseline; p99 <= 50 ms at 500 req/s.
Every phase uses fresh event ids and its own ``run_id``; the rows are counted after each
phase and the run fails (exit 1) if any event is missing.

The load generator runs on the same machine as the API and Postgres. To keep it from
starving the server it sends pre-serialised bodies over keep-alive connections from one
uvloop thread (so it can never use more than one core) with a minimal HTTP/1.1 client:
httpx.AsyncClient (``--client httpx``) needs 1-3 ms of CPU per request on a 2-core VM
and becomes the bottleneck itself. The CPU used by the client, the API processes,
Postgres and everything else on the machine is printed for every phase.

Run from the repository root:  .venv/bin/python -m benchmarks.ingest [--workers 2] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from rich.console import Console
from rich.table import Table

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `python benchmarks/ingest.py` as well as `-m`
    sys.path.insert(0, str(REPO_ROOT))

from sdk.db import embedded, migrate  # noqa: E402
from sdk.db.url import redact, with_database  # noqa: E402
from sdk.telemetry.values import new_ulid, ulid_datetime  # noqa: E402
from tests.support.servers import ApiServer, run_api  # noqa: E402

try:  # not a declared dependency: without it the CPU columns are left empty
    import psutil
except ImportError:  # pragma: no cover
    psutil = None

console = Console(width=None if sys.stdout.isatty() else 160)

BATCH_SIZE = 500
BATCH_CLIENTS = 4
SINGLE_CONNECTIONS = 32
TARGET_BATCH_VS_CEILING = 0.5
TARGET_SINGLE_VS_BASELINE = 2.0
TARGET_P99_MS = 50.0
BUSY_OTHER = 0.25  # cores used by unrelated processes above which a phase is noisy

COLUMNS = (
    "event_id",
    "event_time",
    "event_version",
    "event_name",
    "ts",
    "run_id",
    "item_id",
    "workflow_name",
    "agent_role",
    "payload",
)
STAGING_DDL = """
CREATE TEMP TABLE bench_staging (
    event_id text, event_time timestamptz, event_version int, event_name text,
    ts timestamptz, run_id text, item_id text, workflow_name text, agent_role text,
    payload jsonb
) ON COMMIT DROP
"""
COLS = ", ".join(COLUMNS)
COPY_SQL = f"COPY bench_staging ({COLS}) FROM STDIN"
MOVE_SQL = (
    f"INSERT INTO telemetry.workflow_events ({COLS}) SELECT {COLS} FROM bench_staging "
    "ON CONFLICT DO NOTHING"
)
SINGLE_INSERT_SQL = (
    f"INSERT INTO telemetry.workflow_events ({COLS}) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb) ON CONFLICT DO NOTHING"
)


RUN_TAG = uuid.uuid4().hex[:8]


def run_id(phase: str) -> str:
    """The run_id of one phase's events: counted after the phase to find lost events."""
    return f"bench-{phase}-{RUN_TAG}"


class BenchmarkError(RuntimeError):
    """The run is invalid: events lost, unexpected responses, a server that died."""


# --- events -----------------------------------------------------------------------------


def make_events(n: int, run_id: str) -> list[dict[str, Any]]:
    """``n`` valid ``workflow.step_completed`` events with fresh ids, all in ``run_id``."""
    ts = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return [
        {
            "event_id": new_ulid(),
            "event_name": "workflow.step_completed",
            "ts": ts,
            "run_id": run_id,
            "payload": {
                "node": "n",
                "step": i,
                "status": "ok",
                "duration_ms": 3.2,
                "model": "gpt",
                "tokens_in": 10,
                "tokens_out": 5,
                "cost_usd_est": 0.001,
            },
        }
        for i in range(n)
    ]


def as_row(event: dict[str, Any]) -> tuple[Any, ...]:
    """The database row of ``event`` (event_time derived from the id, as the API does)."""
    return (
        event["event_id"],
        ulid_datetime(event["event_id"]),
        1,
        event["event_name"],
        datetime.fromisoformat(event["ts"]),
        event["run_id"],
        None,
        None,
        None,
        json.dumps(event["payload"], separators=(",", ":")),
    )


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


# --- CPU accounting ---------------------------------------------------------------------


def _tree_cpu(pid: int | None) -> float | None:
    """User + system CPU seconds of ``pid`` and its live descendants."""
    if psutil is None or pid is None:
        return None
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    total = 0.0
    for proc in procs:
        try:
            t = proc.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def _machine_busy() -> float | None:
    if psutil is None:
        return None
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


@dataclass
class CpuSplit:
    """Cores used on average during a phase (CPU seconds / wall seconds)."""

    client: float | None = None
    api: float | None = None
    postgres: float | None = None
    other: float | None = None


class CpuMeter:
    def __init__(self, api_pid: int | None, pg_pid: int | None) -> None:
        self.api_pid = api_pid
        self.pg_pid = pg_pid

    def snapshot(self) -> tuple[float | None, ...]:
        own = os.times()
        return (
            time.perf_counter(),
            own.user + own.system,
            _tree_cpu(self.api_pid),
            _tree_cpu(self.pg_pid),
            _machine_busy(),
        )

    def split(self, before: tuple[float | None, ...], after: tuple[float | None, ...]) -> CpuSplit:
        wall = float(after[0] or 0) - float(before[0] or 0)

        def rate(i: int) -> float | None:
            a, b = after[i], before[i]
            return None if a is None or b is None or wall <= 0 else (a - b) / wall

        client, api, pg, busy = rate(1), rate(2), rate(3), rate(4)
        other = None
        if busy is not None and client is not None and pg is not None:
            other = max(0.0, busy - client - (api or 0) - pg)  # api is None: no API running
        return CpuSplit(client, api, pg, other)


# --- results ----------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    events: int
    seconds: float
    rate: float  # events/s, or requests/s for single-event phases
    unit: str
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    cpu: CpuSplit = field(default_factory=CpuSplit)
    note: str = ""
    group_mean: float | None = None  # single-event requests per group-commit transaction

    @property
    def api_us_per_event(self) -> float | None:
        """API CPU per event (per request for single events): less noisy than rates."""
        if self.cpu.api is None:
            return None
        return self.cpu.api * self.seconds / self.events * 1e6


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


# --- database ---------------------------------------------------------------------------


@contextmanager
def fresh_database(keep: bool) -> Iterator[tuple[str, int | None, str]]:
    """Yield (url of a new migrated database, postmaster pid if local, server description)."""
    with ExitStack() as stack:
        server_url = os.environ.get("DATABASE_URL")
        where = "DATABASE_URL's server"
        if not server_url:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wdp-bench-")))
            server_url = embedded.start(tmp)
            stack.callback(embedded.stop, tmp)
            where = f"embedded pgserver in {tmp}"
        name = f"wdp_bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
            pg_pid = _postmaster_pid(conn)
            settings = {
                k: conn.execute(f"SHOW {k}").fetchone()[0]  # type: ignore[index]
                for k in ("server_version", "fsync", "synchronous_commit", "shared_buffers")
            }
        if not keep:

            def drop() -> None:
                with psycopg.connect(server_url, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

            stack.callback(drop)
        url = with_database(server_url, name)
        migrate.upgrade(url)
        desc = f"{where}, database {name}; " + ", ".join(f"{k}={v}" for k, v in settings.items())
        yield url, pg_pid, desc


def _postmaster_pid(conn: psycopg.Connection[Any]) -> int | None:
    """The postmaster's pid when the server runs on this machine and we may read its pid file."""
    try:
        row = conn.execute("SHOW data_directory").fetchone()
        pid = int((Path(row[0]) / "postmaster.pid").read_text().split()[0])  # type: ignore[index]
    except (psycopg.Error, OSError, ValueError, IndexError, TypeError):
        return None
    if psutil is None or not psutil.pid_exists(pid):
        return None
    return pid


def count_rows(url: str, run_id: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM telemetry.workflow_events WHERE run_id = %s", (run_id,)
        ).fetchone()
    return int(row[0]) if row else 0


def verify_rows(url: str, run_id: str, expected: int) -> None:
    stored = count_rows(url, run_id)
    if stored != expected:
        raise BenchmarkError(
            f"phase {run_id}: {expected} events sent, {stored} stored — events were lost"
            if stored < expected
            else f"phase {run_id}: {expected} events sent but {stored} rows stored"
        )


# --- phases -----------------------------------------------------------------------------


def phase_ceiling(url: str, n: int, meter: CpuMeter) -> Phase:
    rows = [as_row(e) for e in make_events(n, run_id("ceiling"))]
    with psycopg.connect(url) as conn:
        before = meter.snapshot()
        t0 = time.perf_counter()
        with conn.transaction():
            conn.execute(STAGING_DDL)
            with conn.cursor() as cur:
                with cur.copy(COPY_SQL) as copy:
                    for row in rows:
                        copy.write_row(row)
                cur.execute(MOVE_SQL)
                inserted = cur.rowcount
        elapsed = time.perf_counter() - t0
        after = meter.snapshot()
    if inserted != n:
        raise BenchmarkError(f"ceiling: INSERT … SELECT inserted {inserted} of {n} rows")
    verify_rows(url, run_id("ceiling"), n)
    cpu = meter.split(before, after)
    return Phase("(a) COPY + INSERT…SELECT", n, elapsed, n / elapsed, "events/s", cpu=cpu)


def phase_baseline(url: str, n: int, meter: CpuMeter) -> Phase:
    rows = [as_row(e) for e in make_events(n, run_id("baseline"))]
    with psycopg.connect(url) as conn:
        conn.execute(SINGLE_INSERT_SQL, as_row(make_events(1, run_id("warmup"))[0]), prepare=True)
        conn.commit()
        before = meter.snapshot()
        t0 = time.perf_counter()
        for row in rows:
            cur = conn.execute(SINGLE_INSERT_SQL, row, prepare=True)
            if cur.rowcount != 1:
                raise BenchmarkError(f"baseline: {row[0]} was not inserted")
            conn.commit()
        elapsed = time.perf_counter() - t0
        after = meter.snapshot()
    verify_rows(url, run_id("baseline"), n)
    cpu = meter.split(before, after)
    return Phase("(d) INSERT+COMMIT per event", n, elapsed, n / elapsed, "events/s", cpu=cpu)


class RawPool:
    """A minimal HTTP/1.1 keep-alive client: pre-built requests, Content-Length responses.

    httpx costs ~1 ms of CPU per request on a 2-core VM with one connection and ~3 ms
    with 32 (its pool bookkeeping grows with the number of connections), so it saturates
    its thread before the server does. This client costs a few tens of µs per request.
    """

    def __init__(self, server: ApiServer, connections: int) -> None:
        url = httpx.URL(server.base_url)
        self.host, self.port = url.host, url.port or 80
        self.connections = connections
        self.head = (
            f"Host: {self.host}:{self.port}\r\nAuthorization: Bearer {server.api_key}\r\n"
            "Content-Type: application/json\r\n"
        ).encode()
        self._idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )
        self._all: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> RawPool:
        for _ in range(self.connections):
            reader, writer = await asyncio.open_connection(self.host, self.port)
            self._all.append(writer)
            self._idle.put_nowait((reader, writer))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for writer in self._all:
            writer.close()

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        reader, writer = await self._idle.get()
        try:
            writer.write(
                b"POST %s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n%s"
                % (path.encode(), self.head, len(body), body)
            )
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            status = int(lines[0].split(b" ", 2)[1])
            length = None
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length is None:
                raise BenchmarkError(f"response without Content-Length: {head!r}")
            payload = await reader.readexactly(length)
        except BaseException:
            writer.close()
            raise
        self._idle.put_nowait((reader, writer))
        return status, payload


class HttpxPool:
    """The same interface over httpx.AsyncClient (``--client httpx``)."""

    def __init__(self, server: ApiServer, connections: int) -> None:
        self.client = httpx.AsyncClient(
            base_url=server.base_url,
            headers={**server.auth, "content-type": "application/json"},
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            timeout=httpx.Timeout(120.0),
        )

    async def __aenter__(self) -> HttpxPool:
        await self.client.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.__aexit__(None, None, None)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        resp = await self.client.post(path, content=body)
        return resp.status_code, resp.content


CLIENT_KIND = "raw"
WORKERS = 1


def _client(server: ApiServer, connections: int) -> RawPool | HttpxPool:
    return (RawPool if CLIENT_KIND == "raw" else HttpxPool)(server, connections)


async def _batch_load(server: ApiServer, bodies: list[bytes], expect: list[int]) -> float:
    queue = list(enumerate(bodies))
    queue.reverse()

    async with _client(server, BATCH_CLIENTS) as client:

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


def phase_batch(server: ApiServer, url: str, n: int, meter: CpuMeter, run: Runner) -> Phase:
    events = make_events(n, run_id("batch"))
    chunks = [events[i : i + BATCH_SIZE] for i in range(0, n, BATCH_SIZE)]
    bodies = [dumps({"events": c}) for c in chunks]
    del events
    before = meter.snapshot()
    elapsed = run(_batch_load(server, bodies, [len(c) for c in chunks]))
    after = meter.snapshot()
    verify_rows(url, run_id("batch"), n)
    cpu = meter.split(before, after)
    name = f"(b) batch API {BATCH_SIZE} x {BATCH_CLIENTS}"
    return Phase(name, n, elapsed, n / elapsed, "events/s", cpu=cpu)


async def _post_single(client: RawPool | HttpxPool, body: bytes) -> None:
    status, answer = await client.post("/telemetry/events", body)
    if status != 201:
        raise BenchmarkError(f"single: HTTP {status}: {answer[:500]!r}")


async def _closed_loop(server: ApiServer, bodies: list[bytes]) -> tuple[float, list[float]]:
    queue = list(bodies)
    queue.reverse()
    latencies: list[float] = []

    async with _client(server, SINGLE_CONNECTIONS) as client:

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
    server: ApiServer, bodies: list[bytes], rate: float
) -> tuple[float, list[float], float]:
    """Send at a fixed rate whatever the answers; latency counts from the scheduled time."""
    latencies: list[float] = []
    max_lag = 0.0

    async with _client(server, SINGLE_CONNECTIONS) as client:

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


def group_commits(server: ApiServer) -> tuple[float, float] | None:
    """(events, transactions) of the group-commit writer so far, from GET /metrics.

    Only meaningful with one worker: with several, each scrape reaches any one of them.
    """
    if WORKERS != 1:
        return None
    text = httpx.get(f"{server.base_url}/metrics", timeout=10).text
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


def phase_single(server: ApiServer, url: str, n: int, meter: CpuMeter, run: Runner) -> Phase:
    bodies = [dumps(e) for e in make_events(n, run_id("single"))]
    groups = group_commits(server)
    before = meter.snapshot()
    elapsed, latencies = run(_closed_loop(server, bodies))
    after = meter.snapshot()
    groups_after = group_commits(server)
    verify_rows(url, run_id("single"), n)
    latencies.sort()
    return Phase(
        f"(c) single API, {SINGLE_CONNECTIONS} conns",
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


def phase_open(
    server: ApiServer, url: str, rate: float, seconds: float, meter: CpuMeter, run: Runner
) -> Phase:
    n = int(rate * seconds)
    bodies = [dumps(e) for e in make_events(n + SINGLE_CONNECTIONS, run_id("open"))]
    groups = group_commits(server)
    before = meter.snapshot()
    elapsed, latencies, lag = run(_open_loop(server, bodies, rate))
    after = meter.snapshot()
    groups_after = group_commits(server)
    verify_rows(url, run_id("open"), n + SINGLE_CONNECTIONS)
    latencies.sort()
    return Phase(
        f"(c) single API @ {rate:g}/s",
        n,
        elapsed,
        n / elapsed,
        "req/s",
        p50_ms=percentile(latencies, 0.5) * 1e3,
        p99_ms=percentile(latencies, 0.99) * 1e3,
        max_ms=latencies[-1] * 1e3,
        cpu=meter.split(before, after),
        note=f"generator lag max {lag * 1e3:.1f} ms",
        group_mean=_group_mean(groups, groups_after),
    )


def warm_up(server: ApiServer, run: Runner) -> None:
    """Open the pools, prepare the statements and load the partition cache."""

    async def go() -> None:
        async with _client(server, SINGLE_CONNECTIONS) as client:
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

    run(go())


# --- running ----------------------------------------------------------------------------

Runner = Callable[[Any], Any]


def make_runner() -> tuple[Runner, str]:
    """Run coroutines on uvloop when it is there (the API runs on uvloop too)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run, "asyncio"
    return (lambda coro: uvloop.run(coro)), "uvloop"


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if hasattr(os, "getloadavg"):
        info["load_avg_before"] = [round(x, 2) for x in os.getloadavg()]
    return info


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
    busy = [p.name for p in phases.values() if (p.cpu.other or 0) > BUSY_OTHER]
    if busy:
        console.print(
            f"[yellow]warning: other processes used > {BUSY_OTHER} cores during: "
            f"{'; '.join(busy)}. Those figures are depressed; rerun on a quiet machine.[/yellow]"
        )
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
        choices=("raw", "httpx"),
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
    global CLIENT_KIND, WORKERS
    CLIENT_KIND, WORKERS = args.client, args.workers
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
            meter = CpuMeter(None, pg_pid)
            console.print(f"running (a) ceiling with {args.events:,} events…")
            phases["ceiling"] = phase_ceiling(url, args.events, meter)
            with tempfile.TemporaryDirectory(prefix="wdp-bench-api-") as tmp:
                log_path = Path(tmp) / "api.log"
                try:
                    with run_api(url, log_path, workers=args.workers, server=args.server) as server:
                        meter = CpuMeter(server.process.pid, pg_pid)
                        warm_up(server, run)
                        console.print(f"running (b) batch API with {args.events:,} events…")
                        phases["batch"] = phase_batch(server, url, args.events, meter, run)
                        console.print(f"running (c) single API, {args.single_events:,} requests…")
                        phases["single"] = phase_single(server, url, args.single_events, meter, run)
                        console.print(f"running (c) open loop at {args.rate:g} req/s…")
                        phases["open"] = phase_open(
                            server, url, args.rate, args.rate_seconds, meter, run
                        )
                        if server.process.poll() is not None:
                            raise BenchmarkError("the API exited during the run")
                except BaseException:
                    if log_path.exists():
                        console.print("[red]API log (tail):[/red]")
                        console.print(log_path.read_text(errors="replace")[-4000:], markup=False)
                    raise
            meter = CpuMeter(None, pg_pid)
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
