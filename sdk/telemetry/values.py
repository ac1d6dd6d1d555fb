"""Checks that keep event data storable in Postgres, and ULID helpers.

Postgres cannot store a NUL character in ``text`` or ``jsonb``, UTF-8 cannot encode a
lone surrogate, ``jsonb`` rejects NaN, and 64-bit consumers of the events (aggregates,
dashboards) mis-read larger integers. pydantic accepts all of these, so every event is
walked once by :func:`find_unsafe_value` before it is accepted: the SDK then fails at
the call site and the API answers 422 instead of letting the database fail with a 500.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

MAX_DEPTH = 32
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DECODE = {c: i for i, c in enumerate(CROCKFORD)} | {c.lower(): i for i, c in enumerate(CROCKFORD)}
ULID_PATTERN = r"^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$"


def printable(part: object) -> str:
    """``part`` as text that is always valid Unicode (lone surrogates escaped), for
    error messages and locations that must be encodable as JSON and UTF-8."""
    return str(part).encode("utf-8", "backslashreplace").decode("utf-8")


class UnsafeValue(ValueError):
    """A value that Postgres or the event contract cannot hold, with where it was found."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message

    @property
    def path(self) -> str:
        """The location as dotted text, safe to show (surrogates escaped)."""
        return ".".join(printable(p) for p in self.loc)


def _str_problem(value: str) -> str | None:
    if "\x00" in value:
        return "contains a NUL character (\\u0000), which Postgres cannot store"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "contains a lone surrogate, which is not valid Unicode text"
    return None


# In raw JSON text, the only ways to spell a NUL, a surrogate or an integer beyond 64
# bits: a \u0000 or \uD800-\uDFFF escape (raw control characters and raw surrogates
# are not valid JSON or UTF-8), or a run of 19+ digits.
_BAD_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_NINETEEN_DIGITS = b"0" * 19


def json_text_is_plain(raw: bytes) -> bool:
    """True when JSON text ``raw`` cannot hold a NUL, a surrogate or a >64-bit integer.

    A few C-speed passes over the body (a regex only if it has any backslash-u escape) let
    the API skip walking every value of every event; a false alarm (say, an escaped
    backslash before "u0000") only costs the walk.
    """
    if b"\\u" in raw and _BAD_ESCAPE.search(raw):
        return False
    return _NINETEEN_DIGITS not in raw.translate(_DIGITS_TO_ZERO)


def flat_values_are_plain(values: Iterable[object]) -> bool:
    """True when none of ``values`` (containers not entered) can be unstorable.

    For the SDK's builders, whose inputs are a handful of typed keyword arguments: a
    tight loop here replaces the general walk. Containers are skipped because every
    free-form field validates its own content; anything unusual returns False and
    gets the full walk, which also says where the problem is.
    """
    # Ordered by how often each kind comes (None fills most optional fields): this
    # runs on every emit, and each test skipped is measurable there.
    for value in values:
        if value is None:
            continue
        kind = type(value)
        if kind is str:
            if "\x00" in value or not value.isascii():  # type: ignore[operator, attr-defined]
                return False
        elif kind is int:
            if not INT64_MIN <= value <= INT64_MAX:  # type: ignore[operator]
                return False
        elif not (
            kind is float or kind is bool or kind is datetime or kind is dict or kind is list
        ):
            return False
    return True


def find_unsafe_value(value: object) -> UnsafeValue | None:
    """Return the first unstorable value inside ``value`` (None when all is well)."""
    found = _check(value, 0)
    if found is None:
        return None
    message, *reversed_loc = found
    return UnsafeValue(tuple(reversed(reversed_loc)), message)


def _check(value: object, depth: int) -> list[Any] | None:
    """[message, innermost key, ..., outermost key] for the first problem, else None.

    Runs on every emitted event (~15 values), so scalars inside containers are checked
    inline, by exact type, and the location is built only on the way back up.
    """
    if isinstance(value, dict):
        if depth >= MAX_DEPTH:
            return [f"nesting deeper than {MAX_DEPTH} levels"]
        for key, item in value.items():
            if type(key) is not str:
                return ["object keys must be strings"]
            if "\x00" in key or not key.isascii():
                problem = _str_problem(key)
                if problem:
                    return [f"key {problem}", key]
            kind = type(item)
            # The common, harmless scalars inline: a call per value would double the cost.
            if item is None or kind is bool or kind is datetime:
                continue
            if kind is str and "\x00" not in item and item.isascii():
                continue
            found = _check_item(item, depth)
            if found is not None:
                found.append(key)
                return found
        return None
    if isinstance(value, list | tuple):
        if depth >= MAX_DEPTH:
            return [f"nesting deeper than {MAX_DEPTH} levels"]
        for index, item in enumerate(value):
            found = _check_item(item, depth)
            if found is not None:
                found.append(index)
                return found
        return None
    return _check_item(value, depth - 1)


def _check_item(item: object, depth: int) -> list[Any] | None:
    kind = type(item)
    if kind is str:
        if "\x00" in item or not item.isascii():  # type: ignore[operator, attr-defined]
            problem = _str_problem(item)  # type: ignore[arg-type]
            return [problem] if problem else None
        return None
    if item is None or kind is bool or kind is datetime:
        return None
    if kind is int:
        if INT64_MIN <= item <= INT64_MAX:  # type: ignore[operator]
            return None
        return ["integer does not fit in 64 bits"]
    if kind is float:
        return None if math.isfinite(item) else ["number must be finite (no NaN or Infinity)"]  # type: ignore[arg-type]
    if isinstance(item, dict | list | tuple):
        return _check(item, depth + 1)
    if isinstance(item, BaseModel):
        return _check(dict(item), depth + 1)
    if isinstance(item, str | int | float) and not isinstance(item, bool):
        return _check_item(kind.__mro__[-2](item), depth)  # str/int/float subclasses
    return None


_PAIRS = [a + b for a in CROCKFORD for b in CROCKFORD]  # 10 bits -> 2 characters


def new_ulid(now_ms: int | None = None) -> str:
    """A new ULID string: 48-bit millisecond time + 80 random bits, Crockford base32.

    Hand-rolled because python-ulid's constructor costs ~6 µs, a quarter of the SDK's
    per-event budget; this is ~2 µs. The random part comes from ``random`` (reseeded
    after fork by the interpreter): ids must be unique, not unguessable.
    """
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    v = (ms << 80) | random.getrandbits(80)
    # encode_ulid(v), inlined: emit mints one id per event and the call is measurable.
    p = _PAIRS
    return (
        p[(v >> 120) & 1023] + p[(v >> 110) & 1023] + p[(v >> 100) & 1023]
        + p[(v >> 90) & 1023] + p[(v >> 80) & 1023] + p[(v >> 70) & 1023]
        + p[(v >> 60) & 1023] + p[(v >> 50) & 1023] + p[(v >> 40) & 1023]
        + p[(v >> 30) & 1023] + p[(v >> 20) & 1023] + p[(v >> 10) & 1023]
        + p[v & 1023]
    )  # fmt: skip


def encode_ulid(v: int) -> str:
    """The 128-bit ``v`` as a ULID string (for ids derived from something else, such
    as an OpenTelemetry span: :mod:`ingest_api.otlp.mapping`)."""
    p = _PAIRS
    return (
        p[(v >> 120) & 1023] + p[(v >> 110) & 1023] + p[(v >> 100) & 1023]
        + p[(v >> 90) & 1023] + p[(v >> 80) & 1023] + p[(v >> 70) & 1023]
        + p[(v >> 60) & 1023] + p[(v >> 50) & 1023] + p[(v >> 40) & 1023]
        + p[(v >> 30) & 1023] + p[(v >> 20) & 1023] + p[(v >> 10) & 1023]
        + p[v & 1023]
    )  # fmt: skip


def ulid_ms(ulid: str) -> int:
    """Milliseconds since the epoch embedded in a ULID's first 10 characters."""
    ms = 0
    for char in ulid[:10]:
        ms = (ms << 5) | _DECODE[char]
    return ms


_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ulid_datetime(ulid: str) -> datetime:
    """The instant embedded in a ULID, as an aware UTC datetime (what event_time holds)."""
    # Exact integer arithmetic, and half the cost of fromtimestamp().replace() (it runs
    # once per event on the ingest hot path).
    return _UNIX_EPOCH + timedelta(milliseconds=ulid_ms(ulid))
