"""The two floors of issue 18, measured in the same run as the API:

(e) bare COPY   COPY of the same rows straight into a plain table with the event table's
                primary key and indexes but no CHECK constraint, no trigger and no
                partitioning: what the hardware and the index design allow;
(f) framework   single-event POSTs, from the same load generator, to a bare Litestar app
                on the same uvicorn that only parses the body (``bare_app``);
(g) lean        the same floor with wdp's hot-path shortcuts (``bare_app.lean_app``),
                printed for reference.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg

from benchmarks.harness import BenchmarkError, CpuMeter
from benchmarks.ingest.direct import COLS
from benchmarks.ingest.events import Phase, as_row, make_events, run_id
from sdk.cli.launch import ApiServer
from sdk.cli.serve import HTTP_PROTOCOL

BARE_DDL = (
    "CREATE TABLE bench_bare (LIKE telemetry.workflow_events INCLUDING DEFAULTS INCLUDING INDEXES)"
)


def phase_bare_copy(url: str, n: int, meter: CpuMeter, tag: str = "bare") -> Phase:
    """COPY ``n`` rows into a fresh bare table in one transaction (the table is made
    before the clock starts and dropped after)."""
    rows = [as_row(e) for e in make_events(n, run_id(tag))]
    with psycopg.connect(url) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_bare")
        conn.execute(BARE_DDL)
        conn.commit()
        checks = conn.execute(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = 'bench_bare'::regclass "
            "AND contype = 'c'"
        ).fetchone()
        if checks is None or checks[0] != 0:
            raise BenchmarkError("the bare table has CHECK constraints")
        before = meter.snapshot()
        t0 = time.perf_counter()
        with (
            conn.transaction(),
            conn.cursor() as cur,
            cur.copy(f"COPY bench_bare ({COLS}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        elapsed = time.perf_counter() - t0
        after = meter.snapshot()
        stored = conn.execute("SELECT count(*) FROM bench_bare").fetchone()
        conn.execute("DROP TABLE bench_bare")
        conn.commit()
    if stored is None or stored[0] != n:
        raise BenchmarkError(f"bare COPY stored {stored} of {n} rows")
    cpu = meter.split(before, after)
    return Phase("(e) COPY, bare table", n, elapsed, n / elapsed, "events/s", cpu=cpu)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def bare_framework(api_key: str | None, app: str = "app") -> Iterator[ApiServer]:
    """``bare_app``'s ``app`` (or ``lean_app``) under uvicorn as ``wdp api`` runs it (one
    worker, uvloop, the same httptools protocol, no access log)."""
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="wdp-bench-bare-") as tmp:
        log_path = Path(tmp) / "bare.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable, "-m", "uvicorn", f"benchmarks.ingest.bare_app:{app}",
                    "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop",
                    "--http", HTTP_PROTOCOL, "--no-access-log", "--log-level", "warning",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        server = ApiServer(f"http://127.0.0.1:{port}", process, log_path, api_key)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{server.base_url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise BenchmarkError(f"the bare app did not start: {log_path.read_text()}")
                time.sleep(0.1)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
