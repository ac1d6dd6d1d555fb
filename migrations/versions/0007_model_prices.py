"""Model prices (dated, versioned, append-only) and per-call usage priced per day.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

``telemetry.model_prices`` holds every price ever known, one row per version: a
trigger refuses UPDATE and DELETE, so a cost can always name the row it was computed
with. ``telemetry.daily_model_usage`` holds the model calls of each day summed per
grouping, model, provider and context band, with their cost and its source.

Existing history is carried over: every step row of ``daily_event_aggregates`` that
called a model becomes a usage row on the basis ``estimate`` (the cost the events
emitted, as readers showed it so far), band 0, and its unknown-cost steps a row of
unknown cost: on the basis ``tokens`` when every step of the row is unknown, they
reported tokens and named one model (those tokens are theirs alone - several models
joined as "a,b" cannot be split, so such rows stay ``none``, so a price added later prices them, as
re-pricing does for a step without calls), else ``none`` (the row's tokens went to its
estimate row; nothing is left to price). Re-aggregating a day whose raw events are live replaces them with
per-call rows; a day whose raw events are gone keeps them (its tokens can still be
priced if a price for them is added later).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "telemetry"
APPEND_ONLY_FN = """
CREATE FUNCTION telemetry.reject_price_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'model_prices is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'restrict_violation',
          HINT = 'a price change or correction is a new row (wdp prices set)';
END
$$
"""

_BACKFILL = """
INSERT INTO telemetry.daily_model_usage (
  day, workflow_name, agent_role, node, step_model, model, provider, input_band, basis,
  steps, calls, tokens_in, tokens_cached_in, tokens_cache_write, tokens_out,
  tokens_reasoning, reported_usd, cost_usd, cost_source, price_id, computed_at, priced_at)
SELECT day, workflow_name, agent_role, node, model, model, '', 0, basis,
       n, n, tin, tcached, 0, tout, 0, usd, usd, source, NULL, computed_at, computed_at
FROM (
  SELECT a.day, a.workflow_name, a.agent_role, a.node, a.model, a.computed_at,
         'estimate' AS basis, 'estimate' AS source,
         a.events - coalesce(a.cost_unknown_steps, 0) AS n,
         a.tokens_in AS tin, coalesce(a.tokens_cached_in, 0) AS tcached,
         a.tokens_out AS tout, a.cost_usd AS usd
  FROM telemetry.daily_event_aggregates a
  WHERE a.event_name = 'workflow.step_completed'
    AND a.events > coalesce(a.cost_unknown_steps, 0)
    AND (a.model <> '' OR a.tokens_in > 0 OR a.tokens_out > 0 OR a.cost_usd > 0)
  UNION ALL
  SELECT a.day, a.workflow_name, a.agent_role, a.node, a.model, a.computed_at,
         CASE WHEN a.events = a.cost_unknown_steps AND (a.tokens_in > 0 OR a.tokens_out > 0)
                   AND strpos(a.model, ',') = 0
              THEN 'tokens' ELSE 'none' END,
         'unknown', a.cost_unknown_steps,
         CASE WHEN a.events > a.cost_unknown_steps THEN 0 ELSE a.tokens_in END,
         CASE WHEN a.events > a.cost_unknown_steps THEN 0
              ELSE coalesce(a.tokens_cached_in, 0) END,
         CASE WHEN a.events > a.cost_unknown_steps THEN 0 ELSE a.tokens_out END,
         NULL
  FROM telemetry.daily_event_aggregates a
  WHERE a.event_name = 'workflow.step_completed' AND a.cost_unknown_steps > 0
) carried
"""


def upgrade() -> None:
    op.create_table(
        "model_prices",
        sa.Column("price_id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("provider", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column(
            "match_exact",
            pg.ARRAY(sa.Text()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
        ),
        sa.Column("match_pattern", sa.Text(), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("input_per_mtok", sa.Numeric(), nullable=False),
        sa.Column("output_per_mtok", sa.Numeric(), nullable=False),
        sa.Column("cache_read_per_mtok", sa.Numeric(), nullable=True),
        sa.Column("cache_write_per_mtok", sa.Numeric(), nullable=True),
        sa.Column("reasoning_per_mtok", sa.Numeric(), nullable=True),
        sa.Column("tiers", pg.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("provider_rank", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("rank", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("provider_pattern", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "input_per_mtok >= 0 AND output_per_mtok >= 0 "
            "AND coalesce(cache_read_per_mtok, 0) >= 0 "
            "AND coalesce(cache_write_per_mtok, 0) >= 0 AND coalesce(reasoning_per_mtok, 0) >= 0",
            name=op.f("ck_model_prices_rates_nonnegative"),
        ),
        sa.CheckConstraint(
            "cardinality(match_exact) > 0 OR match_pattern IS NOT NULL",
            name=op.f("ck_model_prices_matches_something"),
        ),
        sa.CheckConstraint(
            "jsonb_typeof(tiers) = 'object'", name=op.f("ck_model_prices_tiers_object")
        ),
        sa.PrimaryKeyConstraint("price_id", name=op.f("pk_model_prices")),
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_model_prices_model_provider_valid_from"),
        "model_prices",
        ["model", "provider", "valid_from"],
        schema=SCHEMA,
    )
    op.execute(APPEND_ONLY_FN)
    op.execute(
        "CREATE TRIGGER model_prices_append_only BEFORE UPDATE OR DELETE "
        "ON telemetry.model_prices FOR EACH ROW EXECUTE FUNCTION telemetry.reject_price_change()"
    )
    key = [
        "day",
        "workflow_name",
        "agent_role",
        "node",
        "step_model",
        "model",
        "provider",
        "input_band",
        "basis",
    ]
    op.create_table(
        "daily_model_usage",
        sa.Column("day", sa.Date(), nullable=False),
        *(sa.Column(k, sa.Text(), nullable=False) for k in key[1:7]),
        sa.Column("input_band", sa.BigInteger(), nullable=False),
        sa.Column("basis", sa.Text(), nullable=False),
        *(
            sa.Column(c, sa.BigInteger(), nullable=False)
            for c in (
                "steps",
                "calls",
                "tokens_in",
                "tokens_cached_in",
                "tokens_cache_write",
                "tokens_out",
                "tokens_reasoning",
            )
        ),
        sa.Column("reported_usd", sa.Numeric(), nullable=True),
        sa.Column("cost_usd", sa.Numeric(), nullable=True),
        sa.Column("cost_source", sa.Text(), nullable=False),
        sa.Column("price_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "computed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "priced_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.CheckConstraint(
            "basis IN ('tokens', 'reported', 'estimate', 'none')",
            name=op.f("ck_daily_model_usage_basis_known"),
        ),
        sa.CheckConstraint(
            "cost_source IN ('computed', 'reported', 'estimate', 'unknown')",
            name=op.f("ck_daily_model_usage_cost_source_known"),
        ),
        sa.CheckConstraint(
            "(cost_usd IS NULL) = (cost_source = 'unknown') "
            "AND (price_id IS NOT NULL) = (cost_source = 'computed')",
            name=op.f("ck_daily_model_usage_cost_explained"),
        ),
        sa.PrimaryKeyConstraint(*key, name=op.f("pk_daily_model_usage")),
        schema=SCHEMA,
    )
    op.execute(_BACKFILL)


def downgrade() -> None:
    # Per-call usage and prices have no place in the older schema: they are dropped
    # (daily_event_aggregates, untouched by this migration, keeps its figures).
    op.drop_table("daily_model_usage", schema=SCHEMA)
    op.execute("DROP TRIGGER model_prices_append_only ON telemetry.model_prices")
    op.drop_index(
        op.f("ix_model_prices_model_provider_valid_from"), table_name="model_prices", schema=SCHEMA
    )
    op.drop_table("model_prices", schema=SCHEMA)
    op.execute("DROP FUNCTION telemetry.reject_price_change()")
