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
    """Not the request's fault: Postgres cannot be reached, aborted the operation for a
    transient reason (deadlock, lock or statement timeout: retry), or lacks the ``kb``
    tables (run ``wdp migrate``). Which of these: ``sdk.db.errors.classify(exc.__cause__)``."""


class EmbeddingsUnavailable(KbError):
    """An embedder is configured but cannot run: its extra or pgvector is missing."""
