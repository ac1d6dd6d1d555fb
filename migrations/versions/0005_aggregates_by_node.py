"""Daily aggregates by node, with the unknown-cost count, cached tokens and max duration.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

``node`` joins the primary key (step events; '' for the others). Rows that exist when
this runs were computed without it, so they are marked ``aggregate_version = 1`` and
their new columns stay NULL: "not recorded", never 0. Re-materialising a day within
retention rewrites it as version 2; a day whose raw month is gone keeps its version-1
rows, which say so by their version (and the day is in ``dropped_event_days``).

New rows must state their version: the column has no default once the existing rows
carry theirs, so an INSERT that forgets it fails instead of claiming to be old.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "daily_event_aggregates"
SCHEMA = "telemetry"
KEY = ["day", "event_name", "workflow_name", "agent_role", "model"]


def upgrade() -> None:
    op.add_column(
        TABLE,
        sa.Column("node", sa.Text(), server_default=sa.text("''"), nullable=False),
        schema=SCHEMA,
    )
    op.add_column(TABLE, sa.Column("tokens_cached_in", sa.BigInteger()), schema=SCHEMA)
    op.add_column(TABLE, sa.Column("cost_unknown_steps", sa.BigInteger()), schema=SCHEMA)
    op.add_column(TABLE, sa.Column("duration_max_ms", sa.Double()), schema=SCHEMA)
    op.add_column(
        TABLE,
        sa.Column(
            "aggregate_version", sa.SmallInteger(), server_default=sa.text("1"), nullable=False
        ),
        schema=SCHEMA,
    )
    op.alter_column(TABLE, "aggregate_version", server_default=None, schema=SCHEMA)
    op.drop_constraint("pk_daily_event_aggregates", TABLE, schema=SCHEMA, type_="primary")
    op.create_primary_key("pk_daily_event_aggregates", TABLE, [*KEY, "node"], schema=SCHEMA)
    op.create_check_constraint(
        op.f("ck_daily_event_aggregates_current_rows_complete"),
        TABLE,
        "aggregate_version = 1 "
        "OR (cost_unknown_steps IS NOT NULL AND tokens_cached_in IS NOT NULL)",
        schema=SCHEMA,
    )


def downgrade() -> None:
    # The old key has no node: each day's per-node rows fold into one. Sums stay exact;
    # distinct counts and percentiles cannot be merged, so the fold keeps their maximum
    # (a lower bound for distinct counts): a downgrade loses that precision.
    op.drop_constraint(
        op.f("ck_daily_event_aggregates_current_rows_complete"), TABLE, schema=SCHEMA, type_="check"
    )
    key = ", ".join(KEY)
    op.execute(
        f"""
        CREATE TEMP TABLE folded ON COMMIT DROP AS
        SELECT {key}, sum(events)::bigint AS events, max(distinct_runs) AS distinct_runs,
               max(distinct_items) AS distinct_items, sum(tokens_in)::bigint AS tokens_in,
               sum(tokens_out)::bigint AS tokens_out, sum(cost_usd) AS cost_usd,
               sum(errors)::bigint AS errors, max(duration_p50_ms) AS duration_p50_ms,
               max(duration_p95_ms) AS duration_p95_ms, max(computed_at) AS computed_at
        FROM {SCHEMA}.{TABLE} GROUP BY {key}
        """
    )
    op.execute(f"DELETE FROM {SCHEMA}.{TABLE}")
    op.drop_constraint("pk_daily_event_aggregates", TABLE, schema=SCHEMA, type_="primary")
    for column in ("aggregate_version", "duration_max_ms", "cost_unknown_steps"):
        op.drop_column(TABLE, column, schema=SCHEMA)
    op.drop_column(TABLE, "tokens_cached_in", schema=SCHEMA)
    op.drop_column(TABLE, "node", schema=SCHEMA)
    op.execute(
        f"INSERT INTO {SCHEMA}.{TABLE} ({key}, events, distinct_runs, distinct_items, "
        "tokens_in, tokens_out, cost_usd, errors, duration_p50_ms, duration_p95_ms, computed_at) "
        f"SELECT {key}, events, distinct_runs, distinct_items, tokens_in, tokens_out, cost_usd, "
        "errors, duration_p50_ms, duration_p95_ms, computed_at FROM folded"
    )
    op.create_primary_key("pk_daily_event_aggregates", TABLE, KEY, schema=SCHEMA)
