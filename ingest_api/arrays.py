"""Array parameters for the event store, encoded in Postgres's binary format in one pass.

The store sends every statement as ten array parameters, one per column, unnested
server-side (``ingest_api.store``). psycopg dumps a Python list through its generic
``ListBinaryDumper``, which is pure Python even with ``psycopg[binary]``: it scans the
list for an element to pick a dumper, re-dumps the type per call, then dumps element by
element through that dumper. Under single-event load that was ~45 % of the group
commit's CPU (docs/benchmarks.md, issue 18). The columns' element types are known in
advance, so the lists are wrapped in these marker types and each is encoded by one
loop over its values, the element oid fixed.

The format is ``array_recv``'s: a header (dimensions, a has-null flag, the element
oid), the dimension's length and lower bound, then each element as a 4-byte length
(-1 for NULL) and its binary value. What cannot be sent exactly is refused with
``psycopg.DataError`` (a naive datetime too, which psycopg would send as a timestamp
without zone); the store only hands them validated rows.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format

# Element and array type oids (pg_type; fixed in every Postgres).
INT4_OID, TEXT_OID, TIMESTAMPTZ_OID = 23, 25, 1184
INT4_ARRAY_OID, TEXT_ARRAY_OID, TIMESTAMPTZ_ARRAY_OID = 1007, 1009, 1185

_HEAD = struct.Struct("!iiIii")  # ndim, has-null, element oid; length, lower bound
_EMPTY = struct.Struct("!iiI")  # an empty array: no dimensions
_LEN = struct.Struct("!i").pack
_NULL = _LEN(-1)
_INT4 = struct.Struct("!ii").pack  # length 4, value
_INT8 = struct.Struct("!iq").pack  # length 8, value
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class TextArray(list[str | None]):
    """A ``text[]`` parameter."""


class Int4Array(list[int]):
    """An ``int4[]`` parameter."""


class TimestamptzArray(list[datetime]):
    """A ``timestamptz[]`` parameter of aware datetimes."""


def _head(n: int, has_null: int, oid: int) -> bytes:
    return _HEAD.pack(1, has_null, oid, n, 1) if n else _EMPTY.pack(0, 0, oid)


class _TextArrayDumper(Dumper):
    format = Format.BINARY
    oid = TEXT_ARRAY_OID

    def __init__(self, cls: type, context: Any = None) -> None:
        super().__init__(cls, context)
        # The bytes of text are sent in the connection's encoding, as psycopg sends str
        # (which sends UTF-8 to a SQL_ASCII database, whose encoding reads as "ascii").
        encoding = self.connection.info.encoding if self.connection else "utf-8"
        self._encoding = "utf-8" if encoding == "ascii" else encoding

    def dump(self, obj: Any) -> bytes:
        parts = [b""]
        has_null = 0
        encoding = self._encoding
        try:
            for value in obj:
                if value is None:
                    has_null = 1
                    parts.append(_NULL)
                else:
                    data = value.encode(encoding)
                    parts.append(_LEN(len(data)))
                    parts.append(data)
        except (AttributeError, UnicodeEncodeError) as exc:
            raise psycopg.DataError(f"cannot send {value!r} as text: {exc}") from exc
        parts[0] = _head(len(obj), has_null, TEXT_OID)
        return b"".join(parts)


class _Int4ArrayDumper(Dumper):
    format = Format.BINARY
    oid = INT4_ARRAY_OID

    def dump(self, obj: Any) -> bytes:
        try:
            # No NULLs (a has-null flag of 0): each value behind its fixed length of 4.
            body = b"".join([_INT4(4, v) for v in obj])
        except struct.error as exc:
            raise psycopg.DataError(f"cannot send a value as int4: {exc}") from exc
        return _head(len(obj), 0, INT4_OID) + body


class _TimestamptzArrayDumper(Dumper):
    format = Format.BINARY
    oid = TIMESTAMPTZ_ARRAY_OID

    def dump(self, obj: Any) -> bytes:
        try:
            # Microseconds since 2000-01-01 UTC, as Postgres keeps them (exact: timedelta
            # floor division is integer arithmetic). A naive datetime cannot be
            # subtracted from an aware one: refused, never sent as if it were UTC.
            body = b"".join([_INT8(8, (value - _PG_EPOCH) // _MICROSECOND) for value in obj])
        except TypeError as exc:
            raise psycopg.DataError(f"cannot send a value as timestamptz: {exc}") from exc
        return _head(len(obj), 0, TIMESTAMPTZ_OID) + body


def register(adapters: psycopg.adapt.AdaptersMap) -> None:
    """Teach ``adapters`` (a connection's, or psycopg's global map) the three types."""
    adapters.register_dumper(TextArray, _TextArrayDumper)
    adapters.register_dumper(Int4Array, _Int4ArrayDumper)
    adapters.register_dumper(TimestamptzArray, _TimestamptzArrayDumper)


__all__ = ["Int4Array", "TextArray", "TimestamptzArray", "register"]
