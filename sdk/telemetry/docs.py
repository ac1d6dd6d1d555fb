"""Render docs/events.md from the event models, so the published contract is the code.

``python -m sdk.telemetry.docs > docs/events.md``; a unit test fails when the file is stale.
"""

from __future__ import annotations

import json

from sdk.telemetry.events import EVENT_TYPE_BY_NAME, EventBase, event_json_schemas

HEADER = """# Workflow events

Every event is a JSON object: an envelope plus a `payload` typed by `event_name`.
The models live in `sdk/telemetry/events.py` and are shared by the SDK and the ingest
API; the SDK's `emit_*` builders are generated from them. Unknown fields are rejected. `wdp events schema [NAME]` prints the same JSON Schemas.
This file is generated: `python -m sdk.telemetry.docs > docs/events.md`.

## Envelope

| Field | Type | Notes |
| --- | --- | --- |
| `event_id` | ULID string | Client-generated and the idempotency key: resending the same event is harmless, the same id with other content is refused (409). The time inside the id picks the monthly partition, and the ingest API accepts only ids whose time falls in a month with a live partition (by default, the retained months up to `EVENT_PARTITIONS_AHEAD` months ahead): any other id is refused with 422 and error type `outside_partitions`, whose message names the live window. Mint ids from the current time (the SDK does). |
| `event_version` | integer ≥ 1 | Schema version of the event, default 1. |
| `event_name` | string | One of the names below. |
| `ts` | RFC 3339 date-time string with a time zone | When it happened, e.g. `2026-11-28T10:00:00Z`. Numbers (Unix times) and other ISO 8601 spellings are refused (422). Stored in UTC. |
| `run_id`, `item_id`, `workflow_name`, `agent_role` | strings, 1 to 200 chars | Correlation ids; optional unless the event type requires them. |
| `payload` | object | Typed per event, below. |

Strings must not contain NUL characters or lone surrogates, numbers must be finite,
integers must fit in 64 bits, and free-form objects may nest at most 32 levels.

## Events
"""


def _required(event_type: type[EventBase]) -> str:
    ids = event_type.required_ids
    return ", ".join(f"`{i}`" for i in ids) if ids else "none"


def render() -> str:
    parts = [HEADER]
    for name, schema in event_json_schemas().items():
        event_type = EVENT_TYPE_BY_NAME[name]
        payload = schema["$defs"][schema["properties"]["payload"]["$ref"].split("/")[-1]]
        parts.append(f"\n### `{name}`\n")
        if payload.get("description"):
            parts.append(f"\n{payload['description']}\n")
        parts.append(f"\nRequired correlation ids: {_required(event_type)}.\n")
        parts.append("\n| Payload field | Required | Description |\n| --- | --- | --- |\n")
        required = set(payload.get("required", []))
        for field, spec in payload["properties"].items():
            description = spec.get("description", "").replace("|", "\\|")
            parts.append(
                f"| `{field}` | {'yes' if field in required else 'no'} | {description} |\n"
            )
        parts.append(
            "\n<details><summary>JSON Schema</summary>\n\n```json\n"
            + json.dumps(schema, indent=2)
            + "\n```\n\n</details>\n"
        )
    return "".join(parts)


if __name__ == "__main__":
    print(render(), end="")
