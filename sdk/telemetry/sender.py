"""The synchronous sender: one batch, posted now, with a result for each event.

This is the exporter of the batch client's worker (:mod:`sdk.telemetry.worker`) and the
whole delivery path of sync mode, on the caller's thread. It posts through
:class:`sdk.telemetry.delivery.Poster` (retries, Retry-After, 413 splits), and never
raises: a batch the API cannot take now goes to the spool through
:class:`sdk.telemetry.custody.Custody`, and the outage's backoff hears of every
failure and success, so an outage is logged once when it starts and once when it ends.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sdk.telemetry.custody import Custody
from sdk.telemetry.delivery import Poster, Unavailable, encode
from sdk.telemetry.events import EventBase
from sdk.telemetry.outage import Outage

__all__ = ["SendResult", "Sender"]

log = logging.getLogger("sdk.telemetry")


@dataclass(frozen=True)
class SendResult:
    """What became of one batch.

    ``delivered``: the API answered for the batch (each event then has the API's status:
    ``created``, ``duplicate``, ``conflict``, …, or ``rejected`` / ``dropped`` for a
    batch refused as a whole). Otherwise the API was unavailable and each event is
    ``spooled``, or ``dropped`` if the spool had no room for it.
    """

    delivered: bool
    statuses: tuple[str, ...]


class Sender:
    """Posts a batch of validated events with the retry budget; never raises."""

    def __init__(self, poster: Poster, custody: Custody, outage: Outage, *, retries: int) -> None:
        self._poster, self._custody, self._outage = poster, custody, outage
        self._retries = retries

    def send(self, batch: Sequence[EventBase]) -> SendResult:
        try:
            statuses = self._poster.post(encode(batch), retries=self._retries)
        except Unavailable as exc:
            return self._keep(batch, str(exc))
        except Exception as exc:  # a bug or a bad setting: keep the events regardless
            log.exception("telemetry send failed unexpectedly; spooling the batch")
            return self._keep(batch, f"unexpected {type(exc).__name__}")
        self._custody.settle(batch)
        self._outage.succeeded()
        return SendResult(True, tuple(statuses))

    # -- the worker's Exporter -------------------------------------------------------

    def export(self, batch: Sequence[EventBase]) -> bool:
        return self.send(batch).delivered

    def interrupt(self) -> None:
        self._poster.stop.set()

    def _keep(self, batch: Sequence[EventBase], problem: str) -> SendResult:
        stored = self._custody.spill(batch, reason=problem)
        self._outage.failed(problem)
        return SendResult(False, ("spooled",) * stored + ("dropped",) * (len(batch) - stored))
