"""The model calls of a step (``workflow.step_completed`` from event_version 2 on).

A step's totals (``tokens_in``, ``tokens_out``, ``cost_usd_est``) say what its calls
used together; ``calls`` says it per call, as the provider reported it, which is what a
price applies to: the model and provider of each call, every token kind, and the
provider's own cost where it gives one (that figure wins over any computed one). The
platform prices each call from its dated price table when it aggregates a day, and can
re-price it later; the emitted estimate stays on the event, untouched.

A call that reported no token counts says so (``usage_reported`` false): its cost is
unknown - counted, never $0.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field, model_validator

from sdk.telemetry.fields import Name, Tokens, Usd, _Model

__all__ = ["MAX_CALLS", "STEP_EVENT_VERSION", "ModelCall", "calls_problem"]

# The event_version of workflow.step_completed that may carry `calls`.
STEP_EVENT_VERSION = 2
# Calls of one step: far above any real node, low enough to bound one event's size.
MAX_CALLS = 1_000


class ModelCall(_Model):
    """One model call made inside the step."""

    model: Name = Field(description="The model as the call reported it (asked for, else served).")
    provider: Name | None = Field(
        None,
        description=(
            "Provider id where known (openai, anthropic, google, aws, azure, …): the "
            "call is priced at that provider's price."
        ),
    )
    tokens_in: Tokens = Field(0, description="Prompt tokens, cached and cache-written included.")
    tokens_cached_in: Tokens = Field(0, description="Of tokens_in, read from the prompt cache.")
    tokens_cache_write: Tokens = Field(0, description="Of tokens_in, written to the prompt cache.")
    tokens_out: Tokens = Field(0, description="Generated tokens, reasoning included.")
    tokens_reasoning: Tokens = Field(0, description="Of tokens_out, reasoning tokens.")
    usage_reported: bool = Field(
        True,
        description=(
            "False when the call reported no token counts (then all are 0): its cost "
            "is unknown, never $0."
        ),
    )
    cost_usd_reported: Usd | None = Field(
        None, description="The provider's own cost of the call, if it gives one: it wins."
    )

    @model_validator(mode="after")
    def _parts_within_totals(self) -> ModelCall:
        if self.tokens_cached_in + self.tokens_cache_write > self.tokens_in:
            raise ValueError(
                "tokens_cached_in + tokens_cache_write must not exceed tokens_in "
                "(tokens_in counts every prompt token, cached ones included)"
            )
        if self.tokens_reasoning > self.tokens_out:
            raise ValueError(
                "tokens_reasoning must not exceed tokens_out "
                "(tokens_out counts every generated token, reasoning included)"
            )
        if not self.usage_reported and (self.tokens_in or self.tokens_out):
            raise ValueError("a call with usage_reported false reports no tokens")
        return self


def calls_problem(
    calls: Sequence[ModelCall], tokens_in: int, tokens_out: int, tokens_cached_in: int | None
) -> str | None:
    """Why a step's totals disagree with its calls, or None: the totals are kept for
    readers of event_version 1, so they must say the same as the calls."""
    sums = {
        "tokens_in": (tokens_in, sum(c.tokens_in for c in calls)),
        "tokens_out": (tokens_out, sum(c.tokens_out for c in calls)),
    }
    if tokens_cached_in is not None:
        sums["tokens_cached_in"] = (tokens_cached_in, sum(c.tokens_cached_in for c in calls))
    for name, (total, summed) in sums.items():
        if total != summed:
            return f"{name} is {total} but the calls' {name} add up to {summed}"
    return None
