"""JSON Schemas of the read endpoints' answers (what :mod:`ingest_api.read_openapi`
publishes, and schemathesis checks every answer against).

Each figure says what it counts; costs say which they are: the usage report's is the
platform's priced cost of the model calls, a run's the estimate its steps emitted.
"""

from __future__ import annotations

from typing import Any

from sdk.usage import params

TEXT = {"type": "string", "minLength": 1, "maxLength": params.MAX_TEXT}
_NULLABLE_TEXT = {"type": ["string", "null"]}
_NUMBER = {"type": "number"}
_NULLABLE_NUMBER = {"type": ["number", "null"]}
_INT = {"type": "integer", "minimum": 0}
_NULLABLE_INT = {"type": ["integer", "null"], "minimum": 0}
TIME = {"type": "string", "format": "date-time"}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": sorted(properties), "properties": properties}


_EMITTED = (
    "the cost the steps emitted (cost_usd_est, the SDK's estimate when they ran, as the "
    "raw events carry it); the platform's priced cost is in /telemetry/usage"
)

RUN_TOTALS = _object(
    {
        "steps": _INT,
        "errors": _INT,
        "tokens_in": _INT,
        "tokens_out": _INT,
        "tokens_cached_in": _INT,
        "cost_usd": {
            **_NUMBER,
            "description": f"Sum of the known step costs only: {_EMITTED}.",
        },
        "cost_unknown_steps": {
            **_INT,
            "description": "Steps whose emitted cost is unknown (no price): not in cost_usd.",
        },
    }
)

RUN_SUMMARY = _object(
    {
        "run_id": {"type": "string"},
        "workflow_name": _NULLABLE_TEXT,
        "item_id": _NULLABLE_TEXT,
        "status": {
            "type": "string",
            "description": "The run_completed status; `running` while none is stored.",
        },
        "started_at": TIME,
        "ended_at": _NULLABLE_TIME,
        "duration_ms": _NULLABLE_NUMBER,
        "error_type": _NULLABLE_TEXT,
        "error_message": _NULLABLE_TEXT,
        "start_recorded": {
            "type": "boolean",
            "description": "False: no workflow.run_started is stored; started_at is the "
            "run's earliest event, and the run is not in the runs list.",
        },
        "totals": RUN_TOTALS,
    }
)

RUN_PAGE = _object(
    {
        "runs": {"type": "array", "items": RUN_SUMMARY},
        "next_cursor": {
            "type": ["string", "null"],
            "description": "Pass as `cursor` for the next (older) page; null on the last page.",
        },
        "limit": {"type": "integer"},
    }
)

MODEL_CALL = _object(
    {
        "model": {"type": "string"},
        "provider": _NULLABLE_TEXT,
        "tokens_in": {**_INT, "description": "Prompt tokens, cache reads and writes included."},
        "tokens_cached_in": {**_INT, "description": "Of tokens_in, read from the prompt cache."},
        "tokens_cache_write": {**_INT, "description": "Of tokens_in, written to the cache."},
        "tokens_out": {**_INT, "description": "Generated tokens, reasoning included."},
        "tokens_reasoning": {**_INT, "description": "Of tokens_out, reasoning tokens."},
        "usage_reported": {
            "type": "boolean",
            "description": "False: the call reported no token counts; its cost is unknown.",
        },
        "cost_usd_reported": {
            **_NULLABLE_NUMBER,
            "description": "The provider's own cost of the call, if it gave one.",
        },
    }
)

STEP = _object(
    {
        "event_id": {"type": "string"},
        "ts": TIME,
        "node": _NULLABLE_TEXT,
        "step": _NULLABLE_INT,
        "attempt": _NULLABLE_INT,
        "agent_role": _NULLABLE_TEXT,
        "status": _NULLABLE_TEXT,
        "duration_ms": _NULLABLE_NUMBER,
        "models": {"type": "array", "items": {"type": "string"}},
        "tokens_in": _INT,
        "tokens_out": _INT,
        "tokens_cached_in": _NULLABLE_INT,
        "cost_usd": {
            **_NULLABLE_NUMBER,
            "description": f"Null when the cost is unknown; {_EMITTED}.",
        },
        "cost_unknown": {"type": "boolean"},
        "error_type": _NULLABLE_TEXT,
        "error_message": _NULLABLE_TEXT,
        "calls": {
            "type": ["array", "null"],
            "items": MODEL_CALL,
            "description": "The step's model calls as its event reported them "
            "(event_version 2); null for a step without per-call usage.",
        },
    }
)

STATE_CHANGE = _object(
    {
        "event_id": {"type": "string"},
        "ts": TIME,
        "item_id": _NULLABLE_TEXT,
        "from_state": _NULLABLE_TEXT,
        "to_state": _NULLABLE_TEXT,
        "reason": _NULLABLE_TEXT,
        "node": _NULLABLE_TEXT,
    }
)

LEARNING_EVENT = _object(
    {
        "event_id": {"type": "string"},
        "event_name": {"type": "string"},
        "ts": TIME,
        "item_id": _NULLABLE_TEXT,
        "payload": {"type": "object"},
    }
)

RUN_ARTIFACT = _object(
    {
        "artifact_id": {"type": "string"},
        "version": {"type": "integer", "minimum": 1},
        "type": {"type": "string"},
        "link_type": {"type": "string"},
        "item_id": _NULLABLE_TEXT,
        "title": _NULLABLE_TEXT,
        "mime_type": {"type": "string"},
        "size_bytes": _INT,
        "linked_at": TIME,
    }
)

RUN_DETAIL = _object(
    {
        "run": RUN_SUMMARY,
        "steps": {"type": "array", "items": STEP},
        "state_changes": {"type": "array", "items": STATE_CHANGE},
        "learning_events": {"type": "array", "items": LEARNING_EVENT},
        "artifacts": {"type": "array", "items": RUN_ARTIFACT},
        "truncated": {
            "type": "boolean",
            "description": "The run has more events than one answer carries (the first "
            "ones are here; the totals count every step).",
        },
    }
)

_LEGACY_NULL = "null when a legacy row (aggregated before it was recorded) is included"

USAGE_FIGURES: dict[str, Any] = {
    "steps": {
        **_INT,
        "description": "workflow.step_completed events. Grouped by model: under the step's "
        "model field (comma-joined for a step that called several models).",
    },
    "errors": {**_INT, "description": "Steps with status error."},
    "calls": {
        **_INT,
        "description": "Model calls (a step without per-call usage counts as one). Grouped "
        "by model: under each call's own model, like the tokens and cost.",
    },
    "tokens_in": {**_INT, "description": "Prompt tokens of the calls, cached ones included."},
    "tokens_out": {**_INT, "description": "Generated tokens of the calls, reasoning included."},
    "tokens_cached_in": {
        **_NULLABLE_INT,
        "description": f"Of tokens_in, read from the prompt cache; {_LEGACY_NULL}.",
    },
    "tokens_cache_write": {
        **_NULLABLE_INT,
        "description": f"Of tokens_in, written to the prompt cache; {_LEGACY_NULL}.",
    },
    "tokens_reasoning": {
        **_NULLABLE_INT,
        "description": f"Of tokens_out, reasoning tokens; {_LEGACY_NULL}.",
    },
    "cost_usd": {
        **_NUMBER,
        "description": "Sum of the known costs of the calls, as priced by the platform "
        "(the sum of cost_usd_by_source): at least the real cost while "
        "cost_unknown_calls is not 0.",
    },
    "cost_unknown_calls": {
        **_NULLABLE_INT,
        "description": "Calls without a cost (no price for their model on that day, or "
        f"no usage reported): not in cost_usd, never $0; {_LEGACY_NULL}.",
    },
    "cost_usd_by_source": _object(
        {
            "computed": {
                **_NUMBER,
                "description": "Token counts times the price valid on the call's day.",
            },
            "reported": {**_NUMBER, "description": "The providers' own reported cost."},
            "estimate": {
                **_NUMBER,
                "description": "Steps without per-call usage: the cost they emitted.",
            },
        }
    ),
    "duration_max_ms": _NULLABLE_NUMBER,
    "duration_p50_ms": {
        **_NULLABLE_NUMBER,
        "description": "Only for a group that is one aggregate row (percentiles cannot be "
        "merged); else null.",
    },
    "duration_p95_ms": {**_NULLABLE_NUMBER, "description": "As duration_p50_ms."},
    "runs": {
        **_NULLABLE_INT,
        "description": "Runs started: distinct run_ids of workflow.run_started, per day and "
        "workflow, summed (a run started on two days counts on each); null when grouped by "
        "node, model or agent_role.",
    },
    "runs_failed": {
        **_NULLABLE_INT,
        "description": "Failed completions: workflow.run_completed events with status failed "
        "(a run that failed and was completed again counts); null like runs.",
    },
    "legacy_rows": {
        **_INT,
        "description": "Included rows aggregated before migration 0005 (aggregate_version 1).",
    },
}

USAGE_GROUP = {
    "type": "object",
    "required": [*sorted(USAGE_FIGURES), "source"],
    "properties": {
        **USAGE_FIGURES,
        **{key: {"type": ["string", "null"]} for key in params.GROUP_KEYS},
        "source": {"type": "string", "enum": ["stored", "live", "mixed"]},
    },
    "description": "One combination of the group_by keys (null: events without that value).",
}

USAGE_REPORT = _object(
    {
        "from": {"type": "string", "format": "date"},
        "to": {"type": "string", "format": "date"},
        "group_by": {"type": "array", "items": {"type": "string", "enum": list(params.GROUP_KEYS)}},
        "groups": {"type": "array", "items": USAGE_GROUP},
        "totals": _object(USAGE_FIGURES),
        "stored_days": {"type": "array", "items": {"type": "string", "format": "date"}},
        "live_days": {
            "type": "array",
            "items": {"type": "string", "format": "date"},
            "description": "Days computed from raw events now: today, and days with events "
            "but no stored aggregates yet.",
        },
        "notes": {"type": "array", "items": {"type": "string"}},
    }
)
