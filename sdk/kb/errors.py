"""Errors of the knowledge base.

Everything :mod:`sdk.kb` refuses or cannot do is a :class:`KbError`; driver errors are
translated where they happen and kept as ``__cause__``.
"""

from __future__ import annotations

from sdk.errors import WdpError


class KbError(WdpError):
    """Base of every knowledge-base error."""


class InvalidQuery(KbError, ValueError):
    """Search arguments that cannot be run: k out of range, a query too long, bad tags.

    Search *syntax* is never an error: ``websearch_to_tsquery`` accepts any string.
    """


class KbUnavailable(KbError):
    """Postgres cannot be reached, or the ``kb`` schema is missing (run ``wdp migrate``)."""


class EmbeddingsUnavailable(KbError):
    """An embedder is configured but cannot run: its extra or pgvector is missing."""
