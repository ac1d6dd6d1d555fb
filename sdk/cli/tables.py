"""Tables that fit the terminal and never cut an id.

Rich fits a wide table into a narrow terminal by folding or cutting every column, ids
included. These tables instead leave out the least useful columns (each has a rank)
until the rest fit, and hold ids in columns that never wrap: a 26-character ULID stays
whole on one line, copyable, in a terminal of 30 columns or more. Free text (a reason,
a payload) says how narrow it may be folded (``squeeze``) and is kept, folded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from rich.box import Box
from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from sdk.cli.reads import shown

R = TypeVar("R")

ID_WIDTH = 26  # a ULID


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
    """A column of ids shown whole: it never wraps (other columns fold first). An id is
    whatever an event carried, so it is shown as :func:`~sdk.cli.reads.shown` writes it."""
    width = max((cell_len(shown(i)) for i in ids), default=ID_WIDTH)
    return Column(name, lambda row: shown(cell(row)), 0, {"no_wrap": True, "min_width": width})


def _text(cell: str | Text) -> Text:
    return cell if isinstance(cell, Text) else Text(cell)


def _width(console: Console, column: Column[Any], cells: list[Text]) -> int:
    """The column's width with padding: its widest cell, or its ``squeeze`` if smaller."""
    widest = max(
        [cell_len(column.name)]
        + [Measurement.get(console, console.options, c).maximum for c in cells]
    )
    return min(widest, column.squeeze or widest) + 2


def fitted_table(
    console: Console,
    columns: Sequence[Column[R]],
    rows: Sequence[R],
    *,
    box: Box | None = None,
    row_style: Callable[[R], str] | None = None,
    **options: Any,
) -> tuple[Table, list[str]]:
    """The table with the columns that fit ``console`` unfolded, and the names of those
    left out. Rank-0 columns are always there; then, by rank, each one that still fits.

    Each cell is rendered and measured once (a run may have thousands of steps); a
    column takes its widest cell or header plus one space of padding each side, and
    a box (if any) one more for its line. ``row_style`` styles a whole row (a total).
    """
    # Text, never markup: cells hold what agents wrote ("[red]" is a node name too).
    cells = [[_text(column.cell(row)) for column in columns] for row in rows]
    widths = [
        _width(console, column, [row[i] for row in cells]) for i, column in enumerate(columns)
    ]
    if box is not None:
        widths = [w + 1 for w in widths]
    kept = {i for i, column in enumerate(columns) if column.rank == 0}
    used = sum(widths[i] for i in kept) + (1 if box is not None else 0)
    for i in sorted(set(range(len(columns))) - kept, key=lambda i: (columns[i].rank, i)):
        if used + widths[i] <= console.width:
            kept.add(i)
            used += widths[i]
    table = Table(box=box, header_style="bold", **options)
    for i in sorted(kept):
        table.add_column(columns[i].name, **({"overflow": "fold"} | dict(columns[i].options)))
    for row, source in zip(cells, rows, strict=True):
        style = row_style(source) if row_style is not None else None
        table.add_row(*(row[i] for i in sorted(kept)), style=style)
    return table, [c.name for i, c in enumerate(columns) if i not in kept]


def print_table(
    console: Console,
    columns: Sequence[Column[R]],
    rows: Sequence[R],
    *,
    elsewhere: str = "--json",
    **options: Any,
) -> None:
    """Print :func:`fitted_table`, and say which columns a narrow terminal left out (and
    ``elsewhere``: where to see them, if not in a wider terminal)."""
    table, hidden = fitted_table(console, columns, rows, **options)
    console.print(table)
    if hidden:
        where = f"a wider terminal or {elsewhere}" if elsewhere else "a wider terminal"
        console.print(
            f"[dim](not shown: {escape(', '.join(hidden))}; {escape(where)})[/dim]",
            highlight=False,
        )
