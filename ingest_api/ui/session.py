"""The UI's session cookie: a read key's login, signed by that key, checked statelessly.

A session is ``v1.<expiry>.<nonce>.<key id>.<mac>``: the expiry (Unix seconds), a random
nonce, an id naming which configured key logged in (a hash of its digest, which says
nothing of the key), and an HMAC-SHA256 over the rest keyed by that key's digest. So:

- every API worker, and a restarted one, accepts the sessions of the others without a
  shared store or a new secret to configure;
- removing a key from ``READ_API_KEYS`` ends its sessions at once (no key, no MAC);
- the cookie never holds the key, and a stolen cookie expires (``UI_SESSION_HOURS``).

The logout form's CSRF token is an HMAC of the session's nonce under the same key: a
page of another origin can neither read it nor forge it. Comparisons are constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["COOKIE", "Session", "SessionSigner"]

COOKIE = "wdp_ui_session"
VERSION = "v1"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True)
class Session:
    """A verified session: which key it is of, and its CSRF token."""

    key_id: str
    nonce: str
    expires_at: int
    csrf: str


class SessionSigner:
    """Makes and checks sessions for the read keys given as SHA-256 digests."""

    def __init__(
        self,
        key_digests: tuple[bytes, ...],
        *,
        lifetime_s: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = {self.key_id(d): d for d in key_digests}
        self._lifetime_s = lifetime_s
        self._clock = clock

    @staticmethod
    def key_id(digest: bytes) -> str:
        return hashlib.sha256(b"wdp-ui-key-id:" + digest).hexdigest()[:16]

    def issue(self, digest: bytes) -> str:
        """A new session cookie value for the key whose digest is ``digest``."""
        expires = int(self._clock()) + self._lifetime_s
        nonce = _b64(secrets.token_bytes(16))
        body = f"{VERSION}.{expires}.{nonce}.{self.key_id(digest)}"
        return f"{body}.{self._mac(digest, body)}"

    def verify(self, value: str | None) -> Session | None:
        """The session ``value`` is, or None: malformed, forged, expired, or of a key
        that is no longer configured."""
        if not value or len(value) > 200:
            return None
        parts = value.split(".")
        if (
            len(parts) != 5
            or parts[0] != VERSION
            or not (parts[1].isascii() and parts[1].isdigit())  # isdigit alone takes "²"
            or not value.isascii()  # compare_digest refuses non-ASCII str: no 500s
        ):
            return None
        digest = self._keys.get(parts[3])
        if digest is None:
            return None
        body = ".".join(parts[:4])
        if not hmac.compare_digest(self._mac(digest, body), parts[4]):
            return None
        expires, now = int(parts[1]), self._clock()
        # Also past the lifetime as configured now: shortening UI_SESSION_HOURS shortens
        # the sessions already issued.
        if not now < expires <= now + self._lifetime_s:
            return None
        return Session(parts[3], parts[2], expires, self._mac(digest, f"csrf.{parts[2]}"))

    @property
    def lifetime_s(self) -> int:
        return self._lifetime_s

    @staticmethod
    def _mac(digest: bytes, message: str) -> str:
        return _b64(hmac.new(digest, message.encode(), hashlib.sha256).digest())
