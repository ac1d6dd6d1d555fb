"""wdp's LangGraph handler side by side with Langfuse's, on the graph's own thread.

    make peers-venv      # once: .venv-peers, the project plus langfuse (kept out of .venv)
    .venv-peers/bin/python -m benchmarks.langgraph_peers [--runs 200] [--nodes 10]

The graph and variants of ``benchmarks.langgraph_overhead`` (``--nodes`` nodes in a
line, 1 ms of waiting each, or the wait plus a fake chat model call with usage
metadata), rotated run by run in one process: plain, an empty ``run_inline`` handler,
wdp (``sdk.langgraph.instrument``, events to an in-process transport answering like
the API) and Langfuse's ``langfuse.langchain.CallbackHandler`` (its OpenTelemetry
exporter posting to a loopback HTTP server that accepts everything). Reported: each
handler's added CPU time of the calling thread per node (median of paired differences
against the plain run beside it) and Langfuse's as a multiple of wdp's. Langfuse is
installed apart from the project's environment, so it cannot change what the rest of the
project runs with; the versions are printed.

Target (issue 19): Langfuse's added caller CPU >= 5x wdp's.

OpenInference is not in this table: its instrumentor patches LangChain's callback
manager for the whole process, so the plain and wdp runs beside it would pay for it too.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.harness import verdict
from benchmarks.langgraph_overhead import (
    AcceptingTransport,
    EmptyHandler,
    added,
    build_graph,
    call_model,
    measure,
    wait,
)
from sdk.langgraph import instrument
from sdk.langgraph.prices import bundled, warm_bundled
from sdk.telemetry import TelemetryClient

console = Console(width=150)


class _Accept(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def accepting_server() -> Iterator[str]:
    """A loopback HTTP server answering 200 to every POST (Langfuse's OTLP endpoint)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Accept)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def versions() -> str:
    names = ("langfuse", "langgraph", "langchain-core", "opentelemetry-sdk")
    found = []
    for name in names:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--work-ms", type=float, default=1.0)
    args = parser.parse_args(argv)
    try:
        from langfuse import Langfuse
        from langfuse.langchain import CallbackHandler
    except ImportError as exc:
        console.print(
            f"[red]langfuse is not importable ({exc}): run this with .venv-peers/bin/python "
            "(make peers-venv)[/red]"
        )
        return 2
    console.print(versions())
    warm_bundled()
    bundled()
    ok = True
    with accepting_server() as url:
        langfuse = Langfuse(public_key="pk-lf-bench", secret_key="sk-lf-bench", host=url)
        client = TelemetryClient(
            transport=AcceptingTransport(), batch_size=500, flush_interval_s=0.2
        )
        table = Table(title="caller CPU per node, added to the plain graph (medians)")
        for column in ("work", "mode", "empty", "wdp", "Langfuse", "Langfuse / wdp", ">= 5x"):
            table.add_column(column, justify="right")
        for kind, work in (("sleep", wait), ("model", call_model)):
            plain = build_graph(args.nodes, args.work_ms, work)
            graphs = {
                "plain": plain,
                "empty": plain.with_config(callbacks=[EmptyHandler()]),
                "wdp": instrument(plain, workflow_name="peers-bench", client=client),
                "langfuse": plain.with_config(callbacks=[CallbackHandler()]),
            }
            for mode in ("invoke", "ainvoke"):
                samples = measure(args.runs, graphs, mode)
                per_node = {
                    name: added(samples["plain"], samples[name])[1] / args.nodes * 1e6
                    for name in ("empty", "wdp", "langfuse")
                }
                ratio = per_node["langfuse"] / per_node["wdp"]
                ok &= ratio >= 5
                table.add_row(
                    kind,
                    mode,
                    f"{per_node['empty']:.1f} us",
                    f"{per_node['wdp']:.1f} us",
                    f"{per_node['langfuse']:.1f} us",
                    f"{ratio:.1f}x",
                    verdict(ratio >= 5),
                )
        console.print(table)
        client.shutdown(timeout=10)
        langfuse.flush()
        langfuse.shutdown()
    console.print(
        f"wdp events sent: {client.stats().sent:,}; median of {args.runs} rotated runs per "
        "variant; target: Langfuse's added caller CPU >= 5x wdp's"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
