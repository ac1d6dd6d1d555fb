"""Errors of the artifact service.

Everything the service refuses or cannot do is an :class:`ArtifactError` (a
:class:`~sdk.errors.WdpError`), so a caller - an agent, a Dagster asset, the CLI - can
handle "artifacts said no" in one ``except`` without knowing about SQLAlchemy, psycopg,
botocore or ``OSError``: the driver exceptions are translated where they happen and kept
as ``__cause__`` for debugging.
"""

from __future__ import annotations

from sdk.errors import WdpError


class ArtifactError(WdpError):
    """Base of every artifact error."""


class ArtifactNotFound(ArtifactError, LookupError):
    """No artifact with that id."""


class VersionNotFound(ArtifactNotFound):
    """The artifact exists but not that version."""


class InvalidArtifact(ArtifactError, ValueError):
    """The input is refused: bad type, mime type, tags, or content that does not match its type."""


class ArtifactIntegrityError(ArtifactError):
    """Stored content does not match its recorded sha256 or size, or the blob is missing."""


class StoreMismatch(ArtifactIntegrityError):
    """The version's blob is in another backend than the configured store (``ARTIFACT_STORE``).

    A configuration error, not a property of the version: the knowledge base fails its
    batch on it instead of recording the version as unreadable for good. It stays an
    ArtifactIntegrityError for the callers of ``open_content`` that catch that.
    """


class StorageUnavailable(ArtifactError):
    """The blob store (or the database) cannot be reached or refused the request."""


class BlobExists(ArtifactError):
    """A write would replace an existing blob; stores never overwrite."""


class BlobNotFound(ArtifactError):
    """The store has no blob under that key."""


class DatabaseUnavailable(ArtifactError):
    """Not the request's fault: Postgres cannot be reached, aborted the operation for a
    transient reason (deadlock, lock or statement timeout: retry), or lacks the artifact
    tables (run ``wdp migrate``). Which of these: ``sdk.db.errors.classify(exc.__cause__)``."""
