"""Request headers read straight from the ASGI scope, for the ingest hot path.

Litestar's ``request.headers`` builds a case-insensitive multidict of every header on
first use: ~5 us of the ~160 us of API CPU a single event cost (profiled under load,
docs/benchmarks.md, issue 18). The ingest endpoints and the key check need three or
four named headers; a scan of the raw list finds each for a fraction of that.

The answers are those of ``Headers.get``: the first value of the name, matched
case-insensitively, decoded as latin-1 (what the bytes on the wire map to one to one).
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection


def header(connection: ASGIConnection[Any, Any, Any, Any], name: str) -> str | None:
    """The first value of header ``name`` (any case), or None if it was not sent."""
    wanted = name.lower().encode("latin-1")
    for key, value in connection.scope["headers"]:
        # ASGI servers send names in lower case; a test client or proxy might not.
        if key == wanted or key.lower() == wanted:
            return bytes(value).decode("latin-1")
    return None


__all__ = ["header"]
