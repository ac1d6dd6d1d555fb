"""Indexes for reading runs: one run's events by kind, and the runs that ended by status.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

The read API (``GET /telemetry/runs``) looks up, for each run on a page, its latest
``run_completed`` and its steps. With only ``(run_id, ts)`` each lookup read every event
of the run (about a hundred in a LangGraph run) to keep a few; ``(run_id, event_name,
ts)`` reads just those, and still serves "a run's events in time order" (a run's events
are few: sorted after the scan). It replaces ``(run_id, ts)``, so ingestion maintains no
more indexes than before for this. The partial index on the ``run_completed`` rows'
status (about 1 % of events) lets a status filter read the runs that ended that way at
once instead of probing every run ever started (measured in docs/benchmarks.md).

On a large existing table these builds lock writes to ``workflow_events`` while they run
(an index on a partitioned table cannot be built CONCURRENTLY): run the migration in a
quiet window; the SDK spools events meanwhile.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "workflow_events"
SCHEMA = "telemetry"
STATUS_INDEX = "ix_workflow_events_run_completed_status"


def upgrade() -> None:
    op.create_index(
        op.f("ix_workflow_events_run_id_event_name_ts"),
        TABLE,
        ["run_id", "event_name", "ts"],
        schema=SCHEMA,
    )
    op.drop_index(op.f("ix_workflow_events_run_id_ts"), table_name=TABLE, schema=SCHEMA)
    op.create_index(
        STATUS_INDEX,
        TABLE,
        [sa.text("(payload->>'status')"), "run_id"],
        schema=SCHEMA,
        postgresql_where=sa.text("event_name = 'workflow.run_completed'"),
    )


def downgrade() -> None:
    op.drop_index(STATUS_INDEX, table_name=TABLE, schema=SCHEMA)
    op.create_index(op.f("ix_workflow_events_run_id_ts"), TABLE, ["run_id", "ts"], schema=SCHEMA)
    op.drop_index(op.f("ix_workflow_events_run_id_event_name_ts"), table_name=TABLE, schema=SCHEMA)
