"""``DeferredEvent.finish``: payload fields computed where the event is built (the
sender thread), not where it was emitted - how the LangGraph handler prices calls off
the graph's thread."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from sdk.telemetry.client import TelemetryClient
from sdk.telemetry.deferred import DeferredEvent
from sdk.telemetry.emitting import emit_deferred
from sdk.telemetry.events import StepCompleted
from sdk.telemetry.payloads import StepCompletedPayloadDict

MOMENT = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
PAYLOAD: StepCompletedPayloadDict = {
    "node": "plan",
    "step": 1,
    "status": "ok",
    "duration_ms": 1.5,
    "tokens_in": 3,
    "cost_usd_est": 0.0,
    "cost_unknown": False,
}


class Keeping(TelemetryClient):
    def __init__(self) -> None:
        super().__init__(disabled=True, clock=lambda: MOMENT)
        self.received: list[Any] = []

    def emit(self, event: Any) -> None:
        self.received.append(event)


def test_finish_runs_when_the_event_is_built_and_its_fields_win() -> None:
    asked: list[int] = []

    def finish() -> dict[str, Any]:
        asked.append(1)
        return {"cost_usd_est": 0.25, "cost_unknown": False}

    client = Keeping()
    emit_deferred(StepCompleted, PAYLOAD, run_id="r1", client=client, finish=finish)
    (deferred,) = client.received
    assert isinstance(deferred, DeferredEvent)
    assert asked == []  # nothing computed where it was emitted
    event = deferred.build()
    assert asked == [1]
    assert isinstance(event, StepCompleted)
    assert (event.payload.cost_usd_est, event.payload.tokens_in) == (0.25, 3)
    assert PAYLOAD["cost_usd_est"] == 0.0  # the captured payload is left as it was


def test_finished_fields_are_validated_like_the_rest() -> None:
    def finish() -> dict[str, Any]:
        return {"cost_usd_est": -1.0}

    ids = {"run_id": "r1", "item_id": None, "workflow_name": None, "agent_role": None}
    deferred = DeferredEvent(StepCompleted, ids, PAYLOAD, MOMENT, None, finish)
    with pytest.raises(ValueError, match="cost_usd_est"):
        deferred.build()
