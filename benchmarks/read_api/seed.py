"""A realistic read-side database: N runs of a LangGraph-like workflow over D days.

Each run has one ``run_started``, its steps (fan-out included: several steps of one
node at one step number), the item's state changes, some learning events and one
``run_completed`` (except the newest few, still running). Runs are spread evenly over
the last ``days`` days up to now; the days before yesterday have stored aggregates,
yesterday and today are live (raw events only), as just before the daily schedule runs.
Rows go in by COPY with valid ULIDs (the table's CHECK ties each row's partition to its id's time).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from benchmarks.harness import event_row
from sdk.db.engine import create_engine
from sdk.db.partitions import Month, create_missing_partitions
from sdk.db.schema import WORKFLOW_EVENT_COLUMNS
from sdk.telemetry.values import new_ulid
from sdk.usage.aggregation import aggregate_day

COLUMNS = ", ".join(WORKFLOW_EVENT_COLUMNS)
WORKFLOWS = ("triage", "research", "billing", "support", "onboarding")
NODES = (
    ("classify", "triager", "gpt-4o-mini"),
    ("plan", None, None),
    ("research", "researcher", "gpt-4o"),
    ("draft", "writer", "claude-sonnet-4"),
    ("review", "reviewer", "claude-sonnet-4"),
    ("tools/search", "researcher", None),
    ("tools/fetch", "researcher", None),
    ("summarise", "writer", "unpriced-local-model"),
)
STATES = ("new", "triaged", "planned", "researched", "drafted", "reviewed", "done")


@dataclass(frozen=True)
class Seeded:
    runs: int
    events: int
    run_ids: list[str]
    workflows: tuple[str, ...]
    first_day: datetime


def _run_events(
    rng: random.Random, run_id: str, item: str, workflow: str, start: datetime, per_run: int
) -> Iterator[tuple[str, datetime, dict[str, Any], str | None]]:
    """(event_name, ts, payload, agent_role) of one run, about ``per_run`` events."""
    yield "workflow.run_started", start, {"trigger": "api", "attempt": 1}, None
    moment = start
    steps = max(1, (per_run - 12) * 7 // 10)
    changes = max(1, per_run - steps - 12)
    totals = {"tokens_in": 0, "tokens_out": 0, "cost": 0.0, "unknown": False}
    failed = rng.random() < 0.03
    for n in range(steps):
        node, role, model = NODES[n % len(NODES)]
        moment += timedelta(milliseconds=rng.randint(5, 900))
        tin, tout = (rng.randint(50, 4000), rng.randint(10, 800)) if model else (0, 0)
        unknown = model == "unpriced-local-model"
        cost = None if unknown else round((tin * 2.5 + tout * 10) / 1e6, 10)
        error = failed and n == steps - 1
        payload: dict[str, Any] = {
            "node": node,
            "step": n // 3,  # three steps per step number: fan-out
            "attempt": 1,
            "status": "error" if error else "ok",
            "duration_ms": float(rng.randint(1, 5000)),
            "model": model,
            "tokens_in": tin,
            "tokens_out": tout,
            "tokens_cached_in": tin // 4 if model and model.startswith("claude") else None,
            "cost_usd_est": cost,
            "cost_unknown": unknown,
        }
        if error:
            payload |= {"error_type": "TimeoutError", "error_message": "model call timed out"}
        totals["tokens_in"] += tin
        totals["tokens_out"] += tout
        totals["cost"] += cost or 0.0
        totals["unknown"] = bool(totals["unknown"]) or unknown
        yield "workflow.step_completed", moment, payload, role
    for n in range(changes):
        moment += timedelta(milliseconds=3)
        change = {
            "from_state": STATES[n % (len(STATES) - 1)],
            "to_state": STATES[n % (len(STATES) - 1) + 1],
            "node": NODES[n % len(NODES)][0],
        }
        yield "workflow.item_state_changed", moment, change, None
    for _ in range(10):
        moment += timedelta(milliseconds=2)
        feedback = {"target_type": "run", "target_id": run_id, "rating": rng.randint(1, 5)}
        yield "learning.feedback_received", moment, feedback, None
    moment += timedelta(milliseconds=10)
    done = {
        "status": "failed" if failed else "succeeded",
        "duration_ms": (moment - start).total_seconds() * 1000,
        "steps": steps,
        "tokens_in": totals["tokens_in"],
        "tokens_out": totals["tokens_out"],
        "cost_usd_est": None if totals["unknown"] else round(float(totals["cost"]), 10),
        "cost_unknown": totals["unknown"],
    }
    if failed:
        done |= {"error_type": "TimeoutError", "error_message": "model call timed out"}
    yield "workflow.run_completed", moment, done, None


def seed(url: str, *, runs: int, events: int, days: int, seed_value: int = 7) -> Seeded:
    """COPY ``runs`` runs (about ``events`` events) over the last ``days`` days."""
    rng = random.Random(seed_value)
    now = datetime.now(UTC)
    first = now - timedelta(days=days - 1)
    first = first.replace(hour=0, minute=0, second=0, microsecond=0)
    span = (now - timedelta(minutes=10) - first).total_seconds()
    per_run = max(20, events // runs)
    engine = create_engine(url)
    with engine.begin() as conn:
        month, months = Month.of(first), []
        while month <= Month.of(now).plus(1):
            months.append(month)
            month = month.plus(1)
        create_missing_partitions(conn, months)
    run_ids: list[str] = []
    written = 0
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY telemetry.workflow_events ({COLUMNS}) FROM STDIN") as copy:
            for r in range(runs):
                start = first + timedelta(seconds=span * r / runs)
                run_id = new_ulid(int(start.timestamp() * 1000))
                run_ids.append(run_id)
                workflow = WORKFLOWS[r % len(WORKFLOWS)]
                item = f"ITEM-{r % (runs // 3 or 1)}"
                for name, ts, payload, role in _run_events(
                    rng, run_id, item, workflow, start, per_run
                ):
                    if r >= runs - 5 and name == "workflow.run_completed":
                        continue  # the newest runs are still running
                    copy.write_row(
                        event_row(
                            new_ulid(int(ts.timestamp() * 1000)),
                            name,
                            ts,
                            json.dumps(payload),
                            run_id=run_id,
                            item_id=item,
                            workflow_name=workflow,
                            agent_role=role,
                        )
                    )
                    written += 1
        conn.commit()
    # Every day before yesterday aggregated; yesterday and today stay live, as before
    # the 00:30 schedule has run (the usage report's worst case: two live days).
    with engine.begin() as conn:
        day = first.date()
        while day < now.date() - timedelta(days=1):
            aggregate_day(conn, day)
            day += timedelta(days=1)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE telemetry.workflow_events")
        conn.execute("VACUUM ANALYZE telemetry.daily_event_aggregates")
    engine.dispose()
    return Seeded(runs, written, run_ids, WORKFLOWS, first)
