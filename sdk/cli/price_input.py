"""What ``wdp prices set`` accepts: rates and tiers typed on the command line.

Each refusal is collected under the option's name (:class:`~sdk.usage.params.Problems`,
as the read commands do), so one bad command line is one red line naming every option
that was wrong; what only the whole price can refuse (a tier of a kind without a rate of
its own, a threshold given twice) ends the command naming ``--tier``.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from sdk.cli import reads
from sdk.cli.reads import shown

if TYPE_CHECKING:
    from sdk.prices.model import Kind, Price, Tier
    from sdk.usage.params import Problems


def rate(problems: Problems, kind: str, value: str | None) -> Decimal | None:
    """USD per 1M tokens: a finite, non-negative decimal (None when not given)."""
    if value is None:
        return None
    try:
        parsed = Decimal(value.strip())
    except InvalidOperation:
        problems.add(
            kind, f"must be a number of USD per 1M tokens, e.g. 2.5 (got {shown(value)[:40]!r})"
        )
        return None
    if not parsed.is_finite():
        problems.add(kind, f"must be a finite number (got {shown(value)[:40]!r})")
        return None
    if parsed < 0:
        problems.add(kind, f"must not be negative (got {shown(value)[:40]})")
        return None
    from sdk.prices.model import MAX_RATE

    if parsed > MAX_RATE:
        problems.add(
            kind, f"must be at most {MAX_RATE} USD per 1M tokens (got {shown(value)[:40]})"
        )
        return None
    return parsed


_TIER = re.compile(r"^([a-z_-]+):([0-9]+(?:_[0-9]+)*):(.+)$")


def tiers(problems: Problems, values: list[str]) -> dict[Kind, list[Tier]]:
    """``--tier KIND:ABOVE:RATE`` values, by kind; ABOVE must be one of the thresholds
    aggregates keep calls apart by (:data:`~sdk.prices.model.BANDS`)."""
    from sdk.prices.model import BANDS, KINDS, Tier

    found: dict[Kind, list[Tier]] = {}
    for value in values:
        match = _TIER.match(value.strip())
        if match is None:
            problems.add(
                "tier", f"{shown(value)[:40]!r} is not KIND:ABOVE:RATE, e.g. input:200000:5"
            )
            continue
        kind_text, above_text, rate_text = match.groups()
        kind = kind_text.replace("-", "_")
        if kind not in KINDS:
            problems.add(
                "tier", f"unknown kind {shown(kind_text)[:30]!r}: use one of {', '.join(KINDS)}"
            )
            continue
        above = int(above_text)
        if above not in BANDS[1:]:
            problems.add(
                "tier",
                f"{above} is not a supported threshold; use one of "
                + ", ".join(str(b) for b in BANDS[1:]),
            )
            continue
        per_mtok = rate(problems, "tier", rate_text)
        if per_mtok is not None:
            found.setdefault(kind, []).append(Tier(above, per_mtok))
    return found


def price(rates: dict[str, Decimal | None], tiers: dict[Kind, list[Tier]]) -> Price:
    """The :class:`Price`; what only the whole price can refuse (a tier of a kind without
    its own rate, a threshold given twice) is named as --tier."""
    from sdk.prices.errors import InvalidPrice
    from sdk.prices.model import Price

    try:
        return Price(
            input=rates["input"],  # type: ignore[arg-type]  # checked: both required
            output=rates["output"],  # type: ignore[arg-type]
            cache_read=rates["cache_read"],
            cache_write=rates["cache_write"],
            reasoning=rates["reasoning"],
            tiers={k: tuple(sorted(v, key=lambda t: t.above)) for k, v in tiers.items()},
        )
    except InvalidPrice as exc:
        message = str(exc).removeprefix("tiers: ")
        if message != str(exc) or message.startswith("tiers"):
            message = message.replace(
                "is not a priced token kind",
                "has no rate of its own: give "
                "its option too (--cache-read, --cache-write, --reasoning)",
            )
            reads.stop(f"--tier: {message}")
        reads.stop(message)
