"""Errors of :mod:`sdk.usage`: what agents did and cost.

Everything the usage package refuses or cannot do is a :class:`UsageError`; driver
errors are translated where they happen and kept as ``__cause__``.
"""

from __future__ import annotations

from datetime import date

from sdk.errors import WdpError


class UsageError(WdpError):
    """Base of every usage error."""


class RawEventsDropped(UsageError):
    """A day's raw events are (partly) gone: its aggregates are history, never rewritten."""

    def __init__(self, day: date, partition: str) -> None:
        self.day = day
        self.partition = partition
        super().__init__(
            f"refusing to aggregate {day}: raw events of that day were in {partition}, which "
            "retention has dropped. Its stored aggregates are kept unchanged; recomputing them "
            "now would replace history with partial counts."
        )
