"""Benchmark of the knowledge base: ingestion throughput and full-text search (issue 7).

    .venv/bin/python -m benchmarks.kb [--versions 2000] [--chunks 100000] [--queries 300]
                                      [--keep] [--explain] [--json]

One run, one machine, one fresh database (``benchmarks.ingest.fresh_database``: made on
``$DATABASE_URL``'s server or on an embedded pgserver in a temporary directory, dropped
at the end unless ``--keep``). Artifact versions are ~5 KB of generated markdown (a
seeded RNG, common English words plus a Zipf-distributed vocabulary, headings,
paragraphs, lists; every 10th artifact also gets an edited second version), stored
inline and COPYed into work.artifacts / work.artifact_versions as if written one by
one; that set-up is not timed. Full-text only (no embedder). About 2 minutes.

(a) ingest    ``KnowledgeBase.ingest()`` of N versions (default chunking, 200 per batch):
              versions/s and chunks/s. Baseline, same run: the Postgres floor for the
              same output - the same documents and pre-split chunks COPYed into identical
              scratch tables (generated tsvector, GIN, unique indexes) in one transaction
              per 200 versions, timed before and after ours (mean). Also timed: extract +
              split alone in Python over the same texts, the SQL statements ingestion
              runs, and the CPU of this process, Postgres and the rest of the machine.
              Target: >= 200 versions/s.
(b) search    the knowledge base grown through ``KnowledgeBase.ingest()`` to >= 100,000
              chunks, VACUUM ANALYZE, warm-up, then a seeded mix of queries (rare word,
              common word, 2-3 word AND, quoted phrase, ``-exclusion``, ``OR``) through
              ``KnowledgeBase.search(q, k=10)``, each interleaved with the bare GIN lookup
              ``SELECT chunk_id FROM kb.chunks WHERE tsv @@ websearch_to_tsquery(...)
              LIMIT 10`` (no ranking, join or headline): p50/p95/p99/max per class and
              overall. Target: p95 <= 50 ms. Then, where sdk.kb bounds how many matches
              it ranks (``rank_pool``), the same queries ranking every match: latency and
              how much of the top 10 is the same. ``--explain`` prints EXPLAIN ANALYZE of
              the slowest query of each class.

Run from the repository root:  .venv/bin/python -m benchmarks.kb
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import math
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `python benchmarks/kb.py` as well as `-m`
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.ingest import fresh_database, machine, percentile  # noqa: E402
from sdk.artifacts.stores.file import FileStore  # noqa: E402
from sdk.db.engine import create_engine  # noqa: E402
from sdk.db.schema import KB_TEXT_SEARCH_CONFIG  # noqa: E402
from sdk.db.url import redact  # noqa: E402
from sdk.kb import IngestOptions, KnowledgeBase  # noqa: E402
from sdk.kb.chunking import split_text  # noqa: E402
from sdk.kb.extract import extract_text  # noqa: E402
from sdk.telemetry.values import new_ulid  # noqa: E402

try:  # not a declared dependency: without it the Postgres CPU column is left empty
    import psutil
except ImportError:  # pragma: no cover
    psutil = None

console = Console(width=None if sys.stdout.isatty() else 160)

TARGET_VERSIONS_PER_S = 200.0
TARGET_P95_MS = 50.0
K = 10
OPTIONS = IngestOptions(chunk_size=1000, overlap=150, batch_size=200)
MIME = "text/markdown"
SEED = 7
BUSY_OTHER = 0.25  # cores used by unrelated processes above which a phase is noisy
SECOND_VERSION_EVERY = 10  # every 10th artifact also gets an edited second version

# --- text -------------------------------------------------------------------------------


def words_of(text: str) -> list[str]:
    return text.split()


# Function words make up ~45 % of English running text; the 'english' configuration
# drops them from the tsvector, as it would in real documents.
FUNCTION_WORDS = words_of(
    "the of and to a in is that for it as with was on be by this are from at or an "
    "which have not but can has more will if all one their there we when so been they "
    "also into than its only other some these may then would should each after about "
    "over such most any new first could our where before two how between both under "
    "through while because same used very"
)

# The head of the content vocabulary: real words of the kind wdp's artifacts hold. The
# long tail is made of pronounceable synthetic words (see ``vocabulary``).
HEAD_WORDS = words_of(
    "model data run step agent workflow report result error request time user token "
    "cost latency cache database query index table test pipeline service worker retry "
    "budget event artifact version config prompt output input review summary plan task "
    "issue change value limit batch memory network storage schema search chunk document "
    "score metric trace span log alert deploy release build failure success status node "
    "graph edge policy team owner customer account invoice payment order product price "
    "market region server client api endpoint response timeout queue message stream "
    "file disk cluster replica shard backup restore migration upgrade rollback feature "
    "flag experiment baseline benchmark throughput capacity load traffic peak average "
    "median percentile window interval daily weekly monthly quarter target goal risk "
    "incident postmortem root cause action item owner deadline estimate design proposal "
    "decision tradeoff option constraint requirement interface contract format encoding "
    "parser validator filter ranking embedding vector similarity cluster label dataset "
    "sample training evaluation accuracy precision recall threshold regression drift "
    "anomaly signal noise sensor device firmware hardware software library package "
    "dependency license security access permission role secret credential audit "
    "compliance privacy retention archive partition transaction lock commit conflict"
)

SYLLABLES = words_of(
    "ba be bi bo bu ca ce ci co cu da de di do du fa fe fi fo ga ge gi go ha he hi ho "
    "ja jo ka ke ki ko ku la le li lo lu ma me mi mo mu na ne ni no nu pa pe pi po pu "
    "ra re ri ro ru sa se si so su ta te ti to tu va ve vi vo za ze zi zo bar ber dor "
    "fen gar han kel lin mar nor pol quin ran sel tor ul ven wil xan yor zen"
)


def vocabulary(rng: random.Random, size: int) -> list[str]:
    """The content vocabulary, most frequent first: real head words, synthetic tail."""
    words = list(dict.fromkeys(HEAD_WORDS))
    seen = set(words) | set(FUNCTION_WORDS)
    while len(words) < size:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 2, 3, 3, 3, 4))))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def cumulative(weights: Sequence[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


class Corpus:
    """Deterministic markdown-ish documents of about ``size`` bytes each."""

    def __init__(self, seed: int, vocab_size: int = 60_000) -> None:
        self.rng = random.Random(seed)
        self.words = vocabulary(self.rng, vocab_size)
        # Zipf-like: the word of rank r has weight 1 / (r + 2.7) ** 1.07.
        self.cum_words = cumulative([1 / (r + 2.7) ** 1.07 for r in range(len(self.words))])
        self.cum_function = cumulative([1 / (r + 1) for r in range(len(FUNCTION_WORDS))])

    def _tokens(self, n: int) -> list[str]:
        rng = self.rng
        content = rng.choices(self.words, cum_weights=self.cum_words, k=n)
        function = rng.choices(FUNCTION_WORDS, cum_weights=self.cum_function, k=n)
        return [f if rng.random() < 0.45 else c for c, f in zip(content, function, strict=True)]

    def _sentence(self) -> str:
        tokens = self._tokens(self.rng.randint(7, 22))
        tokens[0] = tokens[0].capitalize()
        if self.rng.random() < 0.3:
            cut = self.rng.randrange(2, len(tokens) - 1)
            tokens[cut] += ","
        return " ".join(tokens) + "."

    def _heading(self, level: int) -> str:
        words = self.rng.choices(self.words[:5000], k=self.rng.randint(2, 5))
        return "#" * level + " " + " ".join(words).capitalize()

    def _block(self) -> str:
        rng = self.rng
        if rng.random() < 0.15:
            items = [" ".join(self._tokens(rng.randint(3, 10))) for _ in range(rng.randint(3, 6))]
            return "\n".join(f"- {item}" for item in items)
        return " ".join(self._sentence() for _ in range(rng.randint(2, 7)))

    def document(self, size: int = 4800) -> str:
        rng = self.rng
        target = rng.randint(size * 8 // 10, size * 12 // 10)
        parts = [self._heading(1)]
        length = len(parts[0])
        while length < target:
            block = self._heading(2) if rng.random() < 0.18 else self._block()
            parts.append(block)
            length += len(block) + 2
        return "\n\n".join(parts) + "\n"

    def edit(self, text: str) -> str:
        """A new version of ``text``: one paragraph rewritten and a section appended."""
        paragraphs = text.split("\n\n")
        i = self.rng.randrange(1, len(paragraphs))
        paragraphs[i] = self._block()
        paragraphs.append(self._heading(2) + "\n\n" + self._block())
        return "\n\n".join(paragraphs)


# --- set-up (not timed) -----------------------------------------------------------------

TYPES = ("report", "notes", "design", "postmortem", "runbook")


@dataclass
class Version:
    artifact_id: str
    version: int
    text: str


def make_versions(corpus: Corpus, n: int) -> list[Version]:
    """``n`` versions: new artifacts, every 10th followed by an edited second version."""
    out: list[Version] = []
    while len(out) < n:
        artifact_id = new_ulid()
        text = corpus.document()
        out.append(Version(artifact_id, 1, text))
        if len(out) % SECOND_VERSION_EVERY == 0 and len(out) < n:
            out.append(Version(artifact_id, 2, corpus.edit(text)))
    return out


def copy_versions(url: str, versions: Sequence[Version], start: datetime) -> None:
    """COPY ``versions`` as the artifact service would have stored them (inline text)."""
    latest: dict[str, int] = {}
    for v in versions:
        latest[v.artifact_id] = max(latest.get(v.artifact_id, 0), v.version)
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(
            "COPY work.artifacts (artifact_id, type, latest_version, tags, created_at, "
            "updated_at) FROM STDIN"
        ) as copy:
            for i, (artifact_id, top) in enumerate(latest.items()):
                moment = start + timedelta(milliseconds=i)
                kind = TYPES[i % len(TYPES)]
                tags = json.dumps([f"team=t{i % 7}", f"kind={kind}"])
                copy.write_row((artifact_id, kind, top, tags, moment, moment))
        with cur.copy(
            "COPY work.artifact_versions (artifact_id, version, mime_type, size_bytes, "
            "content_hash, storage_backend, inline_content_text, preview_text, created_at) "
            "FROM STDIN"
        ) as copy:
            for i, v in enumerate(versions):
                data = v.text.encode()
                copy.write_row(
                    (
                        v.artifact_id,
                        v.version,
                        MIME,
                        len(data),
                        hashlib.sha256(data).hexdigest(),
                        "inline",
                        v.text,
                        v.text[:200],
                        start + timedelta(milliseconds=i),
                    )
                )
        conn.commit()


# --- (a) ingestion ----------------------------------------------------------------------


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
class Cpu:
    """Cores used on average during a phase (CPU s / wall s)."""

    here: float | None
    postgres: float | None
    other: float | None  # the rest of the machine: other users of the shared VM


Snapshot = tuple[float, float, float | None, float | None]


class CpuMeter:
    """CPU of this process, of the whole Postgres server (the postmaster, its live
    backends, and the backends already reaped, counted in the postmaster's children
    times, so a backend that exits during the phase is neither lost nor negative) and
    of the rest of the machine."""

    def __init__(self, pg_pid: int | None) -> None:
        self.pg = None
        if psutil is not None and pg_pid is not None:
            try:
                self.pg = psutil.Process(pg_pid)
            except psutil.Error:
                self.pg = None

    def _pg_seconds(self) -> float | None:
        if self.pg is None:
            return None
        try:
            t = self.pg.cpu_times()
            total = t.user + t.system + t.children_user + t.children_system
            children = self.pg.children(recursive=True)
        except psutil.Error:
            return None
        for child in children:
            try:
                c = child.cpu_times()
                total += c.user + c.system
            except psutil.Error:
                pass
        return total

    def snapshot(self) -> Snapshot:
        own = os.times()
        busy = None
        if psutil is not None:
            t = psutil.cpu_times()
            busy = float(sum(t) - t.idle - getattr(t, "iowait", 0.0))
        return time.perf_counter(), own.user + own.system, self._pg_seconds(), busy

    @staticmethod
    def split(before: Snapshot, after: Snapshot) -> Cpu:
        wall = after[0] - before[0]
        here = (after[1] - before[1]) / wall
        pg = None if after[2] is None or before[2] is None else (after[2] - before[2]) / wall
        other = None
        if after[3] is not None and before[3] is not None:
            other = max(0.0, (after[3] - before[3]) / wall - here - (pg or 0.0))
        return Cpu(here, pg, other)


@dataclass
class IngestRun:
    versions: int
    chunks: int
    batches: int
    seconds: float
    cpu: Cpu

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


# --- (b) search -------------------------------------------------------------------------

CLASSES = ("rare word", "common word", "2-3 word AND", "quoted phrase", "-exclusion", "OR")
_WORD = re.compile(r"[a-z]+")
_CLAUSE = re.compile(r"[.,\n]")
FUNCTION_SET = frozenset(FUNCTION_WORDS)


def make_queries(
    rng: random.Random, corpus: Corpus, texts: Sequence[str], n: int
) -> list[tuple[str, str]]:
    """``n`` (class, query) pairs, the classes in turn. Vocabulary ranks pick how common
    a word is (ranks 0-30 occur in a large share of chunks, ranks >= 3,000 in a few);
    AND, phrase and exclusion queries take words that occur together in a document."""
    words = corpus.words
    rank = {w: r for r, w in enumerate(words)}

    def pick(low: int, high: int) -> str:
        return words[rng.randrange(low, high)]

    def window() -> list[str]:
        """The words of a random stretch of one document: about one chunk's worth."""
        tokens = _WORD.findall(rng.choice(texts).lower())
        i = rng.randrange(0, max(1, len(tokens) - 120))
        return tokens[i : i + 120]

    def together(n: int) -> list[str]:
        """``n`` distinct content words that occur close together in one document."""
        while True:
            content = list(dict.fromkeys(t for t in window() if t not in FUNCTION_SET))
            if len(content) >= n:
                return rng.sample(content, n)

    def rare() -> str:
        """A word of vocabulary rank >= 3,000 taken from a document, so it matches."""
        while True:
            found = [t for t in window() if rank.get(t, 0) >= 3_000]
            if found:
                return rng.choice(found)

    def phrase() -> str:
        """2-3 consecutive words of one sentence (across a paragraph break, a phrase
        may be in no single chunk)."""
        while True:
            sentences = _CLAUSE.split(rng.choice(texts).lower())
            tokens = _WORD.findall(rng.choice(sentences))
            if len(tokens) < 4:
                continue
            i = rng.randrange(0, len(tokens) - 3)
            words = tokens[i : i + rng.choice((2, 3))]
            if words[0] not in FUNCTION_SET and words[-1] not in FUNCTION_SET:
                return '"' + " ".join(words) + '"'

    makers: dict[str, Callable[[], str]] = {
        "rare word": rare,
        "common word": lambda: pick(0, 30),
        "2-3 word AND": lambda: " ".join(together(rng.choice((2, 3)))),
        "quoted phrase": phrase,
        "-exclusion": lambda: " ".join(together(2)) + f" -{pick(30, 300)}",
        "OR": lambda: f"{pick(100, 5_000)} OR {pick(100, 5_000)}",
    }
    return [(CLASSES[i % len(CLASSES)], makers[CLASSES[i % len(CLASSES)]]()) for i in range(n)]


BARE_SQL = (
    "SELECT chunk_id FROM kb.chunks "
    f"WHERE tsv @@ websearch_to_tsquery('{KB_TEXT_SEARCH_CONFIG}', %s) LIMIT {K}"
)
COUNT_SQL = (
    "SELECT count(*) FROM kb.chunks "
    f"WHERE tsv @@ websearch_to_tsquery('{KB_TEXT_SEARCH_CONFIG}', %s)"
)


@dataclass
class Sample:
    cls: str
    query: str
    ours_ms: float
    bare_ms: float
    hits: int
    top: list[tuple[str, int, int]] = field(default_factory=list)  # (artifact, version, ordinal)
    scores: list[float] = field(default_factory=list)


def _top(hits: Sequence[Any]) -> tuple[list[tuple[str, int, int]], list[float]]:
    return [(h.artifact_id, h.version, h.ordinal) for h in hits], [h.score for h in hits]


def run_queries(kb: KnowledgeBase, url: str, queries: Sequence[tuple[str, str]]) -> list[Sample]:
    """Each query through kb.search and the bare lookup, alternating which goes first."""
    out = []
    with psycopg.connect(url, autocommit=True) as conn:
        for i, (cls, q) in enumerate(queries):
            order = (0, 1) if i % 2 == 0 else (1, 0)
            ms = [0.0, 0.0]
            hits: list[Any] = []
            for which in order:
                started = time.perf_counter()
                if which == 0:
                    hits = kb.search(q, k=K)
                else:
                    conn.execute(BARE_SQL, (q,)).fetchall()
                ms[which] = (time.perf_counter() - started) * 1e3
            out.append(Sample(cls, q, ms[0], ms[1], len(hits), *_top(hits)))
    return out


def exhaustive_kb(engine: sa.Engine, store: FileStore) -> KnowledgeBase | None:
    """A KnowledgeBase that ranks every match (``rank_pool`` past any match count), when
    this version of sdk.kb bounds the ranked matches at all."""
    if "rank_pool" not in inspect.signature(KnowledgeBase).parameters:
        return None
    return KnowledgeBase(engine=engine, store=store, options=OPTIONS, rank_pool=1_000_000)


def compare_exhaustive(full: KnowledgeBase, samples: Sequence[Sample]) -> dict[str, Any]:
    """Per class: latency of exhaustive ranking, and how the bounded ranking's top k
    compares with it (share of the same hits; mean score of the top k, bounded/full)."""
    per: dict[str, dict[str, list[float]]] = {
        c: {"ms": [], "same": [], "score": []} for c in CLASSES
    }
    for x in samples:
        started = time.perf_counter()
        hits = full.search(x.query, k=K)
        per[x.cls]["ms"].append((time.perf_counter() - started) * 1e3)
        top, scores = _top(hits)
        if top:
            per[x.cls]["same"].append(len(set(top) & set(x.top)) / len(top))
            per[x.cls]["score"].append(sum(x.scores) / sum(scores) if sum(scores) else 1.0)
    out: dict[str, Any] = {}
    for cls, v in per.items():
        out[cls] = {
            **stats(v["ms"]).__dict__,
            "same_hits": sum(v["same"]) / len(v["same"]) if v["same"] else math.nan,
            "score_ratio": sum(v["score"]) / len(v["score"]) if v["score"] else math.nan,
        }
    return out


def match_counts(url: str, samples: Sequence[Sample], per_class: int) -> dict[str, list[int]]:
    """Chunks matched by the first ``per_class`` queries of each class (after timing)."""
    counts: dict[str, list[int]] = {c: [] for c in CLASSES}
    with psycopg.connect(url, autocommit=True) as conn:
        for s in samples:
            if len(counts[s.cls]) < per_class:
                row = conn.execute(COUNT_SQL, (s.query,)).fetchone()
                counts[s.cls].append(int(row[0]) if row else 0)
    return counts


def explain(kb: KnowledgeBase, engine: sa.Engine, query: str) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the statement kb.search runs for ``query`` (caught
    from SQLAlchemy's events, so it is whatever sdk.kb.search builds today)."""
    caught: list[tuple[str, Any]] = []

    def grab(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if "websearch_to_tsquery" in statement:
            caught.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", grab)
    try:
        kb.search(query, k=K)
    finally:
        sa.event.remove(engine, "before_cursor_execute", grab)
    if not caught:
        return "(no statement caught)"
    statement, parameters = caught[-1]
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
        return "\n".join(r[0] for r in rows)


def code_version() -> str:
    """The commit, and a digest of sdk/kb as it is on disk (the working tree may differ)."""
    digest = hashlib.sha256()
    for path in sorted((REPO_ROOT / "sdk" / "kb").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "sdk/kb"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        head, dirty = "?", ""
    state = "with uncommitted changes in sdk/kb" if dirty else "sdk/kb as committed"
    return f"git {head or '?'} {state}; sdk/kb/*.py sha256 {digest.hexdigest()[:12]}"


@dataclass
class Stats:
    n: int
    p50: float
    p95: float
    p99: float
    max: float


def stats(values: Sequence[float]) -> Stats:
    ordered = sorted(values)
    return Stats(
        len(ordered),
        percentile(ordered, 0.50),
        percentile(ordered, 0.95),
        percentile(ordered, 0.99),
        ordered[-1] if ordered else math.nan,
    )


# --- running ----------------------------------------------------------------------------


@dataclass
class Results:
    command: str
    machine: dict[str, Any]
    code: str = ""
    database: str = ""
    ingest: dict[str, Any] = field(default_factory=dict)
    grow: dict[str, Any] = field(default_factory=dict)
    search: dict[str, Any] = field(default_factory=dict)


def verdict(ok: bool) -> str:
    return "[green]PASS[/green]" if ok else "[red]MISS[/red]"


def report_ingest(res: Results) -> None:
    ing = res.ingest
    t = Table(title="(a) ingestion of ~5 KB markdown versions", title_justify="left")
    for col in ("what", "versions", "s", "versions/s", "chunks/s", "cpu here", "cpu pg", "other"):
        t.add_column(col, justify="left" if col == "what" else "right")

    def cores(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"

    rows = [("KnowledgeBase.ingest()", ing["ours"])]
    if res.grow:
        rows.append(("KnowledgeBase.ingest(), growing to (b)'s size", res.grow))
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


def report_search(res: Results) -> None:
    s = res.search
    t = Table(
        title=f"(b) search, k={K}, over {s['chunks']:,} chunks ({s['latest_chunks']:,} in latest "
        f"versions), {s['queries']} queries",
        title_justify="left",
    )
    for col in (
        "class", "n", "no hit", "matches (median)", "ours p50", "p95", "p99", "max",
        "bare GIN p50", "p95", "max", "p95 ratio",
    ):  # fmt: skip
        t.add_column(col, justify="left" if col == "class" else "right")
    for cls in (*CLASSES, "all"):
        o, b = s["ours"][cls], s["bare"][cls]
        m = s["matches"].get(cls)
        t.add_row(
            cls,
            str(o["n"]),
            str(s["empty"][cls]),
            f"{sorted(m)[len(m) // 2]:,}" if m else "",
            f"{o['p50']:.1f}",
            f"{o['p95']:.1f}",
            f"{o['p99']:.1f}",
            f"{o['max']:.1f}",
            f"{b['p50']:.2f}",
            f"{b['p95']:.2f}",
            f"{b['max']:.2f}",
            f"{o['p95'] / b['p95']:.1f}x",
            style="bold" if cls == "all" else None,
        )
    console.print(t)
    console.print(
        "[dim]ms. ours: KnowledgeBase.search() (SQLAlchemy; GIN match, join with documents "
        "for is_latest, ts_rank_cd ranking, ts_headline of the 10 hits); bare GIN: "
        "psycopg, `tsv @@ websearch_to_tsquery(q) LIMIT 10`. matches: chunks matching, "
        "from the first 10 queries of the class.[/dim]"
    )
    if s.get("exhaustive"):
        e = Table(
            title="(b) bounded ranking (sdk.kb's rank pool) vs ranking every match",
            title_justify="left",
        )
        for col in (
            "class", "ours p95", "every match p50", "p95", "max", "same top-10 hits",
            "top-10 score, ours / every",
        ):  # fmt: skip
            e.add_column(col, justify="left" if col == "class" else "right")
        for cls in CLASSES:
            x = s["exhaustive"][cls]
            e.add_row(
                cls,
                f"{s['ours'][cls]['p95']:.1f}",
                f"{x['p50']:.1f}",
                f"{x['p95']:.1f}",
                f"{x['max']:.1f}",
                f"{x['same_hits']:.0%}",
                f"{x['score_ratio']:.2f}",
            )
        console.print(e)
    if s.get("cpu_other") is not None:
        console.print(
            f"[dim]cpu during the queries: here {s['cpu_client']:.2f}, postgres "
            f"{s['cpu_pg'] or 0:.2f}, other {s['cpu_other']:.2f} cores[/dim]"
        )
    overall = s["ours"]["all"]["p95"]
    console.print(
        f"target p95 <= {TARGET_P95_MS:g} ms: {overall:.1f} ms -> "
        f"{verdict(overall <= TARGET_P95_MS)}"
    )
    over = [c for c in CLASSES if s["ours"][c]["p95"] > TARGET_P95_MS]
    if over:
        console.print(
            f"[yellow]classes over {TARGET_P95_MS:g} ms at p95: {', '.join(over)}[/yellow]"
        )


def run_split(prepared: Sequence[Prepared]) -> int:
    return sum(len(p.chunks) for p in prepared)


def cpu_dict(cpu: Cpu) -> dict[str, Any]:
    return {"cpu_client": cpu.here, "cpu_pg": cpu.postgres, "cpu_other": cpu.other}


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


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.kb", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--versions", type=int, default=2000, help="versions in (a) (2000)")
    parser.add_argument("--chunks", type=int, default=100_000, help="chunks for (b) (100000)")
    parser.add_argument("--queries", type=int, default=300, help="timed queries in (b) (300)")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the database (useful with DATABASE_URL; an embedded server is removed anyway)",
    )
    parser.add_argument(
        "--explain", action="store_true", help="EXPLAIN ANALYZE the slowest query of each class"
    )
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args(argv)
    if min(args.versions, args.queries) < 1 or args.chunks < 0:
        parser.error("counts must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine()
    command = " ".join(
        [".venv/bin/python -m benchmarks.kb", *(sys.argv[1:] if argv is None else argv)]
    )
    res = Results(command=command, machine=info, code=code_version())
    console.print(f"[bold]command[/bold]: {command}")
    console.print(f"[bold]code[/bold]: {res.code}")
    console.print(
        f"[bold]machine[/bold]: nproc={info['nproc']} python={info['python']} "
        f"cpu={info.get('cpu', '?')} load={info.get('load_avg_before', '?')}"
    )
    started = time.perf_counter()
    corpus = Corpus(SEED)
    qrng = random.Random(SEED + 1)
    with (
        tempfile.TemporaryDirectory(prefix="wdp-bench-kb-") as tmp,
        fresh_database(args.keep) as database,
    ):
        url, pg_pid, desc = database
        res.database = redact(desc)
        console.print(f"[bold]database[/bold]: {res.database}")
        engine = create_engine(url)
        kb = KnowledgeBase(engine=engine, store=FileStore(Path(tmp) / "blobs"), options=OPTIONS)
        meter = CpuMeter(pg_pid)
        clock = datetime(2026, 1, 1, tzinfo=UTC)
        try:
            # (a) ingestion -------------------------------------------------------------
            console.print(f"(a) generating and loading {args.versions:,} versions …")
            versions = make_versions(corpus, args.versions)
            copy_versions(url, versions, clock)
            clock += timedelta(milliseconds=len(versions))
            split_s, prepared = extract_and_split(versions)
            chunks = run_split(prepared)
            kb.stats()  # connect the pool before timing
            console.print("(a) COPY floor, KnowledgeBase.ingest(), COPY floor …")
            floor_1 = copy_floor(url, prepared)
            with StatementTimer().attached(engine) as statements:
                ours = timed_ingest(kb, meter, len(versions))
            floor_2 = copy_floor(url, prepared)
            if ours.chunks != chunks:
                console.print(
                    f"[yellow]ingest made {ours.chunks} chunks, split_text {chunks}[/yellow]"
                )
            floor = (floor_1 + floor_2) / 2
            res.ingest = {
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

            # (b) search ----------------------------------------------------------------
            per_version = ours.chunks / ours.versions
            missing = args.chunks - ours.chunks
            texts = [v.text for v in versions]
            if missing > 0:
                extra = math.ceil(missing / per_version * 1.02)
                console.print(f"(b) generating and loading {extra:,} more versions …")
                more = make_versions(corpus, extra)
                copy_versions(url, more, clock)
                texts += [v.text for v in more]
                console.print(f"(b) KnowledgeBase.ingest() of {len(more):,} versions …")
                grow = timed_ingest(kb, meter, len(more))
                res.grow = run_dict(grow)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")
                total, latest = conn.execute(
                    "SELECT count(*), count(*) FILTER (WHERE d.is_latest) "
                    "FROM kb.chunks c JOIN kb.documents d USING (document_id)"
                ).fetchone()  # type: ignore[misc]
            console.print(f"(b) {total:,} chunks; warming up, then {args.queries} queries …")
            warm = make_queries(random.Random(SEED + 2), corpus, texts, 60)
            run_queries(kb, url, warm)
            queries = make_queries(qrng, corpus, texts, args.queries)
            before = meter.snapshot()
            samples = run_queries(kb, url, queries)
            search_cpu = meter.split(before, meter.snapshot())
            matches = match_counts(url, samples, per_class=10)
            full = exhaustive_kb(engine, FileStore(Path(tmp) / "blobs"))
            exhaustive = None
            if full is not None:
                console.print("(b) the same queries, ranking every match …")
                exhaustive = compare_exhaustive(full, samples)

            def by(cls: str, attr: str) -> dict[str, Any]:
                vals = [getattr(x, attr) for x in samples if cls in ("all", x.cls)]
                return stats(vals).__dict__

            res.search = {
                "chunks": total,
                "latest_chunks": latest,
                "queries": len(samples),
                "ours": {c: by(c, "ours_ms") for c in (*CLASSES, "all")},
                "bare": {c: by(c, "bare_ms") for c in (*CLASSES, "all")},
                "matches": matches,
                "exhaustive": exhaustive,
                **cpu_dict(search_cpu),
                "empty": {
                    c: sum(1 for x in samples if x.hits == 0 and c in ("all", x.cls))
                    for c in (*CLASSES, "all")
                },
                "slowest": {
                    c: max((x for x in samples if x.cls == c), key=lambda x: x.ours_ms).query
                    for c in CLASSES
                },
            }
            if args.explain:
                for cls in CLASSES:
                    q = res.search["slowest"][cls]
                    console.print(f"[bold]EXPLAIN ANALYZE[/bold] slowest {cls}: {q!r}")
                    console.print(explain(kb, engine, q), markup=False, highlight=False)
        finally:
            kb.close()
            engine.dispose()

    report_ingest(res)
    report_search(res)
    busy = [
        name
        for name, part in (("(a) ingest", res.ingest.get("ours", {})), ("(b) grow", res.grow),
                           ("(b) queries", res.search))
        if (part.get("cpu_other") or 0) > BUSY_OTHER
    ]  # fmt: skip
    if busy:
        console.print(
            f"[yellow]warning: other processes used > {BUSY_OTHER} cores during: "
            f"{', '.join(busy)}. Those figures are depressed; rerun on a quiet machine.[/yellow]"
        )
    load = [round(x, 2) for x in os.getloadavg()]
    console.print(
        f"[dim]total {time.perf_counter() - started:.0f} s; load average before "
        f"{info.get('load_avg_before', '?')}, after {load}[/dim]"
    )
    if args.json:
        print(json.dumps(res.__dict__, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
