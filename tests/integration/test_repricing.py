"""Pricing daily_model_usage at aggregation and re-pricing it later, on a real Postgres.

Raw events are inserted as the API stores them, prices with the repository, days are
aggregated with ``aggregate_day`` and re-priced with ``price_days`` or the Dagster asset;
every cost is computed by hand in the comments (rates are USD per million tokens).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal as D
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from platform_defs.assets.repricing import usage_repricing
from platform_defs.assets.retention import apply_retention
from platform_defs.resources import PostgresResource
from sdk.db import migrate
from sdk.db.engine import create_engine
from sdk.db.partitions import Month, ensure_partitions, list_partitions
from sdk.prices import ALWAYS, MANUAL, Price, Tier
from sdk.prices.repository import NewPrice, insert_prices
from sdk.usage.aggregation import aggregate_day
from sdk.usage.errors import RawEventsDropped
from sdk.usage.pricing import price_days
from tests.support.model_calls import call, calls_step
from tests.support.raw_events import STEP, insert, step

JAN, FEB, MAR = Month(2026, 1), Month(2026, 2), Month(2026, 3)
DAYS = ("2026-01-10", "2026-01-20", "2026-02-05", "2026-03-10")
NOW = datetime(2026, 6, 15, 12, tzinfo=UTC)  # January and February are past 90 days


@pytest.fixture
def db(database_factory: Callable[[], str]) -> Iterator[tuple[str, sa.Engine]]:
    url = database_factory()
    migrate.upgrade(url)
    eng = create_engine(url)
    ensure_partitions(eng, [JAN, FEB, MAR])
    yield url, eng
    eng.dispose()


def manual(model: str, price: Price, valid_from: date = ALWAYS, **kw: Any) -> NewPrice:
    kw.setdefault("exact", (model,))
    return NewPrice(model=model, price=price, valid_from=valid_from, source=MANUAL, **kw)


def add_prices(eng: sa.Engine, *prices: NewPrice) -> list[int]:
    with eng.begin() as conn:
        return [r.price_id for r in insert_prices(conn, list(prices))]


def aggregate(eng: sa.Engine, *days: str) -> None:
    for day in days:
        with eng.begin() as conn:
            aggregate_day(conn, date.fromisoformat(day))


def usage(eng: sa.Engine, day: str) -> dict[tuple[str, int, str], tuple[Any, ...]]:
    """(model, band, basis) -> (cost_usd, cost_source, price_id) of a day's usage rows."""
    with eng.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT model, input_band, basis, cost_usd, cost_source, price_id "
            "FROM telemetry.daily_model_usage WHERE day = %(d)s",
            {"d": date.fromisoformat(day)},
        ).all()
    return {(r[0], r[1], r[2]): (r[3], r[4], r[5]) for r in rows}


def priced_at(eng: sa.Engine) -> dict[date, Any]:
    with eng.connect() as conn:
        rows = conn.exec_driver_sql("SELECT day, priced_at FROM telemetry.daily_model_usage")
        return dict(rows.all())


def one_call_per_day(eng: sa.Engine) -> None:
    """Each day of DAYS: one gpt-x call of 1M input and 500k output tokens."""
    for day in DAYS:
        payload = calls_step(call("gpt-x", 1_000_000, 500_000, provider="openai"))
        insert(eng, STEP, f"{day}T12:00:00", run=f"r-{day}", wf="w", payload=payload)


def test_a_past_dated_correction_reprices_exactly_the_days_it_covers_also_once_raw_is_gone(
    db: tuple[str, sa.Engine],
) -> None:
    url, eng = db
    one_call_per_day(eng)
    (first,) = add_prices(eng, manual("gpt-x", Price(input=D(1), output=D(2))))
    aggregate(eng, *DAYS)
    # 1M x $1 + 500k x $2 = $2 a day
    for day in DAYS:
        assert usage(eng, day) == {("gpt-x", 524_288, "tokens"): (D(2), "computed", first)}

    # A correction of the same series from 15 January: 1M x $3 + 500k x $4 = $5.
    (fix,) = add_prices(eng, manual("gpt-x", Price(input=D(3), output=D(4)), date(2026, 1, 15)))
    stamped = priced_at(eng)
    with eng.begin() as conn:
        report = price_days(conn, [date.fromisoformat(d) for d in DAYS])
    assert [(str(d.day), d.rows_changed, d.before_usd, d.after_usd) for d in report.days] == [
        ("2026-01-10", 0, D(2), D(2)),  # before valid_from: unchanged, not even rewritten
        ("2026-01-20", 1, D(2), D(5)),
        ("2026-02-05", 1, D(2), D(5)),
        ("2026-03-10", 1, D(2), D(5)),
    ]
    assert (report.before_usd, report.after_usd, report.price_ids) == (D(8), D(17), {fix})
    assert usage(eng, "2026-01-10") == {("gpt-x", 524_288, "tokens"): (D(2), "computed", first)}
    for day in DAYS[1:]:
        assert usage(eng, day) == {("gpt-x", 524_288, "tokens"): (D(5), "computed", fix)}
    after = priced_at(eng)
    assert after[date(2026, 1, 10)] == stamped[date(2026, 1, 10)]
    assert all(after[date.fromisoformat(d)] > stamped[date.fromisoformat(d)] for d in DAYS[1:])

    # Retention drops January and February (every day is aggregated): their raw events
    # are gone, the usage rows stay, and the days can no longer be aggregated.
    dropped = apply_retention(eng, NOW, 90)
    assert [str(d["month"]) for d in dropped] == ["2026-01", "2026-02"]
    with eng.connect() as conn:
        assert JAN not in list_partitions(conn)
    with pytest.raises(RawEventsDropped), eng.begin() as conn:
        aggregate_day(conn, date(2026, 1, 20))

    # Another correction from 1 February, re-priced by the asset from token sums alone:
    # 1M x $0.50 + 500k x $0.50 = $0.75 on 5 February (raw gone) and 10 March.
    (late,) = add_prices(
        eng, manual("gpt-x", Price(input=D("0.5"), output=D("0.5")), date(2026, 2, 1))
    )
    meta = materialise_repricing(url)
    assert usage(eng, "2026-01-20") == {("gpt-x", 524_288, "tokens"): (D(5), "computed", fix)}
    for day in ("2026-02-05", "2026-03-10"):
        assert usage(eng, day) == {("gpt-x", 524_288, "tokens"): (D("0.75"), "computed", late)}
    assert (meta["days_checked"], meta["days_repriced"], meta["rows_repriced"]) == (4, 2, 2)
    assert (meta["cost_before_usd"], meta["cost_after_usd"]) == (10.0, 1.5)
    assert [r["price_id"] for r in meta["price_rows_used"]] == [late]
    assert meta["price_rows_used"][0]["valid_from"] == "2026-02-01"
    assert "| 2026-02-05 | 1 | $5.0000 | $0.7500 | 0 → 0 | gpt\\-x | " in meta["days"]
    assert "2026-01-20" not in meta["days"]
    # Nothing changed since: a second run writes nothing.
    assert materialise_repricing(url)["days_repriced"] == 0


def materialise_repricing(url: str) -> dict[str, Any]:
    result = dg.materialize(
        [usage_repricing],
        instance=dg.DagsterInstance.ephemeral(),
        resources={"postgres": PostgresResource(database_url=url)},
    )
    (materialisation,) = result.asset_materializations_for_node("usage_repricing")
    return {k: v.value for k, v in materialisation.metadata.items()}


def test_an_exact_name_beats_a_pattern_through_aggregation(db: tuple[str, sa.Engine]) -> None:
    _, eng = db
    dated, family = "gpt-4o-2024-05-13", Price(input=D("2.5"), output=D(10))
    exact, pattern = add_prices(
        eng,
        manual(dated, Price(input=D(5), output=D(15))),
        # inserted later (the newer override), yet a pattern: the exact name still wins
        manual("gpt-4o", family, exact=(), pattern="^gpt-4o"),
    )
    insert(eng, STEP, "2026-03-10T09:00:00", run="r", wf="w", payload=calls_step(
        call(dated, 1_000_000, 100_000), call("gpt-4o-2024-08-06", 1_000_000, 100_000)
    ))  # fmt: skip
    aggregate(eng, "2026-03-10")
    assert usage(eng, "2026-03-10") == {
        (dated, 524_288, "tokens"): (D("6.5"), "computed", exact),  # 1M x 5 + 100k x 15
        ("gpt-4o-2024-08-06", 524_288, "tokens"): (D("3.5"), "computed", pattern),  # 2.5 + 1
    }


def test_tiered_prices_charge_the_call_over_the_threshold_at_the_higher_rate(
    db: tuple[str, sa.Engine],
) -> None:
    _, eng = db
    tiered = Price(
        input=D("1.25"),
        output=D(10),
        tiers={"input": (Tier(200_000, D("2.5")),), "output": (Tier(200_000, D(15)),)},
    )
    (pid,) = add_prices(eng, manual("gem", tiered))
    insert(eng, STEP, "2026-03-10T09:00:00", run="r", wf="w", payload=calls_step(
        call("gem", 250_000, 1_000), call("gem", 100_000, 1_000)
    ))  # fmt: skip
    aggregate(eng, "2026-03-10")
    assert usage(eng, "2026-03-10") == {
        ("gem", 200_000, "tokens"): (D("0.64"), "computed", pid),  # 250k x 2.5 + 1k x 15
        ("gem", 32_000, "tokens"): (D("0.135"), "computed", pid),  # 100k x 1.25 + 1k x 10
    }  # together $0.775; one rate for both would be $0.4575 or $0.905


def test_a_provider_reported_cost_wins_and_survives_repricing(db: tuple[str, sa.Engine]) -> None:
    _, eng = db
    add_prices(eng, manual("gpt-x", Price(input=D(1), output=D(2))))
    insert(eng, STEP, "2026-03-10T09:00:00", run="r", wf="w", payload=calls_step(
        call("gpt-x", 1_000_000, 0, reported=0.0125), call("gpt-x", 1_000_000, 0)
    ))  # fmt: skip
    aggregate(eng, "2026-03-10")
    found = usage(eng, "2026-03-10")
    assert found[("gpt-x", 524_288, "reported")] == (D("0.0125"), "reported", None)
    assert found[("gpt-x", 524_288, "tokens")][:2] == (D(1), "computed")
    add_prices(eng, manual("gpt-x", Price(input=D(7), output=D(7)), date(2026, 3, 1)))
    with eng.begin() as conn:
        (day,) = price_days(conn, [date(2026, 3, 10)]).days
    assert (day.rows_changed, day.before_usd, day.after_usd) == (1, D("1.0125"), D("7.0125"))
    assert usage(eng, "2026-03-10")[("gpt-x", 524_288, "reported")][0] == D("0.0125")


def test_a_model_without_a_price_stays_unknown_until_one_is_added(
    db: tuple[str, sa.Engine],
) -> None:
    _, eng = db
    insert(eng, STEP, "2026-03-10T09:00:00", run="r", wf="w", payload=calls_step(
        call("brand-new", 1_000_000, 0), call("brand-new", 10, 0), call("brand-new", usage=False)
    ))  # fmt: skip
    aggregate(eng, "2026-03-10")
    unknown = (None, "unknown", None)
    assert usage(eng, "2026-03-10") == {
        ("brand-new", 524_288, "tokens"): unknown,  # NULL, never $0
        ("brand-new", 0, "tokens"): unknown,
        ("brand-new", 0, "none"): unknown,
    }
    (pid,) = add_prices(eng, manual("brand-new", Price(input=D(4), output=D(4))))
    with eng.begin() as conn:
        (day,) = price_days(conn, [date(2026, 3, 10)]).days
    assert usage(eng, "2026-03-10") == {
        ("brand-new", 524_288, "tokens"): (D(4), "computed", pid),
        ("brand-new", 0, "tokens"): (D("0.00004"), "computed", pid),  # 10 x $4 / 1M
        ("brand-new", 0, "none"): unknown,  # no usage reported: a price cannot help
    }
    assert (day.unknown_before, day.unknown_after, day.after_usd) == (3, 1, D("4.00004"))


def test_legacy_steps_keep_their_emitted_estimate(db: tuple[str, sa.Engine]) -> None:
    """event_version 1 (no calls): the emitted estimate stands, whatever the table says;
    a v1 step without a cost but with tokens is priced from them."""
    _, eng = db
    (pid,) = add_prices(eng, manual("gpt-x", Price(input=D(1), output=D(2))))
    insert(eng, STEP, "2026-03-10T09:00:00", run="r", wf="w",
           payload=step("ok", 5, "gpt-x", 1_000_000, 0, 0.5, node="a"))  # fmt: skip
    insert(eng, STEP, "2026-03-10T09:01:00", run="r", wf="w",
           payload=step("ok", 5, "gpt-x", 1_000_000, 0, None, node="b"))  # fmt: skip
    aggregate(eng, "2026-03-10")
    with eng.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT node, model, provider, basis, reported_usd, cost_usd, cost_source, price_id "
            "FROM telemetry.daily_model_usage ORDER BY node"
        ).all()
    assert [tuple(r) for r in rows] == [
        ("a", "gpt-x", "", "estimate", D("0.5"), D("0.5"), "estimate", None),
        ("b", "gpt-x", "", "tokens", None, D(1), "computed", pid),
    ]


def _waits_then_runs(
    first: sa.Connection, second: Callable[[], object], meanwhile: Callable[[], object]
) -> object:
    """Run ``second`` in a thread while ``first``'s transaction is open: it must wait
    for it; ``meanwhile`` runs while it waits, then ``first`` commits and ``second``
    finishes. Its result (or error)."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(second())
        except Exception as exc:  # the failure is the finding
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(timeout=1.0)
    assert worker.is_alive(), "the second one did not wait for the day's lock"
    meanwhile()
    first.commit()
    worker.join(timeout=30)
    (result,) = outcome
    assert not isinstance(result, Exception), result
    return result


@pytest.mark.parametrize("first_is", ["aggregation", "repricing"])
def test_repricing_and_aggregation_of_a_day_take_turns_and_the_newer_prices_win(
    db: tuple[str, sa.Engine], first_is: str
) -> None:
    """A price added while one of them holds the day and the other waits for it: the one
    that runs second reads the table once it has the lock, so the day ends priced with
    the new price whichever came first (reading it before the lock would keep the old)."""
    _, eng = db
    day = date(2026, 3, 10)
    insert(eng, STEP, "2026-03-10T09:00:00", run="r", wf="w",
           payload=calls_step(call("gpt-x", 1_000_000, 0)))  # fmt: skip
    (old,) = add_prices(eng, manual("gpt-x", Price(input=D(1), output=D(1))))
    aggregate(eng, "2026-03-10")

    def reprice() -> object:
        with eng.begin() as conn:
            return price_days(conn, [day])

    def reaggregate() -> object:
        with eng.begin() as conn:
            return aggregate_day(conn, day)

    with eng.connect() as first:
        first.begin()
        if first_is == "aggregation":
            aggregate_day(first, day)
        else:
            price_days(first, [day])
        added: list[int] = []
        _waits_then_runs(
            first,
            reprice if first_is == "aggregation" else reaggregate,
            lambda: added.extend(
                add_prices(eng, manual("gpt-x", Price(input=D(3), output=D(1)), day))
            ),
        )
    assert usage(eng, "2026-03-10") == {("gpt-x", 524_288, "tokens"): (D(3), "computed", added[0])}
    assert added[0] != old
