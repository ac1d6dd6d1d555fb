"""Phases (a) and (d): what Postgres does without the API, on one psycopg connection.

(a) the ceiling: COPY into a temp staging table, then one INSERT … SELECT … ON CONFLICT
DO NOTHING; (d) the naive baseline: one INSERT + COMMIT per event. Both write the
columns of ``sdk.db.schema.WORKFLOW_EVENT_COLUMNS``, as the API does.
"""

from __future__ import annotations

import time

import psycopg
from sqlalchemy.dialects.postgresql import JSONB

from benchmarks.harness import BenchmarkError, CpuMeter
from benchmarks.ingest.events import Phase, as_row, make_events, run_id, verify_rows
from sdk.db.schema import WORKFLOW_EVENT_COLUMNS, workflow_events

COLS = ", ".join(WORKFLOW_EVENT_COLUMNS)
# The written columns with the table's types, and no constraints or indexes.
STAGING_DDL = (
    "CREATE TEMP TABLE bench_staging ON COMMIT DROP AS "
    f"SELECT {COLS} FROM telemetry.workflow_events WITH NO DATA"
)
COPY_SQL = f"COPY bench_staging ({COLS}) FROM STDIN"
MOVE_SQL = (
    f"INSERT INTO telemetry.workflow_events ({COLS}) SELECT {COLS} FROM bench_staging "
    "ON CONFLICT DO NOTHING"
)
_PLACEHOLDERS = ", ".join(
    "%s::jsonb" if isinstance(workflow_events.c[c].type, JSONB) else "%s"
    for c in WORKFLOW_EVENT_COLUMNS
)
SINGLE_INSERT_SQL = (
    f"INSERT INTO telemetry.workflow_events ({COLS}) "
    f"VALUES ({_PLACEHOLDERS}) ON CONFLICT DO NOTHING"
)


def phase_ceiling(url: str, n: int, meter: CpuMeter, tag: str = "ceiling") -> Phase:
    rows = [as_row(e) for e in make_events(n, run_id(tag))]
    with psycopg.connect(url) as conn:
        before = meter.snapshot()
        t0 = time.perf_counter()
        with conn.transaction():
            conn.execute(STAGING_DDL)
            with conn.cursor() as cur:
                with cur.copy(COPY_SQL) as copy:
                    for row in rows:
                        copy.write_row(row)
                cur.execute(MOVE_SQL)
                inserted = cur.rowcount
        elapsed = time.perf_counter() - t0
        after = meter.snapshot()
    if inserted != n:
        raise BenchmarkError(f"ceiling: INSERT … SELECT inserted {inserted} of {n} rows")
    verify_rows(url, run_id(tag), n)
    cpu = meter.split(before, after)
    return Phase("(a) COPY + INSERT…SELECT", n, elapsed, n / elapsed, "events/s", cpu=cpu)


def phase_baseline(url: str, n: int, meter: CpuMeter) -> Phase:
    rows = [as_row(e) for e in make_events(n, run_id("baseline"))]
    with psycopg.connect(url) as conn:
        conn.execute(SINGLE_INSERT_SQL, as_row(make_events(1, run_id("warmup"))[0]), prepare=True)
        conn.commit()
        before = meter.snapshot()
        t0 = time.perf_counter()
        for row in rows:
            cur = conn.execute(SINGLE_INSERT_SQL, row, prepare=True)
            if cur.rowcount != 1:
                raise BenchmarkError(f"baseline: {row[0]} was not inserted")
            conn.commit()
        elapsed = time.perf_counter() - t0
        after = meter.snapshot()
    verify_rows(url, run_id("baseline"), n)
    cpu = meter.split(before, after)
    return Phase("(d) INSERT+COMMIT per event", n, elapsed, n / elapsed, "events/s", cpu=cpu)
