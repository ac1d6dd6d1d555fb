"""What the read commands (``wdp runs``, ``wdp usage``) share: a connection, errors, figures.

The commands answer with the same sans-IO queries as the read API (:mod:`sdk.usage`), on
one short read-only connection, so the CLI refuses and answers exactly what the API does.
Every failure is one red line on stderr and a non-zero exit, never a traceback:

* exit 2: bad input (:class:`~sdk.usage.errors.InvalidQuery`, named by the option the user
  typed), or a database that is unavailable, not migrated, or refused the query;
* exit 1: nothing to show (an unknown run id).

Values that come from events (node names, error messages) are written by agents: they
are shown as text, never as rich markup, and without terminal control sequences.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Generic, NoReturn, TypeVar

import typer
from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from sdk import logs

if TYPE_CHECKING:
    from sdk.db.queries import Query
    from sdk.usage.errors import InvalidQuery

T = TypeVar("T")
R = TypeVar("R")

EXIT_NOT_FOUND = 1
EXIT_REFUSED = 2
CONNECT_TIMEOUT_S = 10
ID_WIDTH = 26  # a ULID; longer ids get the room they need
# C0 and C1 controls (tabs and newlines included: a cell or a line is one line).
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")

log = logging.getLogger("wdp")


def fail(message: str) -> None:
    """Report an error on stderr: a log record in JSON mode, else one red line."""
    if logs.configured_format() == "json":
        log.error(message)
    else:
        Console(stderr=True).print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)


def stop(message: str, code: int = EXIT_REFUSED) -> NoReturn:
    """:func:`fail` with ``message``, then exit with ``code``."""
    fail(message)
    raise typer.Exit(code)


def refuse(exc: InvalidQuery, options: Mapping[str, str]) -> NoReturn:
    """Every refused parameter on one line, each named as the user typed it."""
    stop("; ".join(f"{options.get(name, name)} {why}" for name, why in exc.field_errors.items()))


def answer(query: Query[T], *, tables: str) -> T:
    """Run ``query`` on the configured database (``DATABASE_URL`` or the embedded one)
    in one read-only snapshot; database failures end the command with their reason."""
    import psycopg

    from sdk.db.engine import resolve_database_url
    from sdk.db.errors import DATABASE_ERRORS, describe, unavailable_reason
    from sdk.db.queries import run_sync

    dsn = resolve_database_url()
    try:
        with psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            # One snapshot for every statement of the query (a run and its events agree).
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            return run_sync(conn, query)
    except DATABASE_ERRORS as exc:
        reason = unavailable_reason(exc, tables=tables)
        stop(reason or f"the database refused the query: {describe(exc)}")


def print_json(value: Any) -> None:
    """One JSON document on stdout, as the read API would answer it."""
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


# --- how figures look ------------------------------------------------------------------


def shown(value: object) -> str:
    """Text from an event, safe to print: no control characters, no markup."""
    if value is None:
        return ""
    return _CONTROLS.sub(" ", logs.strip_ansi(str(value)))


STATUS_STYLE = {
    "succeeded": "green",
    "ok": "green",
    "failed": "red",
    "error": "red",
    "running": "yellow",
    "cancelled": "yellow",
    "interrupted": "yellow",
}


def status_style(status: str | None) -> str:
    """The colour of a run's or a step's status."""
    return STATUS_STYLE.get(status or "", "")


def status_text(status: str | None) -> Text:
    return Text(shown(status), style=status_style(status))


def money(value: Decimal) -> str:
    """Dollars: cents from $1 up, else four decimals or up to three significant digits
    ($0.0123, $0.0075, $0.00012); the JSON output has the exact sum."""
    if value == 0:
        return "$0"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    places = min(max(4, 2 - value.adjusted()), 12)
    digits = f"{value:.{places}f}"
    while places > 4 and digits.endswith("0"):
        digits, places = digits[:-1], places - 1
    return f"${digits}"


def cost(known: Decimal, unknown_steps: int | None) -> str:
    """Known cost and the steps without a price: never a silent $0.

    ``unknown_steps`` None means it was not counted (version-1 aggregates): "+ ?".
    """
    if unknown_steps is None:
        return f"{money(known)} + ? unknown"
    if unknown_steps:
        return f"{money(known)} + {unknown_steps:,} unknown"
    return money(known)


def duration(ms: float | None) -> str:
    if ms is None:
        return ""
    if ms < 1000:
        return f"{ms:.0f}ms" if ms >= 10 or ms == 0 else f"{ms:.1f}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def offset(ms: float) -> str:
    """Time since the run started: +0ms, +1.2s, +3m05s."""
    return "+" + duration(max(ms, 0.0))


def count(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def when(value: datetime | None, *, seconds: bool = False) -> str:
    """A UTC time to the minute or second (the JSON output has it exactly)."""
    if value is None:
        return ""
    return value.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


# --- tables that fit the terminal ------------------------------------------------------


@dataclass(frozen=True)
class Column(Generic[R]):
    """A table column: its header, its cell for a row, its rank (0: always shown; then
    lower ranks first while they fit), rich column options, and ``squeeze``: for free
    text, the width it needs when folded over several lines (0: its widest cell)."""

    name: str
    cell: Callable[[R], str | Text]
    rank: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)
    squeeze: int = 0


def id_column(name: str, cell: Callable[[R], str], ids: Sequence[str]) -> Column[R]:
    """A column of ids shown whole: it never wraps (other columns fold first)."""
    width = max([ID_WIDTH, *(len(i) for i in ids)])
    return Column(name, cell, 0, {"no_wrap": True, "min_width": width})


def _width(console: Console, column: Column[Any], cells: list[str | Text]) -> int:
    """The column's width with padding: its widest cell, or its ``squeeze`` if smaller."""
    widest = max(
        [cell_len(column.name)]
        + [Measurement.get(console, console.options, c).maximum for c in cells]
    )
    return min(widest, column.squeeze or widest) + 2


def fitted_table(
    console: Console, columns: Sequence[Column[R]], rows: Sequence[R], **options: Any
) -> tuple[Table, list[str]]:
    """The table with the columns that fit ``console`` unfolded, and the names of those
    left out. Rank-0 columns are always there; then, by rank, each one that still fits.

    Each cell is rendered and measured once (a run may have thousands of steps); a
    column takes its widest cell or header plus one space of padding each side.
    """
    cells = [[column.cell(row) for column in columns] for row in rows]
    widths = [
        _width(console, column, [row[i] for row in cells]) for i, column in enumerate(columns)
    ]
    kept = {i for i, column in enumerate(columns) if column.rank == 0}
    used = sum(widths[i] for i in kept)
    for i in sorted(set(range(len(columns))) - kept, key=lambda i: (columns[i].rank, i)):
        if used + widths[i] <= console.width:
            kept.add(i)
            used += widths[i]
    table = Table(box=None, header_style="bold", **options)
    for i in sorted(kept):
        table.add_column(columns[i].name, **({"overflow": "fold"} | dict(columns[i].options)))
    for row in cells:
        table.add_row(*(row[i] for i in sorted(kept)))
    return table, [c.name for i, c in enumerate(columns) if i not in kept]


def print_table(
    console: Console, columns: Sequence[Column[R]], rows: Sequence[R], **options: Any
) -> None:
    """Print :func:`fitted_table`, and say which columns a narrow terminal left out."""
    table, hidden = fitted_table(console, columns, rows, **options)
    console.print(table)
    if hidden:
        console.print(
            f"[dim](not shown: {escape(', '.join(hidden))}; a wider terminal or --json)[/dim]",
            highlight=False,
        )
