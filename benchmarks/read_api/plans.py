"""The statements each read endpoint runs, recorded from the query layer itself.

Each query is answered once on a real connection while every statement it yields is
kept, so ``--explain`` shows the plans of exactly the SQL the API runs (including the
statements that depend on an earlier one's rows), not a hand-copied version of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from benchmarks.read_api.seed import Seeded
from sdk.db.queries import Query, Statement, run_sync
from sdk.usage.runs import list_runs, run_detail, runs_query
from sdk.usage.usage import usage_query, usage_report


def _tap(query: Query[Any], ran: list[Statement]) -> Query[Any]:
    """``query``, keeping each statement it yields in ``ran``."""
    statement = next(query)
    while True:
        ran.append(statement)
        rows = yield statement
        try:
            statement = query.send(rows)
        except StopIteration as done:
            return done.value


def record(conn: psycopg.Connection[Any], query: Query[Any]) -> list[Statement]:
    """Answer ``query`` on ``conn`` (with the product's driver) and return the statements
    it ran, in order."""
    ran: list[Statement] = []
    run_sync(conn, _tap(query, ran))
    return ran


def statements(conn: psycopg.Connection[Any], seeded: Seeded) -> Iterator[tuple[str, Statement]]:
    today = datetime.now(UTC).date()
    queries: dict[str, Query[Any]] = {
        "runs, first page": list_runs(runs_query(limit=50)),
        "runs, status=failed": list_runs(runs_query(limit=50, status="failed")),
        "runs, status=running": list_runs(runs_query(limit=50, status="running")),
        "one run": run_detail(seeded.run_ids[len(seeded.run_ids) // 2]),
        "usage, 30 days by day,workflow_name,node,model": usage_report(
            usage_query(
                from_day=today - timedelta(days=29),
                group_by="day,workflow_name,node,model",
                today=today,
            )
        ),
    }
    for title, query in queries.items():
        for n, statement in enumerate(record(conn, query), 1):
            yield f"{title} - statement {n}", statement
