"""The one database-error vocabulary: SQLSTATE -> class, and nobody else reads SQLSTATEs.

The errors are psycopg's own classes (``psycopg.errors.lookup(code)``, what psycopg
raises for that SQLSTATE), raw and wrapped the way SQLAlchemy wraps them.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import psycopg
import psycopg.errors
import psycopg_pool
import pytest
import sqlalchemy as sa

from sdk.db.errors import (
    DbFailure,
    classify,
    describe,
    no_partition_for_row,
    refused_row,
    refused_value,
)

ROOT = Path(__file__).resolve().parents[2]
U, R, M, X = (
    DbFailure.UNAVAILABLE,
    DbFailure.RETRYABLE,
    DbFailure.NOT_MIGRATED,
    DbFailure.REFUSED,
)

SQLSTATES: list[tuple[str, DbFailure]] = [
    ("08000", U),  # connection_exception
    ("08006", U),  # connection_failure
    ("08P01", U),  # protocol_violation
    ("28P01", U),  # invalid_password
    ("3D000", U),  # invalid_catalog_name: the database does not exist
    ("42501", U),  # insufficient_privilege
    ("25006", U),  # read_only_sql_transaction: a standby
    ("25P03", U),  # idle_in_transaction_session_timeout
    ("53100", U),  # disk_full
    ("53200", U),  # out_of_memory
    ("53300", U),  # too_many_connections
    ("57P01", U),  # admin_shutdown
    ("57P02", U),  # crash_shutdown
    ("57P03", U),  # cannot_connect_now
    ("57P05", U),  # idle_session_timeout
    ("58030", U),  # io_error
    ("40001", R),  # serialization_failure
    ("40P01", R),  # deadlock_detected
    ("40003", R),  # statement_completion_unknown
    ("55P03", R),  # lock_not_available (lock_timeout)
    ("57014", R),  # query_canceled (statement_timeout)
    ("42P01", M),  # undefined_table
    ("3F000", M),  # invalid_schema_name
    ("42703", M),  # undefined_column
    ("42704", M),  # undefined_object
    ("22001", X),  # string_data_right_truncation
    ("22P02", X),  # invalid_text_representation
    ("22021", X),  # character_not_in_repertoire
    ("23505", X),  # unique_violation
    ("23503", X),  # foreign_key_violation
    ("23514", X),  # check_violation (also: no partition for the row)
    ("23001", X),  # restrict_violation (our append-only triggers)
    ("P0001", X),  # raise_exception
    ("54000", X),  # program_limit_exceeded (string too long for a tsvector)
    ("42601", X),  # syntax_error
    ("42883", X),  # undefined_function: an operator mismatch is a bug, not a migration
    ("25P02", X),  # in_failed_sql_transaction
    ("0A000", X),  # feature_not_supported
    ("XX000", X),  # internal_error
]


def _raw(code: str) -> psycopg.Error:
    cls = psycopg.errors.lookup(code)
    assert cls.sqlstate == code
    return cls(f"injected {code}")


def _wrapped(err: psycopg.Error) -> sa.exc.DBAPIError:
    wrapped = sa.exc.DBAPIError.instance("SELECT 1", {}, err, psycopg.Error)
    assert wrapped.orig is err
    return wrapped


@pytest.mark.parametrize(("code", "expected"), SQLSTATES, ids=[c for c, _ in SQLSTATES])
def test_each_sqlstate_has_one_class_raw_or_wrapped(code: str, expected: DbFailure) -> None:
    assert classify(_raw(code)) is expected
    assert classify(_wrapped(_raw(code))) is expected


@pytest.mark.parametrize(
    "exc",
    [
        psycopg.OperationalError("connection failed: Connection refused"),  # on connect
        psycopg.InterfaceError("the connection is closed"),
        psycopg_pool.PoolTimeout("couldn't get a connection after 5.00 sec"),
        psycopg_pool.PoolClosed("the pool is closed"),
        sa.exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached"),
        sa.exc.DisconnectionError("connection lost"),
    ],
    ids=type,
)
def test_connection_failures_without_sqlstate_are_unavailable(exc: Exception) -> None:
    assert classify(exc) is DbFailure.UNAVAILABLE
    if isinstance(exc, psycopg.Error):
        assert classify(_wrapped(exc)) is DbFailure.UNAVAILABLE


def test_an_invalidated_connection_is_unavailable_whatever_the_code() -> None:
    wrapped = sa.exc.DBAPIError.instance(
        "SELECT 1", {}, _raw("XX000"), psycopg.Error, connection_invalidated=True
    )
    assert classify(wrapped) is DbFailure.UNAVAILABLE


def test_driver_side_errors_without_sqlstate_are_refusals() -> None:
    nul = psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
    params = psycopg.ProgrammingError("the query has 1 placeholder but 2 parameters were passed")
    assert classify(nul) is classify(params) is DbFailure.REFUSED
    assert refused_value(nul)
    assert refused_value(_wrapped(nul))
    assert not refused_value(params)


def test_refusal_details() -> None:
    assert refused_value(_raw("22001"))
    assert refused_value(_wrapped(_raw("22P02")))
    assert not refused_value(_raw("23505"))
    assert not refused_value(_raw("57014"))
    # Built here, the error names no constraint: as when no partition takes a row.
    assert no_partition_for_row(_raw("23514"))
    assert no_partition_for_row(_wrapped(_raw("23514")))
    assert not no_partition_for_row(_raw("23505"))


@pytest.mark.parametrize("code", ["22001", "22P02", "23505", "23503", "54000", "P0001"])
def test_refusals_caused_by_the_data_are_row_refusals(code: str) -> None:
    assert refused_row(_raw(code))
    assert refused_row(_wrapped(_raw(code)))


@pytest.mark.parametrize("code", ["XX000", "42883", "42601", "0A000", "25P02", "57014", "08006"])
def test_refusals_not_caused_by_the_data_are_not_row_refusals(code: str) -> None:
    """A bug or a server problem must never be blamed on the event (and drop it)."""
    assert not refused_row(_raw(code))


def test_driver_side_row_refusals() -> None:
    assert refused_row(psycopg.DataError("PostgreSQL text fields cannot contain NUL"))
    assert not refused_row(psycopg.ProgrammingError("1 placeholder but 2 parameters"))
    assert not refused_row(_raw("23514"))  # no partition: the month, not the row


def test_anything_else_is_not_a_database_error() -> None:
    with pytest.raises(TypeError, match="not a database error"):
        classify(ValueError("a bug"))
    with pytest.raises(TypeError):
        classify(sa.exc.InvalidRequestError("misuse of SQLAlchemy"))


def test_describe_gives_the_first_line_and_a_hint_for_the_pool() -> None:
    assert describe(_wrapped(_raw("57014"))) == "injected 57014"
    assert "raise the pool size" in describe(sa.exc.TimeoutError("QueuePool limit"))


# --- one module reads SQLSTATEs -------------------------------------------------------

ONLY = ROOT / "sdk" / "db" / "errors.py"
SCANNED = ("sdk", "ingest_api", "platform_defs")
CODES = {
    cls.sqlstate
    for cls in vars(psycopg.errors).values()
    if isinstance(cls, type) and issubclass(cls, psycopg.Error) and cls.sqlstate
}
CLASSES = {code[:2] for code in CODES} | {c[:3] for c in CODES if not c[:3].isdigit()}
# SQLSTATE-ish tokens with a letter (55P03, 57P, 3F000): rare enough to find in comments.
CODE_TEXT = re.compile(r"\b(?=[0-9A-Z]*[0-9])(?=[0-9A-Z]*[A-Z])[0-9A-Z]{3,5}\b")
CODE_NAMES = {"sqlstate", "pgcode", "pgerror", "diag"}


def _offences(path: Path) -> list[str]:
    text = path.read_text()
    found = [f"mentions {m!r}" for m in re.findall(r"(?i)sqlstate|pgcode", text)]
    found += [f"code-like {m!r}" for m in CODE_TEXT.findall(text) if m in CODES | CLASSES]
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value in CODES or node.value in CLASSES:
                found.append(f"string {node.value!r} (line {node.lineno})")
        elif isinstance(node, ast.Attribute) and node.attr in CODE_NAMES:
            found.append(f".{node.attr} (line {node.lineno})")
        elif isinstance(node, ast.Attribute) and node.attr == "errors":
            if isinstance(node.value, ast.Name) and node.value.id == "psycopg":
                found.append(f"psycopg.errors (line {node.lineno})")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("psycopg"):
            if node.module == "psycopg.errors" or any(a.name == "errors" for a in node.names):
                found.append(f"imports psycopg.errors (line {node.lineno})")
        elif isinstance(node, ast.Import) and any(a.name == "psycopg.errors" for a in node.names):
            found.append(f"imports psycopg.errors (line {node.lineno})")
    return found


def test_only_sdk_db_errors_reads_sqlstates() -> None:
    offenders = {}
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            if path != ONLY and (found := _offences(path)):
                offenders[str(path.relative_to(ROOT))] = found
    assert offenders == {}


def test_the_scan_finds_what_it_looks_for() -> None:
    """The scan above must be able to fail: the vocabulary module itself trips it."""
    found = " ".join(_offences(ONLY))
    for needle in ("'55P03'", "'57014'", "'08'", "'57P'", "mentions 'sqlstate'"):
        assert needle in found
