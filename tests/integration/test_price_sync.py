"""sdk.prices.sync on a real Postgres: only differences are inserted, never twice.

Each test has a database of its own: the price table is append-only, so a test cannot
clean up after itself, and the counts below are of the whole table.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal as D
from typing import Any

import pytest
import sqlalchemy as sa

from sdk.db import migrate
from sdk.db.engine import create_engine
from sdk.prices import ALWAYS, MANUAL, Price, Tier
from sdk.prices.repository import NewPrice, insert_prices, load_book
from sdk.prices.sync import Skipped, SyncReport, sync_prices

SOURCE = "genai-prices 0.2.3"
GPT = Price(input=D("2.5"), output=D(10), cache_read=D("1.25"))
MINI = Price(input=D("0.15"), output=D("0.6"))
D1 = date(2025, 6, 1)


@pytest.fixture
def eng(database_factory: Callable[[], str]) -> Iterator[sa.Engine]:
    url = database_factory()
    migrate.upgrade(url)
    engine = create_engine(url)
    yield engine
    engine.dispose()


def synced(model: str, price: Price = GPT, **kw: Any) -> NewPrice:
    fields: dict[str, Any] = {
        "valid_from": ALWAYS,
        "source": SOURCE,
        "exact": (model,),
        "provider": "openai",
        "provider_pattern": "^gpt",
    }
    return NewPrice(model=model, price=price, **(fields | kw))


def manual(model: str, price: Price, **kw: Any) -> NewPrice:
    return NewPrice(model=model, price=price, valid_from=ALWAYS, source=MANUAL,
                    exact=(model,), **kw)  # fmt: skip


DATA = [
    synced("gpt-4o", rank=1),
    synced("gpt-4o", Price(input=D(2), output=D(8)), valid_from=D1, rank=1),
    synced("gpt-4o-mini", MINI, rank=2, pattern="^gpt-4o-mini-"),
    synced("claude-x", provider="anthropic", provider_pattern="claude", provider_rank=0),
]


def sync(eng: sa.Engine, data: list[NewPrice], **kw: Any) -> SyncReport:
    with eng.begin() as conn:
        return sync_prices(conn, data, **kw)


def count(eng: sa.Engine) -> int:
    with eng.connect() as conn:
        total = conn.execute(sa.text("SELECT count(*) FROM telemetry.model_prices"))
        return int(total.scalar_one())


def test_a_second_sync_of_the_same_data_stores_nothing(eng: sa.Engine) -> None:
    first = sync(eng, DATA)
    assert (first.added, first.changed, first.unchanged) == (4, 0, 0)
    assert [c.kind for c in first.changes] == ["added"] * 4
    assert first.rows_total == count(eng) == 4
    assert first.sources == (SOURCE,)
    again = sync(eng, DATA)
    assert (again.added, again.changed, again.unchanged, again.inserted) == (0, 0, 4, 0)
    assert again.changes == []
    assert count(eng) == again.rows_total == 4
    # A later version of the library with the same prices is not a change either.
    newer = sync(eng, [NewPrice(**{**vars(p), "source": "genai-prices 0.2.4"}) for p in DATA])
    assert (newer.inserted, newer.unchanged) == (0, 4)
    assert count(eng) == 4


def test_a_changed_price_is_one_new_row_and_the_old_row_stays(eng: sa.Engine) -> None:
    sync(eng, DATA)
    with eng.connect() as conn:
        before = load_book(conn)
    old = before.resolve("gpt-4o-mini", "openai", date(2026, 1, 1))
    assert old is not None
    assert old.price == MINI
    dearer = Price(input=D("0.2"), output=D("0.8"))
    changed = [*DATA[:2], synced("gpt-4o-mini", dearer, rank=2, pattern="^gpt-4o-mini-"),
               DATA[3]]  # fmt: skip
    report = sync(eng, changed)
    assert (report.added, report.changed, report.unchanged) == (0, 1, 3)
    (change,) = report.changes
    assert (change.kind, change.model, change.provider, change.valid_from) == (
        "changed", "gpt-4o-mini", "openai", ALWAYS,
    )  # fmt: skip
    assert change.what == ("rates",)
    assert change.old == old
    assert change.new.price == dearer
    assert change.new.price_id > old.price_id
    assert count(eng) == 5
    with eng.connect() as conn:
        book = load_book(conn)
    assert old in book.rows  # kept, never updated
    assert book.resolve("gpt-4o-mini-2024-07-18", None, date(2026, 1, 1)) == change.new
    # and it stays one row: syncing the changed data again inserts nothing
    assert sync(eng, changed).inserted == 0
    assert count(eng) == 5


def test_a_new_dated_version_is_added_beside_the_old_one(eng: sa.Engine) -> None:
    sync(eng, DATA)
    d2 = date(2026, 2, 1)
    later = synced("gpt-4o", Price(input=D(3), output=D(12)), valid_from=d2, rank=1)
    report = sync(eng, [*DATA, later])
    (change,) = report.changes
    assert (change.kind, change.valid_from, change.what) == ("added", d2, ("rates",))
    assert change.old is not None
    assert change.old.valid_from == D1
    with eng.connect() as conn:
        book = load_book(conn)
    assert book.resolve("gpt-4o", None, date(2026, 1, 31)).price.input == D(2)  # type: ignore[union-attr]
    assert book.resolve("gpt-4o", None, d2).price.input == D(3)  # type: ignore[union-attr]
    # A dated version that repeats the price before it is stored too (the source says
    # so for those days), and once.
    same = synced("gpt-4o", Price(input=D(3), output=D(12)), valid_from=date(2026, 3, 1), rank=1)
    repeat = sync(eng, [*DATA, later, same])
    assert [(c.kind, c.what) for c in repeat.changes] == [("added", ("dated",))]
    assert sync(eng, [*DATA, later, same]).inserted == 0


@pytest.mark.parametrize(
    ("edit", "what"),
    [
        ({"price": Price(input=D(2), output=D(8), tiers={"input": (Tier(200_000, D(4)),)})},
         ("tiers",)),
        ({"exact": ("gpt-4o", "gpt-4o-latest")}, ("match",)),
        ({"pattern": "^gpt-4o-"}, ("match",)),
        ({"rank": 7}, ("order",)),
        ({"provider_pattern": "^(gpt|o1)"}, ("order",)),
        ({"price": Price(input=D(1), output=D(8)), "rank": 3}, ("rates", "order")),
    ],
)  # fmt: skip
def test_what_changed_is_named(eng: sa.Engine, edit: dict[str, Any], what: tuple[str, ...]) -> None:
    sync(eng, DATA)
    edited = NewPrice(**(vars(DATA[1]) | edit))
    report = sync(eng, [DATA[0], edited, *DATA[2:]])
    assert [(c.kind, c.model, c.valid_from, c.what) for c in report.changes] == [
        ("changed", "gpt-4o", D1, what)
    ]
    assert report.reordered_only == (1 if what == ("order",) else 0)


def test_names_are_compared_as_they_are_stored(eng: sa.Engine) -> None:
    sync(eng, DATA)
    shouty = NewPrice(**(vars(DATA[0]) | {"exact": (" GPT-4o ", "gpt-4o"), "provider": "OpenAI"}))
    report = sync(eng, [shouty])
    assert (report.unchanged, report.inserted) == (1, 0)


def test_manual_rows_win_over_synced_ones_after_a_sync(eng: sa.Engine) -> None:
    mine = Price(input=D(1), output=D(1))
    with eng.begin() as conn:
        (override,) = insert_prices(conn, [manual("gpt-4o", mine, note="negotiated")])
    report = sync(eng, DATA)
    assert report.added == 4
    with eng.connect() as conn:
        book = load_book(conn)
    for provider in (None, "openai"):
        assert book.resolve("gpt-4o", provider, date(2026, 1, 1)) == override
    # The synced rows are there, for the days and providers the override does not cover.
    assert book.resolve("gpt-4o-mini", None, date(2026, 1, 1)).source == SOURCE  # type: ignore[union-attr]


def test_seed_rows_are_added_once_and_never_over_a_manual_row(eng: sa.Engine) -> None:
    old = Price(input=D(30), output=D(60))
    with eng.begin() as conn:
        insert_prices(conn, [manual("gpt-4", Price(input=D(20), output=D(40)))])
    seed = [manual("gpt-4", old, note="seed"), manual("text-davinci-003", old, note="seed")]
    first = sync(eng, DATA, seed=seed)
    assert [(r.model, r.source) for r in first.seeded] == [("text-davinci-003", MANUAL)]
    assert first.seed_kept == 1
    again = sync(eng, DATA, seed=seed)
    assert (again.seeded, again.seed_kept, again.inserted) == ([], 2, 0)
    assert count(eng) == 6  # 4 synced, the operator's gpt-4, one seed row
    with eng.connect() as conn:
        book = load_book(conn)
    assert book.resolve("gpt-4", None, date(2026, 1, 1)).price.input == D(20)  # type: ignore[union-attr]


def test_what_is_not_synced_is_reported_with_a_reason(eng: sa.Engine) -> None:
    sync(eng, [*DATA, synced("gpt-3", rank=9)])
    given = [Skipped("dall-e-3", "openai", "no token prices (image generation only)")]
    report = sync(eng, [*DATA, DATA[0], manual("x", GPT)], skipped=given,
                  seed=[synced("not-manual")])  # fmt: skip
    assert report.inserted == 0
    assert [(s.model, s.reason.split(":")[0]) for s in report.skipped] == [
        ("dall-e-3", "no token prices (image generation only)"),
        ("gpt-4o", f"listed twice for {ALWAYS}"),
        ("x", "a manual row is not synced"),
        ("not-manual", f"a seed row must be manual, not {SOURCE!r}"),
    ]
    # A model the source no longer lists keeps its rows (they still price past calls).
    assert report.not_in_source == [("openai", "gpt-3")]
    payload = report.as_json()
    assert payload["not_in_source"] == [{"provider": "openai", "model": "gpt-3"}]
    assert payload["skipped"][0]["reason"].startswith("no token prices")


def test_a_sync_rolled_back_leaves_nothing(eng: sa.Engine) -> None:
    with eng.connect() as conn, conn.begin() as tx:
        report = sync_prices(conn, DATA)
        tx.rollback()
    assert report.added == 4
    assert len(report.changes) == 4
    assert count(eng) == 0


def test_progress_is_reported(eng: sa.Engine) -> None:
    lines: list[str] = []
    sync(eng, DATA, progress=lines.append)
    assert lines == [
        "comparing with 0 stored price rows",
        "4 source rows: 4 added, 0 changed, 0 unchanged; 0 seed row(s) to add",
    ]


def test_a_sync_waits_for_one_in_progress_and_then_finds_its_rows(eng: sa.Engine) -> None:
    """The second sync starts while the first holds its transaction open: it must wait
    (the lock), then see the first one's rows and insert nothing."""
    inside = threading.Event()
    release = threading.Event()
    reports: dict[str, SyncReport] = {}
    finished: dict[str, float] = {}

    def first() -> None:
        with eng.begin() as conn:
            reports["first"] = sync_prices(conn, DATA)
            inside.set()
            release.wait(10)
            finished["first_commit"] = time.monotonic()

    def second() -> None:
        inside.wait(10)
        reports["second"] = sync(eng, DATA)
        finished["second"] = time.monotonic()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    inside.wait(10)
    time.sleep(0.5)  # the second sync is now blocked on the lock
    assert "second" not in reports
    release.set()
    for t in threads:
        t.join(20)
    assert finished["second"] >= finished["first_commit"]
    assert (reports["first"].added, reports["second"].added) == (4, 0)
    assert reports["second"].unchanged == 4
    assert count(eng) == 4


def test_many_syncs_at_once_store_each_row_once(eng: sa.Engine) -> None:
    barrier = threading.Barrier(6)
    reports: list[SyncReport] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(10)
            reports.append(sync(eng, DATA))
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert sorted(r.added for r in reports) == [0, 0, 0, 0, 0, 4]
    assert count(eng) == 4
