"""``wdp``: operate the local stack and the database.

Commands import their dependencies lazily so ``wdp --help`` stays fast and works
without the optional extras installed.
"""

from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console

from sdk.errors import WdpError

app = typer.Typer(
    name="wdp",
    help="Workflow data platform: artifacts, telemetry and operations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The database (embedded Postgres unless DATABASE_URL is set).")
app.add_typer(db_app, name="db")

err = Console(stderr=True)


@db_app.command("start")
def db_start() -> None:
    """Start (or reuse) the embedded Postgres and print its URL."""
    from sdk.db import embedded
    from sdk.settings import get_settings

    settings = get_settings()
    if settings.database_url is not None:
        err.print("DATABASE_URL is set: nothing to start, wdp uses that database.")
        return
    url = embedded.start(settings.wdp_data_dir)
    err.print(f"embedded Postgres running, data in {embedded.pgdata_dir(settings.wdp_data_dir)}")
    typer.echo(url)


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded Postgres."""
    from sdk.db import embedded
    from sdk.settings import get_settings

    stopped = embedded.stop(get_settings().wdp_data_dir)
    err.print("embedded Postgres stopped" if stopped else "embedded Postgres was not running")


@db_app.command("url")
def db_url() -> None:
    """Print a libpq URI for the configured database (usable by psql and psycopg)."""
    from sdk.db.engine import resolve_database_url

    typer.echo(resolve_database_url())


@app.command("migrate")
def migrate(
    revision: str = typer.Argument("head", help="Target revision."),
) -> None:
    """Upgrade the configured database to REVISION (alembic upgrade)."""
    from sdk.db import migrate as migrations
    from sdk.db.engine import resolve_database_url

    url = resolve_database_url()
    migrations.upgrade(url, revision)
    err.print(f"database at revision {migrations.current_revision(url)}")


@app.command("run")
def run() -> None:
    """Run the local stack in the foreground until Ctrl-C."""
    from sdk.cli.stack import run_stack

    raise typer.Exit(run_stack(console=err))


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("pgserver", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        app()
    except WdpError as exc:
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(2)


if __name__ == "__main__":
    main()
