"""How usage SQL reads raw step events: one reading of payload numbers and unknown costs.

Every SQL over ``telemetry.workflow_events`` payloads in :mod:`sdk.usage` (the daily
aggregates, per-call model usage, runs) reads them with these helpers, so no two
figures can read one event differently. A leaf module: both
:mod:`sdk.usage.aggregation` (which re-exports these names) and
:mod:`sdk.usage.model_usage` build on it without importing each other in a cycle.
"""

from __future__ import annotations

__all__ = ["STEP_EVENT", "cost_is_unknown", "payload_number"]

STEP_EVENT = "workflow.step_completed"


def payload_number(key: str, alias: str | None = None) -> str:
    """SQL for a payload number, NULL when absent or not a number (raw rows may predate
    validation). Every reader of event payloads uses this one reading."""
    p = f"{alias}.payload" if alias else "payload"
    return f"CASE WHEN jsonb_typeof({p}->'{key}') = 'number' THEN ({p}->>'{key}')::numeric END"


def cost_is_unknown(alias: str | None = None) -> str:
    """SQL: a step's cost is unknown when it says so, or gives none although it called a
    model (it names one or reports tokens). A step that names no model, reports no token
    and gives no cost called nothing billable: it costs $0, known (a plain function
    node posted as ``emit_step_completed(node=…, duration_ms=…)``)."""
    p = f"{alias}.payload" if alias else "payload"
    tokens = " OR ".join(
        f"coalesce({payload_number(key, alias)}, 0) > 0" for key in ("tokens_in", "tokens_out")
    )
    return (
        f"(coalesce({p}->>'cost_unknown' = 'true', false) "
        f"OR (jsonb_typeof({p}->'cost_usd_est') IS DISTINCT FROM 'number' "
        f"AND (coalesce({p}->>'model', '') <> '' OR {tokens})))"
    )
