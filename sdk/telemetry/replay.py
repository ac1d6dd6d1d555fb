"""The spool replayer: delivers what waits on disk, oldest segment first.

That is the outage spool (batches the API could not take, queue overflow, what a
shutdown could not send) and the durable mode's journal segments of processes that
died (:mod:`sdk.telemetry.journal`: once its writer's ``flock`` is gone, a journal
segment is an ordinary spool segment). Each segment is claimed under its lock, posted
in batches through the shared :class:`sdk.telemetry.delivery.Poster`, and deleted once
all of it landed; a crash mid-replay only sends duplicates, which the API drops.

It is the batch worker's :class:`sdk.telemetry.worker.Backlog` (only the primary
worker replays, so replay keeps spool order) and sync mode's ``flush``. While the API
is down each failed replay feeds the outage's capped backoff (:mod:`sdk.telemetry.outage`),
which decides when the worker tries again; an ordinary attempt makes no retries of its
own, a flush (``urgent``) spends the full retry budget.
"""

from __future__ import annotations

from collections.abc import Sequence

from sdk.telemetry.custody import Custody
from sdk.telemetry.delivery import Counters, Poster, Unavailable
from sdk.telemetry.events import EventBase
from sdk.telemetry.outage import Outage
from sdk.telemetry.spool import Spool

__all__ = ["Replayer"]


class Replayer:
    """Replays ``spool`` through ``poster``; parks batches in it while the API is down."""

    def __init__(
        self,
        spool: Spool,
        *,
        poster: Poster,
        custody: Custody,
        counters: Counters,
        outage: Outage,
        batch_size: int,
        retries: int,
    ) -> None:
        self._spool, self._poster, self._custody = spool, poster, custody
        self._counters, self._outage = counters, outage
        self._batch_size, self._retries = batch_size, retries

    def pending(self) -> bool:
        return self._spool.has_pending()

    def replay(self, *, urgent: bool) -> bool:
        """Send spooled segments oldest first; False if the endpoint is still unavailable."""
        self._spool.seal()  # our own open segment becomes replayable too
        retries = self._retries if urgent else 0
        posted = False
        while (segment := self._spool.claim_oldest()) is not None:
            try:
                pending: list[bytes] = []
                for event in segment.events():
                    pending.append(event)
                    if len(pending) >= self._batch_size:
                        self._post(pending, retries)
                        posted, pending = True, []
                if pending:
                    self._post(pending, retries)
                    posted = True
            except Unavailable as exc:
                segment.release()
                self._outage.failed(str(exc))
                return False
            segment.delete()
        # Only an answer from the API ends an outage: finding nothing to claim (another
        # process holds the segment, or it is still being written) says nothing of it.
        if posted:
            self._outage.succeeded()
        return True

    def park(self, batch: Sequence[EventBase]) -> None:
        self._custody.spill(batch, reason="endpoint unavailable")

    def checkpoint(self) -> None:
        # Queue overflow is spooled on the caller's thread without fsync (it must not
        # wait on the disk); the primary worker makes it durable here, in batches.
        self._spool.sync()

    def _post(self, events: list[bytes], retries: int) -> None:
        self._poster.post(events, retries=retries)
        self._counters.add("replayed", len(events))
