"""``wdp runs ls`` and ``wdp runs show``: what agents did, from the stored events.

Both answer with the read API's queries (:mod:`sdk.usage.runs`), so a run looks the same
here and in ``GET /telemetry/runs``; ``--json`` prints exactly the API's response body.
Tables go to stdout, hints (the next page's command) to stderr. Ids are never cut: the
id columns do not wrap and every other column folds first, and ids outside tables are
printed on lines of their own, unwrapped, so a narrow terminal still shows them whole.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.text import Text

from sdk.cli import reads, tables
from sdk.cli.help import Typer
from sdk.cli.reads import shown

if TYPE_CHECKING:
    from sdk.usage.models import RunSummary

runs_app = Typer(help="Runs of your workflows: list them, show one step by step.")

# What the query's parameters are called on this command line.
LS_OPTIONS = {
    "workflow_name": "--workflow",
    "item_id": "--item",
    "status": "--status",
    "limit": "--limit",
    "cursor": "--cursor",
}
CURSOR_MESSAGE = "is not a cursor printed by `wdp runs ls` (copy it whole)"


@runs_app.command("ls")
def ls(
    workflow: str | None = typer.Option(
        None, "--workflow", "-w", help="Only runs of this workflow.", metavar="NAME"
    ),
    item: str | None = typer.Option(None, "--item", help="Only runs of this item.", metavar="ID"),
    status: str | None = typer.Option(
        None,
        "--status",
        help="Only runs that ended so (succeeded, failed, cancelled, interrupted) or running.",
        metavar="STATUS",
    ),
    limit: str | None = typer.Option(
        None, "--limit", "-n", help="Runs per page, 1-500 (default 50).", metavar="N"
    ),
    cursor: str | None = typer.Option(
        None, "--cursor", help="The next page, as the previous page printed it.", metavar="CURSOR"
    ),
    as_json: bool = typer.Option(
        False, "--json", help="The read API's JSON (runs, next_cursor) instead of a table."
    ),
) -> None:
    """List runs, newest first, with their status, duration, tokens and emitted cost."""
    from sdk.usage.errors import InvalidQuery
    from sdk.usage.runs import list_runs, runs_query

    try:
        query = runs_query(
            workflow_name=workflow, item_id=item, status=status, limit=limit, cursor=cursor
        )
    except InvalidQuery as exc:
        if "cursor" in exc.field_errors:
            exc.field_errors["cursor"] = CURSOR_MESSAGE
        reads.refuse(exc, LS_OPTIONS)
    page = reads.answer(list_runs(query), tables="telemetry tables")
    if as_json:
        reads.print_json(page.as_json())
        return
    err = Console(stderr=True)
    if not page.runs:
        err.print("no runs" + (" on this page" if cursor else " match"), highlight=False)
    else:
        tables.print_table(Console(), run_columns(page.runs), page.runs)
    if page.next_cursor:
        # A command to copy: the filters as the shell needs them (a value with a control
        # character in bash's $'...' quoting); the cursor is base64url, safe as it is.
        again = ["wdp", "runs", "ls"]
        for option, value in (("--workflow", workflow), ("--item", item), ("--status", status)):
            if value:
                again += [option, reads.shell_word(value)]
        if limit:
            again += ["--limit", str(query.limit)]
        again += ["--cursor", reads.shell_word(page.next_cursor)]
        err.print(Text(f"next page: {' '.join(again)}"), soft_wrap=True, highlight=False)


def run_columns(runs: list[RunSummary]) -> list[tables.Column[RunSummary]]:
    C = tables.Column
    return [
        tables.id_column("run_id", lambda r: r.run_id, [r.run_id for r in runs]),
        C("status", lambda r: reads.status_text(r.status)),
        C("started (UTC)", lambda r: reads.when(r.started_at), 1),
        C("took", lambda r: reads.duration(r.duration_ms), 3, {"justify": "right"}),
        C("steps", _steps, 5, {"justify": "right"}),
        C("tokens in/out", _tokens, 6, {"justify": "right"}),
        C(  # what the steps emitted: the priced cost is per day, in `wdp usage`
            "est. cost",
            lambda r: reads.cost(r.totals.cost_usd, r.totals.cost_unknown_steps, "step"),
            2,
            {"justify": "right"},
        ),
        C("workflow", lambda r: shown(r.workflow_name), 4),
        C("item", lambda r: shown(r.item_id), 7),
    ]


def _steps(run: RunSummary) -> str:
    t = run.totals
    return f"{t.steps:,}" + (f" ({t.errors:,} err)" if t.errors else "")


def _tokens(run: RunSummary) -> str:
    return f"{run.totals.tokens_in:,} / {run.totals.tokens_out:,}"


@runs_app.command("show")
def show(
    run_id: str = typer.Argument(
        ..., help="The run's id (wdp runs ls lists them).", metavar="RUN_ID"
    ),
    as_json: bool = typer.Option(False, "--json", help="The read API's JSON instead of tables."),
) -> None:
    """One run: its summary, its steps on a time line (with the cost they emitted) and
    their model calls, state changes, learning events and the artifacts linked to it."""
    from sdk.settings import get_settings
    from sdk.usage.errors import InvalidQuery, RunNotFound
    from sdk.usage.runs import run_detail

    try:
        detail = reads.answer(run_detail(run_id), tables="telemetry tables")
    except InvalidQuery as exc:
        reads.refuse(exc, {"run_id": "RUN_ID"})
    except RunNotFound:
        days = get_settings().event_retention_days
        reads.stop(
            f"no run {shown(run_id)} is stored (raw events are kept "
            f"EVENT_RETENTION_DAYS={days} days; `wdp runs ls` lists the runs there are)",
            reads.EXIT_NOT_FOUND,
        )
    if as_json:
        reads.print_json(detail.as_json())
        return
    from sdk.cli.run_view import print_run

    print_run(Console(), detail)
