"""Events validated on the sender thread instead of the caller's.

The builders validate at the call site so that a caller's mistake raises where it is
made. Instrumentation has no caller to raise to - it must never raise into the host -
and runs on the host's hot path (a LangGraph node), where pydantic validation is most
of its cost (~20 us an event). So it hands the client a :class:`DeferredEvent`: the
envelope (event id and time fixed now) and payload as plain values, validated by the
sender thread just before encoding. One that fails validation is logged and counted as
rejected, like an event the API refuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sdk.telemetry.events import EventBase
from sdk.telemetry.values import new_ulid


@dataclass(frozen=True, slots=True)
class DeferredEvent:
    event_type: type[EventBase]
    envelope: dict[str, Any]
    payload: dict[str, Any]

    def build(self) -> EventBase:
        """The validated event; raises pydantic.ValidationError like a builder would.

        The event id is minted here from the time captured at the call (``minted_at``),
        saving the caller's thread that work too."""
        envelope = dict(self.envelope)
        minted = envelope.pop("minted_at")
        envelope["event_id"] = new_ulid(int(minted.timestamp() * 1000))
        envelope.setdefault("ts", minted)
        return self.event_type.model_validate({**envelope, "payload": self.payload})

    @property
    def event_name(self) -> str:
        return str(self.event_type.model_fields["event_name"].default)
