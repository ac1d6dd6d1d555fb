"""The framework floor of the ingest benchmark: Litestar on the same uvicorn as ``wdp api``
(uvloop, the same httptools protocol), with one handler that reads and parses the body
of ``POST /telemetry/events`` as the real endpoint must, and answers 201 with a body of
the same shape. No validation, no auth, no database: what the framework alone costs.
"""

from __future__ import annotations

import json
from typing import Any

from litestar import Litestar, MediaType, Request, Response, get, post

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
