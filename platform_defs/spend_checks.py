"""Spend checks of ``daily_event_aggregates``: over budget, and models without a price.

Both are evaluated by the asset itself, with each materialisation of a day, from the
:class:`~sdk.usage.summary.DaySummary` it has just computed: a check needs the day, and
the asset has it (and the figures) in hand. Both only WARN: spending is information for
an operator, never a reason to stop aggregating.
"""

from __future__ import annotations

from decimal import Decimal

import dagster as dg

from platform_defs.assets.usage_metadata import NONE_LABEL, cost_text, markdown_text, usd
from sdk.usage.summary import DaySummary

ASSET = "daily_event_aggregates"
BUDGET_CHECK = "spend_within_budget"
PRICES_CHECK = "models_have_prices"

check_specs = [
    dg.AssetCheckSpec(
        BUDGET_CHECK,
        asset=ASSET,
        description=(
            "WARNs when the day's known cost, or one workflow's, exceeds "
            "USAGE_DAILY_BUDGET_USD (unset: passes, no budget). Known cost is a lower bound: "
            "steps of unknown cost are counted beside it, never as $0."
        ),
    ),
    dg.AssetCheckSpec(
        PRICES_CHECK,
        asset=ASSET,
        description=(
            "WARNs when steps had no price (a model missing from the price table, or no "
            "model named), listing each model with its number of unknown-cost steps."
        ),
    ),
]


def _named(name: str) -> str:
    """A name in a description, which the UI renders as Markdown: as plain text."""
    return name if name == NONE_LABEL else markdown_text(name)


def budget_result(summary: DaySummary, budget: Decimal | None) -> dg.AssetCheckResult:
    """Passed unless a budget is set and the day's (or a workflow's) known cost exceeds it."""
    day_cost = cost_text(summary.cost_usd, summary.cost_unknown_steps)
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
        if summary.cost_unknown_steps:
            description += " The real cost may be higher: some steps have no price."
    return dg.AssetCheckResult(
        check_name=BUDGET_CHECK,
        passed=not exceeded,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={
            "cost_usd": float(summary.cost_usd),
            "cost_unknown_steps": summary.cost_unknown_steps or 0,
            "budget_usd": float(budget),
            "workflows_over_budget": dg.MetadataValue.json(over),
        },
    )


def prices_result(summary: DaySummary) -> dg.AssetCheckResult:
    """Passed when every step of the day had a known cost."""
    unpriced = {m.name or NONE_LABEL: m.cost_unknown_steps or 0 for m in summary.unpriced_models}
    if unpriced:
        listed = ", ".join(
            f"{_named(name)} ({steps} step{'s' if steps != 1 else ''})"
            for name, steps in unpriced.items()
        )
        total = sum(unpriced.values())
        description = (
            f"{total} step{'s' if total != 1 else ''} on {summary.day} had no price, so their "
            f"cost is unknown (not $0): {listed}. Give these models a price (the `prices` of "
            "sdk.langgraph.instrument, or cost_usd_est in the events)."
        )
    else:
        description = f"Every step on {summary.day} had a price."
    return dg.AssetCheckResult(
        check_name=PRICES_CHECK,
        passed=not unpriced,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={"unpriced_models": dg.MetadataValue.json(unpriced)},
    )
