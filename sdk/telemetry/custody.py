"""What becomes of an event that is not simply sent from the queue.

Validating deferred events (:mod:`sdk.telemetry.deferred`), writing the durable mode's
journal (:mod:`sdk.telemetry.journal`), spilling to the spool and counting what had to be
dropped: every path an event can take besides a plain send, in one place, so that each
of them keeps the counters and the journal straight. None of it raises into the host.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from pydantic import ValidationError

from sdk.telemetry.deferred import DeferredEvent, DeferredWork
from sdk.telemetry.delivery import Counters, encode
from sdk.telemetry.events import EventBase
from sdk.telemetry.journal import Journal
from sdk.telemetry.spool import Spool

__all__ = ["Custody", "Queued"]

Queued = EventBase | DeferredEvent | DeferredWork

log = logging.getLogger("sdk.telemetry")


class Custody:
    """The counters, the spool and the journal, kept consistent with each other.

    ``on_sender_thread`` tells whether the calling thread is one of the client's own
    senders (by identity: :class:`sdk.telemetry.worker.WorkerThreads`): only those may
    wait for an fsync."""

    def __init__(
        self,
        counters: Counters,
        spool: Spool | None,
        journal: Journal | None,
        *,
        on_sender_thread: Callable[[], bool],
    ) -> None:
        self._counters = counters
        self._spool = spool
        self._journal = journal
        self._on_sender_thread = on_sender_thread

    def resolve(self, items: Sequence[Queued]) -> list[EventBase]:
        """Validate deferred events; drop, log and count the ones that fail, as the API
        would reject them. Deferred work is run here: the events it makes are emitted
        through the client (queued behind these), and it leaves none in their place."""
        if not any(isinstance(item, DeferredEvent | DeferredWork) for item in items):
            return list(items)  # type: ignore[arg-type]
        events: list[EventBase] = []
        for item in items:
            if isinstance(item, EventBase):
                events.append(item)
                continue
            if isinstance(item, DeferredWork):
                try:
                    item.run()
                except Exception:  # run() must not raise: a bug, and the batch goes on
                    log.exception("deferred telemetry work failed")
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

    def journaled(self, item: Queued) -> EventBase | None:
        """Disk mode: write the event to the journal before ``emit`` returns. A deferred
        event is validated here (the journal holds what will be sent); None if invalid.
        A journal that cannot be written leaves the event in memory only (logged)."""
        resolved = self.resolve([item])
        if not resolved:
            return None
        if self._journal is not None:
            try:
                self._journal.record(resolved[0])
            except Exception:  # never raise into the host
                log.exception("telemetry journal write failed; the event is kept in memory")
        return resolved[0]

    def settle(self, events: Sequence[EventBase]) -> None:
        """These events are done with (delivered, refused, spooled or dropped): their
        journal copies may go."""
        if self._journal is not None:
            try:
                self._journal.settle(events)
            except Exception:
                log.exception("telemetry journal bookkeeping failed")

    def spill(self, items: Sequence[Queued], *, reason: str) -> int:
        """Put events in the spool (fsync'd at once on a sender thread; the caller's
        thread must not wait on the disk); count what does not fit as dropped. Returns
        how many were spooled: the first ones, the rest were dropped."""
        events = self.resolve(items)
        if not events:  # deferred work: its events went their own way as it ran
            return 0
        if self._spool is None:
            self._counters.add("dropped", len(events))
            log.error("dropping %d telemetry events (%s): no spool configured", len(events), reason)
            return 0
        try:
            stored = self._spool.append(encode(events), sync=self._on_sender_thread())
        except OSError:
            log.exception("could not write the telemetry spool")
            stored = 0
        # Only what the spool took may leave the journal. In disk mode the journal's
        # copies count against the same cap, so a nearly full spool refuses events that
        # are already safe on disk: those stay journaled (the next process to use this
        # spool delivers them), and only events with no copy anywhere are dropped.
        self.settle(events[:stored])
        rest = events[stored:]
        kept = [e for e in rest if self._journal is not None and self._journal.holds(e)]
        self._counters.add("spooled", stored + len(kept))
        if kept:
            log.warning(
                "telemetry spool is full: %d events stay in this process's journal (%s); "
                "the next process using the spool delivers them",
                len(kept),
                reason,
            )
        if len(rest) > len(kept):
            self._counters.add("dropped", len(rest) - len(kept))
            log.error(
                "telemetry spool is full: dropped %d events (%s)", len(rest) - len(kept), reason
            )
        return stored
