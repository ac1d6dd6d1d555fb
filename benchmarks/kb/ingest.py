"""Phase (a) of the knowledge-base benchmark: ``KnowledgeBase.ingest()`` against the
Postgres floor for the same output (the same documents and pre-split chunks COPYed into
identical scratch tables, one transaction per batch, before and after ours), with the
SQL statements ingestion runs and extraction + splitting timed alone.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import sqlalchemy as sa
from rich.table import Table

from benchmarks.harness import CpuMeter, CpuSplit, console, verdict
from benchmarks.kb.corpus import MIME, OPTIONS, Version
from sdk.kb import KnowledgeBase
from sdk.kb.chunking import split_text
from sdk.kb.extract import extract_text

TARGET_VERSIONS_PER_S = 200.0


@dataclass
class Prepared:
    version: Version
    title: str | None
    chunks: list[Any]


def extract_and_split(versions: Sequence[Version]) -> tuple[float, list[Prepared]]:
    """What ingestion does in Python per version (decode, extract, split), timed alone."""
    started = time.perf_counter()
    out = []
    for v in versions:
        extraction = extract_text(v.text.encode(), mime_type=MIME)
        chunks = split_text(extraction.text, chunk_size=OPTIONS.chunk_size, overlap=OPTIONS.overlap)
        out.append(Prepared(v, extraction.title, chunks))
    return time.perf_counter() - started, out


SCRATCH_DDL = """
DROP TABLE IF EXISTS public.bench_chunks, public.bench_documents;
CREATE TABLE public.bench_documents (LIKE kb.documents INCLUDING ALL EXCLUDING IDENTITY);
CREATE TABLE public.bench_chunks (LIKE kb.chunks INCLUDING ALL);
"""
FLOOR_DOC_COLUMNS = (
    "document_id, artifact_id, version, type, tags, title, mime_type, content_hash, chunk_count"
)


def copy_floor(url: str, prepared: Sequence[Prepared]) -> float:
    """Seconds to COPY the same documents and chunks into identical scratch tables, one
    transaction per batch: what Postgres needs at least to store ingestion's output."""
    with psycopg.connect(url) as conn:
        conn.execute(SCRATCH_DDL)
        conn.commit()
        started = time.perf_counter()
        document_id = 0
        for first in range(0, len(prepared), OPTIONS.batch_size):
            batch = prepared[first : first + OPTIONS.batch_size]
            with conn.transaction(), conn.cursor() as cur:
                with cur.copy(
                    f"COPY public.bench_documents ({FLOOR_DOC_COLUMNS}) FROM STDIN"
                ) as cp:
                    for i, p in enumerate(batch):
                        data = p.version.text.encode()
                        cp.write_row(
                            (
                                document_id + i,
                                p.version.artifact_id,
                                p.version.version,
                                "report",
                                "[]",
                                p.title,
                                MIME,
                                hashlib.sha256(data).hexdigest(),
                                len(p.chunks),
                            )
                        )
                with cur.copy(
                    "COPY public.bench_chunks (document_id, ordinal, text, start_char, end_char) "
                    "FROM STDIN"
                ) as cp:
                    for i, p in enumerate(batch):
                        for c in p.chunks:
                            cp.write_row((document_id + i, c.ordinal, c.text, c.start, c.end))
            document_id += len(batch)
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE public.bench_chunks, public.bench_documents")
        conn.commit()
    return elapsed


@dataclass
class IngestRun:
    versions: int
    chunks: int
    batches: int
    seconds: float
    cpu: CpuSplit

    @property
    def versions_per_s(self) -> float:
        return self.versions / self.seconds

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.seconds


_DIGITS = re.compile(r"\d+")


class StatementTimer:
    """Wall time per SQL statement kind, from SQLAlchemy's cursor events (the chunks'
    COPY runs on the driver cursor and is not seen: it is in the remainder)."""

    def __init__(self) -> None:
        self.totals: dict[str, list[float]] = {}

    def before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        conn.info["bench_t0"] = time.perf_counter()

    def after(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        elapsed = time.perf_counter() - conn.info.pop("bench_t0", time.perf_counter())
        label = _DIGITS.sub("N", " ".join(statement.split()))[:60]
        entry = self.totals.setdefault(label, [0, 0.0])
        entry[0] += 1
        entry[1] += elapsed

    @contextmanager
    def attached(self, engine: sa.Engine) -> Iterator[StatementTimer]:
        sa.event.listen(engine, "before_cursor_execute", self.before)
        sa.event.listen(engine, "after_cursor_execute", self.after)
        try:
            yield self
        finally:
            sa.event.remove(engine, "before_cursor_execute", self.before)
            sa.event.remove(engine, "after_cursor_execute", self.after)


def timed_ingest(
    kb: KnowledgeBase, meter: CpuMeter, expected: int, on_batch: Callable[[Any], None] | None = None
) -> IngestRun:
    before = meter.snapshot()
    started = time.perf_counter()
    report = kb.ingest(on_batch=on_batch)
    elapsed = time.perf_counter() - started
    after = meter.snapshot()
    if report.versions != expected or report.pending or report.skipped:
        raise SystemExit(f"ingestion went wrong: expected {expected} versions, got {report}")
    return IngestRun(
        report.versions, report.chunks, report.batches, elapsed, meter.split(before, after)
    )


def cpu_dict(cpu: CpuSplit) -> dict[str, Any]:
    return {"cpu_client": cpu.client, "cpu_pg": cpu.postgres, "cpu_other": cpu.other}


def run_dict(run: IngestRun) -> dict[str, Any]:
    return {
        "versions": run.versions,
        "chunks": run.chunks,
        "batches": run.batches,
        "seconds": run.seconds,
        "versions_per_s": run.versions_per_s,
        "chunks_per_s": run.chunks_per_s,
        **cpu_dict(run.cpu),
    }


def measure_ingest(
    kb: KnowledgeBase, engine: sa.Engine, url: str, meter: CpuMeter, versions: Sequence[Version]
) -> tuple[dict[str, Any], IngestRun]:
    """Phase (a) over ``versions`` (already stored, none ingested): its results, and our
    run (whose chunks per version size phase b)."""
    split_s, prepared = extract_and_split(versions)
    chunks = sum(len(p.chunks) for p in prepared)
    kb.stats()  # connect the pool before timing
    console.print("(a) COPY floor, KnowledgeBase.ingest(), COPY floor …")
    floor_1 = copy_floor(url, prepared)
    with StatementTimer().attached(engine) as statements:
        ours = timed_ingest(kb, meter, len(versions))
    floor_2 = copy_floor(url, prepared)
    if ours.chunks != chunks:
        console.print(f"[yellow]ingest made {ours.chunks} chunks, split_text {chunks}[/yellow]")
    floor = (floor_1 + floor_2) / 2
    results = {
        "versions": len(versions),
        "chunks": chunks,
        "ours": run_dict(ours),
        "floor_seconds": floor,
        "floor_runs": [floor_1, floor_2],
        "split_seconds": split_s,
        "ratio": floor / ours.seconds,
        "statements": sorted(
            ([k, int(n), sec] for k, (n, sec) in statements.totals.items()),
            key=lambda row: -row[2],
        ),
    }
    return results, ours


def report_ingest(ing: dict[str, Any], grow: dict[str, Any]) -> None:
    t = Table(title="(a) ingestion of ~5 KB markdown versions", title_justify="left")
    for col in ("what", "versions", "s", "versions/s", "chunks/s", "cpu here", "cpu pg", "other"):
        t.add_column(col, justify="left" if col == "what" else "right")

    def cores(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"

    rows = [("KnowledgeBase.ingest()", ing["ours"])]
    if grow:
        rows.append(("KnowledgeBase.ingest(), growing to (b)'s size", grow))
    for label, run in rows:
        t.add_row(
            label,
            f"{run['versions']:,}",
            f"{run['seconds']:.2f}",
            f"{run['versions_per_s']:,.0f}",
            f"{run['chunks_per_s']:,.0f}",
            cores(run["cpu_client"]),
            cores(run["cpu_pg"]),
            cores(run["cpu_other"]),
        )
    floor = ing["floor_seconds"]
    t.add_row(
        "baseline: COPY floor (mean of before/after)",
        f"{ing['versions']:,}",
        f"{floor:.2f}",
        f"{ing['versions'] / floor:,.0f}",
        f"{ing['chunks'] / floor:,.0f}",
        "",
        "",
        "",
    )
    t.add_row(
        "extract + split alone (Python)",
        f"{ing['versions']:,}",
        f"{ing['split_seconds']:.2f}",
        f"{ing['versions'] / ing['split_seconds']:,.0f}",
        f"{ing['chunks'] / ing['split_seconds']:,.0f}",
        "",
        "",
        "",
    )
    console.print(t)
    ours = ing["ours"]
    console.print(
        f"ours / COPY floor throughput: [bold]{ing['ratio']:.2f}[/bold] "
        f"(ours takes {ours['seconds'] / floor:.1f}x the floor's time); "
        f"extract + split is {ing['split_seconds'] / ours['seconds']:.0%} of ours; "
        f"{ing['chunks'] / ing['versions']:.1f} chunks/version; COPY floor runs "
        f"{ing['floor_runs'][0]:.2f} s and {ing['floor_runs'][1]:.2f} s"
    )
    st = Table(title="(a) where KnowledgeBase.ingest()'s time goes", title_justify="left")
    for col in ("statement (SQLAlchemy)", "calls", "s", "share"):
        st.add_column(col, justify="left" if col.startswith("statement") else "right")
    seen = 0.0
    for label, calls, sec in ing["statements"][:9]:
        seen += sec
        st.add_row(label, f"{calls:,}", f"{sec:.2f}", f"{sec / ours['seconds']:.0%}")
    rest = ours["seconds"] - sum(sec for _, _, sec in ing["statements"])
    st.add_row(
        "rest: extraction, splitting, COPY of the chunks (psycopg), commits",
        "",
        f"{rest:.2f}",
        f"{rest / ours['seconds']:.0%}",
    )
    console.print(st)
    console.print(
        "[dim]cpu: cores used on average (CPU s / wall s) by this process (Python: "
        "SQLAlchemy, extraction, splitting), by Postgres, and by everything else on the "
        "machine (other users: above ~0.25 the figures are depressed).[/dim]"
    )
    console.print(
        f"target >= {TARGET_VERSIONS_PER_S:g} versions/s: {ours['versions_per_s']:,.0f} "
        f"versions/s -> {verdict(ours['versions_per_s'] >= TARGET_VERSIONS_PER_S)}"
    )
