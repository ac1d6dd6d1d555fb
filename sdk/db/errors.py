"""One vocabulary for database failures: what went wrong, by SQLSTATE, never by message.

Every package that talks to Postgres (artifacts, the knowledge base, partition
maintenance, the ingest API) asks :func:`classify` what a driver error means and maps
the answer to its own domain error or HTTP status. No other module looks at SQLSTATE
codes (``tests/unit/test_db_errors.py`` enforces it), so "is the database down?" has
one answer everywhere. Messages are never matched: they are translated, and change
with the server's version and ``lc_messages``.

The four answers, and what maps to each:

``UNAVAILABLE`` - the database, or our access to it, is unusable right now, whatever
    the statement. Retry the whole operation later, with backoff; HTTP 503 with
    ``Retry-After``. Class 08 (connection exception), 28 (invalid authorization), 53
    (insufficient resources: disk full, out of memory, too many connections), 57P
    (admin/crash shutdown, cannot connect now, database dropped, idle session
    timeout), 58 (system or I/O error); 3D000 (the database does not exist), 42501
    (insufficient privilege: the role's grants, not the data), 25006 (read-only
    transaction: connected to a standby, e.g. after a failover), 25P03 (idle in
    transaction timeout: the server closed the session). Also every failure without
    a SQLSTATE that is about the connection: psycopg's ``OperationalError`` /
    ``InterfaceError`` raised on connect or on a dead socket, psycopg_pool's
    ``PoolTimeout``, SQLAlchemy's pool ``TimeoutError`` and ``DisconnectionError``,
    and any error SQLAlchemy reports as having invalidated the connection.

``RETRYABLE`` - the database is fine; this attempt lost a race or ran out of time.
    Retrying the same transaction soon usually succeeds; HTTP 503 with
    ``Retry-After``. Class 40 (serialization failure, deadlock detected, statement
    completion unknown), 55P03 (lock not available: ``lock_timeout``), 57014 (query
    canceled: ``statement_timeout`` or ``pg_cancel_backend``).
    A statement timeout is retryable on purpose: the statement was valid and the
    connection is healthy, it only waited (on locks, on a loaded server) longer than
    allowed - the same statement succeeds when the database is less busy. It is not a
    refusal: that would let the knowledge base record a version as unstorable for good
    and make the ingest API answer 422, which a client takes as "drop this event".
    A statement that always times out keeps failing as retryable, visibly, in logs.

``NOT_MIGRATED`` - the statement names something the schema lacks: 42P01 (undefined
    table), 3F000 (undefined schema), 42703 (undefined column), 42704 (undefined
    object, e.g. a type). Our statements are fixed, so the database is behind the
    code: run ``wdp migrate``. HTTP 503 saying so.

``REFUSED`` - everything else: the database said no to this statement or its data,
    and saying it again gets the same answer. Class 22 (data exception: see
    :func:`refused_value`), 23 (integrity constraint; :func:`no_partition_for_row`
    tells a missing partition from a CHECK), 54 (program limit exceeded, e.g. a string
    too long for a tsvector), P0001
    (a trigger's ``RAISE``), the rest of class 42 (syntax, operator does not exist,
    ...), 0A (feature not supported), XX (internal error), and
    driver-side errors without a SQLSTATE that are not about the connection (psycopg's
    ``DataError`` for a NUL in text, ``ProgrammingError`` for a parameter mismatch).
    Only :func:`refused_row` refusals (22, 23, 54, P0001, a client-side DataError) are
    blamed on the data: the others are bugs or server problems, so callers keep the
    data (HTTP 503, a KB batch failed and retried) instead of refusing it for good.
    Callers isolate the offending row or report the refusal; they never retry it.
"""

from __future__ import annotations

import enum

import psycopg
import sqlalchemy as sa


class DbFailure(enum.StrEnum):
    """What a database error means for the caller: see the module docstring."""

    UNAVAILABLE = "unavailable"
    RETRYABLE = "retryable"
    NOT_MIGRATED = "not-migrated"
    REFUSED = "refused"


# What `except` clauses catch to hand an error to classify(): the driver's errors (raw,
# as COPY and the async ingest pool raise them) and SQLAlchemy's wrappers of them, plus
# SQLAlchemy's own pool failures, which wrap nothing.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    sa.exc.DBAPIError,
    sa.exc.TimeoutError,
    sa.exc.DisconnectionError,
    psycopg.Error,
)

_UNAVAILABLE_CLASSES = ("08", "28", "53", "57P", "58")
_UNAVAILABLE_CODES = frozenset({"3D000", "42501", "25006", "25P03"})
_RETRYABLE_CLASSES = ("40",)
_RETRYABLE_CODES = frozenset({"55P03", "57014"})
_NOT_MIGRATED_CODES = frozenset({"42P01", "3F000", "42703", "42704"})
_DATA_EXCEPTION_CLASS = "22"
_CHECK_VIOLATION = "23514"


def driver_error(exc: BaseException) -> BaseException:
    """The psycopg error inside a SQLAlchemy one (raw psycopg errors are returned as is)."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None:
        return exc.orig
    return exc


def _sqlstate(exc: BaseException) -> str:
    return getattr(driver_error(exc), "sqlstate", None) or ""


def classify(exc: BaseException) -> DbFailure:
    """What ``exc`` (one of :data:`DATABASE_ERRORS`) means; see the module docstring.

    Raises TypeError for anything else: a bug in our code is not a database failure,
    and calling it one would hide it behind a retry.
    """
    if not isinstance(exc, DATABASE_ERRORS):
        raise TypeError(f"not a database error: {type(exc).__name__}")
    if isinstance(exc, sa.exc.TimeoutError | sa.exc.DisconnectionError):
        return DbFailure.UNAVAILABLE
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return DbFailure.UNAVAILABLE
    state = _sqlstate(exc)
    if not state:
        err = driver_error(exc)
        if isinstance(err, psycopg.OperationalError | psycopg.InterfaceError):
            return DbFailure.UNAVAILABLE
        return DbFailure.REFUSED
    if state.startswith(_UNAVAILABLE_CLASSES) or state in _UNAVAILABLE_CODES:
        return DbFailure.UNAVAILABLE
    if state.startswith(_RETRYABLE_CLASSES) or state in _RETRYABLE_CODES:
        return DbFailure.RETRYABLE
    if state in _NOT_MIGRATED_CODES:
        return DbFailure.NOT_MIGRATED
    return DbFailure.REFUSED


def refused_value(exc: BaseException) -> bool:
    """A refusal of a value the column or type cannot hold (class 22, data exception,
    or psycopg's client-side DataError, which has no SQLSTATE)."""
    if classify(exc) is not DbFailure.REFUSED:
        return False
    state = _sqlstate(exc)
    if state:
        return state.startswith(_DATA_EXCEPTION_CLASS)
    return isinstance(driver_error(exc), psycopg.DataError)


def no_partition_for_row(exc: BaseException) -> bool:
    """A row that no partition of a partitioned table accepts (23514 naming no
    constraint). A real CHECK violation has the same SQLSTATE but names its constraint."""
    if _sqlstate(exc) != _CHECK_VIOLATION:
        return False
    diag = getattr(driver_error(exc), "diag", None)
    return getattr(diag, "constraint_name", None) is None


# Refusals caused by the data in the statement: a value or type (22), an integrity
# constraint (23), a program limit such as a row too large (54), a trigger's RAISE (P0001).
# Any other refusal (a syntax error, an undefined function, an internal error) is a
# problem of the code or the server, and must not be blamed on - and drop - the data.
_ROW_REFUSAL_CLASSES = ("22", "23", "54")
_RAISE_EXCEPTION = "P0001"


def refused_row(exc: BaseException) -> bool:
    """The database refused the statement because of the data in it (not a partition
    that is missing: see :func:`no_partition_for_row`)."""
    if classify(exc) is not DbFailure.REFUSED or no_partition_for_row(exc):
        return False
    state = _sqlstate(exc)
    if state:
        return state.startswith(_ROW_REFUSAL_CLASSES) or state == _RAISE_EXCEPTION
    return isinstance(driver_error(exc), psycopg.DataError)


def unavailable_reason(exc: BaseException, *, tables: str) -> str | None:
    """The message for a failure that is not the statement's fault (unavailable,
    retryable, or ``tables`` missing: not migrated), or None for a refusal. One wording
    for every package that maps these to its own "unavailable" error."""
    failure = classify(exc)
    if failure is DbFailure.UNAVAILABLE:
        return f"the database is unavailable: {describe(exc)}"
    if failure is DbFailure.RETRYABLE:
        # deadlock / serialization failure / lock or statement timeout: the database
        # is fine, this attempt lost a race or waited too long.
        return f"the database aborted the operation ({describe(exc)}); retry it"
    if failure is DbFailure.NOT_MIGRATED:
        return f"the {tables} are missing ({describe(exc)}): run `wdp migrate`"
    return None


def describe(exc: BaseException) -> str:
    """The first line of the driver's message (or the exception's type), for logs and
    error messages; never parsed."""
    text = str(driver_error(exc)).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    if isinstance(exc, sa.exc.TimeoutError):  # the pool, not the server: all connections busy
        return f"no pooled connection became free in time ({line}); retry, or raise the pool size"
    return line
