"""Workflow telemetry for the orchestrator: typed events, correlation, a safe transport.

    from sdk.telemetry import correlation, emit_step_completed, flush

    with correlation(run_id="run-1", item_id="item-7", workflow_name="triage"):
        emit_step_completed(node="plan", step=1, status="ok", duration_ms=12.5)

This package must stay light: importing it never pulls in dagster, litestar,
sqlalchemy or boto3 (a unit test checks ``sys.modules``), because the orchestrator
imports it on its hot path.
"""

from sdk.telemetry.builders import (
    emit,
    emit_artifact_created,
    emit_batch,
    emit_correction_submitted,
    emit_evaluation_scored,
    emit_example_promoted,
    emit_feedback_received,
    emit_item_state_changed,
    emit_outcome_recorded,
    emit_policy_updated,
    emit_run_completed,
    emit_run_started,
    emit_step_completed,
)
from sdk.telemetry.client import TelemetryClient
from sdk.telemetry.context import Correlation, capture, correlation, current, restore
from sdk.telemetry.default import flush, get_client, set_client, shutdown, stats
from sdk.telemetry.delivery import TelemetryStats
from sdk.telemetry.errors import InvalidEventError, TelemetryError
from sdk.telemetry.state import ClientState

__all__ = [
    "ClientState",
    "Correlation",
    "InvalidEventError",
    "TelemetryClient",
    "TelemetryError",
    "TelemetryStats",
    "capture",
    "correlation",
    "current",
    "emit",
    "emit_artifact_created",
    "emit_batch",
    "emit_correction_submitted",
    "emit_evaluation_scored",
    "emit_example_promoted",
    "emit_feedback_received",
    "emit_item_state_changed",
    "emit_outcome_recorded",
    "emit_policy_updated",
    "emit_run_completed",
    "emit_run_started",
    "emit_step_completed",
    "flush",
    "get_client",
    "restore",
    "set_client",
    "shutdown",
    "stats",
]
