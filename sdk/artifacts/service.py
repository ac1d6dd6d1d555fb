"""The artifact service: versioned, content-hashed artifacts in Postgres plus a blob store.

    from sdk.artifacts import ArtifactService

    artifacts = ArtifactService.from_settings()
    first = artifacts.write_artifact(type="plan", content="# Plan\\n…", owner_run_id=run_id)
    second = artifacts.create_version(first.artifact_id, path="plan.md")
    meta = artifacts.read_artifact(first.artifact_id)        # never touches the blob store
    data = artifacts.read_content(first.artifact_id, version=1)  # sha256-verified

A write reads the content once (:mod:`sdk.artifacts.intake`: validate, hash, keep small
content inline or stream it to a staging key), then commits it in one transaction under
the artifact's row lock (:mod:`sdk.artifacts.commit`). docs/architecture.md, "Artifacts",
has the whole story.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import IO, Any

import sqlalchemy as sa
from ulid import ULID

from sdk.artifacts import repository as repo
from sdk.artifacts.commit import commit_version
from sdk.artifacts.errors import (
    ArtifactError,
    ArtifactNotFound,
    DatabaseUnavailable,
    InvalidArtifact,
    VersionNotFound,
)
from sdk.artifacts.gc import collect_garbage
from sdk.artifacts.intake import Content, Prepared, Source, prepare
from sdk.artifacts.models import (
    ArtifactLink,
    ArtifactPage,
    ArtifactQuery,
    ArtifactVersion,
    GcReport,
    LinkSpec,
    NewArtifact,
    VersionOptions,
    WriteResult,
    validated,
)
from sdk.artifacts.reader import VerifiedReader, open_stored
from sdk.artifacts.stores import BlobStore, build_store
from sdk.db.errors import DATABASE_ERRORS, describe, refused_value, unavailable_reason
from sdk.db.lifecycle import EngineHolder
from sdk.settings import WdpSettings, get_settings

_ULID_RE = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")


def _check_id(artifact_id: str) -> None:
    if not isinstance(artifact_id, str) or not _ULID_RE.fullmatch(artifact_id):
        raise ArtifactNotFound(f"no artifact {artifact_id!r}: artifact ids are 26-character ULIDs")


def _found(row: repo.AnyRow | None, artifact_id: str, version: int | None) -> repo.AnyRow:
    if row is None:
        raise ArtifactNotFound(f"no artifact {artifact_id}")
    if row.version is None:
        raise VersionNotFound(
            f"artifact {artifact_id} has no version {version} (latest is {row.latest_version})"
        )
    return row


def _translate(exc: BaseException) -> ArtifactError:
    """Driver error -> artifact error, by :func:`sdk.db.errors.classify`'s answer."""
    if (reason := unavailable_reason(exc, tables="artifact tables")) is not None:
        return DatabaseUnavailable(reason)
    if refused_value(exc):
        return InvalidArtifact(f"the database refused a value: {describe(exc)}")
    return ArtifactError(f"the database refused the operation: {describe(exc)}")


MIN_GC_GRACE = timedelta(minutes=10)


class ArtifactService(EngineHolder):
    """Write, version, read, link and list artifacts. Thread-safe; share one per process.

    ``close()`` (or ``with``) disposes of the engine if :meth:`from_settings` created it.
    """

    def __init__(
        self,
        *,
        engine: sa.Engine,
        store: BlobStore,
        inline_max_bytes: int = 512_000,
        gc_grace: timedelta = timedelta(hours=24),
        owns_engine: bool = False,
    ) -> None:
        super().__init__(engine, owns_engine=owns_engine)
        self._store = store
        self._inline_max = inline_max_bytes
        self._gc_grace = gc_grace

    @classmethod
    def from_settings(
        cls,
        settings: WdpSettings | None = None,
        *,
        engine: sa.Engine | None = None,
        store: BlobStore | None = None,
    ) -> ArtifactService:
        """The service on the configured database and store (``DATABASE_URL``, ``ARTIFACT_*``)."""
        from sdk.db.engine import create_engine

        settings = settings or get_settings()
        return cls(
            engine=engine if engine is not None else create_engine(settings=settings),
            store=store if store is not None else build_store(settings),
            inline_max_bytes=settings.artifact_inline_max_bytes,
            gc_grace=timedelta(hours=settings.artifact_gc_grace_hours),
            owns_engine=engine is None,
        )

    @property
    def store(self) -> BlobStore:
        return self._store

    @contextmanager
    def _db(self) -> Iterator[sa.Connection]:
        """A transaction, with driver errors turned into artifact errors."""
        try:
            with self._engine.begin() as conn:
                yield conn
        except DATABASE_ERRORS as exc:
            raise _translate(exc) from exc

    # --- writes --------------------------------------------------------------------------

    def write_artifact(
        self,
        *,
        type: str,
        content: Content | None = None,
        stream: IO[bytes] | None = None,
        path: str | os.PathLike[str] | None = None,
        mime_type: str | None = None,
        tags: list[str] | None = None,
        owner_item_id: str | None = None,
        owner_run_id: str | None = None,
        preview_text: str | None = None,
        extracted_fields: dict[str, Any] | None = None,
    ) -> WriteResult:
        """Create an artifact and its version 1 from exactly one of content/stream/path.

        ``content`` may be bytes, str (UTF-8 text) or a dict/list (JSON). Without
        ``mime_type`` the type follows the content: ``text/plain; charset=utf-8`` for
        str, ``application/json`` for dict/list, the file name for ``path``, else
        ``application/octet-stream``. Text and JSON must be valid UTF-8 without NUL.
        ``preview_text`` and ``extracted_fields`` default to automatic ones (text head,
        pretty JSON head; line/char/word counts, JSON keys); caller fields win.
        """
        spec = validated(
            NewArtifact,
            type=type,
            mime_type=mime_type,
            tags=tags or [],
            owner_item_id=owner_item_id,
            owner_run_id=owner_run_id,
            preview_text=preview_text,
            extracted_fields=extracted_fields,
        )
        source = Source.of(content=content, stream=stream, path=path)
        prepared = self._prepare(source, spec, spec.mime_type or source.default_mime_type())
        return commit_version(
            db=self._db, store=self._store, prepared=prepared, artifact_id=str(ULID()), new=spec
        )

    def create_version(
        self,
        artifact_id: str,
        *,
        content: Content | None = None,
        stream: IO[bytes] | None = None,
        path: str | os.PathLike[str] | None = None,
        mime_type: str | None = None,
        preview_text: str | None = None,
        extracted_fields: dict[str, Any] | None = None,
    ) -> WriteResult:
        """Add the next version, unless the content equals the latest version's.

        Identical content (same sha256) creates nothing: the result is the existing
        latest version with ``deduplicated=True``. Without ``mime_type`` the latest
        version's type is kept.
        """
        _check_id(artifact_id)
        opts = validated(
            VersionOptions,
            mime_type=mime_type,
            preview_text=preview_text,
            extracted_fields=extracted_fields,
        )
        source = Source.of(content=content, stream=stream, path=path)
        with self._db() as conn:  # fail before reading (and uploading) anything
            head = repo.artifact_head(conn, artifact_id)
        if head is None:
            raise ArtifactNotFound(f"no artifact {artifact_id}")
        mime = opts.mime_type or head.mime_type or source.default_mime_type()
        prepared = self._prepare(source, opts, mime)
        return commit_version(
            db=self._db, store=self._store, prepared=prepared, artifact_id=artifact_id, new=None
        )

    def _prepare(self, source: Source, opts: VersionOptions, mime_type: str) -> Prepared:
        return prepare(
            source,
            mime_type=mime_type,
            inline_max_bytes=self._inline_max,
            store=self._store,
            caller_preview=opts.preview_text,
            caller_fields=opts.extracted_fields,
        )

    # --- reads ---------------------------------------------------------------------------

    def read_artifact(self, artifact_id: str, version: int | None = None) -> ArtifactVersion:
        """Metadata, preview and extracted fields of a version (default: the latest).

        Reads Postgres only, never the blob store.
        """
        _check_id(artifact_id)
        with self._db() as conn:
            row = repo.version_or_artifact(conn, artifact_id, version)
        return repo.to_version(_found(row, artifact_id, version))

    def open_content(self, artifact_id: str, version: int | None = None) -> VerifiedReader:
        """A stream of the content that raises ArtifactIntegrityError on a sha256 mismatch."""
        _check_id(artifact_id)
        with self._db() as conn:
            row = _found(
                repo.version_or_artifact(conn, artifact_id, version, content=True),
                artifact_id,
                version,
            )
        return open_stored(repo.to_stored(row), self._store)

    def read_content(self, artifact_id: str, version: int | None = None) -> bytes:
        """The whole content in memory, sha256-verified (use open_content for large ones)."""
        with self.open_content(artifact_id, version) as reader:
            return reader.read()

    def presigned_url(
        self, artifact_id: str, version: int | None = None, *, expires_in: int = 3600
    ) -> str:
        """A URL that downloads an offloaded version without credentials."""
        meta = self.read_artifact(artifact_id, version)
        if meta.storage_key is None:
            raise InvalidArtifact(
                f"artifact {artifact_id} v{meta.version} is kept inline in Postgres and has "
                "no URL: use read_content"
            )
        return self._store.presigned_url(meta.storage_key, expires_in=expires_in)

    def list_versions(self, artifact_id: str) -> list[ArtifactVersion]:
        """Every version of an artifact, oldest first."""
        _check_id(artifact_id)
        with self._db() as conn:
            if repo.artifact_head(conn, artifact_id) is None:
                raise ArtifactNotFound(f"no artifact {artifact_id}")
            return repo.versions_of(conn, artifact_id)

    def find_by_hash(self, content_hash: str) -> list[ArtifactVersion]:
        """Every version, of any artifact, whose content has this sha256."""
        if not re.fullmatch(r"[0-9a-f]{64}", content_hash):
            raise InvalidArtifact("content_hash must be 64 lower-case hex digits (sha256)")
        with self._db() as conn:
            return repo.versions_with_hash(conn, content_hash)

    def list_artifacts(
        self,
        *,
        type: str | None = None,
        tags: list[str] | None = None,
        owner_item_id: str | None = None,
        owner_run_id: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> ArtifactPage:
        """Artifacts matching every given filter, newest first, ``limit`` per page."""
        query = validated(
            ArtifactQuery,
            type=type,
            tags=tags or [],
            owner_item_id=owner_item_id,
            owner_run_id=owner_run_id,
            limit=limit,
            cursor=cursor,
        )
        with self._db() as conn:
            rows = repo.page_of_artifacts(conn, query)
        items = [repo.to_artifact(r) for r in rows[: query.limit]]
        more = len(rows) > query.limit
        return ArtifactPage(items=items, next_cursor=items[-1].artifact_id if more else None)

    def link(
        self,
        artifact_id: str,
        version: int,
        *,
        link_type: str,
        item_id: str | None = None,
        run_id: str | None = None,
        event_id: str | None = None,
        workflow_name: str | None = None,
    ) -> ArtifactLink:
        """Record that a version belongs to a work item, run, event or workflow."""
        _check_id(artifact_id)
        spec = validated(
            LinkSpec,
            artifact_id=artifact_id,
            version=version,
            link_type=link_type,
            item_id=item_id,
            run_id=run_id,
            event_id=event_id,
            workflow_name=workflow_name,
        )
        with self._db() as conn:
            _found(repo.version_or_artifact(conn, artifact_id, version), artifact_id, version)
            return repo.insert_link(conn, spec.model_dump())

    # --- housekeeping --------------------------------------------------------------------

    def collect_garbage(
        self,
        *,
        dry_run: bool = False,
        grace: timedelta | None = None,
        now: datetime | None = None,
        force: bool = False,
    ) -> GcReport:
        """Remove blobs no version references, once older than the grace period.

        The grace period is what protects a write in progress: its blob is in the
        store before its row commits (and a new artifact's row is not even lockable
        yet). A grace under ``MIN_GC_GRACE`` is refused unless ``force`` says that no
        writer is running.
        """
        effective = self._gc_grace if grace is None else grace
        if effective < MIN_GC_GRACE and not force and not dry_run:
            raise InvalidArtifact(
                f"a gc grace period under {MIN_GC_GRACE} can delete the blobs of writes in "
                "progress; use it (force=True, --force) only when no writer is running"
            )
        cutoff = (now or datetime.now(UTC)) - effective
        return collect_garbage(db=self._db, store=self._store, cutoff=cutoff, dry_run=dry_run)
