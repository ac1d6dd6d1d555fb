"""The one backoff formula: capped, jittered, and finite for any attempt count."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from sdk.backoff import backoff_delay


def test_the_delay_doubles_from_the_base_with_equal_jitter() -> None:
    low = [backoff_delay(n, base_s=0.2, cap_s=100, rng=lambda: 0.0) for n in range(4)]
    high = [backoff_delay(n, base_s=0.2, cap_s=100, rng=lambda: 1.0) for n in range(4)]
    assert low == pytest.approx([0.1, 0.2, 0.4, 0.8])
    assert high == pytest.approx([0.2, 0.4, 0.8, 1.6])


@pytest.mark.parametrize("attempt", [30, 1023, 1024, 1025, 10**6, 2**70])
def test_any_number_of_failures_gives_a_finite_capped_delay(attempt: int) -> None:
    # 0.2 * 2**1024 used to raise OverflowError (int too large to convert to float).
    for rng in (lambda: 0.0, lambda: 0.5, lambda: 1.0):
        delay = backoff_delay(attempt, base_s=0.2, cap_s=10.0, rng=rng)
        assert math.isfinite(delay)
        assert 5.0 <= delay <= 10.0  # equal jitter: never below half the cap, so no spin


def test_a_negative_attempt_counts_as_the_first() -> None:
    assert backoff_delay(-5, base_s=1.0, cap_s=10, rng=lambda: 1.0) == 1.0


@pytest.mark.parametrize(
    ("base", "cap"), [(-1.0, 1.0), (1.0, -1.0), (math.inf, 1.0), (1.0, math.inf), (math.nan, 1.0)]
)
def test_nonsense_parameters_are_refused(base: float, cap: float) -> None:
    with pytest.raises(ValueError, match="finite, non-negative"):
        backoff_delay(1, base_s=base, cap_s=cap)


def test_the_module_is_dependency_free() -> None:
    # A fresh interpreter: the s3 store and sdk.telemetry both import it.
    code = (
        "import json, sys; before = set(sys.modules); import sdk.backoff; "
        "print(json.dumps(sorted({m.split('.')[0] for m in set(sys.modules) - before})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert set(json.loads(out)) - sys.stdlib_module_names == {"sdk"}
