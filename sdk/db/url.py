"""Database URL forms.

Users give ``DATABASE_URL`` either as a libpq URI (what psql, psycopg and Dagster take)
or as a SQLAlchemy URL with a driver (``postgresql+psycopg://``). wdp needs both forms:
this module converts between them in one place so no caller parses URLs by hand.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from sdk.errors import ConfigurationError

_LIBPQ_SCHEMES = {"postgresql", "postgres"}
_SQLALCHEMY_SCHEMES = {"postgresql+psycopg", "postgresql+psycopg2", "postgresql+psycopg3"}


def _split(url: str) -> tuple[str, str]:
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigurationError(
            "DATABASE_URL must be a URL such as postgresql://user:pass@host:5432/db "
            "(the value given has no '://')"
        )
    scheme = scheme.lower()
    if scheme not in _LIBPQ_SCHEMES | _SQLALCHEMY_SCHEMES:
        raise ConfigurationError(
            f"DATABASE_URL scheme {scheme!r} is not supported: use postgresql:// "
            "or postgresql+psycopg://"
        )
    return scheme, rest


def to_sqlalchemy_url(url: str) -> str:
    """Return ``url`` as a SQLAlchemy URL that uses psycopg 3."""
    _, rest = _split(url)
    return f"postgresql+psycopg://{rest}"


def to_libpq_dsn(url: str) -> str:
    """Return ``url`` as a libpq URI usable by psql, psycopg and Dagster."""
    _, rest = _split(url)
    return f"postgresql://{rest}"


def with_database(url: str, database: str) -> str:
    """Return ``url`` pointing at another database on the same server (query kept)."""
    parts = urlsplit(to_libpq_dsn(url))
    return urlunsplit(parts._replace(path=f"/{database}"))


def redact(url: str) -> str:
    """Return ``url`` with any password (in the authority or the query) replaced."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password:
        netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
    query = "&".join(
        f"{k}=***" if k.lower() == "password" else f"{k}={v}" if sep else k
        for k, sep, v in (item.partition("=") for item in parts.query.split("&") if item)
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query))
