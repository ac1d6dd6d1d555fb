"""How the LangGraph handler reads LangGraph's values: node runs, state updates, names,
model names and token usage (real langgraph / langchain-core objects, no graph run)."""

from __future__ import annotations

import dataclasses
from enum import Enum, IntEnum
from typing import Any

import pytest
from genai_prices.data_snapshot import find_provider_by_id, get_snapshot
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, Generation, LLMResult
from langgraph.types import Command
from pydantic import BaseModel

from sdk.langgraph.tracking import (
    MAX_NAME,
    Usage,
    as_name,
    clip,
    field_of,
    is_node_run,
    model_names,
    provider_of,
    reported_cost,
    update_of,
    usage_of,
)
from sdk.prices.providers import LANGCHAIN_PROVIDER_IDS as PROVIDER_IDS

# --- update_of ---------------------------------------------------------------------------


def test_update_of_a_command_with_a_dict_update() -> None:
    assert update_of(Command(update={"status": "done", "n": 1}, goto="x")) == {
        "status": "done",
        "n": 1,
    }


def test_update_of_a_command_with_a_list_of_pairs_ignores_malformed_entries() -> None:
    command = Command(update=[("status", "done"), ("n", 2), ("bad",), "junk"])  # type: ignore[list-item]
    assert update_of(command) == {"status": "done", "n": 2}


def test_update_of_a_command_without_an_update_is_empty() -> None:
    assert update_of(Command(goto="next")) == {}


def test_update_of_a_list_of_commands_merges_them_in_order() -> None:
    outputs = [
        Command(update={"status": "a", "x": 1}),
        Command(update=[("status", "b")]),
        {"y": 2},
        "ignored",
    ]
    assert update_of(outputs) == {"status": "b", "x": 1, "y": 2}


def test_update_of_passes_plain_values_through() -> None:
    update = {"status": "s"}
    assert update_of(update) is update
    assert update_of(None) is None

    class M(BaseModel):
        status: str

    model = M(status="m")
    assert update_of(model) is model


# --- field_of ----------------------------------------------------------------------------


class State(BaseModel):
    status: str = "p"
    item_id: str | None = None


@dataclasses.dataclass
class DataState:
    status: str


def test_field_of_reads_dicts_pydantic_models_and_dataclasses() -> None:
    assert field_of({"status": "d"}, "status") == "d"
    assert field_of(State(), "status") == "p"
    assert field_of(DataState("dc"), "status") == "dc"


def test_field_of_a_missing_field_is_none() -> None:
    assert field_of({"other": 1}, "status") is None
    assert field_of(State(), "missing") is None
    assert field_of(DataState("x"), "item_id") is None
    assert field_of(None, "status") is None
    assert field_of("a string", "status") is None


# --- as_name / clip ------------------------------------------------------------------------


class Color(Enum):
    RED = "red"


class Level(IntEnum):
    HIGH = 3


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Color.RED, "red"),
        (Level.HIGH, "3"),
        ("  padded  ", "padded"),
        (42, "42"),
        (None, None),
        ("", None),
        ("   ", None),
        (Color, None),  # not a plain value: its text would change from run to run
        (object(), None),
        (True, None),
        ("nul\x00inside", "nul\ufffdinside"),
    ],
)
def test_as_name(value: Any, expected: str | None) -> None:
    assert as_name(value) == expected


def test_as_name_cuts_long_values_to_the_event_limit_keeping_them_apart() -> None:
    assert MAX_NAME == 200
    a, b = as_name("x" * 500), as_name("x" * 499 + "y")
    assert a is not None
    assert b is not None
    assert len(a) == len(b) == 200
    assert a.startswith("x" * 183 + "~")
    assert a != b
    assert as_name("y" * 200) == "y" * 200


def test_clip_keeps_short_text_and_marks_cut_text() -> None:
    assert clip("short", 10) == "short"
    assert clip("exactly10!", 10) == "exactly10!"
    clipped = clip("a" * 20, 10)
    assert clipped == "a" * 9 + "…"
    assert len(clipped) == 10


# --- is_node_run / model_names -------------------------------------------------------------


NODE_MD = {"langgraph_node": "plan", "langgraph_step": 2}


@pytest.mark.parametrize(
    ("tags", "metadata", "expected"),
    [
        (["graph:step:2"], NODE_MD, True),
        (["other", "graph:step:12"], NODE_MD, True),
        (["seq:step:2"], NODE_MD, False),  # a router or model inside the node
        ([], NODE_MD, False),
        (None, NODE_MD, False),
        (["graph:step:2"], {"langgraph_step": 2}, False),
        (["graph:step:2"], None, False),
        (["graph:step:2"], {}, False),
    ],
)
def test_is_node_run(
    tags: list[str] | None, metadata: dict[str, Any] | None, expected: bool
) -> None:
    assert is_node_run(tags, metadata) is expected


def test_model_names_prefers_ls_model_name_then_invocation_params() -> None:
    assert model_names({"ls_model_name": "a"}, {"model": "b", "model_name": "c"}) == "a"
    assert model_names({}, {"model": "b", "model_name": "c"}) == "b"
    assert model_names(None, {"model_name": "c"}) == "c"
    assert model_names({"ls_model_name": ""}, {"model": 7, "model_name": "c"}) == "c"
    assert model_names(None, None) is None
    assert model_names({"ls_model_name": None}, {}) is None


# --- usage_of --------------------------------------------------------------------------------


def chat_result(*messages: AIMessage, llm_output: dict[str, Any] | None = None) -> LLMResult:
    return LLMResult(
        generations=[[ChatGeneration(message=m) for m in messages]], llm_output=llm_output
    )


def test_usage_of_reads_usage_metadata_and_the_served_model() -> None:
    message = AIMessage(
        content="hi",
        usage_metadata={"input_tokens": 7, "output_tokens": 3, "total_tokens": 10},
        response_metadata={"model_name": "gpt-4o-2024-08-06"},
    )
    assert usage_of(chat_result(message)) == Usage(7, 3, 0, "gpt-4o-2024-08-06")


def test_usage_of_reads_cached_input_tokens() -> None:
    message = AIMessage(
        content="hi",
        usage_metadata={
            "input_tokens": 10,
            "output_tokens": 2,
            "total_tokens": 12,
            "input_token_details": {"cache_read": 6},
        },
    )
    assert usage_of(chat_result(message)) == Usage(10, 2, 6, None, cache_reported=True)


def test_usage_of_tells_no_cache_report_from_zero_cache_reads() -> None:
    def usage(details: dict[str, int] | None) -> Usage:
        metadata: dict[str, Any] = {"input_tokens": 4, "output_tokens": 1, "total_tokens": 5}
        if details is not None:
            metadata["input_token_details"] = details
        return usage_of(chat_result(AIMessage(content="x", usage_metadata=metadata)))

    assert usage(None).cache_reported is False
    assert usage({"audio": 1}).cache_reported is False
    zero = usage({"cache_read": 0})
    assert (zero.cache_reported, zero.cached_in) == (True, 0)


def test_usage_of_sums_every_generation() -> None:
    first = AIMessage(
        content="a", usage_metadata={"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}
    )
    second = AIMessage(
        content="b", usage_metadata={"input_tokens": 10, "output_tokens": 20, "total_tokens": 30}
    )
    usage = usage_of(chat_result(first, second))
    assert usage is not None
    assert (usage.tokens_in, usage.tokens_out) == (11, 22)


def test_usage_of_a_streamed_reply_is_the_merged_total_of_its_chunks() -> None:
    chunks = [
        AIMessageChunk(
            content="one ",
            usage_metadata={"input_tokens": 5, "output_tokens": 1, "total_tokens": 6},
        ),
        AIMessageChunk(
            content="two",
            usage_metadata={"input_tokens": 0, "output_tokens": 1, "total_tokens": 1},
            response_metadata={"model_name": "served"},
        ),
        AIMessageChunk(content=""),  # the empty last chunk carries no usage
    ]
    merged = chunks[0] + chunks[1] + chunks[2]
    response = LLMResult(generations=[[ChatGenerationChunk(message=merged)]], llm_output=None)
    assert usage_of(response) == Usage(5, 2, 0, "served")


def test_usage_of_a_legacy_llm_reads_llm_output_token_usage() -> None:
    response = LLMResult(
        generations=[[Generation(text="done")]],
        llm_output={
            "token_usage": {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16},
            "model_name": "gpt-4o-mini",
        },
    )
    assert usage_of(response) == Usage(12, 4, 0, "gpt-4o-mini")


def test_usage_of_a_legacy_usage_key_with_input_output_names() -> None:
    response = LLMResult(
        generations=[[Generation(text="done")]],
        llm_output={"usage": {"input_tokens": 3, "output_tokens": 9}},
    )
    assert usage_of(response) == Usage(3, 9, 0, None)


def test_usage_metadata_wins_over_llm_output_so_nothing_is_counted_twice() -> None:
    message = AIMessage(
        content="x", usage_metadata={"input_tokens": 2, "output_tokens": 1, "total_tokens": 3}
    )
    response = chat_result(
        message,
        llm_output={"token_usage": {"prompt_tokens": 2, "completion_tokens": 1}, "model_name": "m"},
    )
    assert usage_of(response) == Usage(2, 1, 0, "m")


def test_usage_of_without_any_usage_is_unknown_not_zero() -> None:
    unknown = Usage(known=False)
    assert usage_of(None) == unknown
    assert usage_of(LLMResult(generations=[[Generation(text="x")]])) == unknown
    assert usage_of(chat_result(AIMessage(content="x"))) == unknown
    served_only = chat_result(AIMessage(content="x", response_metadata={"model": "m2"}))
    assert usage_of(served_only) == Usage(served_model="m2", known=False)
    assert usage_of(object()) == unknown


def test_usage_of_reads_anthropic_cache_writes() -> None:
    usage = {
        "input_tokens": 10,
        "output_tokens": 2,
        "total_tokens": 12,
        "input_token_details": {"cache_read": 3, "cache_creation": 4},
    }
    result = usage_of(chat_result(AIMessage(content="x", usage_metadata=usage)))
    assert (result.cached_in, result.cache_written, result.known) == (3, 4, True)


def test_usage_of_reads_reasoning_tokens_of_the_output() -> None:
    usage = {
        "input_tokens": 5,
        "output_tokens": 40,
        "total_tokens": 45,
        "output_token_details": {"reasoning": 32},
    }
    result = usage_of(chat_result(AIMessage(content="x", usage_metadata=usage)))
    assert (result.tokens_out, result.reasoning) == (40, 32)


def test_usage_of_clamps_parts_a_provider_reported_beyond_their_totals() -> None:
    """The events refuse a call whose cache or reasoning tokens exceed its totals: the
    handler keeps the call (and the step's event) with the parts cut to fit."""
    usage = {
        "input_tokens": 10,
        "output_tokens": 3,
        "total_tokens": 13,
        "input_token_details": {"cache_read": 8, "cache_creation": 7},
        "output_token_details": {"reasoning": 9},
    }
    result = usage_of(chat_result(AIMessage(content="x", usage_metadata=usage)))
    assert (result.cached_in, result.cache_written, result.reasoning) == (8, 2, 3)


@pytest.mark.parametrize("bad", [-4, None, "7", float("nan"), float("inf"), True, [1]])
def test_usage_of_counts_what_is_not_a_non_negative_number_as_zero(bad: Any) -> None:
    usage = {
        "input_tokens": 6,
        "output_tokens": bad,
        "total_tokens": 6,
        "input_token_details": {"cache_read": bad},
    }
    # Unvalidated, as an integration may build it (AIMessage itself refuses most of these).
    message = AIMessage.model_construct(content="x", usage_metadata=usage, response_metadata={})
    result = usage_of(chat_result(message))
    assert (result.tokens_in, result.tokens_out, result.cached_in) == (6, 0, 0)


def test_a_legacy_llm_s_openai_usage_details_are_read() -> None:
    response = LLMResult(
        generations=[[Generation(text="x")]],
        llm_output={
            "token_usage": {
                "prompt_tokens": 12,
                "completion_tokens": 9,
                "prompt_tokens_details": {"cached_tokens": 5},
                "completion_tokens_details": {"reasoning_tokens": 4},
            }
        },
    )
    result = usage_of(response)
    assert (result.tokens_in, result.cached_in, result.cache_reported) == (12, 5, True)
    assert (result.tokens_out, result.reasoning) == (9, 4)


# --- the provider's own cost --------------------------------------------------------------


def test_chat_openrouter_s_cost_in_response_metadata_is_the_reported_cost() -> None:
    # langchain-openrouter copies OpenRouter's usage.cost to response_metadata["cost"]
    message = AIMessage(
        content="x",
        usage_metadata={"input_tokens": 120, "output_tokens": 30, "total_tokens": 150},
        response_metadata={"model_name": "openai/gpt-4o-mini", "cost": 0.000039},
    )
    assert usage_of(chat_result(message)).cost_reported == 0.000039


def test_an_openai_compatible_raw_usage_cost_is_the_reported_cost() -> None:
    # ChatOpenAI pointed at OpenRouter: the raw usage object, via llm_output, in
    # response_metadata["token_usage"] (one generation) or llm_output (several)
    usage = {"prompt_tokens": 10, "completion_tokens": 2, "cost": 0.0123}
    message = AIMessage(content="x", response_metadata={"token_usage": usage})
    assert usage_of(chat_result(message)).cost_reported == 0.0123
    plain = AIMessage(
        content="x", usage_metadata={"input_tokens": 10, "output_tokens": 2, "total_tokens": 12}
    )
    both = chat_result(plain, plain, llm_output={"token_usage": usage})
    assert usage_of(both).cost_reported == 0.0123


def test_chat_perplexity_s_cost_breakdown_gives_its_total() -> None:
    breakdown = {"input_tokens_cost": 0.0001, "search_queries_cost": 0.015, "total_cost": 0.03015}
    assert reported_cost({"cost": breakdown}) == 0.03015


def test_reported_costs_of_several_generations_add_up_and_beat_llm_output() -> None:
    a = AIMessage(content="a", response_metadata={"cost": 0.25})
    b = AIMessage(content="b", response_metadata={"cost": 0.5})
    result = usage_of(chat_result(a, b, llm_output={"token_usage": {"cost": 9.0}}))
    assert result.cost_reported == 0.75


@pytest.mark.parametrize(
    "bad", [-0.01, float("nan"), float("inf"), 2e9, True, "0.01", None, {"total": 1.0}]
)
def test_a_cost_that_is_no_usable_amount_is_not_reported(bad: Any) -> None:
    assert reported_cost({"cost": bad}) is None
    assert reported_cost({"token_usage": {"cost": bad}}) is None


def test_a_zero_cost_is_a_reported_zero_and_a_call_without_usage_keeps_its_cost() -> None:
    assert reported_cost({"cost": 0}) == 0.0
    result = usage_of(chat_result(AIMessage(content="x", response_metadata={"cost": 0.002})))
    assert (result.known, result.cost_reported) == (False, 0.002)


# --- the provider ---------------------------------------------------------------------------


@pytest.mark.parametrize("ls_provider", sorted(PROVIDER_IDS))
def test_langchain_provider_names_map_as_genai_prices_itself_maps_them(ls_provider: str) -> None:
    provider = find_provider_by_id(get_snapshot().providers, ls_provider)
    assert provider is not None
    assert provider_of({"ls_provider": ls_provider}) == provider.id == PROVIDER_IDS[ls_provider]


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"ls_provider": "openai"}, "openai"),
        ({"ls_provider": "Anthropic "}, "anthropic"),
        ({"ls_provider": "GOOGLE_GENAI"}, "google"),
        ({"ls_provider": "ollama"}, "ollama"),  # no prices of its own: kept as it is
        ({"ls_provider": ""}, None),
        ({"ls_provider": 3}, None),
        ({}, None),
        (None, None),
    ],
)
def test_provider_of(metadata: dict[str, Any] | None, expected: str | None) -> None:
    assert provider_of(metadata) == expected
