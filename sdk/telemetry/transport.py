"""How batches reach the ingest API: a small interface, a stdlib HTTP implementation,
and the pools that decide which connection each sending thread uses.

The SDK is imported by the orchestrator, so the default transport uses ``http.client``
(no third-party HTTP stack on the import path) with one keep-alive connection owned by
the sender thread. Tests and other hosts can pass any object with ``send``/``close``.

A client holds one pool, chosen once when it is built: :class:`PerThreadTransports`
(batch mode: a keep-alive connection per sender thread), :class:`SharedTransport`
(sync mode: one connection, its callers take turns) or :class:`InjectedTransport`
(a transport passed in, which may not be thread-safe: the client gives it one sender).
"""

from __future__ import annotations

import http.client
import ssl
import threading
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

__all__ = [
    "BATCH_PATH",
    "HttpTransport",
    "InjectedTransport",
    "PerThreadTransports",
    "SharedTransport",
    "Transport",
    "TransportError",
    "TransportPool",
    "TransportResponse",
]

BATCH_PATH = "/telemetry/events/batch"


class TransportError(Exception):
    """The request did not get an HTTP response (connection refused, reset, timeout)."""


@dataclass(frozen=True)
class TransportResponse:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class Transport(Protocol):
    def send(self, body: bytes, *, timeout: float) -> TransportResponse:
        """POST a gzip-compressed JSON batch; raise TransportError without a response."""
        ...

    def close(self) -> None: ...


class HttpTransport:
    """POST batches to ``{endpoint}/telemetry/events/batch`` over one reused connection."""

    def __init__(self, endpoint: str, *, api_key: str | None = None) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"TELEMETRY_ENDPOINT must be an http(s) base URL such as "
                f"http://127.0.0.1:8000 (got {endpoint!r})"
            )
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = parts.path.rstrip("/") + BATCH_PATH
        self._headers = {
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "User-Agent": "wdp-sdk",
        }
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._https:
                self._conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=timeout, context=ssl.create_default_context()
                )
            else:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        self._conn.timeout = timeout
        return self._conn

    def send(self, body: bytes, *, timeout: float) -> TransportResponse:
        conn = self._connection(timeout)
        try:
            conn.request("POST", self._path, body=body, headers=self._headers)
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        if response.getheader("connection", "").lower() == "close":
            self.close()
        return TransportResponse(
            response.status, data, {k.lower(): v for k, v in response.getheaders()}
        )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class TransportPool(Protocol):
    """The connections of one client."""

    def get(self) -> Transport:
        """The transport for the calling thread."""
        ...

    def close(self) -> None:
        """Close every connection the pool opened (or was given)."""
        ...

    def after_fork(self) -> None:
        """In a forked child: forget the parent's connections (they stay the parent's);
        the child connects anew on first use."""
        ...


class PerThreadTransports:
    """One keep-alive :class:`HttpTransport` per sending thread, opened on first use."""

    def __init__(self, endpoint: str, *, api_key: str | None) -> None:
        self._endpoint, self._api_key = endpoint, api_key
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[Transport] = []

    def get(self) -> Transport:
        transport: Transport | None = getattr(self._local, "transport", None)
        if transport is None:
            transport = HttpTransport(self._endpoint, api_key=self._api_key)
            self._local.transport = transport
            with self._lock:
                self._opened.append(transport)
        return transport

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for transport in opened:
            transport.close()

    def after_fork(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened = []


class SharedTransport:
    """One :class:`HttpTransport` for every calling thread; callers hold their own lock
    around each send (sync mode does), so it is never used by two at once."""

    def __init__(self, endpoint: str, *, api_key: str | None) -> None:
        self._endpoint, self._api_key = endpoint, api_key
        self._transport: HttpTransport | None = None

    def get(self) -> Transport:
        if self._transport is None:
            self._transport = HttpTransport(self._endpoint, api_key=self._api_key)
        return self._transport

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def after_fork(self) -> None:
        self._transport = None


class InjectedTransport:
    """A transport the host passed in, used as it is."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def get(self) -> Transport:
        return self._transport

    def close(self) -> None:
        self._transport.close()

    def after_fork(self) -> None:
        # It shares the parent's socket: drop the child's copy (the parent's stays
        # open) so the child reconnects on first use.
        if isinstance(self._transport, HttpTransport):
            self._transport.close()
