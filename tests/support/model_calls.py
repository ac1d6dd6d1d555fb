"""Step payloads with per-call usage (event_version 2), for raw inserts.

``calls_step`` sums the calls into the step's totals, as the contract requires, so a
test states only its calls. Inserted with :func:`tests.support.raw_events.insert`.
"""

from __future__ import annotations

from typing import Any


def call(
    model: str,
    tin: int = 0,
    tout: int = 0,
    *,
    provider: str | None = None,
    cached: int = 0,
    written: int = 0,
    reasoning: int = 0,
    reported: float | None = None,
    usage: bool = True,
) -> dict[str, Any]:
    """One entry of a step's ``calls``."""
    entry: dict[str, Any] = {"model": model, "tokens_in": tin, "tokens_out": tout}
    entry |= {"tokens_cached_in": cached, "tokens_cache_write": written}
    entry |= {"tokens_reasoning": reasoning, "usage_reported": usage}
    if provider is not None:
        entry["provider"] = provider
    if reported is not None:
        entry["cost_usd_reported"] = reported
    return entry


def calls_step(
    *calls: dict[str, Any],
    node: str = "n",
    model: str | None = None,
    cost: float | None = None,
    unknown: bool = False,
) -> dict[str, Any]:
    """A step_completed payload whose totals are its calls' sums; ``model`` defaults to
    the calls' models, comma-separated (as the handler reports a step's models)."""
    names = sorted({c["model"] for c in calls})
    return {
        "node": node,
        "step": 1,
        "status": "ok",
        "duration_ms": 10,
        "model": model if model is not None else (",".join(names) or None),
        "tokens_in": sum(c["tokens_in"] for c in calls),
        "tokens_out": sum(c["tokens_out"] for c in calls),
        "tokens_cached_in": sum(c["tokens_cached_in"] for c in calls),
        "cost_usd_est": cost,
        "cost_unknown": unknown,
        "calls": list(calls),
    }
