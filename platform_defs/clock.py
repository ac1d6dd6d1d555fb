"""An injectable "now", so retention and partition windows are testable and replayable."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg


class ClockResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The time the assets act on: the wall clock, or a fixed instant.

    Retention decides what to drop from "now"; tests (and an operator replaying a missed
    day) pin it with ``fixed_now`` instead of waiting months for data to expire.
    """

    fixed_now: str | None = None
    """ISO 8601 instant with a UTC offset (e.g. ``2026-06-15T00:00:00Z``); unset: wall clock."""

    def now(self) -> datetime:
        if self.fixed_now is None:
            return datetime.now(UTC)
        moment = datetime.fromisoformat(self.fixed_now)
        if moment.tzinfo is None:
            raise ValueError(f"fixed_now {self.fixed_now!r} needs a UTC offset, e.g. 'Z'")
        return moment.astimezone(UTC)
