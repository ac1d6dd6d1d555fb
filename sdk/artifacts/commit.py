"""Committing a prepared version: the one transaction that makes a write visible.

Under the artifact's row lock (``SELECT … FOR UPDATE`` on ``work.artifacts``) it compares
the content hash with the latest version's, takes ``latest_version + 1``, moves the staged
blob to its final key, inserts the version row and bumps ``latest_version``. Concurrent
writers of one artifact queue on the lock, so every writer gets the next number and none
is lost; writers of different artifacts never wait for each other.

The blob reaches its final key *before* the row is inserted, inside the transaction:
a failure anywhere rolls the row back and leaves at most an unreferenced blob, which
:mod:`sdk.artifacts.gc` removes. Never a row without its blob.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa

from sdk.artifacts import repository as repo
from sdk.artifacts.errors import ArtifactNotFound, BlobExists
from sdk.artifacts.intake import Prepared, discard
from sdk.artifacts.keys import object_key
from sdk.artifacts.models import NewArtifact, WriteResult
from sdk.artifacts.stores.base import BlobStore

Db = Callable[[], AbstractContextManager[sa.Connection]]


def commit_version(
    *, db: Db, store: BlobStore, prepared: Prepared, artifact_id: str, new: NewArtifact | None
) -> WriteResult:
    """Store ``prepared`` as version 1 of a ``new`` artifact, or as the next version."""
    staged, placed, body_done = prepared.staging_key, None, False
    try:
        with db() as conn:
            if new is not None:
                repo.insert_artifact(
                    conn,
                    artifact_id=artifact_id,
                    artifact_type=new.type,
                    tags=new.tags,
                    owner_item_id=new.owner_item_id,
                    owner_run_id=new.owner_run_id,
                )
                version, artifact_type = 1, new.type
                owner: dict[str, Any] = {
                    "type": new.type,
                    "tags": new.tags,
                    "owner_item_id": new.owner_item_id,
                    "owner_run_id": new.owner_run_id,
                }
            else:
                head = repo.artifact_head(conn, artifact_id, lock=True)
                if head is None:
                    raise ArtifactNotFound(f"no artifact {artifact_id}")
                if head.content_hash == prepared.facts.content_hash:
                    latest = repo.fetch_version(conn, artifact_id, head.latest_version)
                    body_done = True
                    discard(store, staged)
                    return WriteResult(**latest.model_dump(), deduplicated=True)
                version, artifact_type = head.latest_version + 1, head.type
                owner = {
                    "type": head.type,
                    "tags": head.tags,
                    "owner_item_id": head.owner_item_id,
                    "owner_run_id": head.owner_run_id,
                }
            key = None
            if staged is not None:
                key = object_key(
                    artifact_type=artifact_type,
                    artifact_id=artifact_id,
                    version=version,
                    content_hash=prepared.facts.content_hash,
                    mime_type=prepared.mime_type,
                )
                _place(store, staged, key)
                placed = key
            backend = "inline" if key is None else store.backend  # inline: no store call
            row = _row(prepared, artifact_id, version, key, backend)
            created_at = repo.insert_version(conn, row, bump=new is None)
            body_done = True
    except BaseException:
        discard(store, staged)
        # Rolled back for certain only if the failure came before the COMMIT; a failed
        # COMMIT may still have landed, so then the blob is left for gc to judge.
        if placed is not None and not body_done:
            discard(store, placed)
        raise
    return WriteResult(
        **{k: v for k, v in row.items() if not k.startswith("inline_")},
        **owner,
        is_kb_ingested=False,
        created_at=created_at,
        latest_version=version,
        deduplicated=False,
    )


def _place(store: BlobStore, staged: str, key: str) -> None:
    try:
        store.promote(staged, key)
    except BlobExists:
        # Left by an earlier attempt at this very version that uploaded but did not
        # commit. The key contains the sha256, so it holds exactly these bytes: keep it,
        # drop ours. gc cannot remove it meanwhile: it deletes only under this
        # artifact's row lock, which we hold.
        discard(store, staged)


def _row(
    prepared: Prepared, artifact_id: str, version: int, key: str | None, backend: str
) -> dict[str, Any]:
    form = prepared.inline
    row = {
        "artifact_id": artifact_id,
        "version": version,
        "mime_type": prepared.mime_type,
        "size_bytes": prepared.facts.size_bytes,
        "content_hash": prepared.facts.content_hash,
        "storage_backend": backend,
        "storage_key": key,
        "inline_content_text": form.text if form is not None else None,
        "preview_text": prepared.preview_text,
        "extracted_fields": prepared.extracted_fields,
    }
    if form is not None and form.has_json:  # absent means SQL NULL (None is JSON null)
        row["inline_content_json"] = form.json_value
    return row
