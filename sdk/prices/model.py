"""What a model call costs: prices per token kind, context tiers, and the arithmetic.

One function, :func:`cost`, prices a call - or a sum of calls in one context band - for
the SDK's local estimate and for the platform's aggregates alike, so the two agree for
the same call by construction.

Token kinds follow how providers (and LangChain's ``usage_metadata``) report a call:
``input`` counts every prompt token, including those read from the prompt cache
(``cache_read``) and those written to it (``cache_write``); ``output`` counts every
generated token, including ``reasoning`` ones. A kind without its own price is billed
at its parent's (cache tokens as input, reasoning as output), as genai-prices does.

Context tiers: some models charge a higher rate, for all of a call's tokens, once its
input exceeds a threshold (genai-prices' "cliff" tiers: a call with more than ``above``
input tokens pays the tier's rate). A day's sums cannot say which calls crossed a
threshold, so aggregates keep calls apart by :data:`BANDS` - every threshold the price
data uses - and a tier is exact wherever its threshold is one of them.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Literal

from sdk.prices.errors import InvalidPrice

__all__ = [
    "BANDS",
    "KINDS",
    "MAX_RATE",
    "CallTokens",
    "Kind",
    "Price",
    "Tier",
    "band_of",
    "cost",
]

Kind = Literal["input", "cache_read", "cache_write", "output", "reasoning"]
KINDS: tuple[Kind, ...] = ("input", "cache_read", "cache_write", "output", "reasoning")

# Input-token thresholds at which calls are kept apart in the aggregates: every tier
# start genai-prices 0.2.3 uses, and round sizes above. Stored rows carry their band,
# so this list may only ever grow (a new threshold is exact for days aggregated after).
BANDS: tuple[int, ...] = (
    0,
    32_000,
    100_000,
    128_000,
    199_999,
    200_000,
    256_000,
    272_000,
    512_000,
    524_288,
    1_000_000,
)
MILLION = Decimal(1_000_000)


def band_of(tokens_in: int) -> int:
    """The band of a call with ``tokens_in`` input tokens: the largest threshold it
    exceeds (0 when it exceeds none)."""
    return BANDS[max(bisect.bisect_left(BANDS, tokens_in) - 1, 0)]


@dataclass(frozen=True, slots=True)
class Tier:
    """From ``above`` input tokens on (exclusive), ``per_mtok`` USD per million tokens."""

    above: int
    per_mtok: Decimal


# USD per 1M tokens: far above any real price (the dearest are ~$600), low enough that
# a day's cost (at most ~1e16 tokens) stays a plain number, never a decimal overflow.
MAX_RATE = Decimal(1_000_000)


def _rate_ok(value: Decimal | None) -> bool:
    return value is None or (
        isinstance(value, Decimal) and value.is_finite() and 0 <= value <= MAX_RATE
    )


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens, per kind; ``None``: billed at the parent kind's rate.

    ``tiers``: per kind, the rates above input thresholds (ascending). A tier's
    threshold must be one of :data:`BANDS` (else aggregates could not apply it exactly).
    """

    input: Decimal
    output: Decimal
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None
    reasoning: Decimal | None = None
    tiers: Mapping[Kind, tuple[Tier, ...]] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        for kind in KINDS:
            value = getattr(self, kind)
            if not _rate_ok(value) or (value is None and kind in ("input", "output")):
                raise InvalidPrice(
                    f"{kind}: must be a finite Decimal from 0 to {MAX_RATE}, got {value!r}"
                )
        for kind, tiers in self.tiers.items():
            if kind not in KINDS or (
                kind != "input" and kind != "output" and getattr(self, kind) is None
            ):
                raise InvalidPrice(f"tiers: {kind!r} is not a priced token kind")
            starts = [t.above for t in tiers]
            if starts != sorted(set(starts)):
                raise InvalidPrice(f"tiers of {kind}: thresholds must be distinct and ascending")
            for tier in tiers:
                if tier.above not in BANDS or tier.above == 0:
                    raise InvalidPrice(
                        f"tiers of {kind}: {tier.above} is not a supported threshold; "
                        f"use one of {', '.join(str(b) for b in BANDS[1:])}"
                    )
                if not _rate_ok(tier.per_mtok):
                    raise InvalidPrice(f"tiers of {kind}: rate must be from 0 to {MAX_RATE}")
        object.__setattr__(self, "tiers", MappingProxyType(dict(self.tiers)))

    def rate(self, kind: Kind, band: int = 0) -> Decimal:
        """USD per million tokens of ``kind`` for calls in ``band``."""
        own = getattr(self, kind)
        if own is None:
            kind = "input" if kind in ("cache_read", "cache_write") else "output"
            own = getattr(self, kind)
        for tier in reversed(self.tiers.get(kind, ())):
            if band >= tier.above:
                return tier.per_mtok
        return own  # type: ignore[no-any-return]

    def as_json(self) -> dict[str, object]:
        """Rates as strings (exact decimals), tiers as ``[above, rate]`` pairs."""
        out: dict[str, object] = {
            k: str(getattr(self, k)) for k in KINDS if getattr(self, k) is not None
        }
        if self.tiers:
            out["tiers"] = {
                k: [[t.above, str(t.per_mtok)] for t in v] for k, v in self.tiers.items()
            }
        return out


@dataclass(frozen=True, slots=True)
class CallTokens:
    """Tokens of one call, or the sums of calls in one band. ``input`` includes
    ``cache_read`` and ``cache_write``; ``output`` includes ``reasoning``."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    reasoning: int = 0


def cost(price: Price, tokens: CallTokens, band: int | None = None) -> Decimal:
    """USD for ``tokens`` at ``price``; ``band`` defaults to that of ``tokens.input``
    (right for one call; sums pass the band their calls were kept in).

    Inconsistent counts (more cache tokens than input tokens, more reasoning than output
    tokens: old or hand-posted events) are clamped, so nothing is billed twice.
    """
    band = band_of(tokens.input) if band is None else band
    total_in, total_out = max(tokens.input, 0), max(tokens.output, 0)
    read = min(max(tokens.cache_read, 0), total_in) if price.cache_read is not None else 0
    written = 0
    if price.cache_write is not None:
        written = min(max(tokens.cache_write, 0), total_in - read)
    reasoning = min(max(tokens.reasoning, 0), total_out) if price.reasoning is not None else 0
    usd = (
        (total_in - read - written) * price.rate("input", band)
        + read * price.rate("cache_read", band)
        + written * price.rate("cache_write", band)
        + (total_out - reasoning) * price.rate("output", band)
        + reasoning * price.rate("reasoning", band)
    )
    return usd / MILLION
