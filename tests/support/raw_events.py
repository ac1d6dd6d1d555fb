"""Raw telemetry rows written straight into Postgres, as the ingest API stores them.

``event_time`` is ``ulid_time(event_id)``, as the API sets it; ``minted`` gives an id of
another moment than ``ts`` (a late or backfilled event).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from sdk.telemetry.values import new_ulid

STEP, RUN_DONE, RUN_START = (
    "workflow.step_completed",
    "workflow.run_completed",
    "workflow.run_started",
)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def insert(
    eng: sa.Engine,
    name: str,
    ts: str,
    *,
    minted: str | None = None,
    run: str | None = None,
    item: str | None = None,
    wf: str | None = None,
    role: str | None = None,
    payload: dict[str, Any] | None = None,
) -> None:
    moment = utc(minted or ts)
    ms = int(moment.timestamp()) * 1000 + moment.microsecond // 1000
    with eng.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO telemetry.workflow_events (event_id, event_time, event_name, ts, "
                "run_id, item_id, workflow_name, agent_role, payload) VALUES (CAST(:id AS text), "
                "telemetry.ulid_time(CAST(:id AS text)), :name, :ts, :run, :item, :wf, :role, "
                "CAST(:payload AS jsonb))"
            ),
            {
                "id": new_ulid(ms),
                "name": name,
                "ts": utc(ts),
                "run": run,
                "item": item,
                "wf": wf,
                "role": role,
                "payload": json.dumps(payload or {}),
            },
        )


def step(
    status: str,
    duration: float,
    model: str | None,
    tin: int,
    tout: int,
    cost: float | None,
    *,
    node: str = "n",
    cached: int | None = None,
) -> dict[str, Any]:
    """A step_completed payload; ``cost`` None is an unknown cost."""
    payload: dict[str, Any] = {"node": node, "step": 1, "status": status, "duration_ms": duration}
    payload |= {"tokens_in": tin, "tokens_out": tout, "cost_usd_est": cost}
    if cached is not None:
        payload["tokens_cached_in"] = cached
    if model is not None:
        payload["model"] = model
    if status == "error":
        payload["error_type"] = "Timeout"
    return payload
