"""Rows of mapped events without validating them a second time.

The batch endpoint validates every event with the pydantic models (the contract's source
of truth) because its events come from strangers. The events of ``POST /v1/traces``
come from :mod:`ingest_api.otlp.mapping`, which builds them valid by construction:
every string through ``text()`` (no NUL, no lone surrogate, cut to the field's length),
every count capped, every cost bounded and finite, calls' parts within their totals,
the ``otel`` field through ``clean()``. Validating them again cost ~12 µs of the ~40 µs
of API CPU per span, the largest single step of the path.

What construction alone does not guarantee is checked by :func:`fits`: the run id
(the trace id when no attribute names one: empty or over 200 characters in crafted
input), a node name that ``text()`` may have emptied, and step totals (exact sums of
the calls, each capped) that may exceed the contract's maximum. An event that does not fit goes
through full validation, which names the defect. ``tests/unit/test_otlp_rows.py`` holds
the two to one verdict: on random exports (hypothesis), ``fits`` is true exactly when
the models accept the event, and then :func:`direct_row` equals the validated row -
so a constraint added to the models without a twin here fails that test.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_json

from ingest_api.store import EventRow
from sdk.telemetry.events import EVENT_TYPE_BY_NAME
from sdk.telemetry.fields import MAX_TOKENS
from sdk.telemetry.model_calls import ModelCall
from sdk.telemetry.values import ulid_datetime

__all__ = ["direct_row", "fits"]


def _defaults(model: type[BaseModel]) -> dict[str, Any]:
    """The fields a validated ``model`` fills in when they are absent (what its
    ``model_dump_json`` writes for them)."""
    return {
        name: info.get_default(call_default_factory=True)
        for name, info in model.model_fields.items()
        if not info.is_required()
    }


PAYLOAD_DEFAULTS: dict[str, dict[str, Any]] = {
    name: _defaults(event_type.model_fields["payload"].annotation)  # type: ignore[arg-type]
    for name, event_type in EVENT_TYPE_BY_NAME.items()
    if name in ("workflow.run_started", "workflow.step_completed", "workflow.run_completed")
}
VERSION_DEFAULTS: dict[str, int] = {
    name: EVENT_TYPE_BY_NAME[name].model_fields["event_version"].default
    for name in PAYLOAD_DEFAULTS
}
CALL_DEFAULTS = _defaults(ModelCall)
STEP_TOTALS = ("tokens_in", "tokens_out", "tokens_cached_in")
MAX_ID = 200  # the contract's Id


def fits(event: dict[str, Any]) -> bool:
    """Whether the models accept ``event`` as mapped (see the module docstring)."""
    if not 0 < len(event["run_id"]) <= MAX_ID:  # the trace id fallback is not cut
        return False
    if event["event_name"] != "workflow.step_completed":
        return True
    payload = event["payload"]
    return bool(payload["node"]) and all((payload[name] or 0) <= MAX_TOKENS for name in STEP_TOTALS)


def direct_row(event: dict[str, Any]) -> EventRow:
    """The row validation would make of ``event``, which :func:`fits`."""
    payload = {**PAYLOAD_DEFAULTS[event["event_name"]], **event["payload"]}
    calls = payload.get("calls")
    if calls:
        payload["calls"] = [{**CALL_DEFAULTS, **call} for call in calls]
    return EventRow(
        event_id=event["event_id"],
        event_time=ulid_datetime(event["event_id"]),
        event_version=event.get("event_version", VERSION_DEFAULTS[event["event_name"]]),
        event_name=event["event_name"],
        ts=datetime.fromisoformat(event["ts"]),
        run_id=event["run_id"],
        item_id=event.get("item_id"),
        workflow_name=event.get("workflow_name"),
        agent_role=event.get("agent_role"),
        payload_json=to_json(payload).decode(),
    )
