"""The event contract: one model per name, storable values only, docs generated from code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from ulid import ULID

from sdk.telemetry.docs import render
from sdk.telemetry.events import (
    EVENT_NAMES,
    EVENT_TYPE_BY_NAME,
    MAX_TOKENS,
    StepCompleted,
    parse_event,
)
from sdk.telemetry.values import (
    find_unsafe_value,
    json_text_is_plain,
    new_ulid,
    ulid_datetime,
    ulid_ms,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events.md"

MINIMAL_PAYLOADS: dict[str, dict[str, Any]] = {
    "workflow.run_started": {},
    "workflow.step_completed": {"node": "n", "step": 0, "status": "ok", "duration_ms": 1},
    "workflow.item_state_changed": {"to_state": "triaged"},
    "workflow.artifact_created": {
        "artifact_id": str(ULID()),
        "version": 1,
        "type": "draft",
        "content_hash": "a" * 64,
        "size_bytes": 10,
    },
    "workflow.run_completed": {"status": "succeeded", "duration_ms": 5},
    "learning.feedback_received": {"target_type": "run", "target_id": "r", "rating": 4},
    "learning.correction_submitted": {"target_type": "artifact", "target_id": "a", "corrected": 1},
    "learning.outcome_recorded": {"target_type": "item", "target_id": "i", "outcome": "merged"},
    "learning.evaluation_scored": {
        "target_type": "step",
        "target_id": "s",
        "evaluator": "judge",
        "metric": "faithfulness",
        "score": 0.9,
    },
    "learning.example_promoted": {
        "example_id": "e",
        "dataset": "golden",
        "source_type": "artifact",
        "source_id": "a",
    },
    "learning.policy_updated": {"policy_name": "router", "to_version": "v2"},
}


def envelope(name: str, **overrides: Any) -> dict[str, Any]:
    event = {
        "event_id": new_ulid(),
        "event_name": name,
        "ts": "2026-11-28T10:00:00+01:00",
        "run_id": "run-1",
        "item_id": "item-1",
        "payload": MINIMAL_PAYLOADS[name],
    }
    event.update(overrides)
    return event


def test_there_are_eleven_events_each_with_a_minimal_valid_example() -> None:
    assert len(EVENT_NAMES) == 11
    assert set(MINIMAL_PAYLOADS) == set(EVENT_NAMES)


@pytest.mark.parametrize("name", EVENT_NAMES)
def test_each_event_parses_to_its_own_model(name: str) -> None:
    event = parse_event(envelope(name))
    assert type(event) is EVENT_TYPE_BY_NAME[name]
    assert event.ts == datetime(2026, 11, 28, 9, tzinfo=UTC)  # normalised to UTC


@pytest.mark.parametrize(
    ("name", "missing"),
    [
        ("workflow.run_started", "run_id"),
        ("workflow.step_completed", "run_id"),
        ("workflow.run_completed", "run_id"),
        ("workflow.item_state_changed", "item_id"),
    ],
)
def test_events_that_need_ids_require_them(name: str, missing: str) -> None:
    with pytest.raises(ValidationError, match=f"requires {missing}"):
        parse_event(envelope(name, **{missing: None}))


def test_lower_case_ulids_are_normalised() -> None:
    event_id = new_ulid()
    assert parse_event(envelope("workflow.run_started", event_id=event_id.lower())).event_id == (
        event_id
    )


@pytest.mark.parametrize(
    "ts",
    [1700000000, 1700000000.5, "1700000000", True, "2026-11-28 10:00:00Z", "2026-11-28T10:00Z",
     "2026-11-28T10:00:00+0100", "2026-11-28T10:00:00,5Z", "28/11/2026"],
)  # fmt: skip
def test_ts_is_an_rfc_3339_string_never_a_number(ts: Any) -> None:
    """The published schema says RFC 3339 date-time; pydantic alone takes Unix times too."""
    with pytest.raises(ValidationError) as caught:
        parse_event(envelope("workflow.run_started", ts=ts))
    (error,) = caught.value.errors()
    assert error["loc"][1:] == ("ts",)
    assert "RFC 3339" in error["msg"]


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        ("2026-11-28T10:00:00Z", datetime(2026, 11, 28, 10, tzinfo=UTC)),
        ("2026-11-28t10:00:00z", datetime(2026, 11, 28, 10, tzinfo=UTC)),
        ("2026-11-28T10:00:00.250-02:00", datetime(2026, 11, 28, 12, 0, 0, 250000, tzinfo=UTC)),
        (
            datetime(2026, 11, 28, 11, tzinfo=timezone(timedelta(hours=1))),
            datetime(2026, 11, 28, 10, tzinfo=UTC),
        ),
    ],
)
def test_rfc_3339_strings_and_aware_datetimes_are_accepted(ts: Any, expected: datetime) -> None:
    assert parse_event(envelope("workflow.run_started", ts=ts)).ts == expected


def test_the_sdk_builders_still_pass_datetimes() -> None:
    from sdk.telemetry import TelemetryClient, emit_run_started

    client = TelemetryClient(disabled=True)
    moment = datetime(2026, 11, 28, 10, tzinfo=UTC)
    assert emit_run_started(run_id="r", ts=moment, client=client).ts == moment
    assert emit_run_started(run_id="r", client=client).ts.tzinfo is not None


def test_step_error_details_are_consistent() -> None:
    payload = {"node": "n", "step": 1, "status": "error", "duration_ms": 1}
    with pytest.raises(ValidationError, match="error_type is required"):
        StepCompleted(event_id=new_ulid(), ts=datetime.now(UTC), run_id="r", payload=payload)
    payload = {"node": "n", "step": 1, "status": "ok", "duration_ms": 1, "error_type": "X"}
    with pytest.raises(ValidationError, match="only allowed"):
        StepCompleted(event_id=new_ulid(), ts=datetime.now(UTC), run_id="r", payload=payload)


@pytest.mark.parametrize("field", ["tokens_in", "tokens_out", "tokens_cached_in"])
def test_token_counts_stop_at_a_trillion_so_a_days_sum_cannot_overflow(field: str) -> None:
    payload = {"node": "n", "step": 1, "status": "ok", "duration_ms": 1, field: MAX_TOKENS}
    StepCompleted(event_id=new_ulid(), ts=datetime.now(UTC), run_id="r", payload=payload)
    payload[field] = MAX_TOKENS + 1
    with pytest.raises(ValidationError, match="less than or equal to 1000000000000"):
        StepCompleted(event_id=new_ulid(), ts=datetime.now(UTC), run_id="r", payload=payload)
    # 9 million events a day of the largest count still sum inside a bigint.
    assert 9_000_000 * MAX_TOKENS < 2**63 - 1


def test_feedback_needs_some_content() -> None:
    payload = {"target_type": "run", "target_id": "r"}
    with pytest.raises(ValidationError, match="at least one of"):
        parse_event(envelope("learning.feedback_received", payload=payload))


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ({"a": "x\x00"}, "NUL"),
        ({"a": ["ok", "\udc80"]}, "surrogate"),
        ({"a\x00": 1}, "key contains a NUL"),
        ({"a": 2**63}, "64 bits"),
        ({"a": -(2**63) - 1}, "64 bits"),
        ({"a": float("nan")}, "finite"),
        ({"a": float("inf")}, "finite"),
    ],
)
def test_unstorable_values_are_found_with_their_location(value: Any, fragment: str) -> None:
    problem = find_unsafe_value({"payload": value})
    assert problem is not None
    assert fragment in problem.message
    assert problem.loc[0] == "payload"


def test_storable_values_pass_including_the_64_bit_bounds() -> None:
    value = {"a": [2**63 - 1, -(2**63), 1.5, True, None, "héllo ✓", {"b": {}}]}
    assert find_unsafe_value(value) is None


def test_depth_is_limited() -> None:
    deep: dict[str, Any] = {}
    cursor = deep
    for _ in range(40):
        cursor["n"] = {}
        cursor = cursor["n"]
    problem = find_unsafe_value(deep)
    assert problem is not None
    assert "nesting deeper than 32" in problem.message


def test_new_ulid_is_canonical_and_decodes_to_its_time() -> None:
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    for _ in range(100):
        value = new_ulid(now_ms)
        parsed = ULID.from_str(value)
        assert str(parsed) == value
        assert ulid_ms(value) == now_ms
        assert ulid_datetime(value) == parsed.datetime
    assert len({new_ulid(now_ms) for _ in range(1000)}) == 1000


def test_ulid_datetime_is_utc_whatever_the_local_zone() -> None:
    moment = datetime(2026, 1, 31, 23, 59, 59, 999000, tzinfo=timezone(timedelta(hours=-5)))
    ms = int(moment.timestamp() * 1000)
    assert ulid_datetime(new_ulid(ms)) == moment.astimezone(UTC)


def test_docs_events_md_is_generated_from_the_models() -> None:
    assert DOCS.read_text() == render(), (
        "docs/events.md is stale: python -m sdk.telemetry.docs > docs/events.md"
    )


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        (b'{"a": "plain", "n": 123, "f": 1.5e10}', True),
        ('{"a": "caf\u00e9"}'.encode(), True),
        (b'{"a": "caf\\u00e9"}', True),
        (b'{"a": "x\\u0000"}', False),
        (b'{"a": "x\\ud800"}', False),
        (b'{"a": "x\\uDFFF"}', False),
        (b'{"a": 12345678901234567890}', False),
        (b'{"a": 1234567890123456789}', False),  # 19 digits: walked, to be sure
    ],
)
def test_json_text_screen(text: bytes, plain: bool) -> None:
    assert json_text_is_plain(text) is plain


def test_prescreened_input_still_walks_free_form_fields() -> None:
    deep: dict[str, Any] = {}
    cursor = deep
    for _ in range(40):
        cursor["n"] = {}
        cursor = cursor["n"]
    event = envelope("workflow.run_started", payload={"metadata": deep})
    with pytest.raises(ValidationError, match="nesting deeper than 32"):
        parse_event(event, prescreened=True)
