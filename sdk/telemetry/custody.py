"""What becomes of an event that is not simply sent from the queue.

Validating deferred events (:mod:`sdk.telemetry.deferred`), spilling to the spool and
counting what had to be dropped: every path an event can take besides a plain send, in
one place, so that each of them keeps the counters straight. None of it raises into
the host.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from pydantic import ValidationError

from sdk.telemetry.deferred import DeferredEvent
from sdk.telemetry.delivery import Counters, encode
from sdk.telemetry.events import EventBase
from sdk.telemetry.spool import Spool

Queued = EventBase | DeferredEvent

log = logging.getLogger("sdk.telemetry")

SENDER_THREAD = "wdp-telemetry"


class Custody:
    """The counters and the spool, kept consistent with each other."""

    def __init__(self, counters: Counters, spool: Spool | None) -> None:
        self._counters = counters
        self._spool = spool

    def resolve(self, items: Sequence[Queued]) -> list[EventBase]:
        """Validate deferred events; drop, log and count the ones that fail, as the API
        would reject them."""
        if not any(isinstance(item, DeferredEvent) for item in items):
            return list(items)  # type: ignore[arg-type]
        events: list[EventBase] = []
        for item in items:
            if not isinstance(item, DeferredEvent):
                events.append(item)
                continue
            try:
                events.append(item.build())
            except ValidationError as exc:
                self._counters.add("rejected")
                log.warning("telemetry event %s is invalid, not sent: %s", item.event_name, exc)
            except Exception:  # a bug must not lose the rest of the batch
                self._counters.add("rejected")
                log.exception("telemetry event %s could not be built", item.event_name)
        return events

    def spill(self, items: Sequence[Queued], *, reason: str) -> None:
        """Put events in the spool (fsync'd at once on a sender thread; the caller's
        thread must not wait on the disk); count what does not fit as dropped."""
        events = self.resolve(items)
        if self._spool is None:
            self._counters.add("dropped", len(events))
            log.error("dropping %d telemetry events (%s): no spool configured", len(events), reason)
            return
        try:
            stored = self._spool.append(encode(events), sync=on_sender_thread())
        except OSError:
            log.exception("could not write the telemetry spool")
            stored = 0
        self._counters.add("spooled", stored)
        if stored < len(events):
            self._counters.add("dropped", len(events) - stored)
            log.error(
                "telemetry spool is full: dropped %d events (%s)", len(events) - stored, reason
            )


def on_sender_thread() -> bool:
    return threading.current_thread().name.startswith(SENDER_THREAD)
