"""The read queries' parameter checks and their sans-IO driving, without a database."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from sdk.db.queries import Statement
from sdk.usage import params
from sdk.usage.errors import InvalidQuery
from sdk.usage.runs import list_runs, run_detail, runs_query
from sdk.usage.usage import usage_query, usage_report

TODAY = date(2026, 12, 2)


def refused(call: Any, **kwargs: Any) -> dict[str, str]:
    with pytest.raises(InvalidQuery) as info:
        call(**kwargs)
    return info.value.field_errors


# --- values --------------------------------------------------------------------------------


def test_instants_are_rfc3339_with_a_zone_or_days_and_come_back_in_utc() -> None:
    assert runs_query(since="2026-03-01T12:00:00+02:00").since == datetime(
        2026, 3, 1, 10, tzinfo=UTC
    )
    assert runs_query(since="2026-03-01t12:00:00.5z").since == datetime(
        2026, 3, 1, 12, 0, 0, 500_000, tzinfo=UTC
    )
    assert runs_query(until="2026-03-01").until == datetime(2026, 3, 1, tzinfo=UTC)
    for bad in (
        "2026-03-01T12:00:00",
        "1614600000",
        "2026-03-01 12:00:00Z",
        "0001-01-01T00:00:00+01:00",  # before year 1 once in UTC
        "9999-12-31T23:00:00-05:00",  # after 9999 once in UTC
        "2026-02-30",
    ):
        assert set(refused(runs_query, since=bad)) == {"since"}, bad


def test_limits_and_statuses() -> None:
    assert runs_query().limit == params.DEFAULT_PAGE
    assert runs_query(limit="500").limit == 500
    assert runs_query(limit=" ").limit == params.DEFAULT_PAGE  # blank: unset
    for bad in ("0", "501", "-1", "1e3", "\uff11\uff10", "9" * 20):
        assert "limit" in refused(runs_query, limit=bad), bad
    assert runs_query(status="running").status == "running"
    assert "status" in refused(runs_query, status="completed")


def test_text_filters_refuse_what_no_event_can_carry() -> None:
    assert runs_query(workflow_name="triage").workflow_name == "triage"
    assert "workflow_name" in refused(runs_query, workflow_name="x" * 201)
    assert "item_id" in refused(runs_query, item_id="a\x00b")
    assert "item_id" in refused(runs_query, item_id="\ud800")


def test_every_bad_parameter_is_named() -> None:
    errors = refused(runs_query, limit="0", status="x", since="now", cursor="!!")
    assert set(errors) == {"limit", "status", "since", "cursor"}


def test_since_after_until_is_refused() -> None:
    assert "since" in refused(runs_query, since="2026-03-02", until="2026-03-01")


# --- the cursor ----------------------------------------------------------------------------


def test_a_cursor_round_trips_and_nothing_else_is_one() -> None:
    cursor = params.Cursor(datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC), "run-é-1")
    assert runs_query(cursor=cursor.encode()).cursor == cursor
    assert "=" not in cursor.encode()

    def b64(value: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    for bad in (
        "not base64!",
        "abc",  # base64 of bytes that are no JSON
        b64([]),
        b64({"started_at": "2026-03-01T00:00:00Z"}),
        b64(["2026-03-01T00:00:00Z"]),
        b64(["2026-03-01T00:00:00", "run"]),  # no zone
        b64(["2026-03-01T00:00:00Z", ""]),
        b64(["2026-03-01T00:00:00Z", "r" * 201]),
        b64([1, "run"]),
        "A" * (params.MAX_CURSOR + 1),
    ):
        assert "cursor" in refused(runs_query, cursor=bad), bad


# --- usage ---------------------------------------------------------------------------------


def test_usage_defaults_to_the_week_up_to_today_by_day() -> None:
    query = usage_query(today=TODAY)
    assert (query.from_day, query.to_day, query.group_by) == (
        TODAY - timedelta(days=6),
        TODAY,
        ("day",),
    )
    assert usage_query(to_day="0001-01-03", today=TODAY).from_day == date.min
    assert usage_query(group_by="", today=TODAY).group_by == ()
    assert usage_query(group_by=["node", "model"], today=TODAY).group_by == ("node", "model")
    assert usage_query(group_by=" node , day ", today=TODAY).group_by == ("node", "day")


def test_usage_ranges_and_groupings_are_checked() -> None:
    assert "from" in refused(usage_query, from_day="2026-03-02", to_day="2026-03-01", today=TODAY)
    assert "to" in refused(usage_query, from_day="2016-01-01", to_day="2026-01-01", today=TODAY)
    whole_year = usage_query(from_day="2024-01-01", to_day="2024-12-31", today=TODAY)
    assert len(whole_year.days) == 366
    assert "group_by" in refused(usage_query, group_by="day,team", today=TODAY)
    assert "group_by" in refused(usage_query, group_by="day,day", today=TODAY)
    assert "group_by" in refused(usage_query, group_by="day,", today=TODAY)
    for bad in ("2026-1-5", "20260105", "2026-W01-1", "9999-12-31"):
        assert "from" in refused(usage_query, from_day=bad, today=TODAY), bad


# --- sans-IO: the queries are driven with rows of our own --------------------------------


def summary_row(run_id: str, started_at: datetime) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "workflow_name": "wf",
        "item_id": None,
        "started_at": started_at,
        "start_recorded": True,
        "ended_at": None,
        "status": None,
        "duration_ms": None,
        "error_type": None,
        "error_message": None,
        "steps": 1,
        "errors": 0,
        "tokens_in": Decimal(3),
        "tokens_out": Decimal(4),
        "tokens_cached_in": Decimal(0),
        "cost_usd": Decimal("0.5"),
        "cost_unknown_steps": 0,
    }


def drive(query: Any, answers: list[list[dict[str, Any]]]) -> tuple[list[Statement], Any]:
    """Run a query generator, answering its statements in turn."""
    statements = [next(query)]
    try:
        for rows in answers:
            statements.append(query.send(rows))
    except StopIteration as done:
        return statements, done.value
    raise AssertionError(f"the query asked for more: {statements[-1].sql[:200]}")


def test_a_page_asks_one_more_row_than_it_shows_for_its_cursor() -> None:
    t = datetime(2026, 3, 1, tzinfo=UTC)
    rows = [summary_row(f"r{n}", t - timedelta(seconds=n)) for n in range(3)]
    statements, page = drive(list_runs(runs_query(limit=2)), [rows])
    assert statements[0].params["limit"] == 3
    assert [r.run_id for r in page.runs] == ["r0", "r1"]
    assert page.runs[0].status == "running"
    assert page.runs[0].totals.tokens_in == 3
    assert runs_query(cursor=page.next_cursor).cursor == params.Cursor(rows[1]["started_at"], "r1")
    _, last = drive(list_runs(runs_query(limit=2)), [rows[:2]])
    assert last.next_cursor is None


def test_only_the_filters_given_are_in_the_sql() -> None:
    (statement,), _ = drive(list_runs(runs_query()), [[]])
    assert "workflow_name = %(" not in statement.sql
    (statement,), _ = drive(list_runs(runs_query(workflow_name="wf", status="running")), [[]])
    assert "s.workflow_name = %(workflow_name)s" in statement.sql
    assert "c.ts IS NULL" in statement.sql


def test_a_bad_run_id_is_refused_before_any_sql() -> None:
    # run_detail checks when called, not when its generator is first driven.
    for bad in ("", "r" * 201, "a\x00"):
        assert set(refused(run_detail, run_id=bad)) == {"run_id"}, bad


def test_usage_reads_stored_days_once_and_computes_today_and_unaggregated_days_live() -> None:
    query = usage_query(from_day="2026-11-29", to_day="2026-12-02", group_by="day", today=TODAY)
    census = [
        {"day": date(2026, 11, 29), "stored": True, "final": True, "raw": None},
        {"day": date(2026, 11, 30), "stored": False, "final": False, "raw": False},  # nothing
        {"day": date(2026, 12, 1), "stored": False, "final": False, "raw": True},  # not yet
        {"day": TODAY, "stored": True, "final": False, "raw": True},  # today's rows are stale
    ]
    census = [row | {"unpriced": False} for row in census]
    # census; stored steps and calls; the price book; each live day's steps and calls
    statements, report = drive(usage_report(query), [census] + [[]] * 7)
    assert statements[0].params["days"] == [
        date(2026, 11, 29) + timedelta(days=n) for n in range(4)
    ]
    assert statements[1].params == {"stored_days": [date(2026, 11, 29)]}
    assert statements[2].params == {"stored_days": [date(2026, 11, 29)]}
    assert "daily_model_usage" in statements[2].sql
    assert "model_prices" in statements[3].sql  # read once, in the same snapshot
    assert [s.params["day"] for s in statements[4:]] == [date(2026, 12, 1)] * 2 + [TODAY] * 2
    assert "GROUP BY a.day" in statements[4].sql
    assert "jsonb_array_elements" in statements[5].sql  # the calls of the live day
    assert report.stored_days == [date(2026, 11, 29)]
    assert report.live_days == [date(2026, 12, 1), TODAY]


def test_usage_reads_no_price_book_without_live_days() -> None:
    query = usage_query(from_day="2026-11-29", to_day="2026-11-29", group_by="", today=TODAY)
    census = [{"day": date(2026, 11, 29), "stored": True, "final": True, "raw": None,
               "unpriced": False}]  # fmt: skip
    statements, report = drive(usage_report(query), [census, [], []])
    assert len(statements) == 3
    assert not any("model_prices" in s.sql for s in statements)
    assert report.live_days == []


def test_usage_computes_a_day_live_whose_rows_predate_its_end_unless_they_are_all_left() -> None:
    query = usage_query(from_day="2026-11-29", to_day="2026-12-01", group_by="day", today=TODAY)
    census = [
        {"day": date(2026, 11, 29), "stored": True, "final": False, "raw": False},  # all left
        {"day": date(2026, 11, 30), "stored": True, "final": False, "raw": True},  # 23:05 rows
        {"day": date(2026, 12, 1), "stored": True, "final": True, "raw": None},
    ]
    census = [row | {"unpriced": False} for row in census]
    statements, report = drive(usage_report(query), [census] + [[]] * 5)
    assert statements[1].params == {"stored_days": [date(2026, 11, 29), date(2026, 12, 1)]}
    assert [s.params["day"] for s in statements[4:]] == [date(2026, 11, 30)] * 2
    assert report.live_days == [date(2026, 11, 30)]


def test_usage_refuses_more_live_days_than_its_bound_before_computing_any() -> None:
    query = usage_query(
        from_day="2026-11-29", to_day="2026-12-02", group_by="day", today=TODAY, max_live_days=2
    )
    census = [
        {"day": date(2026, 11, 29) + timedelta(days=n), "stored": False, "final": False,
         "raw": True}
        for n in range(4)
    ]  # fmt: skip
    with pytest.raises(InvalidQuery) as refused:
        drive(usage_report(query), [census])
    assert set(refused.value.field_errors) == {"from"}
    assert "4 days to compute from raw events, at most 2" in refused.value.field_errors["from"]


def test_a_step_that_called_nothing_billable_costs_a_known_zero() -> None:
    from decimal import Decimal

    from sdk.usage.run_events import shape_step

    row = {"event_id": "E", "ts": None, "agent_role": None, "cost": None, "cost_unknown": False,
           "payload": {"node": "fn", "status": "ok", "duration_ms": 3}}  # fmt: skip
    step = shape_step(row)
    assert (step.cost_usd, step.cost_unknown) == (Decimal(0), False)
    unknown = shape_step(row | {"cost_unknown": True, "payload": {"node": "m", "model": "x"}})
    assert (unknown.cost_usd, unknown.cost_unknown) == (None, True)


def test_a_steps_calls_are_read_as_they_are_and_what_is_no_call_is_left_out() -> None:
    """Raw rows may predate validation: a call without a model, a string where a number
    belongs or a boolean cost is read as absent, never a failure."""
    from sdk.usage.run_events import shape_step

    row = {"event_id": "E", "ts": None, "agent_role": None, "cost": 0.1, "cost_unknown": False,
           "payload": {"node": "n", "model": "a", "calls": [
               {"model": "a", "tokens_in": "12", "tokens_out": 3, "cost_usd_reported": True},
               {"provider": "x"}, "not a call",
               {"model": "b", "usage_reported": False, "cost_usd_reported": 0.5}]}}  # fmt: skip
    calls = shape_step(row).calls
    assert calls is not None
    assert [
        (c.model, c.tokens_in, c.tokens_out, c.cost_usd_reported, c.usage_reported) for c in calls
    ] == [("a", 0, 3, None, True), ("b", 0, 0, Decimal("0.5"), False)]
    no_calls = shape_step(row | {"payload": {"node": "n", "calls": "x"}})
    assert no_calls.calls is None
