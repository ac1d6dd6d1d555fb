"""``wdp prices sync|ls|set`` on a real Postgres, filled from the pinned genai-prices data.

The module's database is synced once by the CLI itself (the fixture); the price table is
append-only, so tests that add rows use models of their own, or days no other test asks
about, and bad input is checked by counting the table's rows before and after.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from sdk.cli.main import app
from sdk.db import migrate
from sdk.db.engine import create_engine
from sdk.prices.book import ALWAYS, PriceBook
from sdk.prices.genai import GENAI_SOURCE, SEED_MANUAL, genai_rows
from sdk.prices.repository import load_book
from sdk.settings import reset_settings_cache
from tests.support.cli import run_wdp
from tests.support.servers import free_port

TODAY = datetime.now(UTC).date()
SOURCE_ROWS = len(genai_rows().rows)


def wdp(*args: str, code: int = 0, columns: int = 250) -> Result:
    result = CliRunner().invoke(app, ["prices", *args], env={"COLUMNS": str(columns)})
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    return result


def use(url: str, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("WDP_DATA_DIR", str(tmp / "wdp"))
    reset_settings_cache()


@pytest.fixture(scope="module")
def first_sync(migrated_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Result]:
    with pytest.MonkeyPatch.context() as mp:
        use(migrated_db_url, tmp_path_factory.mktemp("sync"), mp)
        yield wdp("sync")
    reset_settings_cache()


@pytest.fixture
def db(
    first_sync: Result, migrated_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[sa.Engine]:
    use(migrated_db_url, tmp_path, monkeypatch)
    engine = create_engine(migrated_db_url)
    yield engine
    engine.dispose()
    reset_settings_cache()


def book(engine: sa.Engine) -> PriceBook:
    with engine.connect() as conn:
        return load_book(conn)


def count(engine: sa.Engine) -> int:
    return len(book(engine).rows)


# --- sync ------------------------------------------------------------------------------------


def test_the_first_sync_stores_the_bundled_data_and_the_seed(first_sync: Result) -> None:
    total = SOURCE_ROWS + len(SEED_MANUAL)
    assert first_sync.stdout.startswith(
        f"Prices synced from {GENAI_SOURCE}: {SOURCE_ROWS:,} added, 0 changed, 0 unchanged, "
    )
    assert f"{len(SEED_MANUAL)} manual seed row(s) added; {total:,} rows in the table" in (
        first_sync.stdout
    )
    assert "manual seed row: demo-small" in first_sync.stdout
    assert "not priced per token" in first_sync.stdout  # what was skipped, and why
    assert f"... and {SOURCE_ROWS - 20:,} more added" in first_sync.stdout
    # progress on stderr, then the hint about days already aggregated
    assert first_sync.stderr.startswith(f"reading {GENAI_SOURCE}")
    assert "usage_repricing" in first_sync.stderr


def test_a_second_sync_adds_nothing(db: sa.Engine) -> None:
    before = count(db)
    out = wdp("sync").stdout
    assert f"0 added, 0 changed, {SOURCE_ROWS:,} unchanged" in out
    assert "0 manual seed row(s) added" in out
    assert count(db) == before


def test_sync_json_is_the_report(db: sa.Engine) -> None:
    report = json.loads(wdp("sync", "--json").stdout)
    assert (report["added"], report["changed"], report["unchanged"]) == (0, 0, SOURCE_ROWS)
    assert report["sources"] == [GENAI_SOURCE]
    assert report["rows_total"] == count(db)
    assert report["dry_run"] is False
    assert all(s["reason"] for s in report["skipped"])


def test_a_dry_run_on_an_empty_table_stores_nothing(
    database_factory: Callable[[], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = database_factory()
    migrate.upgrade(url)
    use(url, tmp_path, monkeypatch)
    assert "the price table is empty: `wdp prices sync` fills it" in wdp("ls").stdout
    out = wdp("sync", "--dry-run").stdout
    assert out.startswith(f"Dry run, nothing stored: {GENAI_SOURCE}: {SOURCE_ROWS:,} added")
    assert "price_id" not in out.splitlines()[1]  # ids of rows that were not kept
    engine = create_engine(url)
    try:
        assert count(engine) == 0
    finally:
        engine.dispose()


# --- ls --------------------------------------------------------------------------------------


def test_ls_model_on_a_day_says_which_row_prices_it_and_why(db: sa.Engine) -> None:
    day = date(2026, 1, 1)
    expected = book(db).resolve("gpt-4o", None, day)
    assert expected is not None
    out = wdp("ls", "gpt-4o", "--on", "2026-01-01").stdout
    first = out.splitlines()[0]
    assert first.startswith(f"gpt-4o on 2026-01-01: price_id {expected.price_id}, in 2.5, ")
    assert f"synced ({GENAI_SOURCE}) at openai" in first
    assert "by its exact name" in first
    marked = [line for line in out.splitlines() if line.lstrip().startswith("→")]
    assert len(marked) == 1
    assert str(expected.price_id) in marked[0]


def test_ls_says_when_a_pattern_prices_the_name(db: sa.Engine) -> None:
    name = "claude-sonnet-4-5-20250929"
    row = book(db).resolve(name, "anthropic", TODAY)
    assert row is not None
    assert row.pattern is not None
    assert name not in row.exact
    first = wdp("ls", name, "--provider", "anthropic").stdout.splitlines()[0]
    assert first.startswith(f"{name} at anthropic on {TODAY}: price_id {row.price_id}")
    assert "the call's provider, by pattern /" in first


def test_ls_of_a_model_without_a_price_says_unknown(db: sa.Engine) -> None:
    out = wdp("ls", "no-such-model-x").stdout
    assert out.splitlines() == [
        f"no-such-model-x on {TODAY}: no price; its calls have an unknown cost (counted, never "
        "$0). Add one with `wdp prices set`."
    ]


def test_ls_versions_and_filters(db: sa.Engine) -> None:
    rows = [r for r in book(db).rows if r.model == "claude-opus-4-6" and r.provider == "anthropic"]
    assert len(rows) >= 2  # genai-prices dates a price change of this model
    one = wdp("ls", "claude-opus-4-6", "--provider", "anthropic", "--json").stdout
    listed = json.loads(one)["rows"]
    assert len(listed) == 1  # the version in force today
    every = json.loads(
        wdp("ls", "claude-opus-4-6", "--provider", "anthropic", "--all-versions", "--json").stdout
    )["rows"]
    assert sorted(r["price_id"] for r in every) == sorted(r.price_id for r in rows)
    before = min(r.valid_from for r in rows if r.valid_from != ALWAYS) - timedelta(days=1)
    old = json.loads(
        wdp("ls", "claude-opus-4-6", "-p", "anthropic", "--on", str(before), "--json").stdout
    )
    assert [r["valid_from"] for r in old["rows"]] == [ALWAYS.isoformat()]
    manual = json.loads(wdp("ls", "--source", "manual", "--json").stdout)["rows"]
    assert manual
    assert {r["source"] for r in manual} == {"manual"}
    assert {"demo-small", "demo-large"} <= {r["model"] for r in manual}
    synced = json.loads(wdp("ls", "--provider", "anthropic", "--source", "synced", "--json").stdout)
    assert {(r["provider"], r["source"]) for r in synced["rows"]} == {("anthropic", GENAI_SOURCE)}


def test_ls_table_shows_rates_per_mtok_and_hides_empty_columns(db: sa.Engine) -> None:
    out = wdp("ls", "demo-small").stdout
    header = out.splitlines()[1].split()
    assert header == ["model", "provider", "valid", "from", "input", "output", "match",
                      "source", "price_id", "note"]  # fmt: skip
    row = out.splitlines()[2].split()
    assert row[:7] == ["→", "demo-small", "(all)", "always", "0.15", "0.6", "demo-small"]


def test_ls_hides_nothing_it_does_not_say(db: sa.Engine) -> None:
    result = wdp("ls", "claude-opus-4-6", "-p", "anthropic")
    assert "other version(s) of these series not shown: --all-versions" in result.stderr


# --- set -------------------------------------------------------------------------------------


def test_set_inserts_a_manual_row_that_wins_from_its_day(db: sa.Engine) -> None:
    before = book(db)
    synced = before.resolve("gpt-4o-mini", None, date(2025, 3, 1))
    assert synced is not None
    assert not synced.manual
    result = wdp("set", "gpt-4o-mini", "--input", "0.1", "--output", "0.4", "--cache-read",
                 "0.05", "--from", "2025-03-01", "--note", "negotiated",
                 "--tier", "input:200000:0.2", "--alias", "My-Mini")  # fmt: skip
    after = book(db)
    assert len(after.rows) == len(before.rows) + 1
    (stored,) = [r for r in after.rows if r.price_id > max(x.price_id for x in before.rows)]
    assert (stored.model, stored.provider, stored.valid_from, stored.source) == (
        "gpt-4o-mini", "", date(2025, 3, 1), "manual",
    )  # fmt: skip
    assert stored.exact == frozenset({"gpt-4o-mini", "my-mini"})
    assert str(stored.price.input) == "0.1"
    assert [(t.above, str(t.per_mtok)) for t in stored.price.tiers["input"]] == [(200_000, "0.2")]
    assert stored.note == "negotiated"
    # the row as stored, then what changed for the name on that day, then the hint
    assert str(stored.price_id) in result.stdout
    assert "in >200,000: 0.2" in result.stdout
    assert (
        f"gpt-4o-mini on 2025-03-01: was price_id {synced.price_id} ({GENAI_SOURCE}), "
        f"now price_id {stored.price_id} (manual)"
    ) in result.stderr
    assert "the Dagster asset usage_repricing re-prices them" in result.stderr
    assert after.resolve("gpt-4o-mini", "openai", date(2025, 3, 1)) == stored
    assert after.resolve("MY-MINI", None, date(2025, 3, 1)) == stored
    assert after.resolve("gpt-4o-mini", None, date(2025, 2, 28)) == synced
    out = wdp("ls", "gpt-4o-mini", "--on", "2025-03-01").stdout
    assert "a manual row (for every provider), by its exact name" in out.splitlines()[0]


def test_set_a_pattern_for_a_provider_in_the_future(db: sa.Engine) -> None:
    later = TODAY + timedelta(days=30)
    result = wdp("set", "acme-1", "--input", "1", "--output", "2", "--provider", "ACME",
                 "--pattern", "^acme-1-", "--from", str(later))  # fmt: skip
    assert f"in force from {later}: no stored day is affected yet" in result.stderr
    assert "no synced rows are at provider 'acme'" in result.stderr
    row = book(db).resolve("acme-1-large", "acme", later)
    assert row is not None
    assert (row.provider, row.pattern) == ("acme", "^acme-1-")
    assert book(db).resolve("acme-1-large", "acme", TODAY) is None
    assert f"acme-1-large at acme on {later}: price_id {row.price_id}" in (
        wdp("ls", "acme-1-large", "-p", "acme", "--on", str(later)).stdout
    )


def test_set_defaults_to_today(db: sa.Engine) -> None:
    wdp("set", "acme-today", "--input", "3", "--output", "4")
    row = book(db).resolve("acme-today", None, TODAY)
    assert row is not None
    assert row.valid_from == TODAY
    assert book(db).resolve("acme-today", None, TODAY - timedelta(days=1)) is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--input", "-1", "--output", "2"), "--input: must not be negative (got -1)"),
        (("--input", "cheap", "--output", "2"),
         "--input: must be a number of USD per 1M tokens, e.g. 2.5 (got 'cheap')"),
        (("--input", "1", "--output", "NaN"), "--output: must be a finite number (got 'NaN')"),
        (("--input", "1", "--output", "Infinity"), "--output: must be a finite number"),
        (("--input", "1", "--output", "2", "--cache-read", "-0.1"), "--cache-read: must not be"),
        (("--input", "1", "--output", "2", "--cache-write", "x"), "--cache-write: must be a"),
        (("--input", "1", "--output", "2", "--reasoning", ""), "--reasoning: must be a number"),
        (("--input", "1", "--output", "2", "--tier", "input:150000:3"),
         "--tier: 150000 is not a supported threshold; use one of 32000, 100000"),
        (("--input", "1", "--output", "2", "--tier", "input:200000"),
         "--tier: 'input:200000' is not KIND:ABOVE:RATE, e.g. input:200000:5"),
        # found in review: a traceback, and a stored rate that overflowed every reader
        (("--input", "1", "--output", "2", "--tier", "input:_:5"),
         "--tier: 'input:_:5' is not KIND:ABOVE:RATE, e.g. input:200000:5"),
        (("--input", "1", "--output", "2", "--tier", "input:200000:1e99999999"),
         "--tier: must be at most 1000000 USD per 1M tokens"),
        (("--input", "1e999", "--output", "2"), "--input: must be at most 1000000"),
        (("--input", "1", "--output", "2", "--tier", "audio:200000:3"),
         "--tier: unknown kind 'audio': use one of input, cache_read"),
        (("--input", "1", "--output", "2", "--tier", "input:200000:-3"), "--tier: must not be"),
        (("--input", "1", "--output", "2", "--tier", "cache_read:200000:3"),
         "--tier: 'cache_read' has no rate of its own: give its option too"),
        (("--input", "1", "--output", "2", "--tier", "input:200000:3", "--tier",
          "input:200000:4"), "--tier: tiers of input: thresholds must be distinct"),
        (("--input", "1", "--output", "2", "--pattern", "("),
         "--pattern: '(' is not a valid regular expression"),
        (("--input", "1", "--output", "2", "--pattern", ".*"),
         "--pattern: '.*' matches every model name"),
        (("--input", "1", "--output", "2", "--from", "2026-02-30"),
         "--from: must be a day, YYYY-MM-DD"),
        (("--input", "1", "--output", "2", "--from", "tomorrow"), "--from: must be a day"),
        (("--input", "1", "--output", "2", "--alias", " "), "--alias: must not be empty"),
        (("--input", "-1", "--output", "x", "--from", "x"),
         "--input: must not be negative (got -1); --output: must be a number"),
    ],
)  # fmt: skip
def test_set_refuses_bad_input_naming_the_option(
    db: sa.Engine, args: tuple[str, ...], message: str
) -> None:
    before = count(db)
    result = wdp("set", "acme-bad", *args, code=2)
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {message}"), result.stderr
    assert result.stderr.count("\n") == 1
    assert count(db) == before


def test_set_refuses_an_empty_model_and_a_missing_rate(db: sa.Engine) -> None:
    before = count(db)
    empty = wdp("set", "  ", "--input", "1", "--output", "2", code=2)
    assert empty.stderr == "error: MODEL: must not be empty\n"
    missing = wdp("set", "acme-bad", "--input", "1", code=2)  # typer's own usage error
    assert "Missing option '--output'" in missing.stderr
    assert count(db) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--on", "2026-13-01"), "--on: must be a day, YYYY-MM-DD"),
        (("--source", "library"), "--source: must be manual or synced (got 'library')"),
        (("", ), "MODEL: must not be empty"),
    ],
)  # fmt: skip
def test_ls_refuses_bad_input(db: sa.Engine, args: tuple[str, ...], message: str) -> None:
    result = wdp("ls", *args, code=2)
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {message}"), result.stderr


@pytest.mark.parametrize(
    "args", [("ls",), ("sync",), ("set", "m", "--input", "1", "--output", "1")], ids=" ".join
)
def test_a_database_that_is_down_is_a_clear_error(tmp_path: Path, args: tuple[str, ...]) -> None:
    env = {
        "DATABASE_URL": f"postgresql://u@127.0.0.1:{free_port()}/db",
        "WDP_DATA_DIR": str(tmp_path),
    }
    result = run_wdp(env, "prices", *args)
    assert result.returncode == 2, result.stderr
    assert "error: the database is unavailable: " in result.stderr
    assert "Traceback" not in result.stderr


def test_a_database_not_migrated_says_so(
    database_factory: Callable[[], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(database_factory(), tmp_path, monkeypatch)
    for args in (("ls",), ("set", "m", "--input", "1", "--output", "1"), ("sync",)):
        result = wdp(*args, code=2)
        assert "run `wdp migrate`" in result.stderr, (args, result.stderr)
