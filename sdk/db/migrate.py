"""Run wdp's Alembic migrations from code (``wdp migrate``, ``make run``, tests).

The same ``alembic.ini`` and ``migrations/`` serve the ``alembic`` command line at the
repository root, so ``alembic upgrade head`` and ``wdp migrate`` are interchangeable.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from sdk.db.engine import create_engine
from sdk.errors import ConfigurationError

REPO_ROOT = Path(__file__).resolve().parents[2]
VERSION_TABLE = "wdp_alembic_version"


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config for ``url`` (or the configured database when None)."""
    ini = REPO_ROOT / "alembic.ini"
    if not ini.exists():
        raise ConfigurationError(f"{ini} not found: migrations run from a source checkout of wdp")
    config = Config(str(ini))
    config.attributes["skip_logging_config"] = True
    if url is not None:
        # ConfigParser interpolates '%': escape it so passwords with % survive.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(url: str | None = None) -> str | None:
    """The revision the database is at (None before the first migration)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
            return context.get_current_revision()
    finally:
        engine.dispose()
