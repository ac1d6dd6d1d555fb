"""The knowledge base's queue of artifact versions: the only code that reads or sets
``is_kb_ingested``.

A version is written with ``is_kb_ingested = false`` (:mod:`sdk.artifacts.commit`); the
knowledge base takes the oldest such versions, writes their documents, and marks them
here; ``wdp kb reindex`` clears the flag again. The artifact package owns the ``work``
tables, so :mod:`sdk.kb` and the Dagster asset and sensor ask here instead of writing
SQL on them: one predicate (:data:`PENDING`, which is also the partial index
``ix_artifact_versions_kb_pending``), one set of columns, one place to change.

Every function runs on the caller's connection and never commits: the knowledge base
writes a batch's documents, chunks and flags in one transaction, so a crash leaves the
whole batch pending, never half of it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from sdk.artifacts.reader import StoredContent
from sdk.db.schema import artifact_versions, artifacts

A, V = artifacts.c, artifact_versions.c
Key = tuple[str, int]  # (artifact_id, version)

# Written exactly like the partial index's predicate, so the planner can use the index.
PENDING = sa.not_(V.is_kb_ingested)

# A batch's keys as two arrays joined to the table: two parameters whatever the batch
# size, where ``(artifact_id, version) IN (...)`` took two per key and planned slower.
_KEYS = (
    sa.func.unnest(
        sa.cast(sa.bindparam("ids"), pg.ARRAY(sa.Text)),
        sa.cast(sa.bindparam("versions"), pg.ARRAY(sa.Integer)),
    )
    .table_valued("a", "n")
    .render_derived(name="keys")
)
_ON_KEYS = sa.and_(V.artifact_id == _KEYS.c.a, V.version == _KEYS.c.n)
_LOCK_STILL_PENDING = (
    sa.select(V.artifact_id, V.version)
    .join_from(artifact_versions, _KEYS, _ON_KEYS)
    .where(PENDING)
    .with_for_update(of=artifact_versions)
)
_MARK_INGESTED = sa.update(artifact_versions).where(_ON_KEYS, PENDING).values(is_kb_ingested=True)


@dataclass(frozen=True)
class PendingVersion(StoredContent):
    """A version waiting for the knowledge base: where its content is, and what its
    document copies from the artifact (type and tags, for search filters)."""

    type: str
    tags: list[str]

    @property
    def key(self) -> Key:
        return (self.artifact_id, self.version)


@dataclass(frozen=True)
class PendingSummary:
    """How many versions wait, and the ``created_at`` of the oldest and the newest."""

    count: int
    oldest: datetime | None
    newest: datetime | None


_PENDING_VERSIONS = (
    sa.select(
        V.artifact_id,
        V.version,
        V.mime_type,
        V.size_bytes,
        V.content_hash,
        V.storage_backend,
        V.storage_key,
        V.inline_content_text,
        A.type,
        A.tags,
    )
    .select_from(artifact_versions.join(artifacts, V.artifact_id == A.artifact_id))
    .where(PENDING)
    .order_by(V.created_at, V.artifact_id, V.version)
    .limit(sa.bindparam("limit"))
)


def pending_versions(conn: sa.Connection, *, limit: int) -> list[PendingVersion]:
    """Up to ``limit`` versions not yet ingested, oldest first. Nothing is locked: the
    caller reads their content outside any transaction, then calls
    :func:`lock_still_pending` in the transaction that writes them."""
    rows = conn.execute(_PENDING_VERSIONS, {"limit": limit}).all()
    return [PendingVersion(**row._mapping) for row in rows]


def lock_still_pending(conn: sa.Connection, keys: Collection[Key]) -> set[Key]:
    """Of ``keys``, those still pending, row-locked (``FOR UPDATE``) until the caller's
    transaction ends.

    It waits for a transaction that holds one of these rows; when that one has marked the
    row ingested meanwhile, Postgres re-checks the row after the wait and it is left out,
    so a version is never written twice.
    """
    if not keys:
        return set()
    rows = conn.execute(_LOCK_STILL_PENDING, _arrays(keys))
    return {(r.artifact_id, r.version) for r in rows}


def mark_ingested(conn: sa.Connection, keys: Collection[Key]) -> int:
    """Set the flag of ``keys`` (in the caller's transaction); how many rows changed."""
    if not keys:
        return 0
    return conn.execute(_MARK_INGESTED, _arrays(keys)).rowcount


def _arrays(keys: Collection[Key]) -> dict[str, list[str] | list[int]]:
    return {"ids": [a for a, _ in keys], "versions": [v for _, v in keys]}


def reset_ingested(
    conn: sa.Connection, *, artifact_id: str | None = None, type: str | None = None
) -> int:
    """Clear the flag of every ingested version (or one artifact's, or one type's), so
    ingestion takes them again; how many were cleared."""
    stmt = sa.update(artifact_versions).where(V.is_kb_ingested).values(is_kb_ingested=False)
    if artifact_id is not None:
        stmt = stmt.where(V.artifact_id == artifact_id)
    if type is not None:
        stmt = stmt.where(
            V.artifact_id.in_(sa.select(A.artifact_id).where(A.type == type).scalar_subquery())
        )
    return conn.execute(stmt).rowcount


def count_pending(conn: sa.Connection) -> int:
    """How many versions wait for the knowledge base."""
    return int(conn.execute(sa.select(sa.func.count()).where(PENDING)).scalar_one())


def pending_summary(conn: sa.Connection) -> PendingSummary:
    """The count and the oldest and newest ``created_at`` of the waiting versions."""
    created = V.created_at
    stmt = sa.select(sa.func.count(), sa.func.min(created), sa.func.max(created)).where(PENDING)
    count, oldest, newest = conn.execute(stmt).one()
    return PendingSummary(count=int(count), oldest=oldest, newest=newest)
