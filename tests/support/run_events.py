"""Hand-made runs, sent through the SDK to a real ingest API, for the read commands' tests.

:func:`story_run` is one run with everything ``wdp runs show`` draws: a step, a fan-out
of three parallel steps, a failing step, a step without a price, state changes, a
learning event, and (by the caller) a linked artifact. Its figures are written out in
:data:`STORY` so tests compare against numbers, not against the code under test.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sdk.telemetry import (
    TelemetryClient,
    correlation,
    emit_feedback_received,
    emit_item_state_changed,
    emit_run_completed,
    emit_run_started,
    emit_step_completed,
)
from sdk.telemetry.events import RunStatus
from sdk.telemetry.values import new_ulid
from tests.support.servers import TEST_API_KEYS


def client_for(endpoint: str, spool: Path) -> TelemetryClient:
    return TelemetryClient(
        endpoint=endpoint,
        api_key=TEST_API_KEYS[0],
        spool_dir=spool,
        flush_interval_s=0.05,
        retry_base_s=0.05,
        retry_max_s=0.5,
        max_retries=3,
    )


def recent(minutes_ago: float = 0) -> datetime:
    """A whole second, an hour before now (inside the ingest window), minus ``minutes_ago``."""
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    return base - timedelta(minutes=minutes_ago)


@dataclass(frozen=True)
class Story:
    """The figures of :func:`story_run`, by hand."""

    steps: int = 6  # triage, research x3, draft (fails), review (no price, a 2nd attempt)
    errors: int = 1
    tokens_in: int = 100 + 3 * 200 + 50 + 70
    tokens_out: int = 10 + 3 * 40 + 0 + 7
    cost_usd: Decimal = Decimal("0.001") + 3 * Decimal("0.002") + Decimal("0.0005")
    cost_unknown_steps: int = 1
    nodes: tuple[str, ...] = ("triage", "research", "research", "research", "draft", "review")
    duration_ms: float = 2500.0


STORY = Story()


def story_run(
    client: TelemetryClient, *, workflow: str, item: str, start: datetime, run_id: str | None = None
) -> str:
    """Emit the story run (it ends ``failed``); returns its run id."""
    run_id = run_id or new_ulid()

    def at(ms: float) -> datetime:
        return start + timedelta(milliseconds=ms)

    with correlation(run_id=run_id, item_id=item, workflow_name=workflow):
        emit_run_started(trigger="test", ts=start, client=client)
        # A step event is written when the step ends: ts = its start + its duration.
        emit_step_completed(
            node="triage", step=1, status="ok", duration_ms=100, model="m-small",
            tokens_in=100, tokens_out=10, cost_usd_est=0.001, agent_role="triager",
            ts=at(100), client=client,
        )  # fmt: skip
        emit_item_state_changed(
            from_state="new", to_state="triaged", node="triage", ts=at(100), client=client
        )
        for _ in range(3):  # fan-out: three research branches side by side, 100 to 1100 ms
            emit_step_completed(
                node="research", step=2, status="ok", duration_ms=1000, model="m-large",
                tokens_in=200, tokens_out=40, cost_usd_est=0.002, agent_role="researcher",
                ts=at(1100), client=client,
            )  # fmt: skip
        emit_step_completed(
            node="draft", step=3, status="error", duration_ms=400, model="m-large",
            tokens_in=50, tokens_out=0, cost_usd_est=0.0005, agent_role="writer",
            error_type="ValueError", error_message="the outline is empty",
            ts=at(1500), client=client,
        )  # fmt: skip
        emit_step_completed(
            node="review", step=4, attempt=2, status="ok", duration_ms=900, model="m-unpriced",
            tokens_in=70, tokens_out=7, cost_unknown=True, agent_role="reviewer",
            ts=at(2400), client=client,
        )  # fmt: skip
        emit_item_state_changed(
            from_state="triaged", to_state="failed", reason="draft failed", ts=at(2400),
            client=client,
        )  # fmt: skip
        emit_feedback_received(
            target_type="run", target_id=run_id, rating=0.25, label="bad", ts=at(2450),
            client=client,
        )  # fmt: skip
        emit_run_completed(
            status="failed", duration_ms=STORY.duration_ms, steps=STORY.steps,
            error_type="ValueError", error_message="the outline is empty",
            ts=at(STORY.duration_ms), client=client,
        )  # fmt: skip
    return run_id


def plain_run(
    client: TelemetryClient,
    *,
    workflow: str,
    item: str,
    start: datetime,
    status: RunStatus | None = "succeeded",
    cost: float | None = 0.01,
) -> str:
    """A run of one step; ``status`` None leaves it running (no run_completed)."""
    run_id = new_ulid()
    with correlation(run_id=run_id, item_id=item, workflow_name=workflow):
        emit_run_started(ts=start, client=client)
        emit_step_completed(
            node="only", step=1, status="ok", duration_ms=50, model="m-small", tokens_in=10,
            tokens_out=1, cost_usd_est=cost, cost_unknown=cost is None,
            ts=start + timedelta(milliseconds=50), client=client,
        )  # fmt: skip
        if status is not None:
            emit_run_completed(
                status=status, duration_ms=60, steps=1,
                ts=start + timedelta(milliseconds=60), client=client,
            )  # fmt: skip
    return run_id
