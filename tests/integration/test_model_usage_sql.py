"""MODEL_USAGE_SQL on a real Postgres: which calls become which daily_model_usage rows.

Raw step events are inserted as the API stores them; every expected row is written out
by hand from the events above it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal as D
from typing import Any

import sqlalchemy as sa

from sdk.prices.model import BANDS, band_of
from sdk.usage.aggregation import day_bounds
from sdk.usage.model_usage import KEY_COLUMNS, MODEL_USAGE_COLUMNS, MODEL_USAGE_SQL, band_sql
from tests.support.model_calls import call, calls_step
from tests.support.raw_events import STEP, insert, step

TODAY = datetime.now(UTC).date()


def grouped(eng: sa.Engine, wf: str, day: date = TODAY) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """MODEL_USAGE_SQL's rows of ``wf``: (node, step_model, model, provider, band, basis)
    -> (steps, calls, tokens in/cached/written/out/reasoning, reported_usd)."""
    lo, hi = day_bounds(day)
    with eng.connect() as conn:
        result = conn.exec_driver_sql(MODEL_USAGE_SQL, {"day": day, "lo": lo, "hi": hi})
        assert tuple(result.keys()) == MODEL_USAGE_COLUMNS
        rows = [r for r in result.mappings() if r["workflow_name"] == wf]
    assert all(r["day"] == day for r in rows)
    return {
        tuple(r[k] for k in KEY_COLUMNS[3:]): tuple(r[c] for c in MODEL_USAGE_COLUMNS[9:])
        for r in rows
    }


def at(n: int) -> str:
    return f"{TODAY}T00:00:{n:02d}"


def test_the_sql_band_is_band_of_at_every_threshold(engine: sa.Engine) -> None:
    values = sorted({max(v, 0) for b in BANDS for v in (b - 1, b, b + 1)} | {5_000_000})
    sql = f"SELECT t, {band_sql('t')} AS band FROM unnest(CAST(%(ts)s AS bigint[])) t ORDER BY t"
    with engine.connect() as conn:
        found = {t: band for t, band in conn.exec_driver_sql(sql, {"ts": values})}
    assert found == {t: band_of(t) for t in values}
    assert (found[200_000], found[200_001], found[32_000], found[32_001]) == (
        199_999, 200_000, 0, 32_000,
    )  # fmt: skip


def test_each_call_is_a_row_by_model_provider_band_and_basis(engine: sa.Engine) -> None:
    wf = f"calls-{uuid.uuid4().hex[:8]}"
    insert(engine, STEP, at(1), run="r1", wf=wf, role="writer", payload=calls_step(
        call("gpt-x", 100_000, 10, provider="openai", cached=40_000, written=1_000),
        call("gpt-x", 250_000, 20, provider="openai", reasoning=5),
        call("gpt-x", 10, 1, provider="openai"),
        call("claude-y", 7, 3, provider="anthropic", reported=0.125),
        call("claude-y", usage=False),
        node="draft",
    ))  # fmt: skip
    insert(engine, STEP, at(2), run="r1", wf=wf, role="writer", payload=calls_step(
        call("gpt-x", 90_000, 30, provider="openai"),
        call("claude-y", 1, 1, provider="anthropic", reported=0.25),
        node="draft",
    ))  # fmt: skip
    found = grouped(engine, wf)
    k = ("draft", "claude-y,gpt-x")
    assert found == {
        # the 100k and 90k calls share band 32000; the 10-token one is band 0
        (*k, "gpt-x", "openai", 32_000, "tokens"): (2, 2, 190_000, 40_000, 1_000, 40, 0, None),
        (*k, "gpt-x", "openai", 200_000, "tokens"): (1, 1, 250_000, 0, 0, 20, 5, None),
        (*k, "gpt-x", "openai", 0, "tokens"): (1, 1, 10, 0, 0, 1, 0, None),
        (*k, "claude-y", "anthropic", 0, "reported"): (2, 2, 8, 0, 0, 4, 0, D("0.375")),
        (*k, "claude-y", "", 0, "none"): (1, 1, 0, 0, 0, 0, 0, None),
    }


def test_a_step_without_calls_is_one_pseudo_call_of_its_model(engine: sa.Engine) -> None:
    wf = f"v1-{uuid.uuid4().hex[:8]}"
    rows = [
        step("ok", 5, "gpt-x", 300_000, 10, 0.5, node="a", cached=7),  # estimate, band of 300k
        step("ok", 5, "gpt-x", 20, 10, 0.25, node="a"),  # estimate, band 0
        step("ok", 5, "gpt-x", 20, 10, None, node="b"),  # no cost, tokens: priced from them
        step("ok", 5, "gpt-x", 20, 10, 0.1, node="b") | {"cost_unknown": True},  # said so
        step("ok", 5, "odd", 0, 0, None, node="c"),  # names a model, nothing else: unknown
        step("ok", 5, None, 0, 0, 0.0, node="plan"),  # a function node: nothing billable
        step("ok", 5, None, 0, 0, None, node="plan"),
        step("ok", 5, None, 0, 0, 0.0, node="d") | {"cost_unknown": True},  # says unknown
        # an empty calls array is no per-call usage: the step's figures stand
        step("ok", 5, "gpt-x", 0, 0, 0.01, node="e") | {"calls": []},
    ]
    for n, payload in enumerate(rows):
        insert(engine, STEP, at(n), run="r", wf=wf, payload=payload)
    found = grouped(engine, wf)
    assert found == {
        ("a", "gpt-x", "gpt-x", "", 272_000, "estimate"): (1, 1, 300_000, 7, 0, 10, 0, D("0.5")),
        ("a", "gpt-x", "gpt-x", "", 0, "estimate"): (1, 1, 20, 0, 0, 10, 0, D("0.25")),
        ("b", "gpt-x", "gpt-x", "", 0, "tokens"): (2, 2, 40, 0, 0, 20, 0, None),
        ("c", "odd", "odd", "", 0, "none"): (1, 1, 0, 0, 0, 0, 0, None),
        ("d", "", "", "", 0, "none"): (1, 1, 0, 0, 0, 0, 0, None),
        ("e", "gpt-x", "gpt-x", "", 0, "estimate"): (1, 1, 0, 0, 0, 0, 0, D("0.01")),
    }


def test_payload_numbers_that_are_not_numbers_read_as_absent(engine: sa.Engine) -> None:
    """Raw rows may predate validation: a string count is no count, a string cost no cost."""
    wf = f"raw-{uuid.uuid4().hex[:8]}"
    raw = calls_step(call("gpt-x", 0, 5), call("gpt-x", 5, 5))
    raw["calls"][0] |= {"tokens_in": "900", "cost_usd_reported": "1.5"}
    raw["calls"][1] |= {"usage_reported": "false"}  # as text: still says no usage
    insert(engine, STEP, at(1), run="r", wf=wf, payload=raw)
    legacy = step("ok", 5, "gpt-x", 0, 0, None) | {"tokens_in": "12", "cost_usd_est": "0.5"}
    insert(engine, STEP, at(2), run="r", wf=wf, payload=legacy | {"node": "legacy"})
    insert(engine, STEP, at(3), run="r", wf=wf, payload={"node": "junk", "calls": [3, "x"]})
    found = grouped(engine, wf)
    assert found == {
        ("n", "gpt-x", "gpt-x", "", 0, "tokens"): (1, 1, 0, 0, 0, 5, 0, None),
        ("n", "gpt-x", "gpt-x", "", 0, "none"): (1, 1, 5, 0, 0, 5, 0, None),
        ("legacy", "gpt-x", "gpt-x", "", 0, "none"): (1, 1, 0, 0, 0, 0, 0, None),
    }


def test_a_step_of_several_joined_models_without_an_estimate_stays_unknown(
    engine: sa.Engine,
) -> None:
    """Its tokens cannot be split between the models, and a genai-prices pattern of the
    first one (``claude-3-5-sonnet…``) matches the joined name: priced, it would bill
    every token at that model's rate. It is unknown instead (found in review)."""
    wf = f"multi-{uuid.uuid4().hex[:8]}"
    joined = "claude-3-5-sonnet-latest,local-reranker"
    payload = step("ok", 5, joined, 1_000_000, 100_000, None, node="a") | {"cost_unknown": True}
    insert(engine, STEP, at(0), run="r", wf=wf, payload=payload)
    assert grouped(engine, wf) == {
        ("a", joined, joined, "", 524_288, "none"): (1, 1, 1_000_000, 0, 0, 100_000, 0, None),
    }
