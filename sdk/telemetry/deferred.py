"""Events validated on the sender thread instead of the caller's.

The builders validate at the call site so that a caller's mistake raises where it is
made. Instrumentation has no caller to raise to - it must never raise into the host -
and runs on the host's hot path (a LangGraph node), where pydantic validation is most
of its cost (~20 us an event). So it hands the client a :class:`DeferredEvent`: the
envelope (event id and time fixed now) and payload as plain values, validated by the
sender thread just before encoding. One that fails validation is logged and counted as
rejected, like an event the API refuses.

``finish`` goes one step further: payload fields that take work to compute but are
known to follow from what was captured (the LangGraph handler's cost estimate, priced
from its calls) are computed by it where the event is built, not on the caller's
thread. It must not raise (an exception rejects the event, like a validation error).

:class:`DeferredWork` goes further still: queued work that stands for events not yet
made. The LangGraph handler records its callbacks on the graph's thread and queues one
such item; the sender that takes it replays the records and emits the events they
make (through the same client, so they are queued, batched and counted like any other).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sdk.telemetry.context import Ids
from sdk.telemetry.events import EventBase
from sdk.telemetry.payloads import PayloadDict
from sdk.telemetry.values import new_ulid


class DeferredWork:
    """Queued work that emits events when a sender (or, where there is none, the
    emitting thread) takes it: :meth:`run` emits them through the client, and the item
    itself is no event (nothing is sent or counted for it). ``run`` must not raise;
    whatever escapes it is logged. Subclassed, not a Protocol: the queue's hot path
    tells items apart with ``isinstance``, which a Protocol makes slow."""

    __slots__ = ()

    def run(self) -> None:
        raise NotImplementedError


@dataclass(slots=True, eq=False)
class DeferredEvent:
    """An event's parts as captured on the caller's thread; ``payload`` is typed (see
    :mod:`sdk.telemetry.payloads`) so that mypy, not the sender thread, finds a
    misspelled key. Never changed once made; not ``frozen`` only because a frozen
    dataclass's ``__init__`` costs several times as much, on the host's hot path."""

    event_type: type[EventBase]
    ids: Ids
    payload: PayloadDict
    minted_at: datetime
    ts: datetime | None = None
    finish: Callable[[], Mapping[str, Any]] | None = None  # payload fields added at build

    def build(self) -> EventBase:
        """The validated event; raises pydantic.ValidationError like a builder would.

        The event id is minted here from the time captured at the call (``minted_at``),
        saving the caller's thread that work too; so are the ``finish`` fields."""
        payload: Mapping[str, Any] = self.payload
        if self.finish is not None:
            payload = {**payload, **self.finish()}
        return self.event_type.model_validate(
            {
                **self.ids,
                "event_id": new_ulid(int(self.minted_at.timestamp() * 1000)),
                "ts": self.ts or self.minted_at,
                "payload": payload,
            }
        )

    @property
    def event_name(self) -> str:
        return str(self.event_type.model_fields["event_name"].default)
