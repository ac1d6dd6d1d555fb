"""genai-prices' data as wdp price rows: the same model and the same price as genai-prices'
own lookup, over the whole pinned snapshot."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from genai_prices import Usage, data_snapshot, types

from sdk.prices import MANUAL, CallTokens, cost
from sdk.prices.genai import (
    GENAI_SOURCE,
    SEED_MANUAL,
    bundled_book,
    genai_rows,
    match_of,
    translate,
)
from tests.support.seed_era_prices import SEED_ERA_PRICES as DEFAULT_PRICES

NOW = datetime(2026, 12, 2, tzinfo=UTC)
SNAPSHOT = data_snapshot.get_snapshot()


def _names(model: types.ModelInfo) -> set[str]:
    return {model.id.lower(), *match_of(model.match)[0]}


def test_every_name_genai_prices_knows_finds_the_same_model_and_price() -> None:
    conversion = genai_rows()
    skipped = {(p, m) for p, m, _ in conversion.skipped}
    book = bundled_book()
    usage = {"input_tokens": 300_000, "cache_read_tokens": 50_000, "output_tokens": 2_000}
    checked, wrong_model, wrong_price = 0, [], []
    for provider in SNAPSHOT.providers:
        for model in provider.models:
            for name in _names(model):
                try:
                    p, m = SNAPSHOT.find_provider_model(name, None, provider.id, None)
                except LookupError:
                    continue
                if (p.id, m.id) in skipped:
                    continue
                checked += 1
                row = book.resolve(name, provider.id, NOW.date())
                if row is None or (row.provider, row.model) != (p.id, m.id):
                    wrong_model.append(name)
                    continue
                theirs = m.calc_price(Usage(**usage), p, genai_request_timestamp=NOW).total_price
                ours = cost(row.price, CallTokens(input=300_000, cache_read=50_000, output=2_000))
                if abs(theirs - ours) > Decimal("1e-12"):
                    wrong_price.append((p.id, name, m.prices))
    assert checked > 3_000
    assert wrong_model == []
    # Only models with a per-request fee differ (not a token price: not applied).
    assert wrong_price
    assert all("requests_kcount" in repr(prices) for _, _, prices in wrong_price), wrong_price


def test_what_is_left_out_says_why() -> None:
    conversion = genai_rows()
    assert len(conversion.rows) > 2_000
    assert {why for _, _, why in conversion.skipped} == {"not priced per token"}
    assert {r.source for r in conversion.rows} == {GENAI_SOURCE}


def test_dated_prices_become_rows_valid_from_their_start() -> None:
    dated = [(p, m) for p in SNAPSHOT.providers for m in p.models if isinstance(m.prices, list)]
    provider, model = dated[0]
    book = bundled_book()
    for cp in model.prices[1:]:
        start = cp.constraint.start_date  # type: ignore[union-attr]
        row = book.resolve(model.id, provider.id, start)
        assert row is not None
        assert row.valid_from == start
        theirs = model.calc_price(
            Usage(input_tokens=1_000, output_tokens=1_000),
            provider,
            genai_request_timestamp=datetime(start.year, start.month, start.day, tzinfo=UTC),
        ).total_price
        assert cost(row.price, CallTokens(input=1_000, output=1_000)) == theirs


@pytest.mark.parametrize(
    ("clause", "yes", "no"),
    [
        (types.ClauseStartsWith(starts_with="GPT-4"), ["gpt-4o"], ["xgpt-4"]),
        (types.ClauseEndsWith(ends_with="-latest"), ["a-latest"], ["a-latest-2"]),
        (types.ClauseContains(contains="sonnet"), ["claude-sonnet-4"], ["claude-opus"]),
        (
            types.ClauseAnd(and_=[types.ClauseStartsWith(starts_with="claude"),
                                  types.ClauseContains(contains="haiku")]),
            ["claude-3-haiku"], ["haiku-claude", "claude-3-opus"],
        ),
        (
            types.ClauseOr(or_=[types.ClauseEquals(equals="a.b"), types.ClauseRegex(regex="^x+$")]),
            ["a.b", "xxx"], ["axb", "xy"],
        ),
    ],
)  # fmt: skip
def test_a_clause_and_its_regex_match_the_same_names(
    clause: types.MatchLogic, yes: list[str], no: list[str]
) -> None:
    exact, pattern = match_of(clause)
    for name in yes + no:
        ours = name in exact or (pattern is not None and re.search(pattern, name) is not None)
        assert ours == clause.is_match(name) == (name in yes), name
    assert re.search(translate(clause), yes[0])


def test_the_seed_era_table_is_covered_and_the_demo_models_are_manual_rows() -> None:
    book = bundled_book()
    for name, old in DEFAULT_PRICES.items():
        row = book.resolve(name, None, date(2026, 12, 2))
        assert row is not None, name
        assert row.source == GENAI_SOURCE, name
        assert float(row.price.input) == pytest.approx(old.input * 1e6), name
        assert float(row.price.output) == pytest.approx(old.output * 1e6), name
    assert {r.model for r in SEED_MANUAL} == {"demo-small", "demo-large"}
    row = book.resolve("demo-large", None, date(2026, 12, 2))
    assert row is not None
    assert row.source == MANUAL
    assert cost(row.price, CallTokens(input=1_000_000, output=100_000)) == Decimal("3.5")
