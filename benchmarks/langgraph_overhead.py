"""Benchmark the cost of LangGraph instrumentation on the graph's own thread.

    .venv/bin/python -m benchmarks.langgraph_overhead [--runs 300] [--nodes 10] [--work-ms 1.0]
        [--model bench-model] [--provider wdp-fake]

One process, one graph: ``--nodes`` nodes in a line, each doing ``--work-ms`` of work,
of three kinds: ``spin`` (pure-Python CPU work, which holds the GIL: the worst case, as
the SDK's sender thread then competes with the graph for it), ``sleep`` (waiting, like
a node calling a model over the network: the usual case) and ``model`` (the wait plus
a fake model call, so model-call callbacks, token accounting and pricing are measured too:
``--model`` names a priced model, such as gpt-4o-mini, to include the price arithmetic;
the default has no price). The same compiled
graph is run plain and instrumented (``sdk.langgraph.instrument``), alternating run by
run so drift and noise hit both alike, for ``invoke`` and ``ainvoke``. Events go
through a real :class:`sdk.telemetry.TelemetryClient` (queue, sender thread,
validation, gzip) whose transport answers every batch as the ingest API does, without
a network. Reported: the median paired difference in wall time per run (as a share
of the run and per node) and in CPU time of the calling thread per node.

Targets (issue 8): overhead <= 5 % of run time and <= 100 us per node on the caller's
thread.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import itertools
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph
from rich.console import Console
from rich.table import Table

from sdk.langgraph import instrument
from sdk.langgraph.fake import FakeChatModel
from sdk.langgraph.prices import bundled, warm_bundled
from sdk.telemetry import TelemetryClient
from sdk.telemetry.transport import TransportResponse

console = Console()


class State(TypedDict, total=False):
    item_id: str
    status: str
    counter: int


class AcceptingTransport:
    """Answers each batch like the ingest API (every event created), cheaply: the API
    runs in another process, so its parsing should not load this one."""

    def __init__(self) -> None:
        self.events = 0
        self._replies: dict[int, bytes] = {}

    def send(self, body: bytes, *, timeout: float) -> TransportResponse:
        count = gzip.decompress(body).count(b'"event_id":')
        self.events += count
        if count not in self._replies:
            results = [{"status": "created"}] * count
            self._replies[count] = json.dumps({"results": results}).encode()
        return TransportResponse(status=200, body=self._replies[count])

    def close(self) -> None:
        pass


def spin(ms: float) -> None:
    end = time.perf_counter() + ms / 1000
    while time.perf_counter() < end:
        pass


def wait(ms: float) -> None:
    time.sleep(ms / 1000)


_MODEL = FakeChatModel(model="bench-model", text="a short answer")


def call_model(ms: float) -> None:
    """Waiting as for a model's reply, then a (fake, instant) model call: exercises
    the model-call callbacks, usage accounting and pricing too."""
    time.sleep(ms / 1000)
    _MODEL.invoke("a prompt of several words")


def build_graph(nodes: int, work_ms: float, work: Callable[[float], None] = spin) -> Any:
    builder = StateGraph(State)

    def make(i: int) -> Callable[[State], State]:
        def node(state: State) -> State:
            work(work_ms)
            update: State = {"counter": state.get("counter", 0) + 1}
            if i % 3 == 0:  # some nodes move the item's state: item_state_changed too
                update["status"] = f"stage-{i}"
            return update

        return node

    names = [f"n{i}" for i in range(nodes)]
    for i, name in enumerate(names):
        builder.add_node(name, make(i))
    builder.add_edge(START, names[0])
    for a, b in itertools.pairwise(names):
        builder.add_edge(a, b)
    builder.add_edge(names[-1], END)
    return builder.compile()


Sample = tuple[float, float]  # (wall seconds, CPU seconds of the calling thread)


def measure(
    runs: int, plain: Any, instrumented: Any, mode: str
) -> tuple[list[Sample], list[Sample]]:
    """Alternating runs; a sample per run for (plain, instrumented)."""
    base: list[Sample] = []
    inst: list[Sample] = []
    loop = asyncio.new_event_loop() if mode == "ainvoke" else None

    def once(graph: Any, n: int) -> Sample:
        state = {"item_id": f"item-{n}", "status": "new"}
        cpu, wall = time.thread_time(), time.perf_counter()
        if loop is not None:
            loop.run_until_complete(graph.ainvoke(state))
        else:
            graph.invoke(state)
        return time.perf_counter() - wall, time.thread_time() - cpu

    for n in range(20):  # warm-up, both variants
        once(plain, n)
        once(instrumented, n)
    for n in range(runs):
        first, second = (plain, instrumented) if n % 2 == 0 else (instrumented, plain)
        a, b = once(first, n), once(second, n)
        (base if first is plain else inst).append(a)
        (inst if first is plain else base).append(b)
    if loop is not None:
        loop.close()
    return base, inst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--work-ms", type=float, default=1.0)
    parser.add_argument("--model", default="bench-model", help="the fake model's name")
    parser.add_argument("--provider", default="wdp-fake", help="its ls_provider")
    args = parser.parse_args(argv)
    global _MODEL
    _MODEL = FakeChatModel(model=args.model, provider=args.provider, text="a short answer")

    transport = AcceptingTransport()
    client = TelemetryClient(transport=transport, batch_size=500, flush_interval_s=0.2)
    # The bundled genai-prices book is built once per process, on a daemon thread that
    # the first handler starts: waited for here, so that the steady state is measured.
    started = time.perf_counter()
    warm_bundled()
    bundled()
    console.print(f"bundled prices ready after {time.perf_counter() - started:.2f} s (once)")

    console.print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; {args.nodes} nodes x "
        f"{args.work_ms} ms, {args.runs} runs per variant, alternating; model "
        f"{args.model} ({args.provider})"
    )
    table = Table(title="LangGraph instrumentation overhead (medians of paired differences)")
    columns = ("work", "mode", "plain ms", "overhead", "wall / node", "caller CPU / node", "")
    for column in columns:
        table.add_column(column, justify="right")
    ok = True
    for kind, work in (("sleep", wait), ("spin", spin), ("model", call_model)):
        plain = build_graph(args.nodes, args.work_ms, work)
        instrumented = instrument(plain, workflow_name="overhead-bench", client=client)
        for mode in ("invoke", "ainvoke"):
            base, inst = measure(args.runs, plain, instrumented, mode)
            b = statistics.median(w for w, _ in base)
            wall = statistics.median(y[0] - x[0] for x, y in zip(base, inst, strict=True))
            cpu = statistics.median(y[1] - x[1] for x, y in zip(base, inst, strict=True))
            pct = 100 * wall / b
            cpu_us = cpu / args.nodes * 1e6
            passed = pct <= 5 and cpu_us <= 100
            ok &= passed
            table.add_row(
                kind,
                mode,
                f"{b * 1000:.3f}",
                f"{pct:+.2f} %",
                f"{wall / args.nodes * 1e6:.1f} us",
                f"{cpu_us:.1f} us",
                "[green]PASS[/]" if passed else "[red]MISS[/]",
            )
    console.print(table)
    client.flush(timeout=30)
    stats = client.stats()
    client.shutdown()
    expected_per_run = 2 + args.nodes + len(range(0, args.nodes, 3))  # + state changes
    console.print(
        f"events delivered: {transport.events} (sent={stats.sent}); "
        f"{expected_per_run} per instrumented run"
    )
    console.print("targets: overhead <= 5 % of run time and <= 100 us per node on the caller")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
