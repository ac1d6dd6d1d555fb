"""One run's events as the run detail shows them: steps (with their model calls), state
changes and learning events, shaped from the raw rows.

Raw rows may predate validation, so every payload value is read for what it is: a
string where a number belongs, a call without a model, a ``calls`` that is no list are
read as absent, never a failure. A step's cost is the estimate it emitted; its calls are
shown as the event reported them (:class:`~sdk.usage.models.ModelCallView`).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sdk.db.queries import Row
from sdk.usage.models import LearningEvent, ModelCallView, StateChange, Step

STEP_COMPLETED = "workflow.step_completed"
STATE_CHANGED = "workflow.item_state_changed"
LEARNING_PREFIX = "learning."


def _str(payload: dict[str, Any], key: str) -> str | None:
    value = payload.get(key)
    return value if isinstance(value, str) else None


def _number(payload: dict[str, Any], key: str) -> float | None:
    value = payload.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _count(payload: dict[str, Any], key: str) -> int:
    value = payload.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _call(value: Any) -> ModelCallView | None:
    """A call of a step's ``calls``, or None for an entry that is not one (raw rows may
    predate validation: read what is there, never fail on it)."""
    if not isinstance(value, dict) or not isinstance(value.get("model"), str):
        return None
    reported = value.get("cost_usd_reported")
    usage = value.get("usage_reported")
    return ModelCallView(
        model=value["model"],
        provider=_str(value, "provider"),
        tokens_in=_count(value, "tokens_in"),
        tokens_cached_in=_count(value, "tokens_cached_in"),
        tokens_cache_write=_count(value, "tokens_cache_write"),
        tokens_out=_count(value, "tokens_out"),
        tokens_reasoning=_count(value, "tokens_reasoning"),
        usage_reported=usage if isinstance(usage, bool) else True,
        cost_usd_reported=Decimal(str(reported))
        if isinstance(reported, int | float) and not isinstance(reported, bool)
        else None,
    )


def _calls(payload: dict[str, Any]) -> list[ModelCallView] | None:
    calls = payload.get("calls")
    if not isinstance(calls, list):
        return None
    return [c for c in map(_call, calls) if c is not None]


def shape_step(row: Row) -> Step:
    p: dict[str, Any] = row["payload"] if isinstance(row["payload"], dict) else {}
    step, attempt = p.get("step"), p.get("attempt")
    models = _str(p, "model")
    unknown = bool(row["cost_unknown"])
    return Step(
        event_id=row["event_id"],
        ts=row["ts"],
        node=_str(p, "node"),
        step=step if isinstance(step, int) and not isinstance(step, bool) else None,
        attempt=attempt if isinstance(attempt, int) and not isinstance(attempt, bool) else None,
        agent_role=row["agent_role"],
        status=_str(p, "status"),
        duration_ms=_number(p, "duration_ms"),
        models=[m.strip() for m in models.split(",") if m.strip()] if models else [],
        tokens_in=_count(p, "tokens_in"),
        tokens_out=_count(p, "tokens_out"),
        tokens_cached_in=_count(p, "tokens_cached_in")
        if p.get("tokens_cached_in") is not None
        else None,
        # Not unknown without a cost: it called nothing billable (cost_is_unknown).
        cost_usd=None if unknown else Decimal(row["cost"] if row["cost"] is not None else 0),
        cost_unknown=unknown,
        error_type=_str(p, "error_type"),
        error_message=_str(p, "error_message"),
        calls=_calls(p),
    )


def shape_events(
    rows: Sequence[Row],
) -> tuple[list[Step], list[StateChange], list[LearningEvent]]:
    steps: list[Step] = []
    changes: list[StateChange] = []
    learning: list[LearningEvent] = []
    for row in rows:
        name = row["event_name"]
        payload: dict[str, Any] = row["payload"] if isinstance(row["payload"], dict) else {}
        if name == STEP_COMPLETED:
            steps.append(shape_step(row))
        elif name == STATE_CHANGED:
            changes.append(
                StateChange(
                    event_id=row["event_id"],
                    ts=row["ts"],
                    item_id=row["item_id"],
                    from_state=_str(payload, "from_state"),
                    to_state=_str(payload, "to_state"),
                    reason=_str(payload, "reason"),
                    node=_str(payload, "node"),
                )
            )
        else:
            learning.append(
                LearningEvent(row["event_id"], name, row["ts"], row["item_id"], payload)
            )
    return steps, changes, learning
