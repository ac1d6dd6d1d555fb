"""How batches reach the ingest API: a small interface and a stdlib HTTP implementation.

The SDK is imported by the orchestrator, so the default transport uses ``http.client``
(no third-party HTTP stack on the import path) with one keep-alive connection owned by
the sender thread. Tests and other hosts can pass any object with ``send``/``close``.
"""

from __future__ import annotations

import http.client
import ssl
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

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
