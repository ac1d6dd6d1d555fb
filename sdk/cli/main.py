"""``wdp``: operate the local stack and the database.

Commands import their dependencies lazily so ``wdp --help`` stays fast and works
without the optional extras installed.
"""

from __future__ import annotations

import logging
import os
import sys

import typer
from rich.console import Console

from sdk import logs
from sdk.cli.artifacts import artifacts_app
from sdk.cli.demo import demo
from sdk.cli.help import Typer
from sdk.cli.kb import kb_app
from sdk.cli.prices import prices_app
from sdk.cli.reads import fail
from sdk.cli.runs import runs_app
from sdk.cli.usage import usage
from sdk.errors import WdpError

app = Typer(
    name="wdp",
    help="Workflow data platform: artifacts, telemetry and operations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = Typer(help="The database (embedded Postgres unless DATABASE_URL is set).")
app.add_typer(db_app, name="db")
app.add_typer(artifacts_app, name="artifacts")
app.add_typer(kb_app, name="kb")
app.add_typer(runs_app, name="runs")
app.add_typer(prices_app, name="prices")

err = Console(stderr=True)
log = logging.getLogger("wdp")


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
    revision: str = typer.Argument("head", help="Target revision.", metavar="REVISION"),
) -> None:
    """Upgrade the configured database to REVISION (alembic upgrade)."""
    from sdk.db import migrate as migrations
    from sdk.db.engine import resolve_database_url

    url = resolve_database_url()
    migrations.upgrade(url, revision)
    err.print(f"database at revision {migrations.current_revision(url)}")


@app.command("api")
def api(
    host: str = typer.Option("127.0.0.1", help="Interface to bind.", metavar="HOST"),
    port: int = typer.Option(8000, help="TCP port.", metavar="PORT"),
    workers: int = typer.Option(1, min=1, help="Worker processes.", metavar="N"),
    server: str = typer.Option("uvicorn", help="ASGI server: uvicorn or granian.", metavar="NAME"),
) -> None:
    """Serve the ingest API (POST /telemetry/events)."""
    from sdk.settings import get_settings

    # A server's logs usually go to a collector: JSON unless WDP_LOG_FORMAT says text.
    logs.configure_logging(default="json")
    settings = get_settings()
    if not settings.api_keys and not settings.ingest_auth_disabled:
        fail(
            "INGEST_API_KEYS is empty: set one or more comma-separated keys, or "
            "INGEST_AUTH_DISABLED=true to run without authentication"
        )
        raise typer.Exit(2)
    if server not in ("uvicorn", "granian"):
        fail(f"--server must be uvicorn or granian (got {server!r})")
        raise typer.Exit(2)
    if settings.database_url is None:
        # Start the embedded database once here, not in every worker.
        from sdk.db.engine import resolve_database_url

        os.environ["DATABASE_URL"] = resolve_database_url(settings)
    from sdk.cli.serve import serve

    serve(server=server, host=host, port=port, workers=workers)


events_app = Typer(help="The workflow event contract.")
app.add_typer(events_app, name="events")


@events_app.command("schema")
def events_schema(
    event_name: str | None = typer.Argument(
        None, help="One event name; all when omitted.", metavar="EVENT_NAME"
    ),
) -> None:
    """Print the JSON Schema of every event (or of one)."""
    import json

    from sdk.telemetry.events import event_json_schemas

    schemas = event_json_schemas()
    if event_name is not None:
        if event_name not in schemas:
            fail(f"unknown event {event_name!r}; known: {', '.join(schemas)}")
            raise typer.Exit(2)
        schemas = {event_name: schemas[event_name]}
    typer.echo(json.dumps(schemas, indent=2))


@app.command("run")
def run(
    host: str = typer.Option(
        "127.0.0.1",
        help="Interface for the API and the Dagster UI (which has no login).",
        metavar="HOST",
    ),
    api_port: int = typer.Option(8000, help="Port of the ingest API.", metavar="PORT"),
    dagster_port: int = typer.Option(3000, help="Port of the Dagster UI.", metavar="PORT"),
    no_dagster: bool = typer.Option(False, "--no-dagster", help="Do not start Dagster."),
) -> None:
    """Run the local stack in the foreground until Ctrl-C (also: `wdp dev`)."""
    from sdk.cli.stack import run_stack

    raise typer.Exit(
        run_stack(
            host=host,
            api_port=api_port,
            dagster_port=None if no_dagster else dagster_port,
        )
    )


app.command("dev", help="Run the local stack in the foreground until Ctrl-C (same as run).")(run)
app.command("demo")(demo)
app.command("usage")(usage)


def main() -> None:
    from pydantic import ValidationError
    from sqlalchemy.exc import OperationalError

    try:
        logs.configure_logging()
    except ValidationError:
        logs.configure_logging("text")  # the command reports the bad setting below
    for noisy in ("pgserver", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        app()
    except WdpError as exc:
        fail(str(exc))
        sys.exit(2)
    except ValidationError as exc:
        # Settings are validated on first use: name the variable, not the traceback.
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        fail(f"invalid configuration: {problems}")
        sys.exit(2)
    except OperationalError as exc:
        fail(f"cannot use the database: {exc.orig}")
        sys.exit(2)


if __name__ == "__main__":
    main()
