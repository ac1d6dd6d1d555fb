"""How the read commands show figures: money, unknown costs, durations, the time line bar,
and tables that fit the terminal without cutting ids."""

from __future__ import annotations

import io
import json
import subprocess
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import typer
from rich.console import Console

from sdk.cli import reads, tables, timeline
from sdk.cli.tables import Column


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("0", "$0"),
        ("0.0123", "$0.0123"),
        ("0.0075", "$0.0075"),
        ("0.001", "$0.0010"),
        ("0.00012", "$0.00012"),
        ("0.000001234", "$0.00000123"),
        ("1", "$1.00"),
        ("1234.567", "$1,234.57"),
        ("Infinity", "$Infinity"),
        ("NaN", "$NaN"),
    ],
)
def test_money(value: str, text: str) -> None:
    assert reads.money(Decimal(value)) == text


def test_a_cost_with_unknown_steps_or_calls_is_never_a_bare_sum() -> None:
    # With unknowns, the known sum is a lower bound: said so.
    assert reads.cost(Decimal("0.0123"), 3) == "≥ $0.0123 + 3 unknown steps"
    assert reads.cost(Decimal("1.23"), 3, "call") == "≥ $1.23 + 3 unknown calls"
    assert reads.cost(Decimal(0), 1, "call") == "≥ $0 + 1 unknown call"
    assert reads.cost(Decimal("0.5"), 0) == "$0.5000"
    # Not counted (aggregated before unknown costs were): said so, not "none unknown".
    assert reads.cost(Decimal("0.5"), None) == "≥ $0.5000 + ? unknown"


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (None, ""),
        (0, "0ms"),
        (2.5, "2.5ms"),
        (340, "340ms"),
        (1500, "1.5s"),
        (65_000, "1m05s"),
        (2 * 3600_000 + 3 * 60_000, "2h03m"),
    ],
)
def test_duration(ms: float | None, text: str) -> None:
    assert reads.duration(ms) == text


def test_text_from_events_shows_its_control_characters_as_escapes() -> None:
    assert reads.shown("\x1b[31mred\x1b[0m\nnext\x07") == "\\x1b[31mred\\x1b[0m\\nnext\\x07"
    assert reads.shown("a\tb\rc\x9bd\x7f") == "a\\tb\\rc\\u009bd\\x7f"
    assert reads.shown(None) == ""
    assert reads.shown("plain [bold]é 日本 🙂") == "plain [bold]é 日本 🙂"


@pytest.mark.parametrize(
    "char", ["\u061c", "\u200e", "\u200f", "\u2028", "\u2029"]
    + [chr(c) for c in range(0x202A, 0x202F)] + [chr(c) for c in range(0x2066, 0x206A)],
)  # fmt: skip
def test_direction_overrides_are_shown_as_escapes(char: str) -> None:
    assert reads.shown(f"id{char}x") == f"id\\u{ord(char):04x}x"


@pytest.mark.parametrize(
    "value", ["plain", "with space", "it's", "a\x1bb", "rtl\u202e'x\\y", "\x9b", "new\nline"]
)
def test_a_shell_word_gives_the_shell_the_value_and_prints_no_control(value: str) -> None:
    word = reads.shell_word(value)
    assert reads.shown(word) == word  # nothing in it drives a terminal
    echoed = subprocess.run(
        ["bash", "-c", f'printf "%s" {word}'], capture_output=True, text=True, check=True
    ).stdout
    assert echoed == value


# --- the time line -----------------------------------------------------------------------


def test_a_step_is_drawn_where_it_ran() -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    # Ran from 1 s to 2 s of a 4 s run: the second quarter of 8 cells.
    span = timeline.step_span(start, start + timedelta(seconds=2), 1000)
    assert span == timeline.Span(1000, 2000)
    assert timeline.bar(span, 4000, 8) == "··██····"
    assert timeline.bar(timeline.Span(0, 4000), 4000, 8) == "█" * 8
    # An instant step still shows where it happened (bars start on a cell boundary);
    # nothing overflows the width.
    assert timeline.bar(timeline.Span(0, 0), 4000, 8) == "▏·······"
    assert timeline.bar(timeline.Span(4000, 4000), 4000, 8) == "·······█"
    assert timeline.bar(timeline.Span(0, 500), 4000, 8) == "█·······"
    assert timeline.bar(timeline.Span(0, 250), 4000, 8) == "▌·······"
    for end in range(0, 4001, 125):
        assert len(timeline.bar(timeline.Span(end / 2, end), 4000, 8)) == 8


def test_a_step_before_the_run_start_is_drawn_at_the_start() -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    span = timeline.step_span(start, start - timedelta(seconds=1), 500)
    assert span == timeline.Span(0, 0)
    assert timeline.bar(span, 0, 4) == "█···"


# --- tables ----------------------------------------------------------------------------


def _render(width: int, columns: list[Column[str]], rows: list[str]) -> tuple[str, list[str]]:
    console = Console(width=width, file=io.StringIO(), color_system=None)
    table, hidden = tables.fitted_table(console, columns, rows)
    console.print(table)
    return console.file.getvalue(), hidden  # type: ignore[attr-defined]


ID = "01J9Z8Y7X6W5V4T3S2R1Q0P9N8"


def _columns() -> list[Column[str]]:
    return [
        tables.id_column("id", lambda r: r, [ID]),
        Column("a", lambda r: "a" * 20, 2),
        Column("b", lambda r: "b" * 20, 1),
        Column("c", lambda r: "c" * 5, 3),
        Column("note", lambda r: "words " * 30, 4, squeeze=12),
    ]


def test_columns_are_left_out_by_rank_while_ids_stay_whole() -> None:
    out, hidden = _render(200, _columns(), [ID])
    assert hidden == []
    out, hidden = _render(60, _columns(), [ID])
    # id (28) + b (22) fit; a (22) does not, c (7) does, note (14 folded) does not.
    assert hidden == ["a", "note"]
    assert ID in out.splitlines()[1]
    out, hidden = _render(30, _columns(), [ID])
    assert hidden == ["a", "b", "c", "note"]
    assert ID in out.splitlines()[1]


def test_free_text_folds_instead_of_being_left_out() -> None:
    out, hidden = _render(100, _columns(), [ID])
    assert hidden == []
    assert out.count("words") == 30  # folded over several lines, nothing cut


# --- --json ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ({"totals": {"cost_usd": float("inf")}}, "totals.cost_usd"),
        ({"groups": [{"x": 1.0}, {"x": float("-inf")}]}, "groups[1].x"),
        ([float("nan")], "[0]"),
    ],
)
def test_json_with_a_non_finite_figure_is_an_error_not_invalid_json(
    value: object, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(typer.Exit) as stopped:
        reads.print_json(value)
    assert stopped.value.exit_code == reads.EXIT_REFUSED
    out, err = capsys.readouterr()
    assert out == ""  # no "Infinity" for a parser to choke on
    assert err.startswith(f"error: {where} is not a finite number, which JSON cannot carry")


def test_json_strings_reach_a_parser_whole_and_a_terminal_inert(
    capsys: pytest.CaptureFixture[str],
) -> None:
    value = {"run_id": "a\x1b[31m\u202eb\x9b\u2066", "node": "日本 é", "n": [1, 2.5]}
    reads.print_json(value)
    out = capsys.readouterr().out
    assert json.loads(out) == value
    assert not set(out) & {"\x1b", "\u202e", "\x9b", "\u2066"}
    assert "日本 é" in out  # readable text stays as it is
