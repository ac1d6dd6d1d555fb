"""Each model call of a node, as ``workflow.step_completed`` carries it (event_version 2),
and what the handler estimates it cost, on real LangGraph graphs.

The chat model is :class:`sdk.langgraph.fake.FakeChatModel` (tokens = whitespace words),
made to report cache reads and writes, reasoning tokens, its provider and a cost of its
own as real integrations do; the recording client validates every event as the sender
thread would (the totals must add up to the calls, or the event is refused). Prices
are genai-prices' bundled data (:func:`sdk.prices.genai.bundled_book`) unless a test
overrides them.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from langgraph.graph import START, StateGraph

from sdk.langgraph import ModelPrice, instrument
from sdk.langgraph.fake import FakeChatModel
from sdk.prices import CallTokens, Price, cost
from sdk.prices.genai import bundled_book
from sdk.telemetry.client import TelemetryClient
from sdk.telemetry.deferred import DeferredEvent, DeferredWork
from sdk.telemetry.model_calls import MAX_CALLS
from tests.support.langgraph_graphs import PRICES, RecordingClient, SimpleState, build_linear, p

WF = "calls"
NEW = {"item_id": "C-1", "status": "new"}
PROMPT = "three word prompt"  # 3 tokens in


def graph_of(**nodes: list[FakeChatModel]) -> Any:
    """One node per keyword, in order, each calling its models with PROMPT."""

    def work(models: list[FakeChatModel]) -> Any:
        def node(state: SimpleState) -> dict[str, Any]:
            for model in models:
                model.invoke(PROMPT)
            return {}

        return node

    return build_linear([(name, work(models)) for name, models in nodes.items()])


def run(graph: Any, **options: Any) -> RecordingClient:
    client = RecordingClient()
    instrument(graph, workflow_name=WF, client=client, **options).invoke(NEW)
    return client


def price_on(model: str, provider: str | None, day: date) -> Price:
    row = bundled_book().resolve(model, provider, day)
    assert row is not None, model
    return row.price


def platform_cost(call: dict[str, Any], day: date) -> Decimal | None:
    """What the platform computes for a call: the provider's cost, else its tokens at the
    price the same rows give on its day (sdk.prices, the one function for both)."""
    if call["cost_usd_reported"] is not None:
        return Decimal(repr(call["cost_usd_reported"]))
    row = bundled_book().resolve(call["model"], call["provider"], day)
    if row is None or not call["usage_reported"]:
        return None
    tokens = CallTokens(
        input=call["tokens_in"],
        output=call["tokens_out"],
        cache_read=call["tokens_cached_in"],
        cache_write=call["tokens_cache_write"],
        reasoning=call["tokens_reasoning"],
    )
    return cost(row.price, tokens)


def test_every_call_of_a_node_is_recorded_with_every_token_kind() -> None:
    claude = FakeChatModel(
        model="claude-sonnet-4-5",
        provider="anthropic",
        text="four words of reply",
        cached_input_tokens=1,
        cache_write_tokens=1,
    )
    thinker = FakeChatModel(
        model="o3-mini", provider="openai", text="two words", reasoning_tokens=30
    )
    routed = FakeChatModel(
        model="openai/gpt-4o-mini", provider="openrouter", text="ok", reported_cost=0.0042
    )
    client = run(graph_of(plan=[claude, thinker], route=[routed], idle=[]))
    plan, route, idle = client.named("step_completed")
    assert [e.event_version for e in (plan, route, idle)] == [2, 2, 2]
    assert p(plan)["calls"] == [
        {
            "model": "claude-sonnet-4-5",
            "provider": "anthropic",
            "tokens_in": 3,
            "tokens_cached_in": 1,
            "tokens_cache_write": 1,
            "tokens_out": 4,
            "tokens_reasoning": 0,
            "usage_reported": True,
            "cost_usd_reported": None,
        },
        {
            "model": "o3-mini",
            "provider": "openai",
            "tokens_in": 3,
            "tokens_cached_in": 0,
            "tokens_cache_write": 0,
            "tokens_out": 32,  # reasoning included, as providers count it
            "tokens_reasoning": 30,
            "usage_reported": True,
            "cost_usd_reported": None,
        },
    ]
    step = p(plan)
    assert (step["model"], step["tokens_in"], step["tokens_out"]) == (
        "claude-sonnet-4-5,o3-mini",
        6,
        36,
    )
    assert step["tokens_cached_in"] == 1
    day = plan.ts.astimezone(UTC).date()
    costs = [platform_cost(c, day) for c in step["calls"]]
    assert None not in costs
    expected = sum(c for c in costs if c is not None)
    assert step["cost_usd_est"] == float(expected)
    assert step["cost_unknown"] is False

    (call,) = p(route)["calls"]
    assert (call["provider"], call["cost_usd_reported"]) == ("openrouter", 0.0042)
    assert p(route)["cost_usd_est"] == 0.0042  # the provider's figure is the estimate
    assert p(route)["tokens_cached_in"] is None  # no call reported its cache reads
    assert (p(idle)["calls"], p(idle)["model"], p(idle)["cost_usd_est"]) == ([], None, 0.0)
    (done,) = client.payloads("run_completed")
    assert (done["tokens_in"], done["tokens_out"]) == (9, 37)
    assert done["cost_usd_est"] == pytest.approx(float(expected) + 0.0042, rel=1e-12)


def test_a_streamed_call_reports_the_same_call_as_an_invoked_one() -> None:
    def streams(state: SimpleState) -> dict[str, Any]:
        for _ in model.stream(PROMPT):
            pass
        return {}

    model = FakeChatModel(
        model="gpt-4o-mini",
        provider="openai",
        text="one two three",
        cached_input_tokens=2,
        reasoning_tokens=5,
        reported_cost=0.5,
    )
    streamed = run(build_linear([("s", streams)]))
    invoked = run(graph_of(s=[model]))
    assert (
        p(streamed.named("step_completed")[0])["calls"]
        == p(invoked.named("step_completed")[0])["calls"]
    )
    (call,) = p(streamed.named("step_completed")[0])["calls"]
    assert (call["tokens_out"], call["tokens_reasoning"], call["tokens_cached_in"]) == (8, 5, 2)
    assert call["cost_usd_reported"] == 0.5


@pytest.mark.parametrize(
    ("model", "provider", "words", "cached"),
    [
        ("gpt-4o-mini", "openai", 40, 16),  # a cache-read rate
        ("claude-sonnet-4-5", "anthropic", 200_001, 100_000),  # the tier above 200k input
        ("gemini-2.5-pro", "google_genai", 200_050, 0),  # LangChain's provider name, tiered
        ("claude-3-5-haiku-20241022", None, 12, 0),  # no provider: found by its name
    ],
)
def test_the_estimate_is_what_the_platform_computes_for_the_same_call(
    model: str, provider: str | None, words: int, cached: int
) -> None:
    fake = FakeChatModel(
        model=model, provider=provider, text="a b c d e", cached_input_tokens=cached
    )

    def ask(state: SimpleState) -> dict[str, Any]:
        fake.invoke(" ".join(["w"] * words))
        return {}

    client = run(build_linear([("ask", ask)]))
    (event,) = client.named("step_completed")
    (call,) = p(event)["calls"]
    assert call["provider"] == {"google_genai": "google"}.get(provider or "", provider)
    day = event.ts.astimezone(UTC).date()
    row = bundled_book().resolve(call["model"], call["provider"], day)
    assert row is not None
    computed = platform_cost(call, day)
    assert computed is not None
    assert p(event)["cost_usd_est"] == float(computed)
    if words > 200_000:  # the call crossed a context tier: not the base rate
        base = cost(row.price, CallTokens(input=words, output=5, cache_read=cached), band=0)
        assert computed > base


def test_a_model_without_a_price_is_unknown_never_zero() -> None:
    client = run(graph_of(ask=[FakeChatModel(model="mystery-model", text="a b")]))
    (step,) = client.payloads("step_completed")
    assert step["calls"][0]["model"] == "mystery-model"
    assert step["calls"][0]["usage_reported"] is True
    assert (step["cost_usd_est"], step["cost_unknown"]) == (None, True)
    (done,) = client.payloads("run_completed")
    assert (done["cost_usd_est"], done["cost_unknown"]) == (None, True)


def test_a_priced_model_that_reports_no_usage_is_unknown_with_zero_tokens() -> None:
    silent = FakeChatModel(model="gpt-4o-mini", provider="openai", report_usage=False)
    client = run(graph_of(ask=[silent]))
    (step,) = client.payloads("step_completed")
    (call,) = step["calls"]
    assert (call["usage_reported"], call["tokens_in"], call["tokens_out"]) == (False, 0, 0)
    assert (step["cost_usd_est"], step["cost_unknown"]) == (None, True)


def test_a_reported_cost_makes_a_call_without_usage_or_price_known() -> None:
    model = FakeChatModel(model="mystery-model", report_usage=False, reported_cost=0.01)
    client = run(graph_of(ask=[model]))
    (step,) = client.payloads("step_completed")
    assert (step["cost_usd_est"], step["cost_unknown"]) == (0.01, False)


def test_overrides_win_over_the_bundled_prices() -> None:
    cheap = ModelPrice.per_million(input=0.01, output=0.02)
    model = FakeChatModel(model="gpt-4o", provider="openai", text="a b", cached_input_tokens=3)
    client = run(graph_of(ask=[model]), prices={"gpt-4o": cheap})
    (step,) = client.payloads("step_completed")
    assert step["cost_usd_est"] == pytest.approx((3 * 0.01 + 2 * 0.02) / 1e6, rel=1e-12)


def test_overrides_price_models_the_bundled_data_does_not_know() -> None:
    client = run(graph_of(ask=[FakeChatModel(model="model-a", text="x y")]), prices=PRICES)
    (step,) = client.payloads("step_completed")
    assert (step["cost_usd_est"], step["cost_unknown"]) == (pytest.approx(7e-6), False)


def test_a_step_with_more_calls_than_an_event_lists_keeps_its_totals() -> None:
    model = FakeChatModel(model="gpt-4o-mini", provider="openai", text="x")
    client = run(graph_of(many=[model] * (MAX_CALLS + 1)))
    (event,) = client.named("step_completed")  # valid: it reached the recording client
    step = p(event)
    assert step["calls"] is None
    assert (step["tokens_in"], step["tokens_out"]) == (3 * (MAX_CALLS + 1), MAX_CALLS + 1)
    one = cost(price_on("gpt-4o-mini", "openai", event.ts.date()), CallTokens(input=3, output=1))
    assert step["cost_usd_est"] == pytest.approx(float(one) * (MAX_CALLS + 1), rel=1e-12)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_a_step_ending_after_midnight_is_priced_on_its_event_s_day() -> None:
    """deepseek-v4-flash changed price on 2026-08-17: a call at 23:59 whose step ends at
    00:00 is aggregated, and so priced, on the 17th."""
    clock = Clock(datetime(2026, 8, 16, 23, 59, 59, tzinfo=UTC))
    model = FakeChatModel(model="deepseek-v4-flash", provider="deepseek", text="a b")

    def late(state: SimpleState) -> dict[str, Any]:
        model.invoke(PROMPT)
        clock.now = datetime(2026, 8, 17, 0, 0, 1, tzinfo=UTC)
        return {}

    builder = StateGraph(SimpleState)
    builder.add_node("late", late)
    builder.add_edge(START, "late")
    client = RecordingClient()
    client.clock = clock
    instrument(builder.compile(), workflow_name=WF, client=client).invoke(NEW)
    (event,) = client.named("step_completed")
    assert event.ts == clock.now
    tokens = CallTokens(input=3, output=2)
    before = cost(price_on("deepseek-v4-flash", "deepseek", date(2026, 8, 16)), tokens)
    after = cost(price_on("deepseek-v4-flash", "deepseek", date(2026, 8, 17)), tokens)
    assert before != after
    assert p(event)["cost_usd_est"] == float(after)
    # the run's total is the sum of its steps' estimates: the same figure
    assert client.payloads("run_completed")[0]["cost_usd_est"] == float(after)


def test_calls_of_parallel_async_nodes_stay_with_their_node() -> None:
    a = FakeChatModel(model="gpt-4o-mini", provider="openai", text="a")
    b = FakeChatModel(model="claude-3-5-haiku-20241022", provider="anthropic", text="b c")

    async def left(state: SimpleState) -> dict[str, Any]:
        await a.ainvoke(PROMPT)
        return {}

    async def right(state: SimpleState) -> dict[str, Any]:
        await b.ainvoke(PROMPT)
        await b.ainvoke(PROMPT)
        return {}

    builder = StateGraph(SimpleState)
    builder.add_node("left", left)
    builder.add_node("right", right)
    builder.add_edge(START, "left")
    builder.add_edge(START, "right")
    client = RecordingClient()
    asyncio.run(instrument(builder.compile(), workflow_name=WF, client=client).ainvoke(NEW))
    by_node = {s["node"]: s for s in client.payloads("step_completed")}
    assert [c["model"] for c in by_node["left"]["calls"]] == ["gpt-4o-mini"]
    assert [c["model"] for c in by_node["right"]["calls"]] == ["claude-3-5-haiku-20241022"] * 2
    assert by_node["right"]["tokens_out"] == 4


class Keeping(TelemetryClient):
    """Keeps the events as emitted, not built: what the handler's replay handed over
    (its queued work is run at once, as a sender would)."""

    def __init__(self) -> None:
        super().__init__(disabled=True)
        self.received: list[Any] = []

    def emit(self, event: Any) -> None:
        if isinstance(event, DeferredWork):
            event.run()
        else:
            self.received.append(event)


def test_calls_are_priced_where_the_event_is_built_not_on_the_graph_s_thread() -> None:
    client = Keeping()
    model = FakeChatModel(model="gpt-4o-mini", provider="openai", text="a b")
    graph = graph_of(ask=[model], idle=[])
    instrument(graph, workflow_name=WF, client=client).invoke(NEW)
    steps = [e for e in client.received if e.event_name == "workflow.step_completed"]
    (done,) = [e for e in client.received if e.event_name == "workflow.run_completed"]
    ask, idle = steps
    assert isinstance(ask, DeferredEvent)
    assert ask.finish is not None  # the estimate: computed by build()
    assert idle.finish is None  # no model called: a known $0, nothing to price
    built = p(ask.build())
    expected = cost(price_on("gpt-4o-mini", "openai", ask.ts.date()), CallTokens(input=3, output=2))
    assert (built["cost_usd_est"], built["cost_unknown"]) == (float(expected), False)
    assert p(done.build())["cost_usd_est"] == float(expected)
    assert (p(idle.build())["cost_usd_est"], p(idle.build())["cost_unknown"]) == (0.0, False)
