"""Phase (b) of the knowledge-base benchmark: ``KnowledgeBase.search`` over >= 100,000
chunks, each query interleaved with the bare GIN lookup, then ranking every match.

A seeded mix of query classes (rare word, common word, 2-3 word AND, quoted phrase,
``-exclusion``, ``OR``) through ``KnowledgeBase.search(q, k=10)``; the bare lookup is
``SELECT chunk_id FROM kb.chunks WHERE tsv @@ websearch_to_tsquery(...) LIMIT 10`` (no
ranking, join or headline). Where sdk.kb bounds how many matches it ranks
(``rank_pool``), the same queries ranking every match: latency, and how much of the top
10 is the same.
"""

from __future__ import annotations

import inspect
import math
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
import sqlalchemy as sa
from rich.table import Table

from benchmarks.harness import CpuMeter, console, stats, verdict
from benchmarks.kb.corpus import FUNCTION_WORDS, OPTIONS, SEED, Corpus
from benchmarks.kb.ingest import cpu_dict
from sdk.artifacts.stores.file import FileStore
from sdk.db.schema import KB_TEXT_SEARCH_CONFIG
from sdk.kb import KnowledgeBase

TARGET_P95_MS = 50.0
K = 10
WARM_UP_QUERIES = 60

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


def measure_search(
    kb: KnowledgeBase,
    full: KnowledgeBase | None,
    url: str,
    meter: CpuMeter,
    corpus: Corpus,
    texts: Sequence[str],
    queries: int,
) -> dict[str, Any]:
    """Phase (b) on the knowledge base as it is (grown and vacuumed): warm-up, the timed
    queries, then (with ``full``, a knowledge base ranking every match) the comparison."""
    with psycopg.connect(url, autocommit=True) as conn:
        total, latest = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE d.is_latest) "
            "FROM kb.chunks c JOIN kb.documents d USING (document_id)"
        ).fetchone()  # type: ignore[misc]
    console.print(f"(b) {total:,} chunks; warming up, then {queries} queries …")
    warm = make_queries(random.Random(SEED + 2), corpus, texts, WARM_UP_QUERIES)
    run_queries(kb, url, warm)
    timed = make_queries(random.Random(SEED + 1), corpus, texts, queries)
    before = meter.snapshot()
    samples = run_queries(kb, url, timed)
    search_cpu = meter.split(before, meter.snapshot())
    matches = match_counts(url, samples, per_class=10)
    exhaustive = None
    if full is not None:
        console.print("(b) the same queries, ranking every match …")
        exhaustive = compare_exhaustive(full, samples)

    def by(cls: str, attr: str) -> dict[str, Any]:
        vals = [getattr(x, attr) for x in samples if cls in ("all", x.cls)]
        return stats(vals).__dict__

    return {
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


def print_explains(kb: KnowledgeBase, engine: sa.Engine, slowest: dict[str, str]) -> None:
    """EXPLAIN ANALYZE of the slowest query of each class (``--explain``)."""
    for cls in CLASSES:
        q = slowest[cls]
        console.print(f"[bold]EXPLAIN ANALYZE[/bold] slowest {cls}: {q!r}")
        console.print(explain(kb, engine, q), markup=False, highlight=False)


def report_search(s: dict[str, Any]) -> None:
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
