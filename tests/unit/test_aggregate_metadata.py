"""What the aggregates asset tells Dagster about itself, without a database."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import dagster as dg
import pytest

from platform_defs.assets.aggregates import FRESH_FAIL, FRESH_WARN, daily_event_aggregates
from platform_defs.assets.usage_metadata import (
    NUMERIC_FIGURES,
    column_schema,
    cost_text,
    day_metadata,
    top_spend_markdown,
)
from sdk.db.schema import daily_event_aggregates as table
from sdk.db.schema import daily_model_usage
from sdk.usage.summary import DaySummary, Spend, Unpriced


def spend(name: str, cost: str, unknown: int = 0, workflow: str = "") -> Spend:
    return Spend(name, workflow, 3, 1, 4, Decimal(cost), unknown, 10, 5)


def model(name: str, cost: str, unknown: int = 0) -> Spend:
    """A model's calls: models have no steps of their own (they are the calls')."""
    return Spend(name, "", None, None, 4, Decimal(cost), unknown, 10, 5)


def summary(**changes: object) -> DaySummary:
    base = DaySummary(
        day=date(2026, 3, 10),
        events=9,
        steps=6,
        runs=2,
        errors=1,
        calls=8,
        tokens_in=60,
        tokens_out=30,
        tokens_cached_in=12,
        tokens_cache_write=0,
        tokens_reasoning=7,
        cost_usd=Decimal("0.75"),
        cost_unknown_calls=2,
        step_p95_ms=120.5,
        aggregate_versions=(2,),
        workflows=(spend("triage", "0.5", 1), spend("re|view", "0.25", 1)),
        nodes=(spend("plan", "0.5", 0, "triage"),),
        models=(model("gpt-x", "0.75"), model("mystery", "0", 2)),
        unpriced=(Unpriced("mystery", "", 2, no_usage=False),),
        cost_by_source={
            "computed": Decimal("0.7"), "reported": Decimal(0), "estimate": Decimal("0.05"),
        },
    )  # fmt: skip
    return DaySummary(**{**base.__dict__, **changes})  # type: ignore[arg-type]


def test_the_column_schema_is_the_tables_own_with_every_column_described() -> None:
    schema = column_schema()
    assert [c.name for c in schema.columns] == [c.name for c in table.columns]
    for column, described in zip(table.columns, schema.columns, strict=True):
        assert described.description, f"{column.name} has no doc in sdk/db/schema.py"
        assert described.constraints.nullable == column.nullable
    assert {c.name for c in schema.columns if c.constraints.other} == {
        c.name for c in table.primary_key.columns
    }
    types = {c.name: c.type for c in schema.columns}
    assert (types["cost_usd"], types["duration_p95_ms"], types["day"]) == (
        "numeric",
        "double precision",
        "date",
    )


def test_the_asset_definition_carries_table_name_schema_and_freshness() -> None:
    spec = daily_event_aggregates.specs_by_key[dg.AssetKey("daily_event_aggregates")]
    assert spec.metadata["dagster/table_name"].value == "telemetry.daily_event_aggregates"
    assert spec.metadata["dagster/column_schema"].value == column_schema()
    # The asset writes daily_model_usage too: its schema, every column described.
    assert spec.metadata["model_usage/table_name"].value == "telemetry.daily_model_usage"
    usage_schema = spec.metadata["model_usage/column_schema"].value
    assert usage_schema == column_schema(daily_model_usage)
    assert [c.name for c in usage_schema.columns] == [c.name for c in daily_model_usage.columns]
    assert all(c.description for c in usage_schema.columns)
    policy = spec.freshness_policy
    assert isinstance(policy, dg.FreshnessPolicy)
    assert policy == dg.FreshnessPolicy.time_window(fail_window=FRESH_FAIL, warn_window=FRESH_WARN)
    assert {c.name for c in daily_event_aggregates.check_specs} == {
        "spend_within_budget",
        "models_have_prices",
    }


@pytest.mark.parametrize(
    ("unknown", "text"),
    [
        (0, "$0.7500"),
        (1, "$0.7500 + 1 call of unknown cost"),
        (4, "$0.7500 + 4 calls of unknown cost"),
    ],
)
def test_a_cost_is_never_shown_without_its_unknown_count(unknown: int, text: str) -> None:
    assert cost_text(Decimal("0.75"), unknown) == text


def test_the_markdown_tables_show_unknown_counts_and_escape_names() -> None:
    text = top_spend_markdown(summary())
    assert text.startswith(
        "**2026-03-10**: $0.7500 + 2 calls of unknown cost (computed $0.7000, estimate "
        "$0.0500); 6 steps in 2 runs, 1 errors; 8 model calls, "
    )
    assert "tokens 60 in (12 cached) / 30 out (7 reasoning); step p95 120.5 ms." in text
    assert (
        "| Workflow | Steps | Errors | Calls | Known cost | Unknown-cost calls | Tokens in / out |"
        in text
    )
    assert "| re\\|view | 3 | 1 | 4 | $0.2500 | 1 | 10 / 5 |" in text  # a | cannot break it
    assert "| triage | plan | 3 | 1 | 4 | $0.5000 | 0 | 10 / 5 |" in text
    # Models are the calls': no steps of their own.
    assert "| mystery | - | - | 4 | $0.0000 | 2 | 10 / 5 |" in text


HOSTILE_NAMES = [
    "![x](https://attacker.example/p.png)",
    "[click](javascript:alert(1))",
    "<img src=https://attacker.example/p.png>",
    "**bold** _it_ `code` ~~gone~~ \\|",
    "a\nb|c",
    "https://attacker.example/auto www.attacker.example",
    "&lt;entity&#33; # + - . {x} (y)",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_names_in_the_markdown_are_plain_text(name: str) -> None:
    """Names come from agents: rendered as CommonMark with GFM tables (as the Dagster UI
    does), each is exactly its own text in its cell, never an image, link, HTML or style."""
    from markdown_it import MarkdownIt

    text = top_spend_markdown(
        summary(workflows=(spend(name, "0.5"),), nodes=(spend(name, "0.5", 0, name),),
                models=(model(name, "0.75"),))
    )  # fmt: skip
    tokens = MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(text)
    cells = [t for i, t in enumerate(tokens) if i and tokens[i - 1].type == "td_open"]
    named = [
        c
        for c in cells
        if not c.content[:1].isdigit() and not c.content.startswith("$") and c.content != "-"
    ]
    assert len(named) == 4  # the workflow, the node's workflow and node, the model
    for cell in named:
        assert {c.type for c in cell.children or []} == {"text"}, cell.children
        assert "".join(c.content for c in cell.children or []) == name.replace("\n", " ")


def test_the_markdown_says_how_many_rows_it_left_out() -> None:
    many = tuple(spend(f"wf{i}", f"0.{9 - i}") for i in range(7))
    text = top_spend_markdown(summary(workflows=many), top=5)
    assert "**Workflows** (top 5 of 7)" in text
    assert "| wf4 |" in text
    assert "| wf5 |" not in text


def test_token_kinds_that_are_zero_are_left_out_of_the_day_line() -> None:
    text = top_spend_markdown(
        summary(tokens_cached_in=0, tokens_reasoning=0, tokens_cache_write=5, cost_unknown_calls=0,
                cost_by_source={"computed": Decimal("0.75")})
    )  # fmt: skip
    assert text.startswith("**2026-03-10**: $0.7500 (computed $0.7500); 6 steps")
    assert "tokens 60 in (5 cache write) / 30 out; step p95" in text


def test_every_plotted_figure_is_a_number() -> None:
    meta = day_metadata(summary(), rows=4)
    numeric = [
        k for k, v in meta.items() if isinstance(v, dg.IntMetadataValue | dg.FloatMetadataValue)
    ]
    assert numeric == ["rows", *NUMERIC_FIGURES]
    assert meta["cost_usd"].value == 0.75
    assert meta["cost_unknown_calls"].value == 2
    by_source = [meta[f"cost_{s}_usd"].value for s in ("computed", "reported", "estimate")]
    assert by_source == [pytest.approx(0.7), 0.0, pytest.approx(0.05)]
    assert (meta["calls"].value, meta["tokens_reasoning"].value) == (8, 7)
    assert isinstance(meta["top_spend"], dg.MarkdownMetadataValue)


def test_check_descriptions_name_workflows_and_models_as_plain_markdown_text() -> None:
    """The UI renders check descriptions as Markdown too: an agent's name is text there."""
    from markdown_it import MarkdownIt

    from platform_defs.spend_checks import budget_result, prices_result

    hostile = "![x](https://attacker.example/p.png)"
    day = summary(
        workflows=(spend(hostile, "0.5"),),
        unpriced=(Unpriced(hostile, "", 2, False), Unpriced("", "", 1, False),
                  Unpriced("m", hostile, 1, True)),
    )  # fmt: skip
    over = budget_result(day, Decimal("0.1")).description or ""
    prices = prices_result(day).description or ""
    for text in (over, prices):
        tokens = MarkdownIt("commonmark").parse(text)
        inline = [c for t in tokens if t.children for c in t.children]
        assert all(c.type in {"text", "code_inline", "softbreak"} for c in inline), inline
        assert hostile in "".join(c.content for c in inline)
    assert "(none) (1 call)" in prices  # the label for calls without a model stays readable
    assert "reported no token usage" in prices
