"""The client's lifecycle as an explicit state machine (after httpx's ``ClientState``).

Each mode of :class:`sdk.telemetry.client.TelemetryClient` keeps one, so that what
``emit``, ``flush`` and ``shutdown`` do is decided by one value instead of a handful of
booleans that could contradict each other:

``NEW``
    built; nothing started (no thread, no connection).
``RUNNING``
    the worker threads (batch mode) or the first send (sync mode) started.
``SHUTTING_DOWN``
    ``shutdown`` is flushing. ``emit`` still queues (the flush sends the event, or the
    end of the shutdown spools it); a second ``shutdown`` flushes alongside the first.
``CLOSED``
    the client takes no more work. What ``emit`` does then is each mode's defined
    behaviour: batch mode spools the event, sync mode still sends it on the caller's
    thread (nothing is queued that a shutdown could have missed), disabled mode drops
    it. ``flush`` reports without waiting; ``shutdown`` returns True at once.

There is no way back: a forked child gets a new machine, ``NEW`` (its parent's work is
the parent's). Any other move is a bug and raises :class:`IllegalTransition`.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable

from sdk.errors import WdpError

__all__ = ["ClientState", "IllegalTransition", "StateMachine"]

log = logging.getLogger("sdk.telemetry")


class ClientState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    SHUTTING_DOWN = "shutting down"
    CLOSED = "closed"


_ALLOWED: dict[ClientState, frozenset[ClientState]] = {
    ClientState.NEW: frozenset({ClientState.RUNNING, ClientState.SHUTTING_DOWN}),
    ClientState.RUNNING: frozenset({ClientState.SHUTTING_DOWN}),
    ClientState.SHUTTING_DOWN: frozenset({ClientState.CLOSED}),
    ClientState.CLOSED: frozenset(),
}


class IllegalTransition(WdpError):
    """A lifecycle move that the state machine does not allow (a bug in the caller)."""

    def __init__(self, current: ClientState, target: ClientState) -> None:
        super().__init__(f"a telemetry client cannot go from {current.value} to {target.value}")
        self.current, self.target = current, target


class StateMachine:
    """The current :class:`ClientState`; every move is checked against the table above.

    ``current`` is read without the lock (one attribute load on ``emit``'s hot path);
    moves take it, so two threads can never both win the same transition.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.current = ClientState.NEW

    def move(self, target: ClientState) -> None:
        """Go to ``target``; raise :class:`IllegalTransition` if it is not allowed."""
        with self._lock:
            if target not in _ALLOWED[self.current]:
                raise IllegalTransition(self.current, target)
            self.current = target

    def try_move(self, target: ClientState) -> bool:
        """Go to ``target`` if allowed from the current state; False (no move) if not."""
        with self._lock:
            if target not in _ALLOWED[self.current]:
                return False
            self.current = target
            return True

    def start(self) -> None:
        """``NEW`` becomes ``RUNNING``; in any later state starting changes nothing (a
        flush during shutdown may still start threads to drain the spool)."""
        if self.current is ClientState.NEW:
            self.try_move(ClientState.RUNNING)

    def shut_down(self, flush: Callable[[], bool], close: Callable[[], None]) -> bool:
        """The shutdown every mode follows: ``SHUTTING_DOWN``, ``flush`` (a failure is
        logged, never raised), ``CLOSED``, then ``close``; returns what ``flush`` did.
        A shutdown while another one runs only flushes alongside it; one after it
        returns True at once."""
        if not self.try_move(ClientState.SHUTTING_DOWN):
            return True if self.current is ClientState.CLOSED else flush()
        delivered = False
        try:
            delivered = flush()
        except Exception:
            log.exception("telemetry flush during shutdown failed; spooling what is left")
        finally:
            self.move(ClientState.CLOSED)
            close()
        return delivered
