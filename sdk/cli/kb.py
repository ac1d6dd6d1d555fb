"""``wdp kb …``: search the knowledge base, reindex it, see its state.

Search results and stats go to stdout (a table, or JSON with ``--json``); progress and
messages to stderr. Ingestion normally runs in Dagster (asset ``kb_ingestion``); ``reindex``
does the same work here, with a progress bar, after forgetting what it is told to.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from sdk.cli.help import Typer

if TYPE_CHECKING:
    from sdk.kb import KbStats, KnowledgeBase, SearchHit

kb_app = Typer(help="Knowledge base: artifact versions as searchable chunks.", no_args_is_help=True)
err = Console(stderr=True)


@contextmanager
def _kb() -> Iterator[KnowledgeBase]:
    from sdk.kb import KnowledgeBase

    with KnowledgeBase.from_settings() as kb:
        yield kb


def _highlight(hit: SearchHit) -> Text:
    """The snippet with its matched words in bold (offsets, not markup: the text may
    contain anything)."""
    text = Text(hit.snippet)
    for start, end in hit.highlights:
        text.stylize("bold yellow", start, end)
    return text


@kb_app.command("search")
def search(
    query: Annotated[
        str,
        typer.Argument(help='Web-search syntax: words, "a phrase", -not, OR.', metavar="QUERY"),
    ],
    k: int = typer.Option(10, "-k", "--limit", help="How many chunks (1-1000).", metavar="N"),
    artifact_type: str | None = typer.Option(
        None, "--type", "-t", help="Only this type.", metavar="TYPE"
    ),
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", help="Only with this tag; repeatable (all).", metavar="KEY=VALUE"),
    ] = None,
    artifact_id: str | None = typer.Option(
        None, "--artifact", "-a", help="Only this artifact.", metavar="ID"
    ),
    all_versions: bool = typer.Option(
        False, "--all-versions", help="Search every version, not only each artifact's latest."
    ),
    as_json: bool = typer.Option(False, "--json", help="JSON lines instead of a table."),
) -> None:
    """Find chunks by words (and by meaning when KB_EMBEDDER is set)."""
    with _kb() as kb:
        hits = kb.search(
            query,
            k=k,
            type=artifact_type,
            tags=tag,
            artifact_id=artifact_id,
            all_versions=all_versions,
        )
    if as_json:
        for hit in hits:
            typer.echo(json.dumps(asdict(hit), ensure_ascii=False))
        return
    if not hits:
        err.print("no matches")
        return
    table = Table(show_lines=True)
    for column in ("score", "artifact", "v", "type", "snippet"):
        table.add_column(column, overflow="fold")
    for hit in hits:
        table.add_row(
            f"{hit.score:.4f}",
            hit.artifact_id,
            str(hit.version),
            escape(hit.type),
            _highlight(hit),
        )
    Console().print(table)


@kb_app.command("reindex")
def reindex(
    artifact_id: str | None = typer.Option(
        None, "--artifact", "-a", help="Only this artifact.", metavar="ID"
    ),
    artifact_type: str | None = typer.Option(
        None, "--type", "-t", help="Only this type.", metavar="TYPE"
    ),
    pending_only: bool = typer.Option(
        False, "--pending", help="Forget nothing: only ingest what is pending."
    ),
) -> None:
    """Re-extract, re-chunk (and re-embed) artifact versions: all, one artifact or one type.

    Each batch replaces its versions' documents and chunks in one transaction, so search
    keeps answering (from the old chunks until a batch commits).
    """
    with _kb() as kb:
        if pending_only:
            total = kb.stats().pending
        else:
            total = kb.reset(artifact_id=artifact_id, type=artifact_type)
        err.print(f"{total} artifact versions to ingest")
        with Progress(
            TextColumn("ingesting"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as progress:
            task = progress.add_task("ingest", total=total)
            report = kb.ingest(on_batch=lambda b: progress.advance(task, b.versions))
    err.print(
        f"ingested {report.versions} versions: {report.chunks} chunks, "
        f"{report.skipped} without text; {report.pending} pending"
    )
    typer.echo(json.dumps(asdict(report)))


@kb_app.command("stats")
def stats(
    as_json: bool = typer.Option(False, "--json", help="One JSON object instead of a table."),
) -> None:
    """Documents, chunks, versions waiting, and how far embeddings are."""
    with _kb() as kb:
        current = kb.stats()
    if as_json:
        typer.echo(json.dumps(asdict(current)))
        return
    Console().print(_stats_table(current))


def _stats_table(s: KbStats) -> Table:
    """Embeddings as three facts: the embedder, the vector column, the vectors stored."""
    table = Table(title="Knowledge base", show_header=False, box=None, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("documents", f"{s.documents} ({s.skipped} without text)")
    table.add_row("chunks", str(s.chunks))
    table.add_row("pending", f"{s.pending} artifact versions waiting for ingestion")
    if s.embedder is None:
        embedder = "none: full-text search only (KB_EMBEDDER=none)"
    else:
        embedder = f"{escape(s.embedder)} (KB_EMBEDDER)"
    table.add_row("embedder", embedder)
    if s.vector_column:
        column = "present (kb.chunks.embedding)"
    elif s.embedder is not None:
        column = "[red]missing[/red]: run `wdp kb enable-vectors`, then `wdp kb reindex`"
    else:
        column = "missing (`wdp kb enable-vectors` adds it)"
    table.add_row("vector column", column)
    embedded = f"{s.embedded_chunks} of {s.chunks} chunks"
    if s.embedder is not None and s.vector_column and s.embedded_chunks < s.chunks:
        embedded += " (`wdp kb reindex` embeds the rest)"
    table.add_row("vectors stored", embedded)
    return table


@kb_app.command("enable-vectors")
def enable_vectors() -> None:
    """Install pgvector and add the embedding column (when migrating could not)."""
    with _kb() as kb:
        kb.enable_vectors()
    err.print("pgvector enabled: set KB_EMBEDDER and run `wdp kb reindex` to embed")
