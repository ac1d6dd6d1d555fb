"""The API, the interleaved rounds and the in-process profile of the UI benchmark."""

from __future__ import annotations

import argparse
import cProfile
import gzip
import io
import pstats
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row

from benchmarks.harness import (
    BenchmarkError,
    CpuMeter,
    benchmark_api,
    best_of,
    percentile,
)
from benchmarks.read_api.plans import record
from benchmarks.ui.seed import Seeded
from sdk.cli.launch import ApiServer

# --- the API ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Keys:
    ingest: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    read: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    metrics: str = field(default_factory=lambda: secrets.token_urlsafe(24))


@contextmanager
def ui_api(url: str, keys: Keys) -> Iterator[ApiServer]:
    """``wdp api`` (one uvicorn worker) with an ingest, a read and a metrics key of its
    own; the end of its log is printed if the block fails."""
    env = {"READ_API_KEYS": keys.read, "METRICS_API_KEY": keys.metrics}
    with benchmark_api(url, api_keys=[keys.ingest], extra_env=env) as api:
        yield api


class ServerClock:
    """The API's own time for each request: the growth of ``wdp_ingest_request_seconds``
    (sum and count over every path but ``/metrics``) between two scrapes of
    ``/metrics`` that have exactly one other request between them."""

    def __init__(self, client: httpx.Client, key: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {key}"}
        self.last = self._read()

    def _read(self) -> tuple[float, float]:
        response = self.client.get("/metrics", headers=self.headers)
        response.raise_for_status()
        total = count = 0.0
        for line in response.text.splitlines():
            if not line.startswith("wdp_ingest_request_seconds_") or 'path="/metrics"' in line:
                continue
            name, value = line.split("{", 1)[0], float(line.rsplit(" ", 1)[1])
            if name == "wdp_ingest_request_seconds_sum":
                total += value
            elif name == "wdp_ingest_request_seconds_count":
                count += value
        return total, count

    def elapsed_ms(self) -> float | None:
        """The server time of the one request since the last call (None if the histogram
        did not grow by exactly one request)."""
        now = self._read()
        if now[1] == self.last[1]:  # observed just after the last send: look again
            time.sleep(0.005)
            now = self._read()
        grew, seconds = now[1] - self.last[1], now[0] - self.last[0]
        self.last = now
        return seconds * 1000 if grew == 1 else None


# --- measuring --------------------------------------------------------------------------


@dataclass
class Endpoint:
    name: str
    path: str
    client_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    bytes: int = 0
    blocks: list[dict[str, Any]] = field(default_factory=list)  # per round: p50s, CPU


def endpoints(seeded: Seeded) -> dict[str, Endpoint]:
    return {
        e.name: e
        for e in (
            Endpoint("GET /ui/runs/{id}", f"/ui/runs/{seeded.run_id}"),
            Endpoint("GET /telemetry/runs/{id} (JSON)", f"/telemetry/runs/{seeded.run_id}"),
            Endpoint("GET /ui/runs", "/ui/runs"),
            Endpoint("GET /ui/usage", "/ui/usage"),
            Endpoint("GET /healthz (floor)", "/healthz"),
        )
    }


UI_RUN, JSON_RUN = "GET /ui/runs/{id}", "GET /telemetry/runs/{id} (JSON)"


def check_pages(client: httpx.Client, measured: dict[str, Endpoint], seeded: Seeded) -> None:
    """The pages hold what was seeded: every step drawn and listed, every step in JSON."""
    page = client.get(measured[UI_RUN].path)
    bars, rows = page.text.count('<g class="bar">'), page.text.count("<tr class=")
    if page.status_code != 200 or bars != seeded.steps or rows < seeded.steps:
        raise BenchmarkError(
            f"run page: HTTP {page.status_code}, {bars} bars, {rows} rows for {seeded.steps} steps"
        )
    detail = client.get(measured[JSON_RUN].path).json()
    if len(detail["steps"]) != seeded.steps or detail["run"]["totals"]["steps"] != seeded.steps:
        raise BenchmarkError(f"JSON run: {len(detail['steps'])} steps for {seeded.steps}")
    runs = client.get("/ui/runs")
    listed = seeded.run_id in runs.text and seeded.other_run_id in runs.text
    if runs.status_code != 200 or not listed:
        raise BenchmarkError(f"runs page: HTTP {runs.status_code} without both runs")
    usage = client.get("/ui/usage")
    if usage.status_code != 200 or "<svg" not in usage.text:
        raise BenchmarkError(f"usage page: HTTP {usage.status_code} without its chart")


def one(client: httpx.Client, path: str) -> tuple[float, int]:
    started = time.perf_counter()
    response = client.get(path)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise BenchmarkError(f"{path} -> {response.status_code}: {response.text[:300]}")
    return elapsed, len(response.content)


def measure(
    api: ApiServer, keys: Keys, seeded: Seeded, args: argparse.Namespace, meter: CpuMeter
) -> dict[str, Endpoint]:
    measured = endpoints(seeded)
    headers = {"Authorization": f"Bearer {keys.read}"}
    with httpx.Client(base_url=api.base_url, headers=headers, timeout=30, trust_env=False) as c:
        check_pages(c, measured, seeded)
        for e in measured.values():  # warm-up: plans, template cache, shared buffers
            for _ in range(args.warmup):
                _, e.bytes = one(c, e.path)
        clock = ServerClock(c, keys.metrics)
        order = list(measured.values())
        for n in range(1, args.rounds + 1):
            for e in order if n % 2 else order[::-1]:
                client_ms: list[float] = []
                server_ms: list[float] = []
                before = meter.snapshot()
                for _ in range(args.requests):
                    ms, _ = one(c, e.path)
                    client_ms.append(ms)
                    if (server := clock.elapsed_ms()) is not None:
                        server_ms.append(server)
                cpu = meter.split(before, meter.snapshot())
                e.client_ms += client_ms
                e.server_ms += server_ms
                e.blocks.append(
                    {
                        "round": n,
                        "client_p50_ms": percentile(sorted(client_ms), 0.5),
                        "server_p50_ms": percentile(sorted(server_ms), 0.5),
                        "cpu": asdict(cpu),
                    }
                )
    return measured


# --- where the time goes (in this process) ----------------------------------------------


def _best(fn: Callable[[], Any], times: int = 5) -> tuple[float, Any]:
    """Milliseconds of the best of ``times`` runs, and the last run's value."""
    seconds, value = best_of(fn, times)
    return seconds * 1000, value


def profile(url: str, run_id: str) -> tuple[dict[str, float], str]:
    """Best of 5 of each step the two handlers run, in this process (a sync connection
    instead of the API's async pool), and a cProfile of one run page."""
    from litestar.serialization import encode_json

    from ingest_api.ui.charts import waterfall
    from ingest_api.ui.templating import environment
    from sdk.db.queries import read_sync
    from sdk.usage.run_events import shape_events
    from sdk.usage.runs import run_detail

    template = environment().get_template("run.html")
    with psycopg.connect(url, autocommit=True) as conn:

        def query() -> Any:
            return read_sync(conn, run_detail(run_id), statement_timeout_ms=10_000)

        def sql() -> list[list[dict[str, Any]]]:
            # The statements run_detail runs, executed and fetched only (no shaping).
            out = []
            for statement in statements:
                with conn.cursor(row_factory=dict_row) as cur:
                    cur.execute(statement.sql, statement.params)
                    out.append(cur.fetchall())
            return out

        statements = record(conn, run_detail(run_id))
        stages: dict[str, float] = {}
        stages["SQL: run_detail's statements, fetched"], rows = _best(sql)
        event_rows = max(rows, key=len)
        stages["shaping the rows (shape_events)"], _ = _best(lambda: shape_events(event_rows))
        stages["query total (read_sync: snapshot, SQL, shaping)"], detail = _best(query)
        stages["waterfall geometry (charts.waterfall)"], chart = _best(
            lambda: waterfall(detail.steps)
        )

        def render() -> str:
            return template.render(
                csrf=None, logged_in=False, detail=detail, chart=chart, previews={}
            )

        stages["Jinja rendering of run.html"], html = _best(render)
        stages["JSON: detail.as_json()"], shaped = _best(detail.as_json)
        stages["JSON: encode_json (msgspec)"], body = _best(lambda: encode_json(shaped))
        raw = html.encode()
        stages["(not done) gzip -6 of the HTML"], packed = _best(lambda: gzip.compress(raw, 6))
        stages["(not done) gzip -9 (Litestar's default)"], packed9 = _best(
            lambda: gzip.compress(raw, 9)
        )
        stages["HTML KB"] = len(raw) / 1024
        stages["HTML KB gzip -6"] = len(packed) / 1024
        stages["HTML KB gzip -9"] = len(packed9) / 1024
        stages["JSON KB"] = len(body) / 1024

        profiler = cProfile.Profile()
        profiler.enable()
        d = query()
        template.render(csrf=None, logged_in=False, detail=d, chart=waterfall(d.steps), previews={})
        profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(14)
    return stages, out.getvalue()
