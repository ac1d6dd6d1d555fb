"""The sender's view of an ingest API outage: when to probe next, and what to log.

Kept apart from the client's queue and threads so that the rule is in one place: after
each failure the next attempt waits :func:`sdk.backoff.backoff_delay` (capped, its
exponent clamped - a day of failures can neither overflow nor make the sender spin),
and an outage is logged once when it starts and once when it ends, not per probe.
"""

from __future__ import annotations

import logging

from sdk.backoff import Timer, backoff_delay

__all__ = ["Outage"]

log = logging.getLogger("sdk.telemetry")


class Outage:
    """Consecutive delivery failures and the time of the next allowed attempt."""

    def __init__(self, timer: Timer, *, base_s: float, cap_s: float) -> None:
        self._timer = timer
        self._base, self._cap = base_s, cap_s
        self.failures = 0
        self._next_attempt = 0.0

    def remaining(self) -> float:
        """Seconds until the next attempt is allowed; 0 when it is (or no outage)."""
        return max(0.0, self._next_attempt - self._timer.monotonic())

    def attempt_now(self) -> None:
        """Allow one attempt at once (a flush), keeping the failure count - so the
        backoff after it still grows."""
        self._next_attempt = 0.0

    def failed(self, problem: str) -> None:
        self.failures += 1  # backoff_delay clamps the exponent itself
        delay = backoff_delay(self.failures, base_s=self._base, cap_s=self._cap)
        self._next_attempt = self._timer.monotonic() + delay
        if self.failures == 1:
            log.warning(
                "ingest API unavailable (%s): events go to the spool; retrying with "
                "backoff (at most %.3gs apart) until it answers",
                problem,
                self._cap,
            )

    def succeeded(self) -> None:
        if self.failures:
            log.info("ingest API available again after %d failed attempts", self.failures)
        self.failures = 0
        self._next_attempt = 0.0
