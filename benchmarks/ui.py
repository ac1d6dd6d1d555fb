"""Web UI: one run of 500 steps rendered by the server, next to the JSON read API.

    .venv/bin/python -m benchmarks.ui [--steps 500] [--rounds 6] [--requests 30]
                                      [--no-profile] [--json] [--keep-db]

Target (issue 17): "Pages render a run of 500 steps in <= 300 ms server time".

A fresh database gets, through the real ingest API (``POST /telemetry/events/batch``,
so every event is validated as a producer's would be), one run of ``--steps``
``workflow.step_completed`` events (event_version 2, one or two model calls per model
step, eight nodes, LangGraph fan-out: up to five steps sharing one step number and
overlapping in time, ~3 % errors each followed by a retry, one unpriced model), with a
``run_started``, a ``run_completed``, the item's state changes and five learning events;
and a second, ordinary run of 12 steps. No artifacts are linked (the page then reads
none).

The API is the real one (``wdp api``: one uvicorn worker) with a read key. Measured over
loopback with one keep-alive ``httpx.Client``:

* ``GET /ui/runs/{id}`` for the big run, and as the baseline ``GET /telemetry/runs/{id}``
  for the same run (the same query, answered as JSON instead of HTML);
* ``GET /ui/runs`` and ``GET /ui/usage`` (30 days by model: today live) once seeded;
* ``GET /healthz``, the floor a request costs on this server.

Rounds interleave the endpoints (ABCDE, EDCBA, ...), ``--requests`` calls of one
endpoint per block, after a warm-up. Two figures per request: the client's time to the
last byte, and the server's own time, read from the API's latency histogram
(``wdp_ingest_request_seconds`` on ``GET /metrics``, recorded by ``LatencyMiddleware``
from the ASGI call to its last ``send``): ``/metrics`` is scraped after each request
(untimed), and the growth of the histogram's sum over every path but ``/metrics`` is
that one request's server time (its count must grow by exactly one).

Then, unless ``--no-profile``, one run page is split in this process (SQL, shaping the
rows, waterfall geometry, Jinja rendering; JSON shaping and encoding for the baseline;
what gzip of the page would cost, which the API does not do) and profiled (cProfile), to
say where the time goes. The run is invalid (exit 1) if a page lacks what was seeded: a
bar and a table row per step, every step in the JSON, both runs listed, the usage chart.
"""

from __future__ import annotations

import argparse
import cProfile
import gzip
import io
import json
import math
import pstats
import random
import secrets
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row
from rich.table import Table

from benchmarks.harness import (
    BenchmarkError,
    CpuMeter,
    benchmark_api,
    console,
    fresh_database,
    machine,
    percentile,
    verdict,
    warn_if_busy,
)
from benchmarks.read_api.plans import record
from sdk.cli.launch import ApiServer
from sdk.telemetry.values import new_ulid

TARGET_MS = 300.0
WORKFLOW = "research"
ITEM = "TICKET-4711"
# node -> (agent role, model, provider); no model: a tool or plain-code node.
NODES: dict[str, tuple[str | None, str | None, str | None]] = {
    "classify": ("triager", "gpt-4o-mini", "openai"),
    "plan": ("planner", None, None),
    "research": ("researcher", "gpt-4o", "openai"),
    "tools/search": ("researcher", None, None),
    "tools/fetch": ("researcher", None, None),
    "draft": ("writer", "claude-sonnet-4", "anthropic"),
    "review": ("reviewer", "claude-sonnet-4", "anthropic"),
    "summarise": ("writer", "unpriced-local-model", None),
}
SEQUENCE = ("classify", "plan", "research", "draft", "review", "summarise")
FAN_OUT = ("research", "tools/search", "tools/fetch", "research", "tools/search")
STATES = ("new", "triaged", "planned", "researched", "drafted", "reviewed", "done")
PRICES = {"gpt-4o-mini": (0.15, 0.6), "gpt-4o": (2.5, 10.0), "claude-sonnet-4": (3.0, 15.0)}


# --- seeding ----------------------------------------------------------------------------


def _event(
    name: str, ts: datetime, run_id: str, payload: dict[str, Any], *, version: int = 1,
    role: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    return {
        "event_id": new_ulid(int(ts.timestamp() * 1000)),
        "event_version": version,
        "event_name": name,
        "ts": ts.isoformat(),
        "run_id": run_id,
        "item_id": ITEM,
        "workflow_name": WORKFLOW,
        "agent_role": role,
        "payload": payload,
    }


@dataclass
class Totals:
    steps: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    unknown: bool = False
    errors: int = 0


def _step(
    rng: random.Random, run_id: str, node: str, step: int, attempt: int, start: datetime,
    duration_ms: float, error: bool, totals: Totals,
) -> dict[str, Any]:  # fmt: skip
    """One ``workflow.step_completed`` (event_version 2) ending ``duration_ms`` after
    ``start``: its calls and the totals they add up to."""
    role, model, provider = NODES[node]
    payload: dict[str, Any] = {
        "node": node,
        "step": step,
        "attempt": attempt,
        "status": "error" if error else "ok",
        "duration_ms": duration_ms,
    }
    if model is not None:
        calls: list[dict[str, Any]] = []
        models = [model] + (["gpt-4o-mini"] if rng.random() < 0.3 else [])
        for m in dict.fromkeys(models):
            call: dict[str, Any] = {"model": m}
            if provider is not None:
                call["provider"] = "openai" if m == "gpt-4o-mini" else provider
            if error and m == model:  # the failed call reported nothing
                call |= {"usage_reported": False}
            else:
                tin, tout = rng.randint(200, 6000), rng.randint(20, 900)
                call |= {"tokens_in": tin, "tokens_out": tout}
                if provider == "anthropic" and m == model:
                    call["tokens_cached_in"] = tin // 3
                if m == "gpt-4o-mini" and rng.random() < 0.5:
                    call["cost_usd_reported"] = round((tin * 0.15 + tout * 0.6) / 1e6, 8)
            calls.append(call)
        tin = sum(c.get("tokens_in", 0) for c in calls)
        tout = sum(c.get("tokens_out", 0) for c in calls)
        # The SDK's estimate: a reported cost wins; a call without a price or without
        # usage makes the step's cost unknown (None, never $0).
        known = [_call_cost(c) for c in calls]
        unknown = any(k is None for k in known)
        cost = None if unknown else round(sum(k or 0.0 for k in known), 10)
        payload |= {
            "model": ",".join(dict.fromkeys(models)),
            "tokens_in": tin,
            "tokens_out": tout,
            "cost_usd_est": cost,
            "cost_unknown": unknown,
            "calls": calls,
        }
        if provider == "anthropic":
            payload["tokens_cached_in"] = sum(c.get("tokens_cached_in", 0) for c in calls)
        totals.tokens_in += tin
        totals.tokens_out += tout
        totals.cost += cost or 0.0
        totals.unknown |= unknown
    if error:
        kind = rng.choice(("TimeoutError", "RateLimitError", "ToolError"))
        payload |= {"error_type": kind, "error_message": f"{node}: {kind} after retries"}
        totals.errors += 1
    totals.steps += 1
    end = start + timedelta(milliseconds=duration_ms)
    return _event("workflow.step_completed", end, run_id, payload, version=2, role=role)


def _call_cost(call: dict[str, Any]) -> float | None:
    if "cost_usd_reported" in call:
        return float(call["cost_usd_reported"])
    price = PRICES.get(call["model"])
    if price is None or call.get("usage_reported") is False:
        return None
    tokens_in, tokens_out = int(call.get("tokens_in", 0)), int(call.get("tokens_out", 0))
    return (tokens_in * price[0] + tokens_out * price[1]) / 1e6


def big_run(rng: random.Random, run_id: str, start: datetime, steps: int) -> list[dict[str, Any]]:
    """``steps`` steps of a LangGraph-like run, with its start, end, state changes and
    learning events. Each step number is either one node, or a fan-out of 2-5 branches
    that start together and overlap; an error is retried (attempt 2) at the same number."""
    events = [
        _event("workflow.run_started", start, run_id, {"trigger": "api", "graph_version": "v7"})
    ]
    totals = Totals()
    t = start + timedelta(milliseconds=20)
    number = 0
    state = 0
    while totals.steps < steps:
        fan = rng.random() < 0.3
        nodes = FAN_OUT[: rng.randint(2, 5)] if fan else (SEQUENCE[number % len(SEQUENCE)],)
        nodes = nodes[: steps - totals.steps]
        ends: list[datetime] = []
        for node in nodes:
            begin = t + timedelta(milliseconds=rng.randint(0, 30) if fan else 0)
            duration = float(rng.randint(40, 4000) if NODES[node][1] else rng.randint(2, 400))
            error = rng.random() < 0.04 and totals.steps < steps - 1
            events.append(_step(rng, run_id, node, number, 1, begin, duration, error, totals))
            end = begin + timedelta(milliseconds=duration)
            if error and totals.steps < steps:  # the retry, after the failed attempt
                retry_start = end + timedelta(milliseconds=50)
                duration = float(rng.randint(40, 2000))
                events.append(
                    _step(rng, run_id, node, number, 2, retry_start, duration, False, totals)
                )
                end = retry_start + timedelta(milliseconds=duration)
            ends.append(end)
        t = max(ends) + timedelta(milliseconds=rng.randint(3, 60))
        if number % 12 == 11:  # the item moves on now and then
            change = {
                "from_state": STATES[state % (len(STATES) - 1)],
                "to_state": STATES[state % (len(STATES) - 1) + 1],
                "node": nodes[0],
                "reason": f"step {number} done",
            }
            events.append(_event("workflow.item_state_changed", t, run_id, change))
            state += 1
        number += 1
    events.append(_completed(run_id, start, t, totals))
    for i, (name, payload) in enumerate(_learning(run_id)):
        events.append(_event(name, t + timedelta(seconds=5 + i), run_id, payload))
    return events


def _completed(run_id: str, start: datetime, end: datetime, totals: Totals) -> dict[str, Any]:
    done = {
        "status": "failed" if totals.errors > 10 else "succeeded",
        "duration_ms": (end - start).total_seconds() * 1000,
        "steps": totals.steps,
        "tokens_in": totals.tokens_in,
        "tokens_out": totals.tokens_out,
        "cost_usd_est": None if totals.unknown else round(totals.cost, 10),
        "cost_unknown": totals.unknown,
    }
    if done["status"] == "failed":
        done |= {"error_type": "TooManyErrors", "error_message": f"{totals.errors} steps failed"}
    return _event("workflow.run_completed", end, run_id, done)


def _learning(run_id: str) -> list[tuple[str, dict[str, Any]]]:
    target: dict[str, Any] = {"target_type": "run", "target_id": run_id}
    scored: dict[str, Any] = {"evaluator": "rubric-v2", "metric": "faithfulness", "score": 0.87}
    scored |= {"threshold": 0.8, "passed": True, "details": {"claims": 41, "supported": 36}}
    corrected: dict[str, Any] = {"field": "summary", "original": "It's fine."}
    corrected |= {"corrected": {"text": "It is fine.", "tone": "formal"}}
    return [
        ("learning.feedback_received", target | {"rating": 4, "comment": "good, a bit long"}),
        ("learning.feedback_received", target | {"label": "thumbs_up", "source": "agent"}),
        ("learning.evaluation_scored", target | scored),
        ("learning.correction_submitted", target | corrected),
        ("learning.outcome_recorded", target | {"outcome": "accepted", "success": True}),
    ]


def small_run(rng: random.Random, run_id: str, start: datetime) -> list[dict[str, Any]]:
    """An ordinary run: 12 steps one after the other, two state changes."""
    events = [_event("workflow.run_started", start, run_id, {"trigger": "schedule"})]
    totals, t = Totals(), start
    for n in range(12):
        node = SEQUENCE[n % len(SEQUENCE)]
        duration = float(rng.randint(20, 1500))
        events.append(_step(rng, run_id, node, n, 1, t, duration, False, totals))
        t += timedelta(milliseconds=duration + 5)
        if n in (3, 9):
            change = {"from_state": "new" if n == 3 else "triaged", "to_state": "triaged"}
            if n == 9:
                change["to_state"] = "done"
            events.append(_event("workflow.item_state_changed", t, run_id, change))
    events.append(_completed(run_id, start, t, totals))
    return events


@dataclass(frozen=True)
class Seeded:
    run_id: str
    other_run_id: str
    events: int
    steps: int
    seconds: float


def seed(api: ApiServer, url: str, steps: int) -> Seeded:
    """The two runs, posted in batches through the ingest API (every event validated)."""
    started = time.perf_counter()
    rng = random.Random(17)
    now = datetime.now(UTC).replace(microsecond=0)
    # Laid out once to learn how long the run lasts, then again so that it ends (its
    # learning events included) a minute before now.
    last = big_run(random.Random(17), "probe", now, steps)[-1]["ts"]
    begin = now - (datetime.fromisoformat(last) - now) - timedelta(minutes=1)
    run_id = new_ulid(int(begin.timestamp() * 1000))
    other = new_ulid(int((begin - timedelta(minutes=1)).timestamp() * 1000))
    events = big_run(rng, run_id, begin, steps)
    events += small_run(rng, other, begin - timedelta(minutes=1))
    with httpx.Client(base_url=api.base_url, headers=api.auth, timeout=60, trust_env=False) as c:
        for i in range(0, len(events), 500):
            batch = events[i : i + 500]
            response = c.post("/telemetry/events/batch", json={"events": batch})
            body = response.json()
            if response.status_code != 200 or body["counts"]["created"] != len(batch):
                bad = [r for r in body.get("results", []) if r.get("status") != "created"]
                raise BenchmarkError(f"seeding: HTTP {response.status_code}: {bad[:3]}")
    with psycopg.connect(url, autocommit=True) as conn:
        stored = conn.execute(
            "SELECT count(*) FROM telemetry.workflow_events WHERE run_id IN (%s, %s)",
            (run_id, other),
        ).fetchone()
        conn.execute("VACUUM ANALYZE telemetry.workflow_events")
    if stored is None or stored[0] != len(events):
        raise BenchmarkError(f"seeding: {len(events)} events posted, {stored} stored")
    return Seeded(run_id, other, len(events), steps, time.perf_counter() - started)


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
    best, value = float("inf"), None
    for _ in range(times):
        started = time.perf_counter()
        value = fn()
        best = min(best, (time.perf_counter() - started) * 1000)
    return best, value


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
