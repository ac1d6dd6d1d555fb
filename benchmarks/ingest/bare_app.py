"""The framework floor of the ingest benchmark: Litestar on the same uvicorn as ``wdp api``
(uvloop, the same httptools protocol), with one handler that reads and parses the body
of ``POST /telemetry/events`` as the real endpoint must, and answers 201 with a body of
the same shape. No validation, no auth, no database: what the framework alone costs.

``lean_app`` is the same floor written the way ``wdp api``'s hot path is since issue 18:
the body read from ASGI ``receive`` (``request.body()`` first parses every header into
Litestar's multidict) and an ``ASGIResponse`` returned (a ``Response`` is converted per
request). The benchmark prints the API against it too, for reference: the target is
against ``app``, the framework as an ordinary handler uses it.
"""

from __future__ import annotations

import json
from typing import Any

from litestar import Litestar, MediaType, Request, Response, get, post
from litestar.response.base import ASGIResponse

ANSWER = b'{"status":"created","event_id":"%s"}'


@post("/telemetry/events", status_code=201)
async def post_event(request: Request[Any, Any, Any]) -> Response[bytes]:
    data = json.loads(await request.body())
    return Response(
        ANSWER % str(data.get("event_id", "")).encode(),
        status_code=201,
        media_type=MediaType.JSON,
    )


@get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


app = Litestar([post_event, healthz], logging_config=None, debug=False)


@post("/telemetry/events", status_code=201)
async def post_event_lean(request: Request[Any, Any, Any]) -> ASGIResponse:
    chunks = []
    while True:
        message = await request.receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    data = json.loads(b"".join(chunks))
    return ASGIResponse(
        body=ANSWER % str(data.get("event_id", "")).encode(),
        status_code=201,
        media_type=MediaType.JSON,
    )


lean_app = Litestar([post_event_lean, healthz], logging_config=None, debug=False)
