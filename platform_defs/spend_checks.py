"""Spend checks of ``daily_event_aggregates``: over budget, and calls without a price.

Both are evaluated by the asset itself, with each materialisation of a day, from the
:class:`~sdk.usage.summary.DaySummary` it has just computed: a check needs the day, and
the asset has it (and the figures) in hand. Costs are the day's **priced** cost (the
dated price table, providers' reported costs, and the emitted estimate of steps without
per-call usage). Both only WARN: spending is information for an operator, never a reason
to stop aggregating.
"""

from __future__ import annotations

from decimal import Decimal

import dagster as dg

from platform_defs.assets.usage_metadata import NONE_LABEL, cost_text, markdown_text, usd
from sdk.usage.summary import DaySummary, Unpriced

ASSET = "daily_event_aggregates"
BUDGET_CHECK = "spend_within_budget"
PRICES_CHECK = "models_have_prices"

check_specs = [
    dg.AssetCheckSpec(
        BUDGET_CHECK,
        asset=ASSET,
        description=(
            "WARNs when the day's known (priced) cost, or one workflow's, exceeds "
            "USAGE_DAILY_BUDGET_USD (unset: passes, no budget). Known cost is a lower bound: "
            "calls of unknown cost are counted beside it, never as $0."
        ),
    ),
    dg.AssetCheckSpec(
        PRICES_CHECK,
        asset=ASSET,
        description=(
            "WARNs when model calls had no cost (cost_source 'unknown' in "
            "daily_model_usage: no price for the model on that day, or no usage reported), "
            "listing each model with its number of such calls."
        ),
    ),
]


def _named(name: str) -> str:
    """A name in a description, which the UI renders as Markdown: as plain text."""
    return name if name == NONE_LABEL else markdown_text(name)


def budget_result(summary: DaySummary, budget: Decimal | None) -> dg.AssetCheckResult:
    """Passed unless a budget is set and the day's (or a workflow's) known cost exceeds it."""
    day_cost = cost_text(summary.cost_usd, summary.cost_unknown_calls)
    if budget is None:
        return dg.AssetCheckResult(
            check_name=BUDGET_CHECK,
            passed=True,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"No budget: USAGE_DAILY_BUDGET_USD is not set. {summary.day}: {day_cost}.",
            metadata={"cost_usd": float(summary.cost_usd), "budget_usd": dg.MetadataValue.null()},
        )
    over = {
        w.name or NONE_LABEL: float(w.cost_usd) for w in summary.workflows if w.cost_usd > budget
    }
    exceeded = summary.cost_usd > budget
    if exceeded:
        # Descriptions are Markdown in the UI: agents' names go in as plain text.
        named = ", ".join(
            f"{_named(name)} {usd(Decimal(str(cost)))}" for name, cost in over.items()
        )
        description = f"{summary.day} cost {day_cost}, over the budget of {usd(budget)}" + (
            f"; over it on their own: {named}." if over else "."
        )
    else:
        description = f"{summary.day} cost {day_cost}, within the budget of {usd(budget)}."
        if summary.cost_unknown_calls:
            description += " The real cost may be higher: some calls have no price."
    return dg.AssetCheckResult(
        check_name=BUDGET_CHECK,
        passed=not exceeded,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={
            "cost_usd": float(summary.cost_usd),
            "cost_unknown_calls": summary.cost_unknown_calls,
            "budget_usd": float(budget),
            "workflows_over_budget": dg.MetadataValue.json(over),
        },
    )


def _label(u: Unpriced) -> str:
    """``mystery`` or ``mystery at acme``: a price is looked up per provider."""
    return (u.model or NONE_LABEL) + (f" at {u.provider}" if u.provider else "")


def _calls(n: int) -> str:
    return f"{n:,} call{'s' if n != 1 else ''}"


def prices_result(summary: DaySummary) -> dg.AssetCheckResult:
    """Passed when every model call of the day had a cost."""
    no_price = [u for u in summary.unpriced if not u.no_usage]
    no_usage = [u for u in summary.unpriced if u.no_usage]
    unpriced: dict[str, int] = {}
    for u in no_price:
        unpriced[_label(u)] = unpriced.get(_label(u), 0) + u.calls
    without_usage = {_label(u): u.calls for u in no_usage}
    parts = []
    if no_price:
        listed = ", ".join(f"{_named(name)} ({_calls(n)})" for name, n in unpriced.items())
        parts.append(
            f"{_calls(sum(unpriced.values()))} on {summary.day} had no price for their model "
            f"on that day, so their cost is unknown (not $0): {listed}. Add a price "
            "(`wdp prices set`, or the synced genai-prices rows) and re-price the day."
        )
    if no_usage:
        listed = ", ".join(f"{_named(name)} ({_calls(n)})" for name, n in without_usage.items())
        parts.append(
            f"{_calls(sum(without_usage.values()))} reported no token usage, so nothing "
            f"can price them: {listed}."
        )
    description = " ".join(parts) or f"Every model call on {summary.day} had a cost."
    return dg.AssetCheckResult(
        check_name=PRICES_CHECK,
        passed=not summary.unpriced,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={
            "unpriced_models": dg.MetadataValue.json(unpriced),
            "models_without_usage": dg.MetadataValue.json(without_usage),
        },
    )
