"""What every benchmark shares: a fresh database, the API, CPU accounting, statistics.

A benchmark is a script run from the repository root (``python -m benchmarks.<name>``),
so ``benchmarks``, ``sdk`` and ``ingest_api`` import as packages without any path
manipulation. It makes its own database with :func:`fresh_database` (on
``$DATABASE_URL``'s server, or on an embedded pgserver in a temporary directory, dropped
at the end), runs the API through the product's launcher (:func:`benchmark_api`, which
shows the end of the API's log when a run fails), and measures where the CPU went with
:class:`CpuMeter`, because on a shared machine a figure means little without it.
"""

from __future__ import annotations

import math
import os
import platform
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console

from sdk.cli.launch import ApiServer, run_api
from sdk.db import embedded, migrate
from sdk.db.schema import WORKFLOW_EVENT_COLUMNS
from sdk.db.url import with_database
from sdk.telemetry.values import ulid_datetime

try:  # not a declared dependency: without it the CPU columns are left empty
    import psutil
except ImportError:  # pragma: no cover
    psutil = None

console = Console(width=None if sys.stdout.isatty() else 160)

BUSY_OTHER = 0.25  # cores used by unrelated processes above which a phase is noisy


class BenchmarkError(RuntimeError):
    """The run is invalid: events lost, unexpected responses, a server that died."""


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


def event_row(
    event_id: str, event_name: str, ts: datetime, payload_json: str, **columns: Any
) -> tuple[Any, ...]:
    """A ``telemetry.workflow_events`` row in :data:`WORKFLOW_EVENT_COLUMNS` order, for
    COPY or INSERT: event_time derived from the id (as the API does), event_version 1 and
    the correlation columns NULL unless given in ``columns``."""
    values = {
        "event_id": event_id,
        "event_time": ulid_datetime(event_id),
        "event_version": 1,
        "event_name": event_name,
        "ts": ts,
        "run_id": None,
        "item_id": None,
        "workflow_name": None,
        "agent_role": None,
        "payload": payload_json,
    } | columns
    return tuple(values[name] for name in WORKFLOW_EVENT_COLUMNS)


# --- timing in process ---------------------------------------------------------------


def best_of(fn: Callable[[], Any], repeat: int = 5) -> tuple[float, Any]:
    """The shortest of ``repeat`` runs of ``fn`` in seconds, and what its last run
    returned (the in-process stage tables of the benchmarks)."""
    best, value = math.inf, None
    for _ in range(repeat):
        started = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - started)
    return best, value


# --- the API ----------------------------------------------------------------------------


@contextmanager
def benchmark_api(
    url: str,
    *,
    workers: int = 1,
    server: str = "uvicorn",
    api_keys: Sequence[str] | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[ApiServer]:
    """``wdp api`` on ``url`` with an ingest key of its own (or ``api_keys``), through the
    product's launcher. If the block fails, the end of the API's log is printed before
    the error goes on."""
    with tempfile.TemporaryDirectory(prefix="wdp-bench-api-") as tmp:
        log_path = Path(tmp) / "api.log"
        keys = list(api_keys) if api_keys is not None else [secrets.token_urlsafe(24)]
        try:
            with run_api(
                url,
                log_path,
                api_keys=keys,
                workers=workers,
                server=server,
                extra_env=extra_env,
            ) as api:
                yield api
                if api.process.poll() is not None:
                    raise BenchmarkError("the API exited during the run")
        except BaseException:
            if log_path.exists():
                console.print("[red]API log (tail):[/red]")
                console.print(log_path.read_text(errors="replace")[-4000:], markup=False)
            raise


# --- CPU accounting ---------------------------------------------------------------------


@dataclass
class CpuSplit:
    """Cores used on average during a phase (CPU seconds / wall seconds)."""

    client: float | None = None  # this process: the load generator or the caller
    api: float | None = None
    postgres: float | None = None
    other: float | None = None  # the rest of the machine: other users of a shared VM


Snapshot = tuple[float, float, float | None, float | None, float | None]


class CpuMeter:
    """CPU of this process, of the API's process tree, of the whole Postgres server (the
    postmaster, its live backends, and the backends already reaped, counted in the
    postmaster's children times, so a backend that exits during a phase is neither lost
    nor negative) and of the rest of the machine."""

    def __init__(self, pg_pid: int | None, api_pid: int | None = None) -> None:
        self.pg = self._process(pg_pid)
        self.api = self._process(api_pid)

    @staticmethod
    def _process(pid: int | None) -> Any:
        if psutil is None or pid is None:
            return None
        try:
            return psutil.Process(pid)
        except psutil.Error:
            return None

    @staticmethod
    def _tree_seconds(root: Any, *, reaped: bool) -> float | None:
        if root is None:
            return None
        try:
            t = root.cpu_times()
            total = t.user + t.system + (t.children_user + t.children_system if reaped else 0)
            children = root.children(recursive=True)
        except psutil.Error:
            return None
        for child in children:
            try:
                c = child.cpu_times()
                total += c.user + c.system
            except psutil.Error:
                pass
        return float(total)

    def snapshot(self) -> Snapshot:
        own = os.times()
        busy = None
        if psutil is not None:
            t = psutil.cpu_times()
            busy = float(sum(t) - t.idle - getattr(t, "iowait", 0.0))
        return (
            time.perf_counter(),
            own.user + own.system,
            self._tree_seconds(self.api, reaped=False),
            self._tree_seconds(self.pg, reaped=True),
            busy,
        )

    @staticmethod
    def split(before: Snapshot, after: Snapshot) -> CpuSplit:
        wall = after[0] - before[0]

        def rate(i: int) -> float | None:
            a, b = after[i], before[i]
            return None if a is None or b is None or wall <= 0 else (a - b) / wall

        client, api, pg, busy = rate(1), rate(2), rate(3), rate(4)
        other = None
        if busy is not None and client is not None:
            other = max(0.0, busy - client - (api or 0.0) - (pg or 0.0))
        return CpuSplit(client, api, pg, other)


# --- statistics and the machine -------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class Stats:
    n: int
    p50: float
    p95: float
    p99: float
    max: float


def stats(values: Sequence[float]) -> Stats:
    ordered = sorted(values)
    return Stats(
        len(ordered),
        percentile(ordered, 0.50),
        percentile(ordered, 0.95),
        percentile(ordered, 0.99),
        ordered[-1] if ordered else math.nan,
    )


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


def verdict(ok: bool) -> str:
    return "[green]PASS[/green]" if ok else "[red]MISS[/red]"


def warn_if_busy(phases: Sequence[tuple[str, float | None]], separator: str = "; ") -> None:
    """Warn about the phases during which other processes used more than BUSY_OTHER cores."""
    busy = [name for name, other in phases if (other or 0.0) > BUSY_OTHER]
    if busy:
        console.print(
            f"[yellow]warning: other processes used > {BUSY_OTHER} cores during: "
            f"{separator.join(busy)}. Those figures are depressed; rerun on a quiet "
            "machine.[/yellow]"
        )
