"""``wdp artifacts …``: put, get, show, list and garbage-collect artifacts.

Uses the configured database and store (``DATABASE_URL``, ``ARTIFACT_STORE``, …), like
the SDK. Results go to stdout as JSON (``get`` writes the content; ``ls`` prints a table,
JSON lines with ``--json``), messages and progress bars to stderr, so the commands compose
in shell pipelines. Transfers of at least :data:`PROGRESS_MIN_BYTES` show a progress bar
when stderr is a terminal, and only then: a bar drawn into a pipe or a log file would stay
there as a line of control codes. ``get`` refuses to write binary content to a terminal
unless told to (``-o PATH``, ``--force``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.filesize import decimal
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from sdk.cli.help import Typer

if TYPE_CHECKING:
    from sdk.artifacts import ArtifactService

PROGRESS_MIN_BYTES = 8 * 1024 * 1024

artifacts_app = Typer(
    help="Versioned artifacts: Postgres metadata, content inline or in the blob store.",
    no_args_is_help=True,
)
err = Console(stderr=True)


@contextmanager
def _service() -> Iterator[ArtifactService]:
    from sdk.artifacts import ArtifactService

    with ArtifactService.from_settings() as service:
        yield service


def _is_terminal(stream: object) -> bool:
    """A real terminal: not a pipe or file, whatever FORCE_COLOR says (rich's notion)."""
    try:
        return os.isatty(stream.fileno())  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False


def _progress(total: int) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=total < PROGRESS_MIN_BYTES or not _is_terminal(sys.stderr),
    )


@artifacts_app.command("put")
def put(
    file: Annotated[
        Path,
        typer.Argument(
            help="The file to store ('-' reads stdin).", allow_dash=True, metavar="FILE"
        ),
    ],
    artifact_type: str | None = typer.Option(
        None, "--type", "-t", help="Artifact type (required for a new artifact).", metavar="TYPE"
    ),
    tag: Annotated[
        list[str] | None,
        typer.Option(
            "--tag",
            help="A tag such as k=v, taken verbatim (commas and = included); repeatable.",
            metavar="KEY=VALUE",
        ),
    ] = None,
    item: str | None = typer.Option(None, "--item", help="Owning work item id.", metavar="ID"),
    run: str | None = typer.Option(None, "--run", help="Owning run id.", metavar="ID"),
    mime: str | None = typer.Option(
        None, "--mime", help="Mime type (default: from the name).", metavar="TYPE/SUBTYPE"
    ),
    artifact_id: str | None = typer.Option(
        None, "--artifact", "-a", help="Add a new version to this artifact instead.", metavar="ID"
    ),
) -> None:
    """Store FILE as a new artifact, or as the next version of --artifact."""
    from sdk.artifacts.keys import guess_mime_type

    if artifact_id is None and artifact_type is None:
        err.print("[red]error:[/red] --type is required for a new artifact")
        raise typer.Exit(2)
    if artifact_id is not None and (artifact_type or tag or item or run):
        err.print("[red]error:[/red] --type/--tag/--item/--run apply to new artifacts only")
        raise typer.Exit(2)
    stdin = str(file) == "-"
    if not stdin and not file.is_file():
        err.print(f"[red]error:[/red] {file} is not a readable file")
        raise typer.Exit(2)
    size = 0 if stdin else file.stat().st_size
    with _service() as service, _progress(size) as progress:
        handle = sys.stdin.buffer if stdin else file.open("rb")
        with handle:
            stream = progress.wrap_file(handle, total=size, description="upload")
            if artifact_id is not None:
                result = service.create_version(artifact_id, stream=stream, mime_type=mime)
            else:
                assert artifact_type is not None
                guessed = None if stdin else guess_mime_type(file.name)
                result = service.write_artifact(
                    type=artifact_type,
                    stream=stream,
                    mime_type=mime or guessed,
                    tags=tag or [],
                    owner_item_id=item,
                    owner_run_id=run,
                )
    if result.deduplicated:
        err.print(f"unchanged: content equals version {result.version}, nothing written")
    else:
        err.print(f"stored {result.artifact_id} v{result.version} ({result.storage_backend})")
    typer.echo(result.model_dump_json(indent=2))


@artifacts_app.command("get")
def get(
    artifact_id: str = typer.Argument(..., help="Artifact id.", metavar="ARTIFACT_ID"),
    version: int | None = typer.Option(
        None, "--version", "-v", help="Default: the latest.", metavar="N"
    ),
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here, not stdout.", metavar="PATH")
    ] = None,
    force: bool = typer.Option(
        False, "--force", "-f", help="Write binary content to stdout even when it is a terminal."
    ),
) -> None:
    """Write a version's content (sha256-verified) to stdout or -o PATH."""
    from sdk.artifacts.content import content_kind

    with _service() as service:
        meta = service.read_artifact(artifact_id, version)
        to_terminal = output is None and _is_terminal(sys.stdout)
        if to_terminal and not force and content_kind(meta.mime_type) == "binary":
            err.print(
                f"[red]error:[/red] {artifact_id} v{meta.version} is binary "
                f"({meta.mime_type}, {decimal(meta.size_bytes)}): not writing it to a "
                "terminal. Pass -o PATH, pipe it into a program, or --force."
            )
            raise typer.Exit(2)
        with service.open_content(artifact_id, meta.version) as reader:
            total = reader.size_bytes
            if output is None:
                with _progress(total) as progress:
                    task = progress.add_task("download", total=total)
                    for chunk in reader:
                        sys.stdout.buffer.write(chunk)
                        progress.advance(task, len(chunk))
                sys.stdout.buffer.flush()
                return
            # Only a complete, verified download replaces PATH.
            partial = output.with_name(f".{output.name}.part")
            try:
                with partial.open("wb") as out, _progress(total) as progress:
                    task = progress.add_task("download", total=total)
                    for chunk in reader:
                        out.write(chunk)
                        progress.advance(task, len(chunk))
                os.replace(partial, output)
            finally:
                partial.unlink(missing_ok=True)
    err.print(f"wrote {total} bytes to {output}")


@artifacts_app.command("show")
def show(
    artifact_id: str = typer.Argument(..., help="Artifact id.", metavar="ARTIFACT_ID"),
    version: int | None = typer.Option(
        None, "--version", "-v", help="Default: the latest.", metavar="N"
    ),
) -> None:
    """Print a version's metadata, preview and extracted fields as JSON."""
    with _service() as service:
        typer.echo(service.read_artifact(artifact_id, version).model_dump_json(indent=2))


@artifacts_app.command("ls")
def ls(
    artifact_type: str | None = typer.Option(
        None, "--type", "-t", help="Only this type.", metavar="TYPE"
    ),
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", help="Only with this tag; repeatable.", metavar="KEY=VALUE"),
    ] = None,
    item: str | None = typer.Option(
        None, "--item", help="Only owned by this work item.", metavar="ID"
    ),
    run: str | None = typer.Option(None, "--run", help="Only owned by this run.", metavar="ID"),
    limit: int = typer.Option(50, min=1, max=1000, help="Artifacts per page.", metavar="N"),
    cursor: str | None = typer.Option(
        None, help="Continue after this page (from the last run).", metavar="CURSOR"
    ),
    as_json: bool = typer.Option(
        False, "--json", help="One JSON object per artifact instead of a table."
    ),
) -> None:
    """List artifacts, newest first, with the size and mime type of their latest version."""
    import json

    with _service() as service:
        page = service.list_artifacts(
            type=artifact_type,
            tags=tag or [],
            owner_item_id=item,
            owner_run_id=run,
            limit=limit,
            cursor=cursor,
        )
        # One indexed lookup per listed artifact (at most --limit): size and mime type
        # belong to versions, the listing to artifacts.
        latest = [service.read_artifact(a.artifact_id, a.latest_version) for a in page.items]
    if as_json:
        for a, v in zip(page.items, latest, strict=True):
            row = a.model_dump(mode="json") | {"mime_type": v.mime_type, "size_bytes": v.size_bytes}
            typer.echo(json.dumps(row, ensure_ascii=False))
    else:
        table = Table(
            "artifact_id", "type", "latest", "size", "mime", "tags", "updated_at", box=None
        )
        for a, v in zip(page.items, latest, strict=True):
            table.add_row(
                a.artifact_id,
                escape(a.type),
                str(a.latest_version),
                decimal(v.size_bytes),
                escape(v.mime_type),
                # A tag may itself hold a comma: then the list is shown as JSON.
                escape(
                    json.dumps(a.tags, ensure_ascii=False)
                    if any("," in t for t in a.tags)
                    else ",".join(a.tags)
                ),
                a.updated_at.isoformat(timespec="seconds"),
            )
        Console(width=200).print(table)
    if page.next_cursor:
        err.print(f"more: wdp artifacts ls --cursor {page.next_cursor}")


@artifacts_app.command("gc")
def gc(
    dry_run: bool = typer.Option(False, "--dry-run", help="Report, delete nothing."),
    grace_hours: float | None = typer.Option(
        None, min=0, help="Override ARTIFACT_GC_GRACE_HOURS for this run.", metavar="HOURS"
    ),
    force: bool = typer.Option(
        False, "--force", help="Allow a grace under 10 minutes (only with no writer running)."
    ),
) -> None:
    """Delete blobs that no version references (older than the grace period)."""
    from datetime import timedelta

    grace = timedelta(hours=grace_hours) if grace_hours is not None else None
    with _service() as service:
        report = service.collect_garbage(dry_run=dry_run, grace=grace, force=force)
    verb = "would delete" if dry_run else "deleted"
    err.print(
        f"scanned {report.scanned} blobs: {report.referenced} referenced, "
        f"{report.too_young} within the grace period, {verb} {len(report.garbage_keys)} "
        f"({report.garbage_bytes} bytes); aborted uploads: {report.aborted_uploads}"
    )
    typer.echo(report.model_dump_json(indent=2))
