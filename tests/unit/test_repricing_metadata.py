"""What the usage_repricing asset records: figures, and a per-day table that escapes names."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from platform_defs.assets.repricing import days_markdown, repricing_metadata
from sdk.prices import ALWAYS, MANUAL, Price, PriceRow
from sdk.usage.pricing import DayRepriced, RepriceReport


def day(n: int, before: str, after: str, changed: int, models: set[str]) -> DayRepriced:
    return DayRepriced(
        day=date(2026, 3, n), rows=4, rows_changed=changed, before_usd=D(before),
        after_usd=D(after), unknown_before=2, unknown_after=1 if changed else 2,
        price_ids=frozenset({7}), changed_price_ids=frozenset({7} if changed else ()),
        changed_models=frozenset(models),
    )  # fmt: skip


HOSTILE = "![x](https://evil.example/p.png)|\nnext"
REPORT = RepriceReport((
    day(1, "1", "1", 0, set()),
    day(2, "2", "3.5", 2, {"gpt-x", HOSTILE}),
    day(3, "0.25", "0.5", 1, {"gpt-x"}),
))  # fmt: skip
ROW = PriceRow(price_id=7, model="gpt-x", provider="", exact=frozenset({"gpt-x"}),
               pattern=None, valid_from=ALWAYS, source=MANUAL,
               price=Price(input=D(1), output=D(2)))  # fmt: skip


def test_the_figures_are_those_of_the_days_that_changed() -> None:
    meta = {k: v.value for k, v in repricing_metadata(REPORT, {7: ROW}).items()}
    assert (meta["days_checked"], meta["days_repriced"], meta["rows_repriced"]) == (3, 2, 3)
    assert (meta["cost_before_usd"], meta["cost_after_usd"]) == (2.25, 4.0)
    assert (meta["unknown_calls_before"], meta["unknown_calls_after"]) == (4, 2)
    (used,) = meta["price_rows_used"]
    assert used == {"price_id": 7, "model": "gpt-x", "provider": "", "valid_from": "1970-01-01",
                    "source": "manual", "price": {"input": "1", "output": "2"}}  # fmt: skip


def test_the_day_table_lists_changed_days_and_escapes_model_names() -> None:
    text = days_markdown(REPORT)
    lines = text.splitlines()
    assert lines[0].startswith("**2 days re-priced**: known cost $2.2500 → $4.0000")
    rows = [line for line in lines if line.startswith("| 2026")]
    assert [r.split(" | ")[0] for r in rows] == ["| 2026-03-02", "| 2026-03-03"]
    assert "| 2026-03-02 | 2 | $2.0000 | $3.5000 | 2 → 1 |" in rows[0]
    assert "\\!\\[x\\]\\(https\\:\\/\\/evil\\.example\\/p\\.png\\)\\|" in rows[0]
    assert "](https" not in text  # no image for the UI to fetch
    assert "\nnext" not in text  # no row broken by a newline
    assert days_markdown(RepriceReport((day(1, "1", "1", 0, set()),))).startswith("_No stored")


def test_a_long_history_lists_its_largest_changes() -> None:
    many = RepriceReport(tuple(day(n, "1", str(n), 1, {"m"}) for n in range(1, 29)))
    text = days_markdown(many, limit=3)
    assert "(the 3 largest changes below)" in text
    assert [r.split(" | ")[0] for r in text.splitlines() if r.startswith("| 2026")] == [
        "| 2026-03-26", "| 2026-03-27", "| 2026-03-28",
    ]  # fmt: skip
