"""Benchmark of the knowledge base: ingestion throughput and full-text search (issue 7).

    .venv/bin/python -m benchmarks.kb [--versions 2000] [--chunks 100000] [--queries 300]
                                      [--keep] [--explain] [--json]

One run, one machine, one fresh database (``benchmarks.harness.fresh_database``: made on
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

Modules: ``corpus`` (the generated versions), ``ingest`` (phase a), ``search`` (phase b)
and this one (options, the run, the report); the database and the CPU accounting are
:mod:`benchmarks.harness`'s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.harness import CpuMeter, console, fresh_database, machine, warn_if_busy
from benchmarks.kb.corpus import CLOCK_START, OPTIONS, SEED, Corpus, copy_versions, make_versions
from benchmarks.kb.ingest import measure_ingest, report_ingest, run_dict, timed_ingest
from benchmarks.kb.search import (
    exhaustive_kb,
    measure_search,
    print_explains,
    report_search,
)
from sdk.artifacts.stores.file import FileStore
from sdk.db.engine import create_engine
from sdk.db.url import redact
from sdk.kb import KnowledgeBase

REPO_ROOT = Path(__file__).resolve().parents[2]


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
class Results:
    command: str
    machine: dict[str, Any]
    code: str = ""
    database: str = ""
    ingest: dict[str, Any] = field(default_factory=dict)
    grow: dict[str, Any] = field(default_factory=dict)
    search: dict[str, Any] = field(default_factory=dict)


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
        clock = CLOCK_START
        try:
            console.print(f"(a) generating and loading {args.versions:,} versions …")
            versions = make_versions(corpus, args.versions)
            copy_versions(url, versions, clock)
            clock += timedelta(milliseconds=len(versions))
            res.ingest, ours = measure_ingest(kb, engine, url, meter, versions)

            # (b) grow to the size searched, through KnowledgeBase.ingest() too
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
                res.grow = run_dict(timed_ingest(kb, meter, len(more)))
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")
            full = exhaustive_kb(engine, FileStore(Path(tmp) / "blobs"))
            res.search = measure_search(kb, full, url, meter, corpus, texts, args.queries)
            if args.explain:
                print_explains(kb, engine, res.search["slowest"])
        finally:
            kb.close()
            engine.dispose()

    report_ingest(res.ingest, res.grow)
    report_search(res.search)
    warn_if_busy(
        [
            ("(a) ingest", res.ingest.get("ours", {}).get("cpu_other")),
            ("(b) grow", res.grow.get("cpu_other")),
            ("(b) queries", res.search.get("cpu_other")),
        ],
        separator=", ",
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
