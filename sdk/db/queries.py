"""Sans-IO read queries: SQL text and a pure shaping step, run by a sync or an async driver.

A read that both the async ingest API (psycopg ``AsyncConnection`` from its pool) and the
synchronous CLI answer is written once, as a :data:`Query`: a generator that yields the
:class:`Statement` s it needs (SQL with psycopg ``%(name)s`` placeholders, and the
parameters), receives each one's rows (dicts, by column name) and returns the result.
Nothing in it does I/O, so the same SQL and the same row shaping serve both callers, and
a test can drive a query with rows of its own. A query whose second statement depends on
the first one's answer (the usage report asks which days are aggregated before it reads
them) is still one generator.

:func:`run_sync` and :func:`run_async` are the only drivers; both run every statement
on the one connection they are given, in whatever transaction mode it is in.
:func:`read_sync` and :func:`read_async` are how readers call them: the whole query in
one read-only ``REPEATABLE READ`` transaction (one snapshot, so a run and its events, or
the usage census and the rows it chose, agree) with a statement timeout of its own, so a
slow read ends instead of holding its connection.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar

import psycopg
from psycopg.rows import dict_row

T = TypeVar("T")

Row: TypeAlias = dict[str, Any]


@dataclass(frozen=True)
class Statement:
    """One SQL statement and its parameters (psycopg ``%(name)s`` placeholders)."""

    sql: str
    params: Mapping[str, Any] = field(default_factory=dict)


# Yields statements, is sent each statement's rows, returns the result.
Query: TypeAlias = Generator[Statement, Sequence[Row], T]


def single(statement: Statement, shape: Callable[[Sequence[Row]], T]) -> Query[T]:
    """A query of one statement whose rows ``shape`` turns into the result."""
    rows = yield statement
    return shape(rows)


def run_sync(conn: psycopg.Connection[Any], query: Query[T]) -> T:
    """Answer ``query`` on a synchronous psycopg connection."""
    try:
        statement = next(query)
        while True:
            with conn.cursor(row_factory=dict_row) as cur:
                cur.execute(statement.sql, statement.params)
                rows = cur.fetchall()
            statement = query.send(rows)
    except StopIteration as done:
        result: T = done.value
        return result


def snapshot_prologue(statement_timeout_ms: int | None) -> list[str]:
    """What a read runs first in its transaction: one snapshot, read-only, and (if given)
    a timeout for each of its statements. Plain text, not parameters: Postgres takes none
    in SET."""
    sql = ["SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"]
    if statement_timeout_ms is not None:
        sql.append(f"SET LOCAL statement_timeout = {int(statement_timeout_ms)}")
    return sql


def read_sync(
    conn: psycopg.Connection[Any], query: Query[T], *, statement_timeout_ms: int | None = None
) -> T:
    """Answer ``query`` in one read-only snapshot transaction (see the module docstring)."""
    with conn.transaction():
        for sql in snapshot_prologue(statement_timeout_ms):
            conn.execute(sql)
        return run_sync(conn, query)


async def read_async(
    conn: psycopg.AsyncConnection[Any],
    query: Query[T],
    *,
    statement_timeout_ms: int | None = None,
) -> T:
    """:func:`read_sync` on an asyncio connection."""
    async with conn.transaction():
        for sql in snapshot_prologue(statement_timeout_ms):
            await conn.execute(sql)
        return await run_async(conn, query)


async def run_async(conn: psycopg.AsyncConnection[Any], query: Query[T]) -> T:
    """Answer ``query`` on an asyncio psycopg connection."""
    try:
        statement = next(query)
        while True:
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(statement.sql, statement.params)
                rows = await cur.fetchall()
            statement = query.send(rows)
    except StopIteration as done:
        result: T = done.value
        return result
