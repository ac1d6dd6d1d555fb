"""``telemetry.daily_model_usage``: the model calls of a day, summed where a price applies.

A price applies to one call: its model, its provider and its token kinds. So the rows
here are keyed by the step's grouping (workflow, agent role, node, the step's own
``model`` field) *and* the call's model, provider, context band and basis, and keep a
sum per token kind - enough to price the day again from this table alone, also once
retention has dropped the raw events (:mod:`sdk.usage.pricing`).

:data:`MODEL_USAGE_SQL` is the grouping, as a SELECT over ``[lo, hi)`` with psycopg
placeholders, like :data:`sdk.usage.aggregation.GROUPED_SQL`: the aggregation stores its
rows (priced in Python with the one cost function, :func:`sdk.prices.cost`), and readers
may run the same text for a day with no stored rows yet.

What one input row (a *call*) is:

* a step event with a non-empty ``calls`` array (event_version 2): one row per call.
  Its basis is ``reported`` when the call carries a numeric ``cost_usd_reported`` (the
  provider's figure wins; ``reported_usd`` sums it), ``none`` when it says
  ``usage_reported: false`` (nothing to price: unknown), else ``tokens`` (priced from the
  table);
* a step event without calls (event_version 1, or 2 without per-call usage): one
  pseudo-call of the step's model, at no provider, with the step's totals (cached tokens
  0 when not given; cache-write and reasoning tokens are not known, so 0). Its basis is
  ``estimate`` (``reported_usd`` = the emitted ``cost_usd_est``, read as before) when the
  step gives a cost and does not call it unknown, else ``tokens`` when it reports tokens,
  else ``none``. A step that names no model, reports no token, gives no cost above $0
  and does not say its cost is unknown called nothing billable: no row (a plain
  function node). An empty ``calls`` array is read as no per-call usage (the step's
  totals say the rest), so a step's model and estimate are never lost to it.

The band (:data:`sdk.prices.BANDS`) is that of the call's own input tokens, computed here
exactly as :func:`sdk.prices.band_of` does: the largest threshold strictly below
``tokens_in``, else 0. A pseudo-call's band is that of the step's total input (the only
figure there is). ``steps`` counts distinct step events in a row, ``calls`` its calls.
Every payload number is read with :func:`sdk.usage.payload.payload_number` (as
:mod:`sdk.usage.aggregation` reads them) (raw
rows may predate validation: a string where a number belongs reads as absent).
"""

from __future__ import annotations

from sdk.db.schema import TELEMETRY_SCHEMA, daily_model_usage
from sdk.prices.model import BANDS
from sdk.usage.payload import STEP_EVENT, payload_number

__all__ = [
    "KEY_COLUMNS",
    "MODEL_USAGE_COLUMNS",
    "MODEL_USAGE_SQL",
    "PRICED_COLUMNS",
    "SUM_COLUMNS",
    "TABLE",
    "band_sql",
]

TABLE = f"{TELEMETRY_SCHEMA}.{daily_model_usage.name}"
KEY_COLUMNS: tuple[str, ...] = tuple(c.name for c in daily_model_usage.primary_key.columns)
SUM_COLUMNS: tuple[str, ...] = (
    "steps",
    "calls",
    "tokens_in",
    "tokens_cached_in",
    "tokens_cache_write",
    "tokens_out",
    "tokens_reasoning",
    "reported_usd",
)
# Set by pricing (sdk.usage.pricing), not by the grouping.
PRICED_COLUMNS: tuple[str, ...] = ("cost_usd", "cost_source", "price_id", "priced_at")
# What MODEL_USAGE_SQL yields, in its order.
MODEL_USAGE_COLUMNS: tuple[str, ...] = KEY_COLUMNS + SUM_COLUMNS

_TOKENS = ("tokens_in", "tokens_cached_in", "tokens_cache_write", "tokens_out", "tokens_reasoning")


def band_sql(tokens_in: str) -> str:
    """SQL for :func:`sdk.prices.band_of` of the integer expression ``tokens_in``."""
    whens = " ".join(f"WHEN {tokens_in} > {b} THEN {b}" for b in reversed(BANDS) if b > 0)
    return f"CAST(CASE {whens} ELSE 0 END AS bigint)"


def _tokens(key: str, alias: str) -> str:
    return f"coalesce({payload_number(key, alias)}, 0)"


def _has_calls(alias: str) -> str:
    p = f"{alias}.payload->'calls'"
    return f"coalesce(jsonb_typeof({p}) = 'array' AND jsonb_array_length({p}) > 0, false)"


# One row per call of steps with calls (the array aliased as c(payload), so that
# payload_number reads a call's numbers exactly as it reads a step's).
_CALLS = f"""
  SELECT s.event_id, s.workflow_name, s.agent_role, s.node, s.step_model,
    coalesce(c.payload->>'model', '') AS model,
    coalesce(c.payload->>'provider', '') AS provider,
    {", ".join(f"{_tokens(k, 'c')} AS {k}" for k in _TOKENS)},
    CASE WHEN jsonb_typeof(c.payload->'cost_usd_reported') = 'number' THEN 'reported'
         WHEN c.payload->>'usage_reported' = 'false' THEN 'none'
         ELSE 'tokens' END AS basis,
    {payload_number("cost_usd_reported", "c")} AS reported_usd
  FROM steps s
  CROSS JOIN LATERAL jsonb_array_elements(
    CASE WHEN {_has_calls("s")} THEN s.payload->'calls' ELSE '[]'::jsonb END
  ) AS c(payload)
  WHERE jsonb_typeof(c.payload) = 'object'
"""

# One pseudo-call per step without calls that called something billable.
_PSEUDO = """
  SELECT event_id, workflow_name, agent_role, node, step_model,
    step_model AS model, '' AS provider,
    tokens_in, tokens_cached_in, 0 AS tokens_cache_write, tokens_out, 0 AS tokens_reasoning,
    CASE WHEN cost IS NOT NULL AND NOT said_unknown THEN 'estimate'
         -- several models joined ("a,b"): the tokens cannot be split between them, and
         -- a pattern of one would price all of them at its rate: unknown, never a guess
         WHEN strpos(step_model, ',') > 0 THEN 'none'
         WHEN tokens_in > 0 OR tokens_out > 0 THEN 'tokens'
         ELSE 'none' END AS basis,
    CASE WHEN cost IS NOT NULL AND NOT said_unknown THEN cost END AS reported_usd
  FROM (
    SELECT s.*,
      {tin} AS tokens_in, {tcached} AS tokens_cached_in, {tout} AS tokens_out,
      {cost} AS cost,
      coalesce(s.payload->>'cost_unknown' = 'true', false) AS said_unknown
    FROM steps s
    WHERE NOT {has_calls}
  ) t
  WHERE step_model <> '' OR tokens_in > 0 OR tokens_out > 0 OR cost > 0 OR said_unknown
""".format(
    tin=_tokens("tokens_in", "s"),
    tcached=_tokens("tokens_cached_in", "s"),
    tout=_tokens("tokens_out", "s"),
    cost=payload_number("cost_usd_est", "s"),
    has_calls=_has_calls("s"),
)

MODEL_USAGE_SQL = f"""
WITH steps AS (
  SELECT event_id,
    coalesce(workflow_name, '') AS workflow_name,
    coalesce(agent_role, '') AS agent_role,
    coalesce(payload->>'node', '') AS node,
    coalesce(payload->>'model', '') AS step_model,
    payload
  FROM {TELEMETRY_SCHEMA}.workflow_events
  WHERE ts >= %(lo)s AND ts < %(hi)s AND event_name = '{STEP_EVENT}'
), calls AS (
  {_CALLS}
  UNION ALL
  {_PSEUDO}
)
SELECT
  CAST(%(day)s AS date) AS day, workflow_name, agent_role, node, step_model, model, provider,
  {band_sql("tokens_in")} AS input_band, basis,
  count(DISTINCT event_id) AS steps, count(*) AS calls,
  {", ".join(f"CAST(sum({k}) AS bigint) AS {k}" for k in _TOKENS)},
  sum(reported_usd) AS reported_usd
FROM calls
GROUP BY workflow_name, agent_role, node, step_model, model, provider, input_band, basis
"""
