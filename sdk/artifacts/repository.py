"""SQL for artifacts: SQLAlchemy Core statements on ``work.artifacts``/``artifact_versions``/
``artifact_links``, and the mapping of rows to the output models.

Reads that serve metadata never select the inline content columns: ``read_artifact``
stays cheap even when the version holds half a megabyte inline.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeAlias

import sqlalchemy as sa

from sdk.artifacts.models import Artifact, ArtifactLink, ArtifactQuery, ArtifactVersion
from sdk.artifacts.reader import StoredContent
from sdk.db.schema import artifact_links, artifact_versions, artifacts

A, V, L = artifacts.c, artifact_versions.c, artifact_links.c
AnyRow: TypeAlias = sa.Row[*tuple[Any, ...]]

ARTIFACT_COLUMNS = (
    A.artifact_id,
    A.type,
    A.latest_version,
    A.tags,
    A.owner_item_id,
    A.owner_run_id,
    A.created_at,
    A.updated_at,
)
VERSION_COLUMNS = (
    V.artifact_id,
    V.version,
    A.type,
    V.mime_type,
    V.size_bytes,
    V.content_hash,
    V.storage_backend,
    V.storage_key,
    V.preview_text,
    V.extracted_fields,
    V.is_kb_ingested,
    V.created_at,
    A.latest_version,
    A.tags,
    A.owner_item_id,
    A.owner_run_id,
)
_VERSIONS_JOIN = artifact_versions.join(artifacts, V.artifact_id == A.artifact_id)


def to_artifact(row: AnyRow) -> Artifact:
    return Artifact.model_validate(row._mapping)


def to_version(row: AnyRow) -> ArtifactVersion:
    return ArtifactVersion.model_validate(row._mapping)


def to_stored(row: AnyRow) -> StoredContent:
    """What reading a version needs, from a row that selected the inline content too."""
    return StoredContent(
        artifact_id=row.artifact_id,
        version=row.version,
        mime_type=row.mime_type,
        size_bytes=row.size_bytes,
        content_hash=row.content_hash,
        storage_backend=row.storage_backend,
        storage_key=row.storage_key,
        inline_content_text=row.inline_content_text,
    )


def artifact_head(conn: sa.Connection, artifact_id: str, *, lock: bool = False) -> AnyRow | None:
    """The artifact row with its latest version's hash and mime type (``FOR UPDATE`` if lock).

    Locking the artifact row is what serialises the writers of one artifact; version rows
    are never updated, so they need no lock. With ``lock`` the row is locked by a
    statement of its own, and the latest version is read by a second statement: after
    waiting for the lock, Postgres re-checks only the locked row, so a join in the
    locking statement would pair the new ``latest_version`` with the version row of the
    old snapshot - and compare the content with a stale hash.
    """
    if lock:
        locked = conn.execute(
            sa.select(A.artifact_id).where(A.artifact_id == artifact_id).with_for_update()
        ).one_or_none()
        if locked is None:
            return None
    latest = sa.and_(V.artifact_id == A.artifact_id, V.version == A.latest_version)
    stmt = (
        sa.select(
            A.artifact_id,
            A.type,
            A.latest_version,
            A.tags,
            A.owner_item_id,
            A.owner_run_id,
            V.content_hash,
            V.mime_type,
        )
        .select_from(artifacts.outerjoin(artifact_versions, latest))
        .where(A.artifact_id == artifact_id)
    )
    return conn.execute(stmt).one_or_none()


def version_or_artifact(
    conn: sa.Connection, artifact_id: str, version: int | None, *, content: bool = False
) -> AnyRow | None:
    """The artifact (always) joined with the requested version (or its latest one).

    None when the artifact does not exist; ``row.version is None`` when the version does
    not. ``content=True`` adds the inline content columns.
    """
    wanted = A.latest_version if version is None else sa.literal(version)
    columns: list[Any] = [A.artifact_id.label("a_id"), *VERSION_COLUMNS]
    if content:
        columns += [V.inline_content_text]
    stmt = (
        sa.select(*columns)
        .select_from(
            artifacts.outerjoin(
                artifact_versions,
                sa.and_(V.artifact_id == A.artifact_id, V.version == wanted),
            )
        )
        .where(A.artifact_id == artifact_id)
    )
    return conn.execute(stmt).one_or_none()


# Built once: the write path runs these for every artifact, and a prepared Core
# statement skips SQLAlchemy's per-call statement building (a third of a small write).
_INSERT_ARTIFACT = sa.insert(artifacts)
_INSERT_VERSION = sa.insert(artifact_versions).returning(V.created_at)
_BUMP_LATEST = (
    sa.update(artifacts)
    .where(A.artifact_id == sa.bindparam("id"))
    .values(latest_version=sa.bindparam("version"), updated_at=sa.func.now())
)


def insert_artifact(
    conn: sa.Connection,
    *,
    artifact_id: str,
    artifact_type: str,
    tags: list[str],
    owner_item_id: str | None,
    owner_run_id: str | None,
) -> None:
    conn.execute(
        _INSERT_ARTIFACT,
        {
            "artifact_id": artifact_id,
            "type": artifact_type,
            "latest_version": 1,  # its version 1 is inserted in the same transaction
            "tags": tags,
            "owner_item_id": owner_item_id,
            "owner_run_id": owner_run_id,
        },
    )


def insert_version(conn: sa.Connection, values: dict[str, Any], *, bump: bool) -> datetime:
    """Insert a version row (with ``bump``, make it the latest); return its ``created_at``.

    Leave ``inline_content_json`` out of ``values`` for SQL NULL: a None would be stored
    as the JSON value ``null``.
    """
    created_at: datetime = conn.execute(_INSERT_VERSION, values).scalar_one()
    if bump:
        conn.execute(_BUMP_LATEST, {"id": values["artifact_id"], "version": values["version"]})
    return created_at


def fetch_version(conn: sa.Connection, artifact_id: str, version: int) -> ArtifactVersion:
    row = conn.execute(
        sa.select(*VERSION_COLUMNS)
        .select_from(_VERSIONS_JOIN)
        .where(V.artifact_id == artifact_id, V.version == version)
    ).one()
    return to_version(row)


def versions_of(conn: sa.Connection, artifact_id: str) -> list[ArtifactVersion]:
    rows = conn.execute(
        sa.select(*VERSION_COLUMNS)
        .select_from(_VERSIONS_JOIN)
        .where(V.artifact_id == artifact_id)
        .order_by(V.version)
    ).all()
    return [to_version(r) for r in rows]


def versions_with_hash(conn: sa.Connection, content_hash: str) -> list[ArtifactVersion]:
    rows = conn.execute(
        sa.select(*VERSION_COLUMNS)
        .select_from(_VERSIONS_JOIN)
        .where(V.content_hash == content_hash)
        .order_by(V.artifact_id, V.version)
    ).all()
    return [to_version(r) for r in rows]


def page_of_artifacts(conn: sa.Connection, query: ArtifactQuery) -> Sequence[AnyRow]:
    """Up to ``limit + 1`` artifacts, newest first (ULIDs sort by creation time)."""
    stmt = sa.select(*ARTIFACT_COLUMNS).order_by(A.artifact_id.desc()).limit(query.limit + 1)
    if query.type is not None:
        stmt = stmt.where(A.type == query.type)
    if query.tags:
        stmt = stmt.where(A.tags.contains(query.tags))  # jsonb @>, uses the GIN index
    if query.owner_item_id is not None:
        stmt = stmt.where(A.owner_item_id == query.owner_item_id)
    if query.owner_run_id is not None:
        stmt = stmt.where(A.owner_run_id == query.owner_run_id)
    if query.cursor is not None:
        stmt = stmt.where(A.artifact_id < query.cursor)
    return conn.execute(stmt).all()


def insert_link(conn: sa.Connection, values: dict[str, Any]) -> ArtifactLink:
    row = conn.execute(
        sa.insert(artifact_links).values(**values).returning(*artifact_links.c)
    ).one()
    return ArtifactLink.model_validate(row._mapping)


def referenced_keys(
    conn: sa.Connection, pairs: list[tuple[str, int]]
) -> dict[tuple[str, int], str | None]:
    """``storage_key`` of each (artifact_id, version) that has a row (primary-key lookups)."""
    if not pairs:
        return {}
    wanted = sa.tuple_(V.artifact_id, V.version).in_(pairs)
    rows = conn.execute(sa.select(V.artifact_id, V.version, V.storage_key).where(wanted)).all()
    return {(r.artifact_id, r.version): r.storage_key for r in rows}


def lock_if_exists(conn: sa.Connection, artifact_id: str) -> None:
    """Take the artifact's row lock (writers of its versions hold the same one)."""
    conn.execute(sa.select(A.artifact_id).where(A.artifact_id == artifact_id).with_for_update())


def key_is_referenced(conn: sa.Connection, key: str) -> bool:
    """Whether any version row names ``key`` (a scan: only for keys off the convention)."""
    found = conn.execute(sa.select(sa.literal(1)).where(V.storage_key == key).limit(1)).first()
    return found is not None
