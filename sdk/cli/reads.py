"""What the read commands (``wdp runs``, ``wdp usage``) share: a connection, errors, figures.

The commands answer with the same sans-IO queries as the read API (:mod:`sdk.usage`), on
one short read-only connection, so the CLI refuses and answers exactly what the API does.
Every failure is one red line on stderr and a non-zero exit, never a traceback:

* exit 2: bad input (:class:`~sdk.usage.errors.InvalidQuery`, named by the option the user
  typed), or a database that is unavailable, not migrated, or refused the query;
* exit 1: nothing to show (an unknown run id).

Values that come from events (ids, node names, error messages) are written by agents:
each goes through :func:`shown` and is printed as rich ``Text``, never as markup. ``shown``
writes control characters (an ESC starting a terminal sequence, a newline) and the Unicode
direction overrides (which make a terminal draw text in another order than it is stored)
as visible escapes, ``\\x1b`` or ``\\u202e``: what was sent is still readable, but
can neither drive the terminal nor pass for something else.
"""

from __future__ import annotations

import json
import logging
import math
import re
import shlex
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from sdk import logs

if TYPE_CHECKING:
    from sdk.db.queries import Query
    from sdk.usage.errors import InvalidQuery

T = TypeVar("T")

EXIT_NOT_FOUND = 1
EXIT_REFUSED = 2
CONNECT_TIMEOUT_S = 10
# C0 and C1 controls (tabs and newlines included: a cell or a line is one line), the
# Unicode direction marks, embeddings, overrides and isolates (a "Trojan Source" id reads
# as another), and the line and paragraph separators.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
# What json.dumps(ensure_ascii=False) leaves raw of those (it escapes C0 controls itself;
# the newlines it writes between lines are not in strings).
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

log = logging.getLogger("wdp")


def fail(message: str) -> None:
    """Report an error on stderr: a log record in JSON mode, else one red line."""
    if logs.configured_format() == "json":
        log.error(message)
    else:
        line = Text.assemble(("error:", "red"), " ", shown(message))
        Console(stderr=True).print(line, soft_wrap=True, highlight=False)


def stop(message: str, code: int = EXIT_REFUSED) -> NoReturn:
    """:func:`fail` with ``message``, then exit with ``code``."""
    fail(message)
    raise typer.Exit(code)


def refuse(exc: InvalidQuery, options: Mapping[str, str]) -> NoReturn:
    """Every refused parameter on one line, each named as the user typed it."""
    stop("; ".join(f"{options.get(name, name)}: {why}" for name, why in exc.field_errors.items()))


def answer(query: Query[T], *, tables: str) -> T:
    """Run ``query`` on the configured database (``DATABASE_URL`` or the embedded one)
    in one read-only snapshot; database failures end the command with their reason."""
    import psycopg

    from sdk.db.engine import resolve_database_url
    from sdk.db.errors import DATABASE_ERRORS, describe, unavailable_reason
    from sdk.db.queries import read_sync
    from sdk.settings import get_settings

    dsn = resolve_database_url()
    timeout_ms = get_settings().read_statement_timeout_ms
    try:
        with psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True) as conn:
            # One read-only snapshot for every statement, as the read API answers.
            return read_sync(conn, query, statement_timeout_ms=timeout_ms)
    except DATABASE_ERRORS as exc:
        reason = unavailable_reason(exc, tables=tables)
        stop(reason or f"the database refused the query: {describe(exc)}")


def print_json(value: Any) -> None:
    """One JSON document on stdout, as the read API would answer it: valid JSON or
    nothing. A figure that is not a finite number (an infinite cost sum) has no JSON
    form (Python's ``Infinity`` is not JSON), so it ends the command with its path
    instead. Characters :func:`shown` escapes are written as ``\\uXXXX`` escapes, the
    same strings to a JSON parser, nothing a terminal acts on."""
    try:
        text = json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False)
    except ValueError:
        where = _non_finite(value, "")
        stop(
            f"{where or 'a figure'} is not a finite number, which JSON cannot carry: "
            "an event in these days holds an impossible figure"
        )
    typer.echo(_JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text))


def _non_finite(value: Any, path: str) -> str | None:
    """The path (``groups[0].figures.cost_usd``) of the first float that is inf or nan."""
    if isinstance(value, float) and not math.isfinite(value):
        return path or "the value"
    items: Any = ()
    if isinstance(value, dict):
        items = ((f"{path}.{k}" if path else str(k), v) for k, v in value.items())
    elif isinstance(value, list | tuple):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(value))
    for where, item in items:
        found = _non_finite(item, where)
        if found:
            return found
    return None


# --- how figures look ------------------------------------------------------------------


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    # \xHH is a byte in bash's $'...': above ASCII, the code point is \uHHHH there too.
    return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}"


def shown(value: object) -> str:
    """Text from an event, safe to print (as ``Text``, never markup): its control
    characters and direction overrides written as escapes, ``\\x1b``, ``\\u202e``."""
    if value is None:
        return ""
    return _UNSAFE.sub(_escape, str(value))


def shell_word(value: str) -> str:
    """``value`` as one word of a command line to copy into a shell: quoted as
    :func:`shlex.quote` does, or, when it holds characters :func:`shown` escapes, in
    bash's ``$'...'`` quoting with the same escapes, so the line is safe to print and
    still gives the shell the very value."""
    if not _UNSAFE.search(value):
        return shlex.quote(value)
    inner = value.replace("\\", "\\\\").replace("'", "\\'")
    return "$'" + _UNSAFE.sub(_escape, inner) + "'"


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
    if not value.is_finite():  # numeric holds Infinity and NaN: shown, not compared
        return f"${value}"
    if value == 0:
        return "$0"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    places = min(max(4, 2 - value.adjusted()), 12)
    digits = f"{value:.{places}f}"
    while places > 4 and digits.endswith("0"):
        digits, places = digits[:-1], places - 1
    return f"${digits}"


def cost(known: Decimal, unknown: int | None, what: str = "step") -> str:
    """Known cost and what had none (``what``: "step" or "call"): never a silent $0.

    With unknowns the known sum is a lower bound: ``≥ $1.23 + 3 unknown calls``.
    ``unknown`` None means it was not counted (version-1 aggregates): ``+ ? unknown``.
    """
    if unknown is None:
        return f"≥ {money(known)} + ? unknown"
    if unknown:
        return f"≥ {money(known)} + {unknown:,} unknown {what}{'s' if unknown != 1 else ''}"
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
