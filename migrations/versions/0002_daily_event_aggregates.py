"""Daily event aggregates: one row per day and grouping, kept forever.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28

Retention drops raw event months; these rows are what remains of them, so nothing in
wdp ever drops or prunes this table. The grouping columns hold '' instead of NULL
("no workflow", "no model") so that they can form the primary key.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EMPTY = sa.text("''")
ZERO = sa.text("0")


def upgrade() -> None:
    op.create_table(
        "daily_event_aggregates",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("event_name", sa.Text(), nullable=False),
        sa.Column("workflow_name", sa.Text(), server_default=EMPTY, nullable=False),
        sa.Column("agent_role", sa.Text(), server_default=EMPTY, nullable=False),
        sa.Column("model", sa.Text(), server_default=EMPTY, nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("distinct_runs", sa.BigInteger(), nullable=False),
        sa.Column("distinct_items", sa.BigInteger(), nullable=False),
        sa.Column("tokens_in", sa.BigInteger(), server_default=ZERO, nullable=False),
        sa.Column("tokens_out", sa.BigInteger(), server_default=ZERO, nullable=False),
        sa.Column("cost_usd", sa.Numeric(), server_default=ZERO, nullable=False),
        sa.Column("errors", sa.BigInteger(), server_default=ZERO, nullable=False),
        sa.Column("duration_p50_ms", sa.Double()),
        sa.Column("duration_p95_ms", sa.Double()),
        sa.Column(
            "computed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint(
            "day",
            "event_name",
            "workflow_name",
            "agent_role",
            "model",
            name="pk_daily_event_aggregates",
        ),
        schema="telemetry",
    )

    # Days whose raw events are (partly) gone: every day of a dropped month, and every
    # ts-day that had events in a dropped partition (an event's partition follows its
    # id's time, its day its own ts). Their aggregates are history: never recomputed.
    op.create_table(
        "dropped_event_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("partition", sa.Text(), nullable=False),
        sa.Column(
            "dropped_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("day", name="pk_dropped_event_days"),
        schema="telemetry",
    )

    # Aggregation selects one day by the event's own ts, which no other index leads
    # with, so without this every partition is scanned in full for every day. Events
    # arrive roughly in ts order, which is what BRIN needs; it costs ingestion little.
    op.create_index(
        "ix_workflow_events_ts_brin",
        "workflow_events",
        ["ts"],
        schema="telemetry",
        postgresql_using="brin",
    )


def downgrade() -> None:
    op.drop_index("ix_workflow_events_ts_brin", table_name="workflow_events", schema="telemetry")
    op.drop_table("dropped_event_days", schema="telemetry")
    op.drop_table("daily_event_aggregates", schema="telemetry")
