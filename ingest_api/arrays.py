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
from typing import Any, ClassVar

import psycopg
from psycopg.adapt import Dumper
from psycopg.postgres import types as pg_types
from psycopg.pq import Format

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

    SQL_TYPE: ClassVar[str] = "text"


class Int4Array(list[int]):
    """An ``int4[]`` parameter."""

    SQL_TYPE: ClassVar[str] = "int4"


class TimestamptzArray(list[datetime]):
    """A ``timestamptz[]`` parameter of aware datetimes."""

    SQL_TYPE: ClassVar[str] = "timestamptz"


def _oids(sql_type: str) -> tuple[int, int]:
    """The array's and the element's oid of a built-in type."""
    info = pg_types.get(sql_type)
    if info is None:
        raise LookupError(f"psycopg knows no built-in type {sql_type!r}")
    return info.array_oid, info.oid


class _ArrayDumper(Dumper):
    """One marker type's arrays: binary, the oids fixed by ``SQL_TYPE`` (psycopg's
    registry of the built-in types), the elements encoded by :meth:`body`."""

    format = Format.BINARY
    element_oid: ClassVar[int]

    def dump(self, obj: Any) -> bytes:
        has_null, body = self.body(obj)
        if not obj:
            return _EMPTY.pack(0, 0, self.element_oid)
        return _HEAD.pack(1, has_null, self.element_oid, len(obj), 1) + body

    def body(self, obj: Any) -> tuple[int, bytes]:
        """The has-null flag and the encoded elements."""
        raise NotImplementedError


class _TextArrayDumper(_ArrayDumper):
    oid, element_oid = _oids(TextArray.SQL_TYPE)

    def __init__(self, cls: type, context: Any = None) -> None:
        super().__init__(cls, context)
        # The bytes of text are sent in the connection's encoding, as psycopg sends str
        # (which sends UTF-8 to a SQL_ASCII database, whose encoding reads as "ascii").
        encoding = self.connection.info.encoding if self.connection else "utf-8"
        self._encoding = "utf-8" if encoding == "ascii" else encoding

    def body(self, obj: Any) -> tuple[int, bytes]:
        parts = []
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
        return has_null, b"".join(parts)


class _Int4ArrayDumper(_ArrayDumper):
    oid, element_oid = _oids(Int4Array.SQL_TYPE)

    def body(self, obj: Any) -> tuple[int, bytes]:
        try:
            # No NULLs (a has-null flag of 0): each value behind its fixed length of 4.
            return 0, b"".join([_INT4(4, v) for v in obj])
        except struct.error as exc:
            raise psycopg.DataError(f"cannot send a value as int4: {exc}") from exc


class _TimestamptzArrayDumper(_ArrayDumper):
    oid, element_oid = _oids(TimestamptzArray.SQL_TYPE)

    def body(self, obj: Any) -> tuple[int, bytes]:
        try:
            # Microseconds since 2000-01-01 UTC, as Postgres keeps them (exact: timedelta
            # floor division is integer arithmetic). A naive datetime cannot be
            # subtracted from an aware one: refused, never sent as if it were UTC.
            return 0, b"".join([_INT8(8, (value - _PG_EPOCH) // _MICROSECOND) for value in obj])
        except TypeError as exc:
            raise psycopg.DataError(f"cannot send a value as timestamptz: {exc}") from exc


def register(adapters: psycopg.adapt.AdaptersMap) -> None:
    """Teach ``adapters`` (a connection's, or psycopg's global map) the three types."""
    adapters.register_dumper(TextArray, _TextArrayDumper)
    adapters.register_dumper(Int4Array, _Int4ArrayDumper)
    adapters.register_dumper(TimestamptzArray, _TimestamptzArrayDumper)


__all__ = ["Int4Array", "TextArray", "TimestamptzArray", "register"]
