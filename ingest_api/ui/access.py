"""Who may see the UI's pages: a read key, by login form, header, or open reads.

- **Login form** (``/ui/login``): the key is checked like any ``Authorization`` header
  (same failure limit, same scopes: an ingest-only key is refused) and becomes a session
  cookie (:mod:`ingest_api.ui.session`): HttpOnly, SameSite=Strict, Secure when the page
  was asked for over HTTPS, scoped to ``/ui``.
- **Header**: a request with ``Authorization: Bearer <read key>`` needs no cookie. This
  is the reverse-proxy mode for SSO: the proxy authenticates the person and adds the
  header (docs/ui.md); the person never sees the key.
- **Open**: when reads need no key (``INGEST_AUTH_DISABLED`` without ``READ_API_KEYS``).

The UI only reads; the one state-changing request, logout, is a POST with a CSRF token.
Every page answers with a Content-Security-Policy that allows no inline script and no
other origin, and the pages are never framed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from litestar import Request, Response
from litestar.connection import ASGIConnection

from ingest_api.auth import Scope
from ingest_api.ui.session import COOKIE, Session, SessionSigner

if TYPE_CHECKING:
    from ingest_api.app import Services

__all__ = [
    "CSP",
    "Caller",
    "LoginRequired",
    "UiState",
    "caller_of",
    "safe_next",
    "security_headers",
    "session_cookie",
]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Not "no-referrer": under it a browser sends ``Origin: null`` with the pages' own
    # form posts, which the login's and logout's same-origin check must refuse.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class LoginRequired(Exception):
    """The page needs a session and the request has none: off to the login form."""

    def __init__(self, next_path: str, message: str | None = None) -> None:
        super().__init__(next_path)
        self.next_path = next_path
        self.message = message


@dataclass(frozen=True)
class Caller:
    """How the request got in: its session (None for a header key or open reads)."""

    session: Session | None
    how: str  # "session", "header" or "open"


@dataclass
class UiState:
    """Built once per worker, on the first UI request (from the keys as configured)."""

    signer: SessionSigner
    artifacts: Any = None  # sdk.artifacts.ArtifactService, opened on first use
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def of(cls, connection: ASGIConnection[Any, Any, Any, Any]) -> UiState:
        state: UiState | None = getattr(connection.app.state, "ui", None)
        if state is None:
            services: Services = connection.app.state.services
            signer = SessionSigner(
                services.auth.digests_of(Scope.READ),
                lifetime_s=int(services.settings.ui_session_hours * 3600),
            )
            state = cls(signer)
            connection.app.state.ui = state
        return state


def caller_of(request: Request[Any, Any, Any]) -> Caller:
    """The request's way in, else :class:`LoginRequired` (no credentials or a stale
    session) or the authenticator's 401/403/429 for a header key that is wrong."""
    services: Services = request.app.state.services
    if Scope.READ in services.auth.open_scopes:
        return Caller(None, "open")
    scheme = request.headers.get("authorization", "").partition(" ")[0]
    if scheme.lower() == "bearer":  # not Basic: a proxy's own login, sent on every page
        services.auth.check(request, Scope.READ)
        return Caller(None, "header")
    cookie = request.cookies.get(COOKIE)
    session = UiState.of(request).signer.verify(cookie)
    if session is None:
        message = "your session has ended: log in again" if cookie else None
        raise LoginRequired(_here(request), message)
    return Caller(session, "session")


def _here(request: Request[Any, Any, Any]) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def safe_next(value: str | None) -> str:
    """Where to go after logging in: a path of the UI only (never another origin)."""
    if not value or len(value) > 2000:
        return "/ui/runs"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith("/ui/") or "\\" in value:
        return "/ui/runs"
    return value


def login_url(next_path: str) -> str:
    return "/ui/login?next=" + quote(next_path, safe="/")


def session_cookie(request: Request[Any, Any, Any], value: str, max_age: int) -> str:
    """The Set-Cookie value of a session (an empty ``value`` and 0 clear it)."""
    secure = "; Secure" if request.url.scheme == "https" else ""
    return f"{COOKIE}={value}; Max-Age={max_age}; Path=/ui; HttpOnly; SameSite=Strict{secure}"


def security_headers(response: Response[Any]) -> Response[Any]:
    """Every UI answer: the CSP and friends (an after_request hook)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
