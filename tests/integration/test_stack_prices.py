"""`make run` fills the price table before anything aggregates (sdk.cli.stack)."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from sdk.cli.stack import _sync_prices
from sdk.prices.genai import GENAI_SOURCE
from sdk.prices.repository import load_book


def test_the_stack_syncs_the_pinned_prices_once(migrated_db_url: str, engine: sa.Engine) -> None:
    _sync_prices(migrated_db_url)
    with engine.connect() as conn:
        first = load_book(conn)
    assert len(first.rows) > 2_000
    row = first.resolve("gpt-4o", None, date(2026, 12, 2))
    assert row is not None
    assert row.source == GENAI_SOURCE
    demo = first.resolve("demo-large", None, date(2026, 12, 2))
    assert demo is not None  # the demo's fake models are seeded as manual rows
    _sync_prices(migrated_db_url)  # a restart stores nothing twice
    with engine.connect() as conn:
        assert len(load_book(conn).rows) == len(first.rows)
