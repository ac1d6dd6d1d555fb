"""Model prices, in USD per token, and what a call cost.

The defaults are vendors' published list prices (per 1M tokens, converted) as of
2025, for the exact model names listed (dated releases can be priced differently -
gpt-4o-2024-05-13 costs twice gpt-4o - so names are never matched loosely); prices
change, so pass ``prices=`` to :func:`sdk.langgraph.instrument` to override or extend
them. A model with no price gets ``cost_usd_est = None`` and ``cost_unknown = True``:
an estimate is never invented.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

M = 1_000_000


@dataclass(frozen=True)
class ModelPrice:
    """USD per token. ``cached_input``: prompt tokens read from the provider's cache;
    ``cache_write``: prompt tokens written to it (Anthropic charges extra). None: billed
    as ordinary input."""

    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None

    def __post_init__(self) -> None:
        for name in ("input", "output", "cached_input", "cache_write"):
            value = getattr(self, name)
            if value is None and name in ("cached_input", "cache_write"):
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
            ):
                raise ValueError(f"ModelPrice.{name} must be a non-negative number, got {value!r}")

    @classmethod
    def per_million(
        cls,
        *,
        input: float,
        output: float,
        cached_input: float | None = None,
        cache_write: float | None = None,
    ) -> ModelPrice:
        """Prices as vendors publish them: USD per 1M tokens."""
        return cls(
            input=input / M,
            output=output / M,
            cached_input=None if cached_input is None else cached_input / M,
            cache_write=None if cache_write is None else cache_write / M,
        )

    def cost(
        self, *, tokens_in: int, tokens_out: int, cached_in: int = 0, cache_written: int = 0
    ) -> float:
        """``tokens_in`` includes the cached and cache-writing prompt tokens (as LangChain's
        ``usage_metadata`` reports them)."""
        cached = min(max(cached_in, 0), tokens_in) if self.cached_input is not None else 0
        written = 0
        if self.cache_write is not None:
            written = min(max(cache_written, 0), tokens_in - cached)
        return (
            (tokens_in - cached - written) * self.input
            + cached * (self.cached_input or 0.0)
            + written * (self.cache_write or 0.0)
            + tokens_out * self.output
        )


PriceTable = Mapping[str, ModelPrice]

_GPT_4O = ModelPrice.per_million(input=2.50, output=10.00, cached_input=1.25)
_GPT_4O_MINI = ModelPrice.per_million(input=0.15, output=0.60, cached_input=0.075)
_GPT_41 = ModelPrice.per_million(input=2.00, output=8.00, cached_input=0.50)
_GPT_41_MINI = ModelPrice.per_million(input=0.40, output=1.60, cached_input=0.10)
_O3_MINI = ModelPrice.per_million(input=1.10, output=4.40, cached_input=0.55)
_SONNET = ModelPrice.per_million(input=3.00, output=15.00, cached_input=0.30, cache_write=3.75)
_HAIKU_35 = ModelPrice.per_million(input=0.80, output=4.00, cached_input=0.08, cache_write=1.00)

DEFAULT_PRICES: dict[str, ModelPrice] = {
    "gpt-4o": _GPT_4O,
    "gpt-4o-2024-08-06": _GPT_4O,
    "gpt-4o-2024-11-20": _GPT_4O,
    "gpt-4o-mini": _GPT_4O_MINI,
    "gpt-4o-mini-2024-07-18": _GPT_4O_MINI,
    "gpt-4.1": _GPT_41,
    "gpt-4.1-2025-04-14": _GPT_41,
    "gpt-4.1-mini": _GPT_41_MINI,
    "gpt-4.1-mini-2025-04-14": _GPT_41_MINI,
    "o3-mini": _O3_MINI,
    "o3-mini-2025-01-31": _O3_MINI,
    "claude-3-5-sonnet-20240620": _SONNET,
    "claude-3-5-sonnet-20241022": _SONNET,
    "claude-3-5-sonnet-latest": _SONNET,
    "claude-3-7-sonnet-20250219": _SONNET,
    "claude-3-7-sonnet-latest": _SONNET,
    "claude-3-5-haiku-20241022": _HAIKU_35,
    "claude-3-5-haiku-latest": _HAIKU_35,
}


def merged_prices(overrides: Mapping[str, ModelPrice] | None) -> dict[str, ModelPrice]:
    """The defaults with ``overrides`` on top (an override replaces a model's price)."""
    table = dict(DEFAULT_PRICES)
    for model, price in (overrides or {}).items():
        if not isinstance(price, ModelPrice):
            raise TypeError(f"prices[{model!r}] must be a ModelPrice, not {type(price).__name__}")
        table[model] = price
    return table


def find_price(table: Mapping[str, ModelPrice], *names: str | None) -> ModelPrice | None:
    """The price of the first of ``names`` the table has, by exact name: the name the
    call asked for, then the one the provider says it served."""
    for name in names:
        if name and name in table:
            return table[name]
    return None
