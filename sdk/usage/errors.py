"""Errors of :mod:`sdk.usage`: what agents did and cost.

Everything the usage package refuses or cannot do is a :class:`UsageError`; driver
errors are translated where they happen and kept as ``__cause__``. :class:`InvalidQuery`
carries one message per refused parameter, so the read API can answer 422 with field
errors and the CLI can name the option; both refuse exactly the inputs
:mod:`sdk.usage.params` refuses.
"""

from __future__ import annotations

from collections.abc import Mapping
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


class InvalidQuery(UsageError, ValueError):
    """Parameters that cannot be answered: ``field_errors`` maps each one to why."""

    def __init__(self, field_errors: Mapping[str, str]) -> None:
        self.field_errors = dict(field_errors)
        super().__init__(
            "invalid parameters: "
            + "; ".join(f"{name}: {message}" for name, message in self.field_errors.items())
        )


class RunNotFound(UsageError, LookupError):
    """No event carries this run id."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(f"no events of run {run_id!r} are stored")
