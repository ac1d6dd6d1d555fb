"""What a model call costs, for the handler's local estimate (``cost_usd_est``).

The estimate comes from the same price rows and the same arithmetic as the platform's
computed cost: the rows of :func:`sdk.prices.genai.bundled_book` (the pinned
genai-prices snapshot plus wdp's seed manual rows, the rows the platform's table starts
from), looked up with :meth:`sdk.prices.PriceBook.resolve` for the call's model,
provider and UTC day, and priced by :func:`sdk.prices.cost` - so for the same call the
handler's estimate equals the platform's computed cost. Nothing is matched loosely
beyond what the price data itself says (dated releases priced differently, such as
``gpt-4o-2024-05-13``, have rows of their own), and a model with no price gets
``cost_usd_est = None`` and ``cost_unknown = True``: an estimate is never invented. A
cost the provider reported for the call is used as it is.

``prices=`` on :func:`sdk.langgraph.instrument` takes :class:`ModelPrice` entries (USD
per token, as before): each becomes a manual row for that exact name (compared
lower-cased, any provider) that wins over every bundled row, also on the graph's
thread before the bundled data is ready.

Building the bundled book takes about half a second (it imports the whole snapshot), so
the handler starts it on a daemon thread when it is created (:func:`warm_bundled`), and
calls are priced where their events are built (:class:`Estimate`, on the SDK's sender
thread): the graph's thread neither prices nor waits for the book.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TypedDict

from sdk.prices import ALWAYS, MANUAL, CallTokens, Price, PriceBook, PriceRow, cost
from sdk.telemetry.payloads import ModelCallDict

__all__ = [
    "DEFAULT_PRICES",
    "Estimate",
    "EstimateFields",
    "ModelPrice",
    "PriceTable",
    "Pricer",
    "bundled",
    "warm_bundled",
]

log = logging.getLogger(__name__)

M = 1_000_000


def _per_mtok(per_token: float) -> Decimal:
    """A per-token float as the exact decimal USD per million tokens it was written as
    (15 significant digits: 0.15 / 1e6 gives 0.15 again, not 0.1499999…)."""
    return Decimal(f"{per_token * M:.15g}")


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

    @classmethod
    def of(cls, price: Price) -> ModelPrice:
        """The base rates of a :class:`sdk.prices.Price` (context tiers and a separate
        reasoning rate have no place here; the handler applies them all the same)."""

        def per_token(value: Decimal | None) -> float | None:
            return None if value is None else float(value) / M

        return cls(
            input=float(price.input) / M,
            output=float(price.output) / M,
            cached_input=per_token(price.cache_read),
            cache_write=per_token(price.cache_write),
        )

    def as_price(self) -> Price:
        """This price as a :class:`sdk.prices.Price` (USD per million tokens)."""
        return Price(
            input=_per_mtok(self.input),
            output=_per_mtok(self.output),
            cache_read=None if self.cached_input is None else _per_mtok(self.cached_input),
            cache_write=None if self.cache_write is None else _per_mtok(self.cache_write),
        )

    def cost(
        self, *, tokens_in: int, tokens_out: int, cached_in: int = 0, cache_written: int = 0
    ) -> float:
        """``tokens_in`` includes the cached and cache-writing prompt tokens (as LangChain's
        ``usage_metadata`` reports them). The same arithmetic as :func:`sdk.prices.cost`."""
        tokens = CallTokens(
            input=tokens_in, output=tokens_out, cache_read=cached_in, cache_write=cache_written
        )
        return float(cost(self.as_price(), tokens))


PriceTable = Mapping[str, ModelPrice]


def override_book(overrides: Mapping[str, ModelPrice] | None) -> PriceBook | None:
    """``prices=`` as manual rows: one per entry, for that exact name at any provider;
    a later entry for the same (lower-cased) name wins. None without entries."""
    rows = []
    for i, (model, price) in enumerate((overrides or {}).items()):
        if not isinstance(price, ModelPrice):
            raise TypeError(f"prices[{model!r}] must be a ModelPrice, not {type(price).__name__}")
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"prices: model names must be non-empty strings, got {model!r}")
        rows.append(
            PriceRow(
                price_id=i + 1,
                model=model.strip(),
                provider="",
                exact=frozenset({model.strip().lower()}),
                pattern=None,
                valid_from=ALWAYS,
                source=MANUAL,
                price=price.as_price(),
                note="prices= of sdk.langgraph.instrument",
            )
        )
    return PriceBook(rows) if rows else None


class _Bundled:
    """The bundled book, built once per process on a daemon thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._started = False
        self._book: PriceBook | None = None
        self._thread: threading.Thread | None = None
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(before=self._before_fork, after_in_child=self._after_fork)

    def _before_fork(self) -> None:
        """A fork while the builder thread imports genai-prices' data would leave the
        child with half-imported modules that no thread finishes: the fork waits for
        the build (about half a second, only if it happens to be under way)."""
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            self._ready.wait(timeout=30)

    def _after_fork(self) -> None:
        """A child forked before the book was built (the wait above timed out) has no
        builder thread: it starts its own when asked, rather than wait for the parent's."""
        if not self._ready.is_set():
            self._lock = threading.Lock()
            self._ready = threading.Event()
            self._started = False
        self._thread = None

    def warm(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
            thread = threading.Thread(target=self._build, name="wdp-price-book", daemon=True)
            self._thread = thread
        thread.start()

    def _build(self) -> None:
        try:
            from sdk.prices.genai import bundled_book  # genai-prices: imported off the hot path

            self._book = bundled_book()
        except Exception:
            log.exception(
                "wdp could not load the bundled genai-prices data: calls to models without "
                "a prices= entry get an unknown cost"
            )
        finally:
            self._ready.set()

    def get(self) -> PriceBook | None:
        if not self._ready.is_set():
            self.warm()
            self._ready.wait()
        return self._book


_BUNDLED = _Bundled()
warm_bundled = _BUNDLED.warm


def bundled() -> PriceBook | None:
    """The bundled book (waiting for it if it is being built); None if it failed to load."""
    return _BUNDLED.get()


class Pricer:
    """The handler's prices: ``prices=`` overrides first, then the bundled book."""

    def __init__(self, overrides: Mapping[str, ModelPrice] | None = None) -> None:
        self.overrides = override_book(overrides)
        warm_bundled()

    def row(self, model: str, provider: str | None, day: date) -> PriceRow | None:
        if self.overrides is not None:
            row = self.overrides.resolve(model, provider, day)
            if row is not None:
                return row
        book = bundled()
        return None if book is None else book.resolve(model, provider, day)

    def cost(self, call: ModelCallDict, day: date) -> Decimal | None:
        """USD of one call: the provider's figure if it gave one, else its tokens at the
        price valid on ``day``; None (unknown) without a price or without token counts."""
        reported = call.get("cost_usd_reported")
        if reported is not None:
            return Decimal(repr(reported))
        if not call.get("usage_reported", True):
            return None
        row = self.row(call["model"], call.get("provider"), day)
        if row is None:
            return None
        tokens = CallTokens(
            input=call.get("tokens_in", 0),
            output=call.get("tokens_out", 0),
            cache_read=call.get("tokens_cached_in", 0),
            cache_write=call.get("tokens_cache_write", 0),
            reasoning=call.get("tokens_reasoning", 0),
        )
        return cost(row.price, tokens)


class EstimateFields(TypedDict):
    """The estimate keys of ``step_completed`` and ``run_completed`` payloads."""

    cost_usd_est: float | None
    cost_unknown: bool


class Estimate:
    """What some calls cost, priced on ``day`` when first asked: where the event is
    built (the SDK's sender thread), so the graph's thread neither prices nor waits for
    the bundled book. Parts: estimates of other calls (a run's steps) added in."""

    __slots__ = ("_calls", "_day", "_parts", "_pricer", "_result")

    def __init__(
        self,
        pricer: Pricer,
        calls: Sequence[ModelCallDict],
        day: date,
        parts: Sequence[Estimate] = (),
    ) -> None:
        self._pricer = pricer
        self._calls = calls
        self._day = day
        self._parts = parts
        self._result: tuple[Decimal, bool] | None = None

    def total(self) -> tuple[Decimal, bool]:
        """USD of the calls with a known cost, and whether any call's cost is unknown."""
        if self._result is None:
            total, unknown = Decimal(0), False
            for call in self._calls:
                usd = self._pricer.cost(call, self._day)
                if usd is None:
                    unknown = True
                else:
                    total += usd
            for part in self._parts:
                usd, part_unknown = part.total()
                total += usd
                unknown |= part_unknown
            self._result = (total, unknown)
            self._calls, self._parts = (), ()  # priced: the calls need not be kept
        return self._result

    def fields(self) -> EstimateFields:
        """``cost_usd_est`` (None when a cost is unknown: never $0) and ``cost_unknown``."""
        total, unknown = self.total()
        return {"cost_usd_est": None if unknown else float(total), "cost_unknown": unknown}


class BundledPrices(Mapping[str, ModelPrice]):
    """A read-only view of the bundled prices by exact model name (lower-cased): the
    base rates a call of that model naming no provider is priced at today.

    What :data:`DEFAULT_PRICES` was before the table came from genai-prices; kept so that
    code reading it goes on working. It is informational: the handler prices each call
    from the full row (provider, context tiers, reasoning rate, the price valid on the
    call's day). ``prices=`` adds to these, so there is no need to merge them in.
    """

    _names_cache: frozenset[str] | None = None

    def _book(self) -> PriceBook:
        book = bundled()
        if book is None:
            raise LookupError("the bundled genai-prices data could not be loaded (see the log)")
        return book

    def _names(self) -> frozenset[str]:
        """The exact names a call naming no provider finds a price for (not every
        provider's: genai-prices prices those of providers such as OpenRouter or Bedrock
        only for calls that name them)."""
        if self._names_cache is None:
            book, today = self._book(), datetime.now(UTC).date()
            names = {n for row in book.rows for n in row.exact}
            self._names_cache = frozenset(n for n in names if book.resolve(n, None, today))
        return self._names_cache

    def __getitem__(self, name: str) -> ModelPrice:
        key = name.strip().lower() if isinstance(name, str) else ""
        row = None
        if key in self._names():
            row = self._book().resolve(key, None, datetime.now(UTC).date())
        if row is None:
            raise KeyError(name)
        return ModelPrice.of(row.price)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._names()))

    def __len__(self) -> int:
        return len(self._names())

    def __repr__(self) -> str:
        return "<DEFAULT_PRICES: the bundled genai-prices data, read-only>"


DEFAULT_PRICES: Mapping[str, ModelPrice] = BundledPrices()
