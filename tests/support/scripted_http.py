"""A real HTTP server on loopback that answers from a script, for transport tests.

The SDK's retry, backoff and spool logic is exercised over real sockets: each request
pops the next scripted reply (status, headers, body); when the script runs out it
answers like the ingest API would, with every event created. While ``down`` is set it
hangs up on every request without an answer (counted in ``refused``), like a dead
upstream behind a proxy.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    delay_s: float = 0.0  # answer late (a server that hangs)


@dataclass
class ScriptedApi:
    url: str
    script: list[Reply]
    received: list[list[dict[str, Any]]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    down: bool = False
    refused: int = 0

    @property
    def events(self) -> list[dict[str, Any]]:
        return [
            e
            for batch, status in zip(self.received, self.statuses, strict=True)
            if status == 200
            for e in batch
        ]


def _created(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "counts": {"created": len(events)},
        "results": [
            {"index": i, "event_id": e.get("event_id"), "status": "created"}
            for i, e in enumerate(events)
        ],
    }


@contextmanager
def scripted_api(script: list[Reply] | None = None) -> Iterator[ScriptedApi]:
    api = ScriptedApi("", list(script or []))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                raw = gzip.decompress(raw)
            events = json.loads(raw)["events"]
            if api.down:
                with lock:
                    api.refused += 1
                self.close_connection = True  # no response: the client sees a hang-up
                return
            with lock:
                reply = api.script.pop(0) if api.script else Reply(200)
                api.received.append(events)
                api.statuses.append(reply.status)
            if reply.delay_s:
                time.sleep(reply.delay_s)
            body = (
                reply.body
                if reply.body is not None
                else (_created(events) if reply.status == 200 else {"detail": "scripted"})
            )
            data = json.dumps(body).encode()
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
