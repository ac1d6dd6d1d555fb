"""Which database errors mean "the database is unavailable" and which "it refused this".

psycopg files many refusals under OperationalError (a statement timeout, a lock not
available, a value too large for a tsvector), so the class alone does not tell a dead
connection from a bad row: the SQLSTATE does (class 08 is "connection exception").
"""

from __future__ import annotations

import psycopg
import sqlalchemy as sa

# Connection lost, server shutting down, out of resources: retry later, as a whole.
UNAVAILABLE_CLASSES = ("08", "53", "57P")


def driver_error(exc: BaseException) -> BaseException:
    """The psycopg error inside a SQLAlchemy one (COPY raises psycopg's directly)."""
    return exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None else exc


def is_unavailable(exc: BaseException) -> bool:
    """True when the failure is the database's state, not the statement's content."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    err = driver_error(exc)
    state = getattr(err, "sqlstate", None) or ""
    if state:
        return state.startswith(UNAVAILABLE_CLASSES)
    return isinstance(err, psycopg.OperationalError | psycopg.InterfaceError)


def first_line(exc: BaseException) -> str:
    text = str(driver_error(exc)).strip()
    return text.splitlines()[0] if text else type(exc).__name__
