"""``wdp prices sync|ls|set``: the price table, its sync from genai-prices, and overrides.

* ``sync`` inserts what the bundled genai-prices data has that the table lacks (new
  models, changed prices), as the Dagster asset ``model_prices`` does daily
  (:mod:`sdk.prices.sync`); ``--dry-run`` shows it without storing anything.
* ``ls`` lists rows (by default each series' version in force on ``--on``, today), and for
  a MODEL says which row prices that name on that day and why (:mod:`sdk.prices.book`).
* ``set`` inserts a manual row: it wins over synced rows from ``--from`` on. Rows are
  never changed: a correction is another ``set`` (the newest manual row wins).

Bad input is one red line naming the option, exit 2, and nothing is written. Tables go to
stdout; progress and hints to stderr.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.text import Text

from sdk.cli import price_input, price_view, reads
from sdk.cli.help import Typer
from sdk.cli.reads import shown

if TYPE_CHECKING:
    import sqlalchemy as sa

    from sdk.prices.book import PriceBook, PriceRow
    from sdk.usage.params import Problems

prices_app = Typer(
    help="Model prices: sync them from genai-prices, list them, set manual overrides.",
    no_args_is_help=True,
)
err = Console(stderr=True)  # messages: soft-wrapped, so each is one line in a log
REPRICING_ASSET = "usage_repricing"
SOURCES = ("manual", "synced")
TABLES = "price table (telemetry.model_prices)"
SET_OPTIONS = {
    "model": "MODEL",
    "input": "--input",
    "output": "--output",
    "cache_read": "--cache-read",
    "cache_write": "--cache-write",
    "reasoning": "--reasoning",
    "tier": "--tier",
    "from": "--from",
    "provider": "--provider",
    "pattern": "--pattern",
    "alias": "--alias",
    "on": "--on",
    "source": "--source",
}


def _today() -> date:
    return datetime.now(UTC).date()


def _database_failure(exc: BaseException) -> NoReturn:
    from sdk.db.errors import describe, unavailable_reason

    reads.stop(unavailable_reason(exc, tables=TABLES) or f"the database refused: {describe(exc)}")


@contextmanager
def _transaction() -> Iterator[sa.Connection]:
    """One transaction on the configured database; its failures end the command."""
    from sdk.db.engine import create_engine
    from sdk.db.errors import DATABASE_ERRORS
    from sdk.prices.errors import PriceError

    engine = create_engine()
    try:
        with engine.begin() as conn:
            yield conn
    except DATABASE_ERRORS as exc:
        _database_failure(exc)
    except PriceError as exc:
        if isinstance(exc.__cause__, DATABASE_ERRORS):
            _database_failure(exc.__cause__)
        raise
    finally:
        engine.dispose()


def _say(message: str, style: str = "") -> None:
    """A message on stderr, one line (soft-wrapped: a log keeps it whole)."""
    err.print(Text(message, style=style), highlight=False, soft_wrap=True)


def _progress(message: str) -> None:
    err.print(Text(message + " ...", style="dim"), highlight=False, soft_wrap=True)


# --- sync ----------------------------------------------------------------------------------


@prices_app.command("sync")
def sync(
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Compare and report, store nothing (the transaction is rolled back).",
    ),
    as_json: bool = typer.Option(False, "--json", help="The report as JSON instead of text."),
) -> None:
    """Insert new and changed prices from the bundled genai-prices data (and the manual
    seed rows, once); rows already stored are left as they are."""
    from sdk.prices.sync import sync_bundled

    with _transaction() as conn:
        report = sync_bundled(conn, progress=None if as_json else _progress)
        if dry_run:
            conn.rollback()
    if as_json:
        reads.print_json(report.as_json() | {"dry_run": dry_run})
        return
    price_view.print_report(Console(), report, dry_run=dry_run)
    if report.inserted and not dry_run:
        _say(_repricing_hint(), "dim")


def _repricing_hint() -> str:
    return (
        "Days aggregated from now on use the new prices; days already aggregated keep "
        f"their stored costs until the Dagster asset {REPRICING_ASSET} re-prices them."
    )


# --- ls --------------------------------------------------------------------------------------


@prices_app.command("ls")
def ls(
    model: str | None = typer.Argument(
        None, help="A model name as calls report it: which row prices it, and why.", metavar="MODEL"
    ),
    on: str | None = typer.Option(
        None, "--on", help="The UTC day, YYYY-MM-DD (default: today).", metavar="DAY"
    ),
    provider: str | None = typer.Option(
        None,
        "--provider",
        "-p",
        help="Only this provider's rows (and price MODEL there).",
        metavar="PROVIDER",
    ),
    all_versions: bool = typer.Option(
        False, "--all-versions", help="Every row, not only each series' version in force on DAY."
    ),
    source: str | None = typer.Option(
        None, "--source", help="Only manual or only synced rows.", metavar="manual|synced"
    ),
    as_json: bool = typer.Option(False, "--json", help="Rows (and the lookup) as JSON."),
) -> None:
    """Price rows (USD per 1M tokens); with MODEL, the row that prices it on DAY."""
    from sdk.prices.repository import book_query
    from sdk.usage import params

    problems = params.Problems()
    day = params.day(problems, "on", on) or _today()
    if source is not None and source not in SOURCES:
        problems.add("source", f"must be manual or synced (got {shown(source)[:40]!r})")
    if model is not None and not model.strip():
        problems.add("model", "must not be empty")
    _check(problems)
    book = reads.answer(book_query(), tables=TABLES)
    chosen = book.resolve(model, provider, day) if model else None
    rows = _listed(book, model, provider, source, day, all_versions=all_versions)
    if as_json:
        out: dict[str, object] = {
            "on": day.isoformat(),
            "rows": [price_view.row_json(r) for r in rows],
        }
        if model:
            out["model"] = model
            out["resolved"] = None if chosen is None else price_view.row_json(chosen)
            out["why"] = None if chosen is None else price_view.why(chosen, model, provider)
        reads.print_json(out)
        return
    console = Console()
    if model:
        resolved = price_view.resolution_text(model, provider, day, chosen)
        console.print(resolved, soft_wrap=True, highlight=False)
    if rows:
        price_view.print_rows(console, rows, chosen)
    elif not model:
        console.print(
            "no price rows match" if len(book.rows) else _EMPTY, highlight=False, soft_wrap=True
        )
    if not all_versions:
        hidden = _other_versions(book, rows)
        if hidden:
            _say(f"{hidden:,} other version(s) of these series not shown: --all-versions", "dim")


_EMPTY = "the price table is empty: `wdp prices sync` fills it from genai-prices"


def _check(problems: Problems) -> None:
    from sdk.usage.errors import InvalidQuery

    try:
        problems.check()
    except InvalidQuery as exc:
        reads.refuse(exc, SET_OPTIONS)


def _listed(
    book: PriceBook,
    model: str | None,
    provider: str | None,
    source: str | None,
    day: date,
    *,
    all_versions: bool,
) -> list[PriceRow]:
    """The rows to show: filtered, then (unless every version) each series' row in force on
    ``day``; for a MODEL, every row that could price the name (the chosen one marked)."""
    name = model.strip().lower() if model else None
    wanted = (provider or "").strip().lower() or None
    picked = [
        r
        for r in book.rows
        if (wanted is None or r.provider == wanted)
        and (source is None or r.manual == (source == "manual"))
        and (name is None or r.model.lower() == name or r.matches(name))
    ]
    if not all_versions:
        series: dict[tuple[bool, str, str], list[PriceRow]] = {}
        for r in picked:
            series.setdefault(r.series, []).append(r)
        live = (_on(rows, day) for rows in series.values())
        picked = [r for r in live if r is not None]
    return sorted(
        picked, key=lambda r: (not r.manual, r.model, r.provider, r.valid_from, r.price_id)
    )


def _on(rows: list[PriceRow], day: date) -> PriceRow | None:
    live = [r for r in rows if r.valid_from <= day]
    return max(live, key=lambda r: (r.valid_from, r.price_id), default=None)


def _other_versions(book: PriceBook, rows: list[PriceRow]) -> int:
    series = {r.series for r in rows}
    return sum(1 for r in book.rows if r.series in series) - len(rows)


# --- set ----------------------------------------------------------------------------------


@prices_app.command("set")
def set_price(
    model: str = typer.Argument(
        ..., help="The model's name (also matched exactly).", metavar="MODEL"
    ),
    input_rate: str = typer.Option(
        ..., "--input", help="USD per 1M input tokens, e.g. 2.5.", metavar="USD"
    ),
    output_rate: str = typer.Option(
        ..., "--output", help="USD per 1M output tokens.", metavar="USD"
    ),
    cache_read: str | None = typer.Option(
        None,
        "--cache-read",
        help="USD per 1M cached input tokens (default: as input).",
        metavar="USD",
    ),
    cache_write: str | None = typer.Option(
        None,
        "--cache-write",
        help="USD per 1M tokens written to the cache (default: as input).",
        metavar="USD",
    ),
    reasoning: str | None = typer.Option(
        None,
        "--reasoning",
        help="USD per 1M reasoning tokens (default: as output).",
        metavar="USD",
    ),
    tier: Annotated[
        list[str] | None,
        typer.Option(
            "--tier",
            help="A context tier: calls with more than ABOVE input tokens pay RATE for KIND "
            "(input, output, cache_read, cache_write, reasoning), e.g. input:200000:5. Repeatable.",
            metavar="KIND:ABOVE:RATE",
        ),
    ] = None,
    from_day: str | None = typer.Option(
        None, "--from", help="First UTC day in force, YYYY-MM-DD (default: today).", metavar="DAY"
    ),
    provider: str | None = typer.Option(
        None,
        "--provider",
        "-p",
        help="Only calls at this provider (and calls naming none); default: every provider.",
        metavar="PROVIDER",
    ),
    pattern: str | None = typer.Option(
        None,
        "--pattern",
        help="Also price names this Python regex finds (lower-cased name); "
        "an exact name beats a pattern.",
        metavar="REGEX",
    ),
    alias: Annotated[
        list[str] | None,
        typer.Option("--alias", help="Another exact name; repeatable.", metavar="NAME"),
    ] = None,
    note: str | None = typer.Option(None, "--note", help="Why (shown by ls).", metavar="TEXT"),
) -> None:
    """Insert a manual price: it wins over synced rows for MODEL from --from on."""
    from sdk.prices.book import MANUAL, PriceBook, compile_pattern
    from sdk.prices.errors import InvalidPrice
    from sdk.prices.repository import NewPrice, insert_prices, load_book, lock_prices
    from sdk.usage import params

    problems = params.Problems()
    name = model.strip()
    if not name:
        problems.add("model", "must not be empty")
    rates = {
        kind: price_input.rate(problems, kind, value)
        for kind, value in (
            ("input", input_rate),
            ("output", output_rate),
            ("cache_read", cache_read),
            ("cache_write", cache_write),
            ("reasoning", reasoning),
        )
    }
    tiers = price_input.tiers(problems, tier or [])
    day = params.day(problems, "from", from_day) or _today()
    if pattern is not None:
        try:
            if compile_pattern(pattern).search("") is not None:
                problems.add(
                    "pattern",
                    f"{shown(pattern)!r} matches every model name (it matches the empty string)",
                )
        except InvalidPrice as exc:
            problems.add("pattern", str(exc).removeprefix("pattern "))
    names = [a.strip() for a in alias or []]
    if any(not a for a in names):
        problems.add("alias", "must not be empty")
    _check(problems)
    price = price_input.price(rates, tiers)
    row = NewPrice(
        model=name,
        price=price,
        valid_from=day,
        source=MANUAL,
        exact=(name, *names),
        pattern=pattern,
        provider=provider or "",
        note=note,
    )
    with _transaction() as conn:
        lock_prices(conn)  # a seed row of a sync running now must not land beside this one
        before = load_book(conn)
        (stored,) = insert_prices(conn, [row])
    after = PriceBook((*before.rows, stored))
    console = Console()
    price_view.print_rows(console, [stored])
    _print_effect(before, after, stored, name, provider)


def _print_effect(
    before: PriceBook, after: PriceBook, stored: PriceRow, name: str, provider: str | None
) -> None:
    """What the new row changes for MODEL on its first day, and what happens to days
    already aggregated."""
    day = stored.valid_from
    old = before.resolve(name, provider, day)
    now = after.resolve(name, provider, day)
    was = "no price (unknown cost)" if old is None else f"price_id {old.price_id} ({old.source})"
    is_now = "no price" if now is None else f"price_id {now.price_id} ({now.source})"
    _say(f"{shown(name)} on {day.isoformat()}: was {was}, now {is_now}")
    if now != stored:
        _say(
            f"note: another manual row still wins for {shown(name)} on that day "
            "(`wdp prices ls` shows it)",
            "yellow",
        )
    known = {r.provider for r in after.rows if not r.manual}
    if stored.provider and known and stored.provider not in known:
        _say(
            f"note: no synced rows are at provider {shown(stored.provider)!r}; calls name "
            "providers as genai-prices does (openai, anthropic, google, ...)",
            "yellow",
        )
    if day <= _today():
        _say(_repricing_hint(), "dim")
    else:
        _say(f"in force from {day.isoformat()}: no stored day is affected yet", "dim")
