"""Process-wide bookkeeping for every telemetry client: flush at exit, reinitialise after
fork. Clients are held weakly, so registering one never keeps it alive."""

from __future__ import annotations

import atexit
import logging
import os
import weakref
from typing import Protocol

__all__ = ["Managed", "register"]

log = logging.getLogger("sdk.telemetry")


class Managed(Protocol):
    shutdown_timeout_s: float

    def shutdown(self, timeout: float | None = 5.0) -> bool: ...

    def _after_fork_in_child(self) -> None: ...


_clients: weakref.WeakSet[Managed] = weakref.WeakSet()


def register(client: Managed) -> None:
    _clients.add(client)


def _after_fork() -> None:
    for client in list(_clients):
        client._after_fork_in_child()


def _at_exit() -> None:
    for client in list(_clients):
        try:
            client.shutdown(timeout=client.shutdown_timeout_s)
        except Exception:
            log.exception("telemetry shutdown at exit failed")


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
atexit.register(_at_exit)
