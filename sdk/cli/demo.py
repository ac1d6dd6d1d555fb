"""``wdp demo``: run the example orchestrator against the local stack, show where it went.

Needs a source checkout (``examples/`` is not installed) and the ``langgraph`` extra.
Runs N work items through ``examples/orchestrator`` (events to the ingest API, drafts
to the artifact store), counts what reached Postgres, and asks Dagster to ingest the
drafts into the knowledge base and aggregate today's events. Everything it imports
beyond typer and rich is imported inside the command, so ``wdp --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.box import HEAVY_HEAD
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sdk.cli.tables import Column, id_column, print_table

if TYPE_CHECKING:
    from examples.orchestrator.run import ItemResult, RunSummary
    from sdk.settings import WdpSettings

err = Console(stderr=True)
out = Console()

FLUSH_TIMEOUT_S = 30.0
DAGSTER_HOST = "127.0.0.1"
TERMINAL = ("SUCCESS", "FAILURE", "CANCELED")


def demo(
    items: int = typer.Option(
        5, "--items", "-n", min=1, max=500, help="Work items to run.", metavar="N"
    ),
    api_url: str | None = typer.Option(
        None,
        help="Base URL of the ingest API (default: TELEMETRY_ENDPOINT, http://127.0.0.1:8000).",
        metavar="URL",
    ),
    api_port: int | None = typer.Option(
        None,
        min=1,
        max=65535,
        help="Port of the ingest API on 127.0.0.1 (wdp run's --api-port); instead of --api-url.",
        metavar="PORT",
    ),
    dagster_port: int = typer.Option(
        3000, help="Port of the Dagster UI (wdp run's).", metavar="PORT"
    ),
    no_dagster: bool = typer.Option(
        False, "--no-dagster", help="Do not launch the KB ingestion and aggregation runs."
    ),
    wait: float = typer.Option(
        120.0,
        min=0,
        help="Seconds to wait for the Dagster runs to finish (0: do not wait).",
        metavar="SECONDS",
    ),
) -> None:
    """Run the example LangGraph orchestrator against the local stack (`make run`)."""
    import sdk

    root = Path(sdk.__file__).resolve().parents[1]
    if not (root / "examples" / "orchestrator" / "graph.py").is_file():
        err.print("[red]error:[/red] wdp demo needs a source checkout (examples/orchestrator)")
        raise typer.Exit(2)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        import langgraph  # noqa: F401
    except ImportError:
        err.print("[red]error:[/red] wdp demo needs the langgraph extra: pip install -e '.\\[all]'")
        raise typer.Exit(2) from None

    if api_url is not None and api_port is not None:
        err.print("[red]error:[/red] pass --api-url or --api-port, not both")
        raise typer.Exit(2)
    source = _point_at_api(api_url, api_port)

    from sdk.settings import get_settings

    settings = get_settings()
    problem = _ingest_api_problem(settings, source)
    if problem is not None:
        err.print(f"[red]error:[/red] {escape(problem)}")
        raise typer.Exit(2)

    summary = _run(items)
    _flush()
    complete = _report(summary)
    today = datetime.now(UTC).date().isoformat()
    if not no_dagster:
        done = _launch_dagster(dagster_port, today, wait)
        if done:
            _report_dagster(summary, today, done)
    _where_to_look(summary, dagster_port, dagster=not no_dagster)
    _browser_link(summary, settings.telemetry_endpoint)
    if not complete:
        err.print("[red]error:[/red] Postgres holds other event counts than the demo sent")
        raise typer.Exit(1)


# --- 1. is the ingest API up? ------------------------------------------------------------

ELSEWHERE = (
    "if the API listens elsewhere, pass --api-port PORT (on 127.0.0.1) or --api-url URL, "
    "or set TELEMETRY_ENDPOINT"
)


def _point_at_api(api_url: str | None, api_port: int | None) -> str:
    """Make the options the endpoint of everything this process sends; say where it came from.

    The demo's events go through the default telemetry client, which reads
    TELEMETRY_ENDPOINT like any other program using the SDK: the options set it here.
    """
    import os

    from sdk.settings import get_settings, reset_settings_cache

    if api_url is None and api_port is None:
        return (
            "TELEMETRY_ENDPOINT"
            if "telemetry_endpoint" in get_settings().model_fields_set
            else "the default"
        )
    os.environ["TELEMETRY_ENDPOINT"] = api_url or f"http://127.0.0.1:{api_port}"
    reset_settings_cache()
    return "--api-url" if api_url is not None else "--api-port"


def _api_key(settings: WdpSettings) -> str | None:
    """The key the default telemetry client sends (sdk.telemetry.default)."""
    if settings.telemetry_api_key is not None:
        return settings.telemetry_api_key.get_secret_value()
    local = settings.wdp_data_dir / "ingest-api-key"
    return (local.read_text().strip() or None) if local.is_file() else None


def _ingest_api_problem(settings: WdpSettings, source: str = "TELEMETRY_ENDPOINT") -> str | None:
    """Why events could not be delivered now, or None when the API is ready for them.

    ``source`` says where the endpoint came from (an option, the variable, the default),
    so a message about the wrong URL says what to change.
    """
    endpoint = settings.telemetry_endpoint.rstrip("/")
    start = (
        "start the local stack with `make run` (or `wdp run`) first, then run `wdp demo`; "
        + ELSEWHERE
    )
    if not endpoint.startswith(("http://", "https://")):
        return f"the ingest API URL must be http(s) (got {endpoint!r} from {source})"
    tried = f"{endpoint}/readyz"
    try:
        with urllib.request.urlopen(tried, timeout=3):  # noqa: S310
            pass
    except urllib.error.HTTPError as exc:
        detail = _detail(exc)
        return (
            f"the ingest API at {endpoint} is not ready ({exc.code}: {detail}; URL from "
            f"{source}); {start}"
        )
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return (
            f"the ingest API at {endpoint} is not reachable (GET {tried}: {reason}; URL from "
            f"{source}): {start}"
        )
    # An empty batch is refused as invalid, but only after the key was checked.
    key = _api_key(settings)
    request = urllib.request.Request(  # noqa: S310
        f"{endpoint}/telemetry/events/batch",
        data=b'{"events": []}',
        headers={"Content-Type": "application/json"}
        | ({"Authorization": f"Bearer {key}"} if key else {}),
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=3):  # noqa: S310
            pass
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            generated = settings.wdp_data_dir / "ingest-api-key"
            if settings.telemetry_api_key is not None:
                return (
                    f"the ingest API at {endpoint} refused TELEMETRY_API_KEY: set it to one of "
                    f"the API's INGEST_API_KEYS, or unset it to use {generated} (make run's)"
                )
            return (
                f"the ingest API at {endpoint} refused the key in {generated}"
                if key
                else f"no API key for the ingest API at {endpoint} ({generated} does not exist)"
            ) + ": set TELEMETRY_API_KEY to one of the API's INGEST_API_KEYS"
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return (
            f"the ingest API at {endpoint} is not reachable (POST {endpoint}/telemetry/events/"
            f"batch: {reason}; URL from {source}): {start}"
        )
    return None


def _detail(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read() or b"{}")
    except ValueError:
        return exc.reason
    return str(body.get("detail") or exc.reason) if isinstance(body, dict) else exc.reason


# --- 2. run the items --------------------------------------------------------------------


def _run(items: int) -> RunSummary:
    import asyncio

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from examples.orchestrator.run import run_items
    from sdk.artifacts import ArtifactService
    from sdk.telemetry.default import get_client

    client = get_client()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with (
        ArtifactService.from_settings() as artifacts,
        Progress(*columns, console=err, transient=False) as progress,
    ):
        task = progress.add_task(f"running {items} work items", total=items)
        return asyncio.run(
            run_items(
                items,
                artifacts=artifacts,
                client=client,
                on_item_done=lambda _: progress.advance(task),
            )
        )


# --- 3. deliver the events ---------------------------------------------------------------


def _flush() -> None:
    from sdk.settings import get_settings
    from sdk.telemetry.default import get_client

    client = get_client()
    with err.status("delivering events to the ingest API"):
        delivered = client.flush(timeout=FLUSH_TIMEOUT_S)
    stats = client.stats()
    if not delivered:
        spool = get_settings().telemetry_spool_path
        err.print(
            f"[yellow]warning:[/yellow] not every event was delivered within "
            f"{FLUSH_TIMEOUT_S:.0f} s ({stats.queued} queued, {stats.spooled} spooled to "
            f"{spool}); they are sent when the API answers again, also by the next wdp process"
        )
    if stats.rejected or stats.dropped:
        err.print(
            f"[yellow]warning:[/yellow] the API rejected {stats.rejected} and the client "
            f"dropped {stats.dropped} events (see the log above)"
        )


# --- 4. what reached Postgres ------------------------------------------------------------


def _report(summary: RunSummary) -> bool:
    import sqlalchemy as sa

    from sdk.db import schema
    from sdk.db.engine import create_engine

    # Ids whole (they are what the user copies): a narrow terminal loses columns instead.
    item_columns: list[Column[ItemResult]] = [
        id_column("item", lambda i: i.item_id, [i.item_id for i in summary.items]),
        Column("title", lambda i: i.title, 3, squeeze=16),
        Column("status", lambda i: i.status, 1),
        Column("score", lambda i: f"{i.score:.2f}" if i.score is not None else "", 2,
               {"justify": "right"}),
        id_column("draft artifact", lambda i: i.artifact_id or "",
                  [i.artifact_id for i in summary.items if i.artifact_id]),
        Column("v", lambda i: str(i.artifact_version) if i.artifact_id else "", 0,
               {"justify": "right"}),
    ]  # fmt: skip
    print_table(
        out,
        item_columns,
        summary.items,
        elsewhere="",
        box=HEAVY_HEAD,
        title=f"Work items ({summary.workflow_name})",
    )

    ev = schema.workflow_events
    engine = create_engine()
    try:
        with engine.connect() as conn:
            counts: dict[str, int] = dict(
                conn.execute(
                    sa.select(ev.c.event_name, sa.func.count())
                    .where(ev.c.run_id.in_(summary.run_ids))
                    .group_by(ev.c.event_name)
                ).all()
            )
    finally:
        engine.dispose()
    from sdk.artifacts import ArtifactService

    # The artifact package owns work.*: ask it, one indexed read per draft.
    with ArtifactService.from_settings() as artifacts:
        latest = [artifacts.read_artifact(a).version for a in sorted(set(summary.artifact_ids))]
    stored, versions = len(latest), sum(latest)
    expected = summary.expected_events()
    events = Table(title="Events in Postgres (telemetry.workflow_events)")
    events.add_column("event_name")
    events.add_column("rows", justify="right")
    events.add_column("expected", justify="right")
    for name in sorted(set(counts) | set(expected)):
        rows, want = int(counts.get(name, 0)), expected.get(name, 0)
        style = "" if rows == want else "yellow"
        events.add_row(name, str(rows), str(want), style=style)
    events.add_row("total", str(sum(counts.values())), str(sum(expected.values())), style="bold")
    out.print(events)
    out.print(
        f"Artifacts written: {stored} draft artifacts, {versions} versions"
        " (from the artifact service)"
    )
    return all(int(counts.get(name, 0)) == want for name, want in expected.items())


# --- 5. Dagster --------------------------------------------------------------------------


def _launch_dagster(port: int, today: str, wait: float) -> dict[str, str]:
    """Launch KB ingestion and today's aggregates; returns {job: dagster run id}."""
    base = f"http://{DAGSTER_HOST}:{port}"
    try:
        with urllib.request.urlopen(f"{base}/server_info", timeout=3):  # noqa: S310
            pass
    except (OSError, ValueError):
        err.print(
            f"Dagster is not answering at {base}, so nothing was launched. Once it runs "
            "(`make run`), its sensor ingests the drafts into the knowledge base within about "
            "30 s, and today's events are aggregated at 00:30 UTC tomorrow; or launch "
            f"kb_ingestion_job, and daily_aggregates_job for partition {today}, from {base}."
        )
        return {}
    try:
        from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError
    except ImportError:
        err.print("Dagster's GraphQL client is not installed (extra `dagster`): nothing launched.")
        return {}

    client = DagsterGraphQLClient(DAGSTER_HOST, port_number=port, timeout=30)
    jobs: dict[str, dict[str, Any]] = {
        "kb_ingestion_job": {},
        "daily_aggregates_job": {"dagster/partition": today},
    }
    launched: dict[str, str] = {}
    for job, tags in jobs.items():
        try:
            launched[job] = client.submit_job_execution(job, tags=tags or None)
        except DagsterGraphQLClientError as exc:
            message = " ".join(str(exc).split())[:300]
            err.print(f"[yellow]warning:[/yellow] could not launch {job}: {escape(message)}")
    if not launched or wait <= 0:
        for job, run_id in launched.items():
            err.print(f"launched {job}: {base}/runs/{run_id}")
        return launched

    status: dict[str, str] = {}
    deadline = time.monotonic() + wait
    with err.status("waiting for the Dagster runs") as spinner:
        while time.monotonic() < deadline:
            for job, run_id in launched.items():
                if status.get(job) not in TERMINAL:
                    try:
                        status[job] = client.get_run_status(run_id).value
                    except DagsterGraphQLClientError:
                        status[job] = "UNKNOWN"
            spinner.update(
                "waiting for the Dagster runs: " + ", ".join(f"{j} {s}" for j, s in status.items())
            )
            if all(s in TERMINAL for s in status.values()):
                break
            time.sleep(1)
    for job, run_id in launched.items():
        state = status.get(job, "UNKNOWN")
        color = {"SUCCESS": "green", "FAILURE": "red"}.get(state, "yellow")
        err.print(f"{job}: [{color}]{state}[/{color}] {base}/runs/{run_id}")
    return {job: run_id for job, run_id in launched.items() if status.get(job) == "SUCCESS"}


def _report_dagster(summary: RunSummary, today: str, done: dict[str, str]) -> None:
    import sqlalchemy as sa

    from sdk.db import schema
    from sdk.db.engine import create_engine

    docs, agg = schema.kb_documents, schema.daily_event_aggregates
    engine = create_engine()
    try:
        with engine.connect() as conn:
            documents, chunks = conn.execute(
                sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(docs.c.chunk_count), 0))
                .where(docs.c.artifact_id.in_(summary.artifact_ids))
                .where(docs.c.is_latest)
            ).one()
            aggregated = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(agg.c.events), 0))
                .where(agg.c.day == datetime.fromisoformat(today).date())
                .where(agg.c.workflow_name == summary.workflow_name)
            ).scalar_one()
    finally:
        engine.dispose()
    if "kb_ingestion_job" in done:
        out.print(
            f"Knowledge base: {documents} of {len(summary.artifact_ids)} drafts ingested "
            f"({chunks} chunks; kb.documents)"
        )
    if "daily_aggregates_job" in done:
        out.print(
            f"Daily aggregates for {today}: {aggregated} events of {summary.workflow_name} "
            "(every run of the day; telemetry.daily_event_aggregates)"
        )


# --- 7. the run in the browser --------------------------------------------------------


def _browser_link(summary: RunSummary, endpoint: str) -> None:
    """The last line: item 1's run in the web UI (served by the ingest API)."""
    from urllib.parse import quote

    url = f"{endpoint.rstrip('/')}/ui/runs/{quote(summary.items[0].run_id, safe='')}"
    out.print(f"\n[bold]In the browser[/bold] (a read key logs in): {url}", soft_wrap=True)


# --- 6. where to look --------------------------------------------------------------------


def _where_to_look(summary: RunSummary, port: int, *, dagster: bool) -> None:
    from examples.orchestrator import script

    base = f"http://{DAGSTER_HOST}:{port}"
    sql = (
        "SELECT event_name, count(*) FROM telemetry.workflow_events "
        f"WHERE workflow_name = '{summary.workflow_name}' GROUP BY 1 ORDER BY 1"
    )
    out.print("\n[bold]Where to look[/bold]")
    lines: list[str] = []
    if dagster:
        lines += [
            f"Dagster runs:          {base}/runs",
            f"Knowledge base asset:  {base}/assets/kb_ingestion",
            f"Daily aggregates:      {base}/assets/daily_event_aggregates",
        ]
    # Item 1 is the longest run: parallel research, a rejected draft, a second one.
    lines += [
        f"Its runs:              wdp runs ls --workflow {summary.workflow_name}",
        f"One run, step by step: wdp runs show {summary.items[0].run_id}",
        "Cost and tokens:       wdp usage   (by node: wdp usage --by node)",
        f'Events:                psql "$(wdp db url)" -c "{sql}"',
        f'Knowledge base search: wdp kb search "{script.search_word(1)}" --type draft',
    ]
    for line in lines:
        out.print(f"  {line}", soft_wrap=True, highlight=False)
