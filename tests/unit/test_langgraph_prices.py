"""The handler's prices: ``ModelPrice`` (the public per-token class), ``prices=`` as manual
rows that win, the bundled genai-prices book (built off the caller's thread) and the
read-only ``DEFAULT_PRICES`` view of it."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from datetime import date
from decimal import Decimal

import pytest

from sdk.langgraph import DEFAULT_PRICES
from sdk.langgraph.prices import ModelPrice, Pricer, _Bundled, bundled, override_book
from sdk.prices import MANUAL, CallTokens, Price, cost
from sdk.prices.genai import GENAI_SOURCE, bundled_book
from sdk.telemetry.payloads import ModelCallDict

DAY = date(2026, 12, 2)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"input": -1e-6, "output": 0.0},
        {"input": 0.0, "output": -0.5},
        {"input": 0.0, "output": 0.0, "cached_input": -1.0},
        {"input": "1", "output": 0.0},
        {"input": 0.0, "output": None},
        {"input": None, "output": 0.0},
        {"input": float("nan"), "output": 0.0},
        {"input": 0.0, "output": float("inf")},
        {"input": True, "output": 0.0},
    ],
)
def test_a_price_must_be_non_negative_numbers(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="non-negative number"):
        ModelPrice(**kwargs)  # type: ignore[arg-type]


def test_zero_prices_and_an_absent_cached_price_are_valid() -> None:
    price = ModelPrice(input=0, output=0)
    assert price.cached_input is None
    assert price.cost(tokens_in=10, tokens_out=10) == 0


def test_per_million_divides_every_price_by_a_million() -> None:
    price = ModelPrice.per_million(input=2.5, output=10.0, cached_input=1.25)
    assert price == ModelPrice(input=2.5e-6, output=1e-5, cached_input=1.25e-6)
    assert ModelPrice.per_million(input=1, output=2).cached_input is None


def test_as_price_gives_back_the_per_million_rates_as_written() -> None:
    price = ModelPrice.per_million(input=0.15, output=0.60, cached_input=0.075, cache_write=3.75)
    assert price.as_price() == Price(
        input=Decimal("0.15"),
        output=Decimal("0.6"),
        cache_read=Decimal("0.075"),
        cache_write=Decimal("3.75"),
    )
    assert ModelPrice.of(price.as_price()) == price


def test_cost_prices_input_and_output_tokens() -> None:
    price = ModelPrice.per_million(input=1.0, output=2.0)
    assert price.cost(tokens_in=1_000_000, tokens_out=500_000) == pytest.approx(2.0)
    assert price.cost(tokens_in=7, tokens_out=3) == pytest.approx(13e-6)


def test_cached_input_tokens_are_priced_separately() -> None:
    price = ModelPrice.per_million(input=3.0, output=15.0, cached_input=0.3)
    # 4 in of which 2 cached, 3 out: 2*3 + 2*0.3 + 3*15 = 51.6 per 1M
    assert price.cost(tokens_in=4, tokens_out=3, cached_in=2) == pytest.approx(51.6e-6)


def test_cached_tokens_are_clamped_to_the_input_tokens_and_never_negative() -> None:
    price = ModelPrice.per_million(input=3.0, output=0.0, cached_input=0.3)
    assert price.cost(tokens_in=4, tokens_out=0, cached_in=99) == pytest.approx(4 * 0.3e-6)
    assert price.cost(tokens_in=4, tokens_out=0, cached_in=-5) == pytest.approx(12e-6)


def test_without_a_cached_price_cached_tokens_cost_the_normal_input_price() -> None:
    price = ModelPrice.per_million(input=3.0, output=0.0)
    assert price.cost(tokens_in=4, tokens_out=0, cached_in=4) == pytest.approx(12e-6)


def test_cache_writes_cost_their_own_price() -> None:
    sonnet = ModelPrice.per_million(input=3.0, output=15.0, cached_input=0.3, cache_write=3.75)
    cost = sonnet.cost(tokens_in=1000, tokens_out=0, cached_in=200, cache_written=300)
    assert cost == pytest.approx((500 * 3.00 + 200 * 0.30 + 300 * 3.75) / 1e6)


# --- prices= as manual rows ---------------------------------------------------------------


def test_an_override_is_a_manual_row_for_its_exact_name_at_any_provider() -> None:
    book = override_book({"House-Model": ModelPrice.per_million(input=1, output=2)})
    assert book is not None
    for provider in (None, "openai", "wdp-fake"):
        row = book.resolve("house-model", provider, DAY)
        assert row is not None
        assert (row.source, row.provider, row.exact) == (MANUAL, "", frozenset({"house-model"}))
        assert row.price == Price(input=Decimal(1), output=Decimal(2))
    assert book.resolve("house-model-2", None, DAY) is None  # exact: nothing else
    assert override_book({}) is None
    assert override_book(None) is None


def test_a_later_override_of_the_same_name_wins() -> None:
    book = override_book({"m": ModelPrice(1e-6, 1e-6), "M": ModelPrice(2e-6, 2e-6)})
    assert book is not None
    row = book.resolve("m", None, DAY)
    assert row is not None
    assert row.price.input == Decimal(2)


@pytest.mark.parametrize("bad", [0.5, {"input": 1, "output": 2}, (1, 2), None])
def test_an_override_must_be_a_model_price(bad: object) -> None:
    with pytest.raises(TypeError, match=r"prices\['x'\] must be a ModelPrice"):
        override_book({"x": bad})  # type: ignore[dict-item]


@pytest.mark.parametrize("name", ["", "   ", 7])
def test_an_override_needs_a_model_name(name: object) -> None:
    with pytest.raises(ValueError, match="model names must be non-empty strings"):
        override_book({name: ModelPrice(0, 0)})  # type: ignore[dict-item]


def call(
    model: str,
    provider: str | None,
    *,
    tokens: CallTokens | None = None,
    reported: float | None = None,
) -> ModelCallDict:
    """A call as the handler records it (tokens None: it reported none)."""
    t = tokens or CallTokens()
    return {
        "model": model,
        "provider": provider,
        "tokens_in": t.input,
        "tokens_cached_in": t.cache_read,
        "tokens_cache_write": t.cache_write,
        "tokens_out": t.output,
        "tokens_reasoning": t.reasoning,
        "usage_reported": tokens is not None,
        "cost_usd_reported": reported,
    }


def test_overrides_win_over_the_bundled_prices_for_every_provider() -> None:
    pricer = Pricer({"gpt-4o": ModelPrice.per_million(input=0.01, output=0.02)})
    tokens = CallTokens(input=1_000_000, output=1_000_000, cache_read=500_000)
    for provider in ("openai", "azure", None):
        assert pricer.cost(call("gpt-4o", provider, tokens=tokens), DAY) == Decimal("0.03")
    # and leave every other model to the bundled prices
    row = bundled_book().resolve("gpt-4o-mini", "openai", DAY)
    assert row is not None
    mini = call("gpt-4o-mini", "openai", tokens=tokens)
    assert pricer.cost(mini, DAY) == cost(row.price, tokens)


def test_every_token_kind_of_a_call_is_priced() -> None:
    tokens = CallTokens(
        input=300_000, output=9_000, cache_read=40_000, cache_write=7_000, reasoning=800
    )
    row = bundled_book().resolve("claude-sonnet-4-5", "anthropic", DAY)
    assert row is not None
    got = Pricer().cost(call("claude-sonnet-4-5", "anthropic", tokens=tokens), DAY)
    assert got == cost(row.price, tokens)
    assert got != cost(row.price, CallTokens(input=300_000, output=9_000))


def test_a_reported_cost_is_the_cost_and_no_usage_or_no_price_is_unknown() -> None:
    pricer = Pricer()
    tokens = CallTokens(input=10, output=10)
    assert pricer.cost(call("mystery-model", None, tokens=tokens, reported=0.25), DAY) == Decimal(
        "0.25"
    )
    assert pricer.cost(call("mystery-model", None, reported=0.0), DAY) == Decimal(0)
    assert pricer.cost(call("mystery-model", None, tokens=tokens), DAY) is None  # never $0
    assert pricer.cost(call("gpt-4o-mini", "openai"), DAY) is None  # no token counts


# --- the bundled book ---------------------------------------------------------------------


def test_the_bundled_book_is_genai_prices_with_the_seed_rows() -> None:
    book = bundled()
    assert book is not None
    assert len(book.rows) == len(bundled_book().rows)
    assert {r.source for r in book.rows} == {GENAI_SOURCE, MANUAL}


def test_a_book_that_fails_to_load_leaves_costs_unknown_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> None:
        raise OSError("snapshot unreadable")

    assert bundled() is not None  # the process's own loader is done: not affected below
    monkeypatch.setattr("sdk.prices.genai.bundled_book", broken)
    loader = _Bundled()
    with caplog.at_level(logging.ERROR):
        assert loader.get() is None
        assert loader.get() is None  # once: not retried on every call
    assert caplog.text.count("could not load the bundled genai-prices data") == 1


def _fresh_python(code: str) -> object:
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    return json.loads(out)


def test_importing_sdk_langgraph_does_not_load_the_price_data() -> None:
    loaded = _fresh_python(
        "import json, sys; import sdk.langgraph; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('genai_prices'))))"
    )
    assert loaded == []


def test_a_handler_loads_the_bundled_book_on_a_thread_of_its_own() -> None:
    """Created, the handler returns long before the book is built (about half a second
    of parsing); a daemon thread builds it without anyone asking for it."""
    state = _fresh_python(
        "import json, threading\n"
        "from sdk.langgraph import WdpCallbackHandler, prices\n"
        "WdpCallbackHandler(workflow_name='w')\n"
        "ready = prices._BUNDLED._ready.is_set()\n"
        "names = [t.name for t in threading.enumerate() if t.daemon]\n"
        "built = prices._BUNDLED._ready.wait(60)\n"
        "print(json.dumps([ready, names, built, prices._BUNDLED._book is not None]))\n"
    )
    ready_at_once, names, built, loaded = state  # type: ignore[misc]
    assert ready_at_once is False
    assert "wdp-price-book" in names
    assert built
    assert loaded


# --- DEFAULT_PRICES: a read-only view of the bundled prices ---------------------------------


def test_default_prices_are_the_bundled_base_rates_by_exact_name() -> None:
    assert DEFAULT_PRICES["gpt-4o"] == ModelPrice.per_million(
        input=2.5, output=10.0, cached_input=1.25
    )
    # a dated release priced otherwise has its own entry: twice gpt-4o
    assert DEFAULT_PRICES["gpt-4o-2024-05-13"].input == pytest.approx(5e-6)
    assert "GPT-4O-MINI" in DEFAULT_PRICES  # names compare lower-cased, like calls
    assert "mystery-model" not in DEFAULT_PRICES
    with pytest.raises(KeyError):
        DEFAULT_PRICES["gpt-4o-2024"]  # no exact name: the view lists names, not patterns


def test_every_default_price_listed_is_one_a_call_naming_no_provider_gets() -> None:
    book = bundled_book()
    names = list(DEFAULT_PRICES)
    assert len(names) == len(DEFAULT_PRICES) > 500
    for name in names:
        row = book.resolve(name, None, date.today())
        assert row is not None, name
        assert DEFAULT_PRICES[name] == ModelPrice.of(row.price), name


def test_default_prices_cannot_be_changed() -> None:
    with pytest.raises(TypeError):
        DEFAULT_PRICES["gpt-4o"] = ModelPrice(0, 0)  # type: ignore[index]


def test_a_process_forked_while_the_book_loads_loads_it_itself() -> None:
    """The builder thread does not survive a fork: the child must not wait for it."""
    state = _fresh_python(
        "import json, os\n"
        "from sdk.langgraph import prices\n"
        "prices.warm_bundled()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os._exit(0 if prices.bundled() is not None else 3)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "print(json.dumps(os.waitstatus_to_exitcode(status)))\n"
    )
    assert state == 0
