"""The seeded runs of the UI benchmark (see the package)."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg

from benchmarks.harness import (
    BenchmarkError,
)
from sdk.cli.launch import ApiServer
from sdk.telemetry.values import new_ulid

TARGET_MS = 300.0
WORKFLOW = "research"
ITEM = "TICKET-4711"
# node -> (agent role, model, provider); no model: a tool or plain-code node.
NODES: dict[str, tuple[str | None, str | None, str | None]] = {
    "classify": ("triager", "gpt-4o-mini", "openai"),
    "plan": ("planner", None, None),
    "research": ("researcher", "gpt-4o", "openai"),
    "tools/search": ("researcher", None, None),
    "tools/fetch": ("researcher", None, None),
    "draft": ("writer", "claude-sonnet-4", "anthropic"),
    "review": ("reviewer", "claude-sonnet-4", "anthropic"),
    "summarise": ("writer", "unpriced-local-model", None),
}
SEQUENCE = ("classify", "plan", "research", "draft", "review", "summarise")
FAN_OUT = ("research", "tools/search", "tools/fetch", "research", "tools/search")
STATES = ("new", "triaged", "planned", "researched", "drafted", "reviewed", "done")
PRICES = {"gpt-4o-mini": (0.15, 0.6), "gpt-4o": (2.5, 10.0), "claude-sonnet-4": (3.0, 15.0)}


# --- seeding ----------------------------------------------------------------------------


def _event(
    name: str, ts: datetime, run_id: str, payload: dict[str, Any], *, version: int = 1,
    role: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    return {
        "event_id": new_ulid(int(ts.timestamp() * 1000)),
        "event_version": version,
        "event_name": name,
        "ts": ts.isoformat(),
        "run_id": run_id,
        "item_id": ITEM,
        "workflow_name": WORKFLOW,
        "agent_role": role,
        "payload": payload,
    }


@dataclass
class Totals:
    steps: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    unknown: bool = False
    errors: int = 0


def _step(
    rng: random.Random, run_id: str, node: str, step: int, attempt: int, start: datetime,
    duration_ms: float, error: bool, totals: Totals,
) -> dict[str, Any]:  # fmt: skip
    """One ``workflow.step_completed`` (event_version 2) ending ``duration_ms`` after
    ``start``: its calls and the totals they add up to."""
    role, model, provider = NODES[node]
    payload: dict[str, Any] = {
        "node": node,
        "step": step,
        "attempt": attempt,
        "status": "error" if error else "ok",
        "duration_ms": duration_ms,
    }
    if model is not None:
        calls: list[dict[str, Any]] = []
        models = [model] + (["gpt-4o-mini"] if rng.random() < 0.3 else [])
        for m in dict.fromkeys(models):
            call: dict[str, Any] = {"model": m}
            if provider is not None:
                call["provider"] = "openai" if m == "gpt-4o-mini" else provider
            if error and m == model:  # the failed call reported nothing
                call |= {"usage_reported": False}
            else:
                tin, tout = rng.randint(200, 6000), rng.randint(20, 900)
                call |= {"tokens_in": tin, "tokens_out": tout}
                if provider == "anthropic" and m == model:
                    call["tokens_cached_in"] = tin // 3
                if m == "gpt-4o-mini" and rng.random() < 0.5:
                    call["cost_usd_reported"] = round((tin * 0.15 + tout * 0.6) / 1e6, 8)
            calls.append(call)
        tin = sum(c.get("tokens_in", 0) for c in calls)
        tout = sum(c.get("tokens_out", 0) for c in calls)
        # The SDK's estimate: a reported cost wins; a call without a price or without
        # usage makes the step's cost unknown (None, never $0).
        known = [_call_cost(c) for c in calls]
        unknown = any(k is None for k in known)
        cost = None if unknown else round(sum(k or 0.0 for k in known), 10)
        payload |= {
            "model": ",".join(dict.fromkeys(models)),
            "tokens_in": tin,
            "tokens_out": tout,
            "cost_usd_est": cost,
            "cost_unknown": unknown,
            "calls": calls,
        }
        if provider == "anthropic":
            payload["tokens_cached_in"] = sum(c.get("tokens_cached_in", 0) for c in calls)
        totals.tokens_in += tin
        totals.tokens_out += tout
        totals.cost += cost or 0.0
        totals.unknown |= unknown
    if error:
        kind = rng.choice(("TimeoutError", "RateLimitError", "ToolError"))
        payload |= {"error_type": kind, "error_message": f"{node}: {kind} after retries"}
        totals.errors += 1
    totals.steps += 1
    end = start + timedelta(milliseconds=duration_ms)
    return _event("workflow.step_completed", end, run_id, payload, version=2, role=role)


def _call_cost(call: dict[str, Any]) -> float | None:
    if "cost_usd_reported" in call:
        return float(call["cost_usd_reported"])
    price = PRICES.get(call["model"])
    if price is None or call.get("usage_reported") is False:
        return None
    tokens_in, tokens_out = int(call.get("tokens_in", 0)), int(call.get("tokens_out", 0))
    return (tokens_in * price[0] + tokens_out * price[1]) / 1e6


def big_run(rng: random.Random, run_id: str, start: datetime, steps: int) -> list[dict[str, Any]]:
    """``steps`` steps of a LangGraph-like run, with its start, end, state changes and
    learning events. Each step number is either one node, or a fan-out of 2-5 branches
    that start together and overlap; an error is retried (attempt 2) at the same number."""
    events = [
        _event("workflow.run_started", start, run_id, {"trigger": "api", "graph_version": "v7"})
    ]
    totals = Totals()
    t = start + timedelta(milliseconds=20)
    number = 0
    state = 0
    while totals.steps < steps:
        fan = rng.random() < 0.3
        nodes = FAN_OUT[: rng.randint(2, 5)] if fan else (SEQUENCE[number % len(SEQUENCE)],)
        nodes = nodes[: steps - totals.steps]
        ends: list[datetime] = []
        for node in nodes:
            begin = t + timedelta(milliseconds=rng.randint(0, 30) if fan else 0)
            duration = float(rng.randint(40, 4000) if NODES[node][1] else rng.randint(2, 400))
            error = rng.random() < 0.04 and totals.steps < steps - 1
            events.append(_step(rng, run_id, node, number, 1, begin, duration, error, totals))
            end = begin + timedelta(milliseconds=duration)
            if error and totals.steps < steps:  # the retry, after the failed attempt
                retry_start = end + timedelta(milliseconds=50)
                duration = float(rng.randint(40, 2000))
                events.append(
                    _step(rng, run_id, node, number, 2, retry_start, duration, False, totals)
                )
                end = retry_start + timedelta(milliseconds=duration)
            ends.append(end)
        t = max(ends) + timedelta(milliseconds=rng.randint(3, 60))
        if number % 12 == 11:  # the item moves on now and then
            change = {
                "from_state": STATES[state % (len(STATES) - 1)],
                "to_state": STATES[state % (len(STATES) - 1) + 1],
                "node": nodes[0],
                "reason": f"step {number} done",
            }
            events.append(_event("workflow.item_state_changed", t, run_id, change))
            state += 1
        number += 1
    events.append(_completed(run_id, start, t, totals))
    for i, (name, payload) in enumerate(_learning(run_id)):
        events.append(_event(name, t + timedelta(seconds=5 + i), run_id, payload))
    return events


def _completed(run_id: str, start: datetime, end: datetime, totals: Totals) -> dict[str, Any]:
    done = {
        "status": "failed" if totals.errors > 10 else "succeeded",
        "duration_ms": (end - start).total_seconds() * 1000,
        "steps": totals.steps,
        "tokens_in": totals.tokens_in,
        "tokens_out": totals.tokens_out,
        "cost_usd_est": None if totals.unknown else round(totals.cost, 10),
        "cost_unknown": totals.unknown,
    }
    if done["status"] == "failed":
        done |= {"error_type": "TooManyErrors", "error_message": f"{totals.errors} steps failed"}
    return _event("workflow.run_completed", end, run_id, done)


def _learning(run_id: str) -> list[tuple[str, dict[str, Any]]]:
    target: dict[str, Any] = {"target_type": "run", "target_id": run_id}
    scored: dict[str, Any] = {"evaluator": "rubric-v2", "metric": "faithfulness", "score": 0.87}
    scored |= {"threshold": 0.8, "passed": True, "details": {"claims": 41, "supported": 36}}
    corrected: dict[str, Any] = {"field": "summary", "original": "It's fine."}
    corrected |= {"corrected": {"text": "It is fine.", "tone": "formal"}}
    return [
        ("learning.feedback_received", target | {"rating": 4, "comment": "good, a bit long"}),
        ("learning.feedback_received", target | {"label": "thumbs_up", "source": "agent"}),
        ("learning.evaluation_scored", target | scored),
        ("learning.correction_submitted", target | corrected),
        ("learning.outcome_recorded", target | {"outcome": "accepted", "success": True}),
    ]


def small_run(rng: random.Random, run_id: str, start: datetime) -> list[dict[str, Any]]:
    """An ordinary run: 12 steps one after the other, two state changes."""
    events = [_event("workflow.run_started", start, run_id, {"trigger": "schedule"})]
    totals, t = Totals(), start
    for n in range(12):
        node = SEQUENCE[n % len(SEQUENCE)]
        duration = float(rng.randint(20, 1500))
        events.append(_step(rng, run_id, node, n, 1, t, duration, False, totals))
        t += timedelta(milliseconds=duration + 5)
        if n in (3, 9):
            change = {"from_state": "new" if n == 3 else "triaged", "to_state": "triaged"}
            if n == 9:
                change["to_state"] = "done"
            events.append(_event("workflow.item_state_changed", t, run_id, change))
    events.append(_completed(run_id, start, t, totals))
    return events


@dataclass(frozen=True)
class Seeded:
    run_id: str
    other_run_id: str
    events: int
    steps: int
    seconds: float


def seed(api: ApiServer, url: str, steps: int) -> Seeded:
    """The two runs, posted in batches through the ingest API (every event validated)."""
    started = time.perf_counter()
    rng = random.Random(17)
    now = datetime.now(UTC).replace(microsecond=0)
    # Laid out once to learn how long the run lasts, then again so that it ends (its
    # learning events included) a minute before now.
    last = big_run(random.Random(17), "probe", now, steps)[-1]["ts"]
    begin = now - (datetime.fromisoformat(last) - now) - timedelta(minutes=1)
    run_id = new_ulid(int(begin.timestamp() * 1000))
    other = new_ulid(int((begin - timedelta(minutes=1)).timestamp() * 1000))
    events = big_run(rng, run_id, begin, steps)
    events += small_run(rng, other, begin - timedelta(minutes=1))
    with httpx.Client(base_url=api.base_url, headers=api.auth, timeout=60, trust_env=False) as c:
        for i in range(0, len(events), 500):
            batch = events[i : i + 500]
            response = c.post("/telemetry/events/batch", json={"events": batch})
            body = response.json()
            if response.status_code != 200 or body["counts"]["created"] != len(batch):
                bad = [r for r in body.get("results", []) if r.get("status") != "created"]
                raise BenchmarkError(f"seeding: HTTP {response.status_code}: {bad[:3]}")
    with psycopg.connect(url, autocommit=True) as conn:
        stored = conn.execute(
            "SELECT count(*) FROM telemetry.workflow_events WHERE run_id IN (%s, %s)",
            (run_id, other),
        ).fetchone()
        conn.execute("VACUUM ANALYZE telemetry.workflow_events")
    if stored is None or stored[0] != len(events):
        raise BenchmarkError(f"seeding: {len(events)} events posted, {stored} stored")
    return Seeded(run_id, other, len(events), steps, time.perf_counter() - started)
