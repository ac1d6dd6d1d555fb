"""Helpers of the read API tests: a server with a read key, and events sent through it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from sdk.telemetry.values import new_ulid
from tests.support.servers import TEST_API_KEYS, ApiServer, run_api

READ_KEY = "test-read-key"
READ = {"Authorization": f"Bearer {READ_KEY}"}
INGEST = {"Authorization": f"Bearer {TEST_API_KEYS[0]}"}


@contextmanager
def read_server(database_url: str, log: Path, **env: str) -> Iterator[ApiServer]:
    """``wdp api`` with the test ingest keys and :data:`READ_KEY` as its read key."""
    with run_api(database_url, log, extra_env={"READ_API_KEYS": READ_KEY, **env}) as server:
        yield server


def event(name: str, ts: datetime, *, payload: dict[str, Any] | None = None, **ids: Any) -> dict:
    """An event with a fresh id (so in a live partition) at any ``ts``."""
    body: dict[str, Any] = {"event_id": new_ulid(), "event_name": name, "ts": ts.isoformat()}
    body.update({k: v for k, v in ids.items() if v is not None})
    if payload is not None:
        body["payload"] = payload
    return body


def step(
    ts: datetime,
    *,
    node: str,
    step: int,
    cost: float | None,
    tokens: tuple[int, int] = (10, 5),
    duration_ms: float = 100.0,
    model: str | None = "model-a",
    status: str = "ok",
    attempt: int | None = None,
    unknown: bool | None = None,
    **ids: Any,
) -> dict:
    """A step_completed event; ``cost`` None is an unknown cost (unless ``unknown``
    says otherwise)."""
    payload: dict[str, Any] = {
        "node": node,
        "step": step,
        "status": status,
        "duration_ms": duration_ms,
        "tokens_in": tokens[0],
        "tokens_out": tokens[1],
        "cost_usd_est": cost,
        "cost_unknown": cost is None if unknown is None else unknown,
    }
    if model is not None:
        payload["model"] = model
    if attempt is not None:
        payload["attempt"] = attempt
    if status == "error":
        payload["error_type"] = "ValueError"
        payload["error_message"] = "bad"
    return event("workflow.step_completed", ts, payload=payload, **ids)


def call(model: str, tin: int = 0, tout: int = 0, **more: Any) -> dict[str, Any]:
    """One model call of a step (``calls``), at provider acme."""
    return {"model": model, "provider": "acme", "tokens_in": tin, "tokens_out": tout, **more}


def v2_step(
    ts: datetime, node: str, model: str, calls: list[dict[str, Any]], est: float | None, **ids: Any
) -> dict:
    """A step with per-call usage (event_version 2): its totals are its calls' sums, and
    ``est`` the estimate it emits (None: unknown), which priced figures never use."""
    tin, tout = sum(c["tokens_in"] for c in calls), sum(c["tokens_out"] for c in calls)
    body = step(ts, node=node, step=1, cost=est, tokens=(tin, tout), model=model, **ids)
    body["event_version"] = 2
    body["payload"]["calls"] = calls
    body["payload"]["tokens_cached_in"] = sum(c.get("tokens_cached_in", 0) for c in calls)
    return body


def post(server: ApiServer, events: list[dict]) -> None:
    """Store ``events`` through the ingest API (every one must be created)."""
    for start in range(0, len(events), 1000):
        chunk = events[start : start + 1000]
        response = httpx.post(
            f"{server.base_url}/telemetry/events/batch",
            json={"events": chunk},
            headers=INGEST,
            timeout=30,
        )
        assert response.status_code == 200, response.text
        assert response.json()["counts"]["created"] == len(chunk), response.text


def get(server: ApiServer, path: str, **params: Any) -> httpx.Response:
    return httpx.get(
        f"{server.base_url}{path}",
        params={k: v for k, v in params.items() if v is not None},
        headers=READ,
        timeout=30,
    )
