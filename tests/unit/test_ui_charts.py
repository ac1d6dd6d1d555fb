"""The UI's pictures as numbers: the waterfall's rows and fan-out, the usage bars."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from ingest_api.ui.charts import OTHER_COLOUR, usage_bars, waterfall

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


@dataclass
class FakeStep:
    node: str
    step: int | None
    end_s: float
    duration_ms: float
    status: str = "ok"

    @property
    def ts(self) -> datetime:
        return T0 + timedelta(seconds=self.end_s)


def test_bars_span_start_to_end_in_start_order_on_one_scale() -> None:
    steps = [FakeStep("plan", 1, 3.0, 1000), FakeStep("triage", 0, 1.0, 1000)]
    chart = waterfall(steps, width=1000, label_width=200)
    assert [r.step.node for r in chart.rows] == ["triage", "plan"]
    first, second = chart.rows
    assert first.x == 200  # the earliest start is the axis' origin
    assert abs(first.width - second.width) < 1e-9  # same duration, same width
    # plan starts 2 s after triage, over a 3 s axis of 790 units
    assert abs(second.x - (200 + 790 * 2 / 3)) < 1e-6
    assert second.y > first.y
    assert [t.label for t in chart.ticks][:2] == ["0", "500 ms"]


def test_overlapping_steps_of_one_step_number_are_a_numbered_fan_out() -> None:
    steps = [
        FakeStep("plan", 1, 1.0, 500),
        FakeStep("research", 2, 3.0, 2000),
        FakeStep("research", 2, 3.5, 2000),
        FakeStep("research", 2, 3.2, 1500),
        FakeStep("draft", 3, 4.0, 400),
        FakeStep("review", 3, 9.0, 100),  # same step number, not overlapping: no fan-out
    ]
    chart = waterfall(steps)
    branches = {(r.step.node, r.step.end_s): r.branch for r in chart.rows}
    assert sorted(b for (n, _), b in branches.items() if n == "research") == ["1/3", "2/3", "3/3"]
    assert branches[("draft", 4.0)] == branches[("review", 9.0)] == branches[("plan", 1.0)] == ""


def test_errors_are_red_and_a_zero_length_step_stays_visible() -> None:
    chart = waterfall([FakeStep("a", 0, 1.0, 0, "error"), FakeStep("b", 1, 2.0, 1000)])
    (a,) = [r for r in chart.rows if r.step.node == "a"]
    assert a.colour == "#D55E00"
    assert a.width >= 1.5


def test_no_steps_make_an_empty_chart() -> None:
    assert waterfall([]).rows == []


def test_usage_bars_stack_per_day_and_fold_small_series_into_other() -> None:
    days = [date(2026, 12, 1), date(2026, 12, 2)]
    values = {(days[0], f"m{i}"): Decimal(10 - i) for i in range(9)}
    values[(days[1], "m0")] = Decimal(5)
    chart = usage_bars(days, values, unit="usd", most_series=3)
    assert [name for _, name in chart.legend] == ["m0", "m1", "m2", "other (6)"]
    day0 = [s for s in chart.segments if "2026-12-01" in s.title]
    assert abs(sum(s.height for s in day0) - (chart.plot_bottom - chart.plot_top)) < 1e-6  # tallest
    assert any(s.colour == OTHER_COLOUR for s in day0)
    (day1,) = [s for s in chart.segments if "2026-12-02" in s.title]
    assert abs(day1.height - (chart.plot_bottom - chart.plot_top) * 5 / 54) < 1e-6
    assert not chart.empty


def test_nothing_known_draws_nothing() -> None:
    chart = usage_bars([date(2026, 12, 1)], {}, unit="usd")
    assert chart.empty
    assert chart.segments == []


def test_series_without_a_known_value_are_not_in_the_legend_and_today_is_labelled() -> None:
    days = [date(2026, 11, 3) + timedelta(days=i) for i in range(30)]
    values = {(days[-1], "priced"): Decimal(2), (days[-1], "unknown-only"): Decimal(0)}
    chart = usage_bars(days, values, unit="usd")
    assert [name for _, name in chart.legend] == ["priced"]
    assert chart.day_labels[-1].label == days[-1].strftime("%m-%d")


def test_a_retried_branch_is_not_counted_as_another_branch() -> None:
    steps = [FakeStep("research", 2, 3.0, 2000), FakeStep("research", 2, 3.2, 2000)]
    retry = FakeStep("research", 2, 3.4, 1000)
    retry.attempt = 2  # type: ignore[attr-defined]
    chart = waterfall([*steps, retry])
    labels = sorted(r.branch for r in chart.rows)
    assert labels == ["", "1/2", "2/2"]


def test_axis_and_tooltip_labels_keep_small_costs_and_round_large_counts() -> None:
    from ingest_api.ui.charts import _value_label

    assert _value_label(Decimal("0.00001"), "usd") == "$0.00001"
    assert _value_label(999_999, "tokens") == "1M"
    assert _value_label(12_345, "tokens") == "12.3k"
    assert _value_label(0, "usd") == "$0"
