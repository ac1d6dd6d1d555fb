"""OTLP ingestion: spans/s through ``POST /v1/traces`` next to the batch endpoint.

    .venv/bin/python -m benchmarks.otlp [--rounds 6] [--traces 1600] [--agents 4]
                                        [--traces-per-export 100] [--clients 4] [--json]

Spans are made by the real OpenTelemetry SDK (a ``TracerProvider`` with the SDK's
in-memory exporter): per trace a root span and ``--agents`` agent spans
(``gen_ai.operation.name=invoke_agent``), each with one chat span with token usage, so
1 + 2 x agents spans and 2 + agents events per trace. ``--traces-per-export`` traces
make one export, encoded with the SDK's own OTLP encoder (``encode_spans``) to protobuf,
exactly as ``OTLPSpanExporter`` sends it.

The baseline posts *the same events* to ``POST /telemetry/events/batch``: each export of
a baseline round is mapped in this process with the endpoint's own mapping
(``map_export(iter_spans(...))``) and its events are posted as one JSON batch, so both
endpoints get the same number of requests, of the same events, per round.

Rounds alternate OTLP and batch (ABBA: otlp, batch, batch, otlp, ...) so drift on the
shared machine hits both alike. Every round has spans of its own (fresh trace and span
ids, hence fresh event ids) and its own ``workflow_name``, counted in Postgres after the
round: the run fails if one event is missing. All bodies of a round are built before it
is timed; ``--clients`` keep-alive connections post them from one event-loop thread.

Target (the OTLP issue): OTLP ≥ 0.7 x the batch endpoint, in events stored per second
(the same events, so the same ratio as in spans per second). The script also prints,
per span, what each step of the two paths costs in this process (decode, mapping,
validation), which is where the difference comes from.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from benchmarks.harness import (
    BenchmarkError,
    CpuMeter,
    CpuSplit,
    benchmark_api,
    console,
    fresh_database,
    machine,
    warn_if_busy,
)
from benchmarks.ingest.clients import RawPool
from ingest_api.otlp.mapping import map_export
from ingest_api.otlp.spans import iter_spans
from sdk.cli.launch import ApiServer

TARGET = 0.7
MODES = ("otlp", "batch")
PATHS = {"otlp": "/v1/traces", "batch": "/telemetry/events/batch"}
MEDIA = {"otlp": "application/x-protobuf", "batch": "application/json"}
RUN_TAG = uuid.uuid4().hex[:6]

Runner = Callable[[Any], Any]


# --- spans and bodies -------------------------------------------------------------------


@dataclass
class Bodies:
    """One round's requests of one mode, built before the round is timed."""

    workflow: str
    bodies: list[bytes]
    spans: int  # spans these requests carry (batch: the spans their events came from)
    events: list[int]  # events each request stores


def record_traces(workflow: str, traces: int, agents: int) -> list[Any]:
    """``traces`` agent runs made by the OpenTelemetry SDK, as its finished spans."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": workflow}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("wdp-benchmark")
    for _ in range(traces):
        with tracer.start_as_current_span("workflow"):
            for a in range(agents):
                name = f"agent-{a}"
                with tracer.start_as_current_span(f"invoke_agent {name}") as agent:
                    agent.set_attributes(
                        {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": name}
                    )
                    with tracer.start_as_current_span("chat gpt-4o-mini") as chat:
                        chat.set_attributes(
                            {
                                "gen_ai.operation.name": "chat",
                                "gen_ai.provider.name": "openai",
                                "gen_ai.request.model": "gpt-4o-mini",
                                "gen_ai.usage.input_tokens": 1200 + a,
                                "gen_ai.usage.output_tokens": 150,
                                "gen_ai.usage.cache_read.input_tokens": 400,
                            }
                        )
    spans = list(memory.get_finished_spans())
    provider.shutdown()
    return spans


def exports(workflow: str, traces: int, agents: int, per_export: int) -> list[Any]:
    """The ``ExportTraceServiceRequest``s of ``traces`` fresh traces, whole traces each
    (the SDK finishes a trace's spans one after the other)."""
    spans = record_traces(workflow, traces, agents)
    step = per_export * (1 + 2 * agents)
    return [encode_spans(spans[i : i + step]) for i in range(0, len(spans), step)]


def mapped_events(request: ExportTraceServiceRequest) -> list[dict[str, Any]]:
    """The events ``POST /v1/traces`` stores for ``request``: the endpoint's own mapping."""
    return [m.event for m in map_export(iter_spans(request)).events]


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def build(mode: str, name: str, args: argparse.Namespace) -> Bodies:
    workflow = f"{mode}-{name}-{RUN_TAG}"
    requests = exports(workflow, args.traces, args.agents, args.traces_per_export)
    spans = sum(len(s.spans) for r in requests for rs in r.resource_spans for s in rs.scope_spans)
    events = [mapped_events(r) for r in requests]
    if mode == "otlp":
        bodies = [r.SerializeToString() for r in requests]
    else:
        bodies = [dumps({"events": e}) for e in events]
    return Bodies(workflow, bodies, spans, [len(e) for e in events])


# --- load -------------------------------------------------------------------------------


def pool(server: ApiServer, mode: str, connections: int) -> RawPool:
    client = RawPool(server, connections)
    client.head = client.head.replace(b"application/json", MEDIA[mode].encode())
    return client


def check_answer(mode: str, status: int, answer: bytes, expected: int) -> None:
    if status != 200:
        raise BenchmarkError(f"{mode}: HTTP {status}: {answer[:500]!r}")
    if mode == "otlp":
        response = ExportTraceServiceResponse()
        response.ParseFromString(answer)
        if response.partial_success.rejected_spans:
            raise BenchmarkError(f"otlp: {response.partial_success.error_message[:500]}")
    else:
        created = json.loads(answer)["counts"]["created"]
        if created != expected:
            raise BenchmarkError(f"batch: {created} of {expected} events created")


async def post_all(server: ApiServer, mode: str, work: Bodies, connections: int) -> float:
    queue = list(zip(work.bodies, work.events, strict=True))
    queue.reverse()
    async with pool(server, mode, connections) as client:

        async def worker() -> None:
            while queue:
                body, expected = queue.pop()
                status, answer = await client.post(PATHS[mode], body)
                check_answer(mode, status, answer, expected)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        return time.perf_counter() - t0


def count_workflow(url: str, workflow: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM telemetry.workflow_events WHERE workflow_name = %s", (workflow,)
        ).fetchone()
    return int(row[0]) if row else 0


@dataclass
class Round:
    mode: str
    round: int
    requests: int
    spans: int
    events: int
    seconds: float
    cpu: CpuSplit

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds

    @property
    def spans_per_s(self) -> float:
        return self.spans / self.seconds

    @property
    def api_us_per_event(self) -> float | None:
        if self.cpu.api is None:
            return None
        return self.cpu.api * self.seconds / self.events * 1e6


def run_round(
    run: Runner, server: ApiServer, url: str, meter: CpuMeter, mode: str, n: int, work: Bodies,
    connections: int,
) -> Round:  # fmt: skip
    before = meter.snapshot()
    seconds = run(post_all(server, mode, work, connections))
    after = meter.snapshot()
    expected = sum(work.events)
    stored = count_workflow(url, work.workflow)
    if stored != expected:
        raise BenchmarkError(f"{mode} round {n}: {expected} events sent, {stored} stored")
    return Round(
        mode, n, len(work.bodies), work.spans, expected, seconds, meter.split(before, after)
    )


# --- in-process cost of each step -------------------------------------------------------


def make_runner() -> Runner:
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run
    return lambda coro: uvloop.run(coro)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.otlp", description=__doc__.split("\n")[0]
    )
    p.add_argument("--rounds", type=int, default=6, help="rounds per endpoint (default 6)")
    p.add_argument("--traces", type=int, default=1600, help="traces per round (default 1600)")
    p.add_argument("--agents", type=int, default=4, help="agent spans per trace (default 4)")
    p.add_argument(
        "--traces-per-export", type=int, default=100, help="traces per request (default 100)"
    )
    p.add_argument("--clients", type=int, default=4, help="concurrent connections (default 4)")
    p.add_argument("--workers", type=int, default=1, help="API worker processes (default 1)")
    p.add_argument("--json", action="store_true", help="also print the results as JSON")
    p.add_argument("--keep-db", action="store_true")
    args = p.parse_args(argv)
    events = args.traces_per_export * (2 + args.agents)
    if events > 1000:
        p.error(f"{events} events per batch request: above ingest_max_batch_events (1000)")
    if args.rounds < 1 or args.traces < args.traces_per_export:
        p.error("need --rounds >= 1 and --traces >= --traces-per-export")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    run = make_runner()
    info = machine()
    per_trace = 1 + 2 * args.agents, 2 + args.agents
    console.print(
        f"machine: {info}\n{args.traces} traces per round, {per_trace[0]} spans and "
        f"{per_trace[1]} events each, {args.traces_per_export} traces "
        f"({args.traces_per_export * per_trace[0]} spans, "
        f"{args.traces_per_export * per_trace[1]} events) per request, "
        f"{args.clients} connections, {args.workers} API worker(s)"
    )
    rounds: list[Round] = []
    try:
        with fresh_database(args.keep_db) as (url, pg_pid, desc):
            console.print(f"database: {desc}")
            with benchmark_api(url, workers=args.workers) as server:
                meter = CpuMeter(pg_pid, server.process.pid)
                for mode in MODES:  # warm-up: imports, pools, partitions cache
                    run_round(run, server, url, meter, mode, 0, build(mode, "warm", args),
                              args.clients)  # fmt: skip
                for n in range(1, args.rounds + 1):
                    order = MODES if n % 2 else MODES[::-1]
                    for mode in order:
                        work = build(mode, f"r{n}", args)
                        rounds.append(
                            run_round(run, server, url, meter, mode, n, work, args.clients)
                        )
    except BenchmarkError as exc:
        console.print(f"[red]invalid run: {exc}[/red]")
        return 1
    from benchmarks.otlp_report import report, stage_costs, summarise

    costs = stage_costs(args)
    summary = summarise(rounds)
    report(args, rounds, summary, costs)
    warn_if_busy([(f"{r.mode} round {r.round}", r.cpu.other) for r in rounds])
    if args.json:
        print(
            json.dumps(
                {
                    "when": datetime.now(UTC).isoformat(timespec="seconds"),
                    "machine": info,
                    "args": vars(args),
                    "summary": summary,
                    "stages_us_per_span": costs,
                    "rounds": [
                        asdict(r) | {"events_per_s": r.events_per_s, "spans_per_s": r.spans_per_s}
                        for r in rounds
                    ],
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
