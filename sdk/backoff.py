"""Capped exponential backoff with jitter: the one formula every retry loop in wdp uses.

Dependency-free (stdlib only) so that ``import sdk.telemetry`` stays light and the
artifact stores can share it. The exponent is clamped before it is used, so the delay
can never overflow however many failures a long outage piles up (``2**1024`` does not
convert to a float: that once turned a day-long outage into a traceback every second).

Jitter is *equal* jitter: the delay is drawn from ``[d/2, d]`` where ``d`` is the capped
exponential. Unlike full jitter (``[0, d]``) it guarantees a minimum wait, so a loop that
keeps failing can never spin; it still spreads out clients that failed together.

:class:`Timer` is the clock the telemetry client waits on; tests inject a simulated one
to run a day-long outage in seconds.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["MAX_EXPONENT", "SYSTEM_TIMER", "SystemTimer", "Timer", "backoff_delay"]

# 2.0**62 times any sane base is far beyond any cap; clamping here keeps the float
# arithmetic finite whatever the attempt count.
MAX_EXPONENT = 62


def backoff_delay(
    attempt: int,
    *,
    base_s: float,
    cap_s: float,
    rng: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number ``attempt + 1`` (``attempt`` counts from 0).

    ``min(cap_s, base_s * 2**attempt)`` with equal jitter, never more than ``cap_s``.
    """
    if not (math.isfinite(base_s) and math.isfinite(cap_s)) or base_s < 0 or cap_s < 0:
        raise ValueError(f"backoff needs finite, non-negative base and cap (got {base_s}, {cap_s})")
    exponent = min(max(attempt, 0), MAX_EXPONENT)
    delay = min(cap_s, base_s * 2.0**exponent)
    return delay / 2 + delay / 2 * rng()


class Timer(Protocol):
    """Monotonic time and interruptible waits, injectable for tests."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for ``event``; True if it is set."""
        ...


class SystemTimer:
    """The real clock: ``time.monotonic`` and ``Event.wait``."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wait(self, event: threading.Event, timeout: float) -> bool:
        return event.wait(max(0.0, timeout))


SYSTEM_TIMER = SystemTimer()
