"""Connections: resolve the configured database and build engines for it."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from sdk.db import embedded
from sdk.db.url import to_libpq_dsn, to_sqlalchemy_url
from sdk.settings import WdpSettings, get_settings


def resolve_database_url(settings: WdpSettings | None = None) -> str:
    """Return the libpq URI of the database wdp should use.

    ``DATABASE_URL`` wins; without it the embedded Postgres under ``WDP_DATA_DIR``
    is started (or reused), so every entry point works on a fresh machine.
    """
    settings = settings or get_settings()
    if settings.database_url is not None:
        return to_libpq_dsn(settings.database_url.get_secret_value())
    return embedded.start(settings.wdp_data_dir)


def create_engine(
    url: str | None = None, *, settings: WdpSettings | None = None, **kwargs: Any
) -> sa.Engine:
    """Create a SQLAlchemy engine on psycopg 3 for ``url`` or the configured database."""
    dsn = url if url is not None else resolve_database_url(settings)
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(to_sqlalchemy_url(dsn), **kwargs)
