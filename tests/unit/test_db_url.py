"""DATABASE_URL accepts both the libpq and the SQLAlchemy form."""

from __future__ import annotations

import pytest

from sdk.db.url import redact, to_libpq_dsn, to_sqlalchemy_url, with_database
from sdk.errors import ConfigurationError


@pytest.mark.parametrize(
    "given",
    [
        "postgresql://u:p@h:5432/d",
        "postgres://u:p@h:5432/d",
        "postgresql+psycopg://u:p@h:5432/d",
        "POSTGRESQL://u:p@h:5432/d",
    ],
)
def test_both_forms_normalise(given: str) -> None:
    assert to_libpq_dsn(given) == "postgresql://u:p@h:5432/d"
    assert to_sqlalchemy_url(given) == "postgresql+psycopg://u:p@h:5432/d"


def test_unix_socket_query_is_kept() -> None:
    url = "postgresql://postgres:@/postgres?host=/tmp/sock"
    assert with_database(url, "other") == "postgresql://postgres:@/other?host=/tmp/sock"


@pytest.mark.parametrize("bad", ["mysql://u@h/d", "localhost:5432", ""])
def test_unsupported_urls_raise_a_configuration_error(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="DATABASE_URL"):
        to_libpq_dsn(bad)


def test_redact_hides_the_password_only() -> None:
    assert redact("postgresql://u:s3cret@h/d") == "postgresql://u:***@h/d"
    assert redact("postgresql://u@h/d") == "postgresql://u@h/d"
    assert redact("postgresql://h/d?user=u&password=s3cret&sslmode=require") == (
        "postgresql://h/d?user=u&password=***&sslmode=require"
    )


def test_errors_do_not_echo_the_url() -> None:
    with pytest.raises(ConfigurationError) as info:
        to_libpq_dsn("admin:s3cret@host/db")
    assert "s3cret" not in str(info.value)
