"""uvicorn's HTTP protocol with a deadline for reading each request's headers.

uvicorn (0.54) has no header-read timeout: ``timeout_keep_alive`` runs only between
requests and is cancelled by the first byte received, so a client that sends its
request head one byte at a time (slowloris), or connects and sends nothing, holds a
connection forever; no ASGI middleware can help, as the app sees a request only once
its headers are complete. This protocol closes a connection whose request head is not
complete ``INGEST_HEADER_TIMEOUT_S`` after the connection was opened (first request)
or after the request's first byte (later requests on a kept-alive connection), like
hyper's ``header_read_timeout``, which granian exposes and ``sdk.cli.serve`` sets to
the same value. ``sdk.cli.serve`` names this class by its import path, so every
worker process loads it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from sdk.settings import get_settings

log = logging.getLogger(__name__)


class HeaderTimeoutHttpToolsProtocol(HttpToolsProtocol):
    """One timer per connection, not one per request: each request only notes when its
    head began (arming and cancelling a ``call_later`` for every request measured ~3 us
    of the ~170 us a single-event request costs). The timer, when it fires, closes the
    connection if a head has been arriving for longer than the deadline, and otherwise
    sets itself again for the time that head has left (or a whole deadline when none
    is arriving): the deadline stays exact."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout_s = get_settings().ingest_header_timeout_s
        self._head_since: float | None = None  # when the head now arriving began
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_since = self.loop.time()  # the first request's clock: the connection's
        self._schedule(self.header_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_since is None:  # a later request: its clock starts now
            self._head_since = self.loop.time()

    def on_headers_complete(self) -> None:
        self._head_since = None
        super().on_headers_complete()

    def _schedule(self, delay: float) -> None:
        self._timer = self.loop.call_later(delay, self._check)

    def _check(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        since = self._head_since
        if since is None:
            self._schedule(self.header_timeout_s)
            return
        left = since + self.header_timeout_s - self.loop.time()
        if left > 0:
            self._schedule(left)
            return
        self._head_expired()

    def _head_expired(self) -> None:
        self._head_since = None
        log.debug("closing a connection: its request head took over %s s", self.header_timeout_s)
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request trickles in behind one still being answered:
            # finish that response, then close (as uvicorn's own shutdown does).
            self.cycle.keep_alive = False
        elif not self.transport.is_closing():
            self.transport.close()
