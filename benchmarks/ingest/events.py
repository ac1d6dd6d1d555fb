"""The ingest benchmark's events and results: fresh ids per phase, counted afterwards."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from benchmarks.harness import BenchmarkError, CpuSplit, count_rows, event_row
from sdk.telemetry.values import new_ulid

BATCH_SIZE = 500
BATCH_CLIENTS = 4
SINGLE_CONNECTIONS = 32

RUN_TAG = uuid.uuid4().hex[:8]

# Runs a coroutine to completion (on uvloop when it is installed; see __main__).
Runner = Callable[[Any], Any]


def run_id(phase: str) -> str:
    """The run_id of one phase's events: counted after the phase to find lost events."""
    return f"bench-{phase}-{RUN_TAG}"


def make_events(n: int, run_id: str) -> list[dict[str, Any]]:
    """``n`` valid ``workflow.step_completed`` events with fresh ids, all in ``run_id``."""
    ts = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return [
        {
            "event_id": new_ulid(),
            "event_name": "workflow.step_completed",
            "ts": ts,
            "run_id": run_id,
            "payload": {
                "node": "n",
                "step": i,
                "status": "ok",
                "duration_ms": 3.2,
                "model": "gpt",
                "tokens_in": 10,
                "tokens_out": 5,
                "cost_usd_est": 0.001,
            },
        }
        for i in range(n)
    ]


def as_row(event: dict[str, Any]) -> tuple[Any, ...]:
    """The database row of ``event``, as the API would store it."""
    return event_row(
        event["event_id"],
        event["event_name"],
        datetime.fromisoformat(event["ts"]),
        json.dumps(event["payload"], separators=(",", ":")),
        run_id=event["run_id"],
    )


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def verify_rows(url: str, run_id: str, expected: int) -> None:
    stored = count_rows(url, run_id)
    if stored != expected:
        raise BenchmarkError(
            f"phase {run_id}: {expected} events sent, {stored} stored — events were lost"
            if stored < expected
            else f"phase {run_id}: {expected} events sent but {stored} rows stored"
        )


@dataclass
class Phase:
    name: str
    events: int
    seconds: float
    rate: float  # events/s, or requests/s for single-event phases
    unit: str
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    cpu: CpuSplit = field(default_factory=CpuSplit)
    note: str = ""
    group_mean: float | None = None  # single-event requests per group-commit transaction

    @property
    def api_us_per_event(self) -> float | None:
        """API CPU per event (per request for single events): less noisy than rates."""
        if self.cpu.api is None:
            return None
        return self.cpu.api * self.seconds / self.events * 1e6
