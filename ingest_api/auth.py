"""The one place the ingest API checks keys: scopes per key, and a limit on failures.

Every key check of every endpoint goes through :meth:`Authenticator.check`. Each key
grants scopes (:class:`Scope`): ingest keys (what agents hold) post events, read keys
read runs and usage, the metrics key reads /metrics; a key is refused with 403, naming
the scope needed, on an endpoint of another scope, and a string that is no key with 401.
Keys are compared in constant time (SHA-256 digests, so not even their lengths leak),
against every key, always.

A client address that fails too many checks within a sliding window is refused with
429 and ``Retry-After`` before its key is even looked at, so a blocked client learns
nothing from its guesses, not even a right one. Addresses are remembered in a bounded
LRU map: memory stays bounded whatever the number of addresses; an attacker who cycles
through more addresses than it holds only forgets its own oldest failures.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import hmac
import ipaddress
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection

from ingest_api.errors import Forbidden, TooManyFailedAttempts, Unauthorized
from ingest_api.headers import header
from ingest_api.metrics import Metrics
from sdk.settings import WdpSettings


class Scope(enum.StrEnum):
    """What a key may do."""

    INGEST = "ingest"  # POST /telemetry/events*: INGEST_API_KEYS
    READ = "read"  # GET /telemetry/runs*, /telemetry/usage: READ_API_KEYS
    METRICS = "metrics"  # GET /metrics: METRICS_API_KEY


# Where the keys of each scope are configured: what a 403 tells the caller to get.
SCOPE_SETTING = {
    Scope.INGEST: "INGEST_API_KEYS",
    Scope.READ: "READ_API_KEYS",
    Scope.METRICS: "METRICS_API_KEY",
}


def _digest(secret: bytes) -> bytes:
    return hashlib.sha256(secret).digest()


@dataclass(frozen=True)
class KeyRing:
    """Configured keys (as digests) and the scopes each grants."""

    keys: tuple[tuple[bytes, frozenset[Scope]], ...]

    @classmethod
    def from_settings(cls, settings: WdpSettings) -> KeyRing:
        scopes: dict[bytes, set[Scope]] = {}
        for key in settings.api_keys:
            scopes.setdefault(_digest(key.encode()), set()).add(Scope.INGEST)
        for key in settings.read_keys:
            scopes.setdefault(_digest(key.encode()), set()).add(Scope.READ)
        if settings.metrics_api_key is not None:
            metrics_key = settings.metrics_api_key.get_secret_value().strip().encode()
            scopes.setdefault(_digest(metrics_key), set()).add(Scope.METRICS)
        return cls(tuple((d, frozenset(s)) for d, s in scopes.items()))

    def scopes_of(self, presented: bytes) -> frozenset[Scope]:
        """The scopes of ``presented`` (empty if it is no key), in time independent of it."""
        digest = _digest(presented)
        granted: frozenset[Scope] = frozenset()
        for key, scopes in self.keys:
            if hmac.compare_digest(digest, key):  # every key, even after a match
                granted = granted | scopes
        return granted


class FailureLimiter:
    """At most ``limit`` failures per client within any ``window_s`` seconds.

    Each client holds the times of its recent failures (at most ``limit`` of them);
    at most ``max_clients`` clients are remembered, least recently failing forgotten
    first. Single-threaded use only (one asyncio loop per worker process).
    """

    def __init__(
        self,
        *,
        limit: int,
        window_s: float,
        max_clients: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_clients = max_clients
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._failures)

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may try again, or None if it is not blocked."""
        if self.limit == 0:
            return None
        times = self._failures.get(client)
        if times is None:
            return None
        now = self._clock()
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[client]
            return None
        if len(times) < self.limit:
            return None
        return max(1, math.ceil(times[0] + self.window_s - now))

    def record_failure(self, client: str) -> None:
        if self.limit == 0:
            return
        times = self._failures.get(client)
        if times is None:
            times = self._failures[client] = deque(maxlen=self.limit)
            while len(self._failures) > self.max_clients:
                self._failures.popitem(last=False)
        else:
            self._failures.move_to_end(client)
        times.append(self._clock())


@functools.lru_cache(maxsize=4096)  # a pure function of the string; parsing is not free
def client_key(host: str | None) -> str:
    """The address a failure is charged to: IPv6 by /64 (one host usually holds a
    whole /64, so single addresses would cost an attacker nothing), IPv4 as is."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # not an IP (a Unix socket path, a test client): as given
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class Authenticator:
    """Checks the bearer key of a request against a scope (see the module docstring)."""

    def __init__(
        self,
        keys: KeyRing,
        limiter: FailureLimiter,
        metrics: Metrics,
        *,
        open_scopes: Iterable[Scope] = (),
    ) -> None:
        self.keys = keys
        self.limiter = limiter
        self.metrics = metrics
        self.open_scopes = frozenset(open_scopes)

    @classmethod
    def from_settings(cls, settings: WdpSettings, metrics: Metrics) -> Authenticator:
        open_scopes = set()
        if settings.ingest_auth_disabled:
            open_scopes.add(Scope.INGEST)
            if not settings.read_keys:  # configured read keys keep reads closed
                open_scopes.add(Scope.READ)
        if settings.metrics_api_key is None:
            open_scopes.add(Scope.METRICS)
        limiter = FailureLimiter(
            limit=settings.ingest_auth_failure_limit,
            window_s=settings.ingest_auth_failure_window_s,
            max_clients=settings.ingest_auth_failure_clients,
        )
        return cls(KeyRing.from_settings(settings), limiter, metrics, open_scopes=open_scopes)

    def check(
        self,
        connection: ASGIConnection[Any, Any, Any, Any],
        scope: Scope | None,
        *,
        key_header: str | None = None,
    ) -> frozenset[Scope]:
        """Return the scopes of the request's key, which must include ``scope``.

        ``scope`` None: any valid key will do (for optional details on open endpoints).
        An open scope needs no key, and its key is not looked at. Raises
        :class:`Unauthorized` (401: no key, or a string that is no key; counted as a
        failure), :class:`Forbidden` (403: a valid key without ``scope``; not a failure,
        the key is right, only used on the wrong endpoint) or
        :class:`TooManyFailedAttempts` (429). ``key_header``: a header that may carry the
        bare key instead of ``Authorization`` (``x-api-key``, for OTLP exporters).
        """
        if scope is not None and scope in self.open_scopes:
            return self.open_scopes
        client = self._unblocked_client(connection)
        auth_scheme, _, token = (header(connection, "authorization") or "").partition(" ")
        if (
            key_header is not None
            and auth_scheme.lower() != "bearer"  # e.g. a proxy's Basic credentials
            and (bare_key := header(connection, key_header)) is not None
        ):
            auth_scheme, token = "bearer", bare_key
        if auth_scheme.lower() != "bearer" or not token.strip():
            self._failed(client)
            raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
        # Headers arrive decoded as latin-1: recover the bytes the client sent.
        return self._granted(client, token.strip().encode("latin-1", "replace"), scope)

    def check_key(
        self, connection: ASGIConnection[Any, Any, Any, Any], key: str, scope: Scope
    ) -> bytes:
        """Check a key typed into the UI's login form as :meth:`check` checks a header
        (the same failure limit, the same 401/403/429), and return its digest: what
        the UI's session is signed with (:mod:`ingest_api.ui.session`)."""
        client = self._unblocked_client(connection)
        if not key.strip():
            self._failed(client)
            raise Unauthorized("enter an API key")
        presented = key.strip().encode("utf-8", "replace")  # a form field arrives as text
        self._granted(client, presented, scope)
        return _digest(presented)

    def digests_of(self, scope: Scope) -> tuple[bytes, ...]:
        """The digests of the configured keys granting ``scope``."""
        return tuple(digest for digest, scopes in self.keys.keys if scope in scopes)

    def _unblocked_client(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str:
        """The client's address as failures are charged to it; 429 while it is blocked."""
        # The scope's (host, port) itself: connection.client builds an object per call.
        address = connection.scope.get("client")
        client = client_key(address[0] if address else None)
        wait = self.limiter.retry_after(client)
        if wait is not None:
            raise TooManyFailedAttempts(
                f"too many failed authentications from this address; retry in {wait} s",
                retry_after_s=wait,
            )
        return client

    def _granted(self, client: str, presented: bytes, scope: Scope | None) -> frozenset[Scope]:
        granted = self.keys.scopes_of(presented)
        if not granted:
            self._failed(client)
            raise Unauthorized("invalid API key")
        if scope is not None and scope not in granted:
            names = ", ".join(repr(s.value) for s in sorted(granted))
            raise Forbidden(
                f"this endpoint needs a key with the {scope.value!r} scope "
                f"({SCOPE_SETTING[scope]}); the key sent has only: {names}"
            )
        return granted

    def knows_caller(self, connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
        """Whether the caller may see details of an open endpoint: ingestion is open
        (INGEST_AUTH_DISABLED), or it sent a valid key. A key that is sent is checked,
        and its failure counted, like anywhere else."""
        if Scope.INGEST in self.open_scopes:
            return True
        return header(connection, "authorization") is not None and bool(
            self.check(connection, None)
        )

    def _failed(self, client: str) -> None:
        self.metrics.rejected.labels("unauthorized").inc()
        self.limiter.record_failure(client)
