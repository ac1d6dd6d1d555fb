"""Asset ``model_prices`` materialised against a real Postgres, and what it records."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal as D
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from platform_defs.assets.prices import changes_markdown, model_prices, sync_metadata
from platform_defs.resources import PostgresResource
from sdk.db import migrate
from sdk.db.engine import create_engine
from sdk.prices import ALWAYS, MANUAL, Price
from sdk.prices.genai import GENAI_SOURCE, SEED_MANUAL, genai_rows
from sdk.prices.repository import NewPrice, insert_prices, load_book
from sdk.prices.sync import sync_prices

CONVERSION = genai_rows()


@pytest.fixture
def db(database_factory: Callable[[], str]) -> Iterator[tuple[str, sa.Engine]]:
    url = database_factory()
    migrate.upgrade(url)
    engine = create_engine(url)
    yield url, engine
    engine.dispose()


def materialise(url: str) -> dict[str, Any]:
    result = dg.materialize(
        [model_prices], resources={"postgres": PostgresResource(database_url=url)}
    )
    assert result.success
    (event,) = result.get_asset_materialization_events()
    materialization = event.materialization
    assert materialization.asset_key == dg.AssetKey("model_prices")
    return {k: v.value for k, v in materialization.metadata.items()}


def test_the_first_run_fills_the_table_and_the_next_adds_nothing(db: tuple[str, sa.Engine]) -> None:
    url, engine = db
    first = materialise(url)
    rows = len(CONVERSION.rows)
    assert first["source"] == GENAI_SOURCE
    assert (first["added"], first["changed"], first["unchanged"]) == (rows, 0, 0)
    assert first["seeded"] == len(SEED_MANUAL)
    assert first["skipped"] == len(CONVERSION.skipped)
    assert first["skipped_by_reason"] == {"not priced per token": len(CONVERSION.skipped)}
    assert first["rows_total"] == first["dagster/row_count"] == rows + len(SEED_MANUAL)
    assert f"**Inserted price rows** (first 100 of {rows})" in first["changes"]
    assert "**Manual seed rows added**: demo\\-small, demo\\-large" in first["changes"]
    with engine.connect() as conn:
        assert len(load_book(conn).rows) == first["rows_total"]
    again = materialise(url)
    assert (again["added"], again["changed"], again["unchanged"], again["seeded"]) == (
        0, 0, rows, 0,
    )  # fmt: skip
    assert again["rows_total"] == first["rows_total"]
    assert again["changes"] == "_nothing new: every price of the source is stored already_\n"


def test_a_stored_price_that_differs_is_listed_old_and_new(db: tuple[str, sa.Engine]) -> None:
    """The table holds an older gpt-4o price (as if synced from an earlier version of the
    data): the run inserts the current one and shows both; a manual override still wins."""
    url, engine = db
    (current,) = [r for r in CONVERSION.rows if (r.provider, r.model) == ("openai", "gpt-4o")]
    stale = NewPrice(**(vars(current) | {"price": Price(input=D(5), output=D(15)),
                                         "source": "genai-prices 0.2.0"}))  # fmt: skip
    mine = NewPrice(model="gpt-4o", price=Price(input=D(1), output=D(2)), valid_from=ALWAYS,
                    source=MANUAL, exact=("gpt-4o",))  # fmt: skip
    with engine.begin() as conn:
        old, override = insert_prices(conn, [stale, mine])
    metadata = materialise(url)
    assert metadata["changed"] == 1
    changed = [line for line in metadata["changes"].splitlines() if line.startswith("| changed")]
    assert len(changed) == 1
    assert changed[0].startswith(
        "| changed | gpt\\-4o | openai | always | rates | in 5\\, out 15 |"
    )
    assert "| in 2\\.5\\, cache read 1\\.25\\, out 10 | " in changed[0]
    with engine.connect() as conn:
        book = load_book(conn)
    assert old in book.rows  # kept
    assert book.resolve("gpt-4o", "openai", date(2026, 1, 1)) == override
    synced = book.resolve("gpt-4o-2024-08-06", None, date(2026, 1, 1))
    assert synced is not None
    assert synced.price == current.price


def test_names_in_the_changes_table_are_escaped(db: tuple[str, sa.Engine]) -> None:
    _, engine = db
    evil = NewPrice(model="![x](https://e.example/p.png)|<b>", price=Price(input=D(1), output=D(1)),
                    valid_from=ALWAYS, source=GENAI_SOURCE, exact=("evil",),
                    provider="p|\nq")  # fmt: skip
    with engine.begin() as conn:
        report = sync_prices(conn, [evil])
    text = changes_markdown(report)
    row = text.splitlines()[4]
    assert row.startswith(
        "| added | \\!\\[x\\]\\(https\\:\\/\\/e\\.example\\/p\\.png\\)\\|\\<b\\> | "
    )
    assert row.count(" | ") == 7  # eight cells: no name opened another
    assert sync_metadata(report)["added"].value == 1


def test_a_database_not_migrated_fails_the_run_with_its_reason(
    database_factory: Callable[[], str],
) -> None:
    result = dg.materialize(
        [model_prices],
        resources={"postgres": PostgresResource(database_url=database_factory())},
        raise_on_error=False,
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    error = failure.step_failure_data.error
    assert error is not None
    assert error.cause is not None
    assert 'relation "telemetry.model_prices" does not exist' in error.cause.message
