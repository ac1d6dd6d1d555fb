"""Prices from genai-prices (pydantic's maintained price data, MIT): rows for the table.

genai-prices describes each provider's models with a match expression (equals, starts
with, regex, and/or …), a price per token kind (some tiered by context size) and, for
a price that changed, dated versions. :func:`genai_rows` turns the pinned package's
snapshot into :class:`~sdk.prices.book.NewPrice` rows:

* a model's ``equals`` alternatives become its exact names; everything else in its
  expression becomes one Python regular expression with the same meaning (genai-prices
  compares lower-cased names, and so does :class:`~sdk.prices.book.PriceBook`), so the
  stored row says in plain text what it matches;
* each dated price becomes a row valid from its start date (the undated one from
  :data:`~sdk.prices.book.ALWAYS`), in the library's order, so the later one wins a tie
  exactly as it does in genai-prices;
* the provider's position and its own match expression are kept, so a call that names
  no provider is priced where genai-prices would price it.

Left out, and counted in :attr:`Conversion.skipped` with the reason: models priced by
something other than tokens (per request, per image, per audio hour), time-of-day
prices (off-peak rates cannot be applied to a day's sums), and request variants (batch
or service-tier rates: calls do not say which they used). Audio, image and video token
kinds are not priced separately: their tokens are billed as text.

Written by hand: genai-prices has no exporter to another price store (its types are
for its own lookup); this is a translation of its data model, tested against its own
lookup over the whole snapshot.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from importlib.metadata import version as _version
from typing import Any

from sdk.prices.book import ALWAYS, MANUAL, NewPrice, PriceBook, PriceRow
from sdk.prices.errors import InvalidPrice
from sdk.prices.model import Kind, Price, Tier

__all__ = [
    "GENAI_SOURCE",
    "SEED_MANUAL",
    "Conversion",
    "bundled_book",
    "genai_rows",
    "match_of",
    "price_of",
    "rows_as_book",
    "translate",
]

GENAI_VERSION = _version("genai-prices")
GENAI_SOURCE = f"genai-prices {GENAI_VERSION}"

# genai-prices' price keys for the kinds wdp prices (USD per million tokens).
_KEYS: dict[Kind, str] = {
    "input": "input_mtok",
    "output": "output_mtok",
    "cache_read": "cache_read_mtok",
    "cache_write": "cache_write_mtok",
    "reasoning": "output_reasoning_mtok",
}


def _exact_and_rest(clause: Any) -> tuple[list[str], list[Any]]:
    name = type(clause).__name__
    if name == "ClauseEquals":
        return [clause.equals.lower()], []
    if name == "ClauseOr":
        exact: list[str] = []
        rest: list[Any] = []
        for part in clause.or_:
            e, r = _exact_and_rest(part)
            exact += e
            rest += r
        return exact, rest
    return [], [clause]


def translate(clause: Any) -> str:
    """A genai-prices match clause as a regex searched in the lower-cased name."""
    name = type(clause).__name__
    if name == "ClauseEquals":
        return f"^{re.escape(clause.equals.lower())}$"
    if name == "ClauseStartsWith":
        return f"^{re.escape(clause.starts_with.lower())}"
    if name == "ClauseEndsWith":
        return f"{re.escape(clause.ends_with.lower())}$"
    if name == "ClauseContains":
        return re.escape(str(clause.contains).lower())
    if name == "ClauseRegex":
        return str(clause.regex)
    if name == "ClauseOr":
        return "(?:" + "|".join(f"(?:{translate(c)})" for c in clause.or_) + ")"
    if name == "ClauseAnd":
        # Each part must hold from the start of the name: lookaheads at position 0.
        return "^" + "".join(f"(?=.*?(?:{translate(c)}))" for c in clause.and_)
    raise InvalidPrice(f"unknown genai-prices match clause {name}")


def match_of(clause: Any) -> tuple[tuple[str, ...], str | None]:
    """A clause as exact names and (for the rest) one pattern."""
    exact, rest = _exact_and_rest(clause)
    if not rest:
        return tuple(exact), None
    if len(rest) == 1:
        return tuple(exact), translate(rest[0])
    return tuple(exact), "|".join(f"(?:{translate(c)})" for c in rest)


def _rate(value: Any) -> tuple[Decimal | None, tuple[Tier, ...]]:
    if value is None:
        return None, ()
    if isinstance(value, Decimal):
        return value, ()
    base, tiers = value.base, value.tiers  # TieredPrices
    return base, tuple(Tier(int(t.start), t.price) for t in tiers)


def price_of(model_price: Any) -> Price | None:
    """A genai-prices ModelPrice as a :class:`Price`; None when it prices no tokens."""
    rates: dict[Kind, Decimal | None] = {}
    tiers: dict[Kind, tuple[Tier, ...]] = {}
    for kind, key in _KEYS.items():
        rate, kind_tiers = _rate(getattr(model_price, key, None))
        rates[kind] = rate
        if kind_tiers:
            tiers[kind] = kind_tiers
    if rates["input"] is None and rates["output"] is None:
        return None
    return Price(
        input=rates["input"] if rates["input"] is not None else Decimal(0),
        output=rates["output"] if rates["output"] is not None else Decimal(0),
        cache_read=rates["cache_read"],
        cache_write=rates["cache_write"],
        reasoning=rates["reasoning"],
        tiers=tiers,
    )


@dataclass
class Conversion:
    """What :func:`genai_rows` made of the snapshot."""

    rows: list[NewPrice] = field(default_factory=list)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # provider, model, why


def _model_rows(
    provider: Any, p_rank: int, p_pattern: str | None, model: Any, m_rank: int
) -> list[NewPrice]:
    exact, pattern = match_of(model.match)
    conditional = model.prices if isinstance(model.prices, list) else None
    versions: list[tuple[date, Any]] = []
    if conditional is None:
        versions.append((ALWAYS, model.prices))
    else:
        for i, cp in enumerate(conditional):
            kind = type(cp.constraint).__name__
            if kind == "TimeOfDateConstraint":
                continue  # off-peak rates: not applicable to a day's sums
            start = cp.constraint.start_date if kind == "StartDateConstraint" and i > 0 else ALWAYS
            versions.append((start, cp.prices))
    rows = []
    for valid_from, model_price in versions:
        price = price_of(model_price)
        if price is None:
            continue
        rows.append(
            NewPrice(
                model=model.id,
                price=price,
                valid_from=valid_from,
                source=GENAI_SOURCE,
                exact=exact,
                pattern=pattern,
                provider=provider.id,
                provider_rank=p_rank,
                rank=m_rank,
                provider_pattern=p_pattern,
                note=model.name,
            )
        )
    return rows


def genai_rows(providers: Sequence[Any] | None = None) -> Conversion:
    """Rows for every token-priced model of the pinned snapshot (or of ``providers``)."""
    if providers is None:
        from genai_prices import data_snapshot

        providers = data_snapshot.get_snapshot().providers
    out = Conversion()
    for p_rank, provider in enumerate(providers):
        p_pattern = None if provider.model_match is None else translate(provider.model_match)
        for m_rank, model in enumerate(provider.models):
            try:
                rows = _model_rows(provider, p_rank, p_pattern, model, m_rank)
            except InvalidPrice as exc:
                out.skipped.append((provider.id, model.id, str(exc)))
                continue
            if not rows:
                out.skipped.append((provider.id, model.id, "not priced per token"))
            out.rows += rows
    return out


def _per_million(input: str, output: str) -> Price:
    return Price(input=Decimal(input), output=Decimal(output))


# Manual rows wdp starts with: the models of the seed-era tables that genai-prices
# does not know. All 18 names of the hand-written table that sdk/langgraph/prices.py
# had before issue 15 (gpt-4o, gpt-4.1, o3-mini, claude-3-5/3-7 sonnet, 3-5 haiku and
# their dated releases) are priced by genai-prices 0.2.3 at the same rates
# (tests/unit/test_prices_genai.py checks it); what is left are the fake models of
# `wdp demo` (examples/orchestrator/graph.py), priced like gpt-4o-mini and gpt-4o so
# that the demo's costs are known on the platform too.
_SEED_NOTE = "wdp demo's fake model (examples/orchestrator), priced like {}"
SEED_MANUAL: list[NewPrice] = [
    NewPrice(
        model=name,
        price=_per_million(input, output),
        valid_from=ALWAYS,
        source=MANUAL,
        exact=(name,),
        note=_SEED_NOTE.format(like),
    )
    for name, input, output, like in (
        ("demo-small", "0.15", "0.60", "gpt-4o-mini"),
        ("demo-large", "2.50", "10.00", "gpt-4o"),
    )
]


def rows_as_book(rows: Sequence[NewPrice], *, first_id: int = 1) -> PriceBook:
    """A book of ``rows`` as if inserted in this order (ids from ``first_id``)."""
    return PriceBook(
        PriceRow(
            price_id=first_id + i,
            model=r.model,
            provider=r.provider.strip().lower(),
            exact=frozenset(n.strip().lower() for n in r.exact if n.strip()),
            pattern=r.pattern,
            valid_from=r.valid_from,
            source=r.source,
            price=r.price,
            provider_rank=r.provider_rank,
            rank=r.rank,
            provider_pattern=r.provider_pattern,
            note=r.note,
        )
        for i, r in enumerate(rows)
    )


@functools.cache
def bundled_book() -> PriceBook:
    """The pinned genai-prices data plus :data:`SEED_MANUAL`, as a book: what the SDK's
    local estimate uses offline (the platform's table starts from the same rows)."""
    return rows_as_book([*genai_rows().rows, *SEED_MANUAL])
