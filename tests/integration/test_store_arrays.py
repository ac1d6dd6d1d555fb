"""The event store's one-pass binary array encoders (ingest_api.arrays) against a real
Postgres: whatever they send, Postgres reads back as the values given, exactly as it
reads psycopg's own list dumping; what they cannot send exactly they refuse."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest_api.arrays import Int4Array, TextArray, TimestamptzArray
from sdk.db.url import with_database
from sdk.telemetry.values import new_ulid


@pytest.fixture(scope="module")
def conn(migrated_db_url: str) -> Iterator[psycopg.Connection[Any]]:
    import ingest_api.store  # noqa: F401 - registers the encoders on psycopg's global map

    with psycopg.connect(migrated_db_url, autocommit=True) as connection:
        yield connection


def round_trip(conn: psycopg.Connection[Any], value: Any, sql_type: str) -> Any:
    """What Postgres makes of ``value``, and whether it equals psycopg's own dumping of
    the same plain list (compared in SQL, so as Postgres reads both)."""
    row = conn.execute(
        f"SELECT %b::{sql_type}[], %b::{sql_type}[] IS NOT DISTINCT FROM %b::{sql_type}[]",
        (value, value, list(value) or None),
    ).fetchone()
    assert row is not None
    back, same_as_psycopg = row
    if value:  # psycopg sends an empty list untyped: nothing to compare with
        assert same_as_psycopg is True
    return back


texts = st.lists(
    st.none() | st.text(alphabet=st.characters(blacklist_characters="\x00", codec="utf-8")),
    max_size=20,
)
# Within a day of the ends of Python's range, so each reads back in Postgres's UTC.
instants = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-11)), timezone(timedelta(hours=5))]),
)
fast = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@fast
@given(values=texts)
def test_text_arrays_read_back_as_sent(
    conn: psycopg.Connection[Any], values: list[str | None]
) -> None:
    assert round_trip(conn, TextArray(values), "text") == values


@fast
@given(values=st.lists(st.integers(min_value=-(2**31), max_value=2**31 - 1), max_size=20))
def test_int4_arrays_read_back_as_sent(conn: psycopg.Connection[Any], values: list[int]) -> None:
    assert round_trip(conn, Int4Array(values), "int") == values


@fast
@given(values=st.lists(instants, max_size=20))
def test_timestamptz_arrays_read_back_as_sent(
    conn: psycopg.Connection[Any], values: list[datetime]
) -> None:
    back = round_trip(conn, TimestamptzArray(values), "timestamptz")
    assert back == values  # aware datetimes compare as instants, to the microsecond


def test_text_is_sent_in_the_connection_encoding(migrated_db_url: str) -> None:
    import ingest_api.store  # noqa: F401

    with psycopg.connect(migrated_db_url, autocommit=True) as latin:
        latin.execute("SET client_encoding TO 'LATIN1'")
        row = latin.execute(
            "SELECT (%b::text[])[1] = U&'caf\\00e9', octet_length((%b::text[])[1])",
            (TextArray(["café"]), TextArray(["café"])),
        ).fetchone()
        assert row == (True, 5)  # é is two bytes in the UTF-8 database


@pytest.mark.parametrize(
    ("value", "sql_type", "problem"),
    [
        (TimestamptzArray([datetime(2026, 1, 1)]), "timestamptz", "timestamptz"),  # naive
        (Int4Array([2**31]), "int", "int4"),
        (TextArray([b"bytes"]), "text", "text"),  # type: ignore[list-item]
        (TextArray(["\udcff"]), "text", "text"),  # a lone surrogate has no UTF-8 form
    ],
)
def test_what_cannot_be_sent_exactly_is_refused(
    conn: psycopg.Connection[Any], value: Any, sql_type: str, problem: str
) -> None:
    with pytest.raises(psycopg.DataError, match=f"as {problem}"):
        conn.execute(f"SELECT %b::{sql_type}[]", (value,))


def test_text_goes_to_a_sql_ascii_database_as_psycopg_sends_it(pg_server_url: str) -> None:
    """psycopg sends str as UTF-8 to a SQL_ASCII database (encoding "ascii"); so must we,
    or any non-ASCII text there would be refused (422) where it was stored before."""
    import ingest_api.store  # noqa: F401

    name = f"wdp_test_ascii_{new_ulid().lower()}"
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name} ENCODING 'SQL_ASCII' TEMPLATE template0")
    try:
        with psycopg.connect(with_database(pg_server_url, name), autocommit=True) as conn:
            assert conn.info.encoding == "ascii"
            row = conn.execute(
                "SELECT (%b::text[])[1]::bytea, (%b::text[])[1]::bytea",
                (TextArray(["café"]), ["café"]),
            ).fetchone()
            assert row == ("café".encode(), "café".encode())
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
