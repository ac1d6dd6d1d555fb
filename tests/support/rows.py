"""Reading back what the tests stored: one helper shared by the delivery tests."""

from __future__ import annotations

import psycopg


def rows_for_run(db_url: str, run_id: str) -> tuple[int, int]:
    """(rows, distinct event ids) stored for ``run_id``: equal when nothing is duplicated."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT event_id) FROM telemetry.workflow_events "
            "WHERE run_id = %s",
            [run_id],
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])
