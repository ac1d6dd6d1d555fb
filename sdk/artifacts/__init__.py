"""Versioned, content-hashed artifacts: Postgres for metadata and small content, a blob
store (files or S3/MinIO) for the rest.

    from sdk.artifacts import ArtifactService

    artifacts = ArtifactService.from_settings()
    result = artifacts.write_artifact(type="report", content="…", tags=["team=infra"])

See :mod:`sdk.artifacts.service` and docs/architecture.md ("Artifacts").
"""

from sdk.artifacts.errors import (
    ArtifactError,
    ArtifactIntegrityError,
    ArtifactNotFound,
    BlobExists,
    BlobNotFound,
    DatabaseUnavailable,
    InvalidArtifact,
    StorageUnavailable,
    StoreMismatch,
    VersionNotFound,
)
from sdk.artifacts.models import (
    Artifact,
    ArtifactLink,
    ArtifactPage,
    ArtifactVersion,
    GcReport,
    WriteResult,
)
from sdk.artifacts.reader import VerifiedReader
from sdk.artifacts.service import ArtifactService

__all__ = [
    "Artifact",
    "ArtifactError",
    "ArtifactIntegrityError",
    "ArtifactLink",
    "ArtifactNotFound",
    "ArtifactPage",
    "ArtifactService",
    "ArtifactVersion",
    "BlobExists",
    "BlobNotFound",
    "DatabaseUnavailable",
    "GcReport",
    "InvalidArtifact",
    "StorageUnavailable",
    "StoreMismatch",
    "VerifiedReader",
    "VersionNotFound",
    "WriteResult",
]
