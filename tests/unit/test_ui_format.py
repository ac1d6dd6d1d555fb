"""How the UI prints money: unknown is never $0, small costs are not rounded away."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ingest_api.ui.templating import cost, usd


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "unknown"),
        (Decimal(0), "$0"),
        (Decimal("0.000012"), "$0.000012"),
        (Decimal("0.0034"), "$0.0034"),
        (Decimal("0.5"), "$0.5000"),
        (Decimal("1234.5"), "$1,234.50"),
    ],
)
def test_usd(value: Decimal | None, shown: str) -> None:
    assert usd(value) == shown


def test_cost_says_what_is_unknown() -> None:
    assert cost(Decimal(0), 3) == "unknown"
    assert cost(None) == "unknown"
    assert cost(Decimal("0.25"), 1) == "$0.2500 + unknown"
    assert cost(Decimal("0.25")) == "$0.2500"
