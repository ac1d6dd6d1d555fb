"""Garbage collection: remove blobs that no version row references.

Blobs become garbage when a write fails after its upload (the version row rolls back,
the blob stays), when a process dies mid-upload, or when a staged upload turns out to
duplicate the latest version and its cleanup fails. gc finds them by listing the store
page by page - never the whole bucket in memory - and asking Postgres about each page.

Three rules keep it from deleting anything that is, or is about to be, referenced:

* **grace**: only blobs older than ``ARTIFACT_GC_GRACE_HOURS`` are candidates. A blob
  reaches its final key only inside the transaction that inserts its row, so a young
  unreferenced blob may belong to a transaction that has not committed yet.
* **re-check under the lock**: before deleting a committed-style key, gc takes the
  artifact's row lock - the lock every writer of that artifact holds while placing its
  blob and inserting the row - and looks again. A writer that reuses a leftover blob at
  its key therefore either runs before gc (gc then sees the row) or after (the blob is
  gone, and the writer promotes its own copy).
* **our prefixes only**: gc looks at ``artifacts/`` and ``staging/`` and nothing else in
  the bucket or directory.

A listed key is compared with the row's key without regard to case (:func:`names_blob`):
on a case-insensitive file system (macOS, Windows) the types ``Plan`` and ``plan`` share
one folder, listed under whichever name created it, so an exact comparison would take a
referenced blob for garbage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from itertools import islice

import sqlalchemy as sa

from sdk.artifacts import repository as repo
from sdk.artifacts.keys import ARTIFACTS_PREFIX, STAGING_PREFIX, ParsedKey, parse_object_key
from sdk.artifacts.models import GcReport
from sdk.artifacts.stores.base import BlobInfo, BlobStore

BATCH = 500

Db = Callable[[], AbstractContextManager[sa.Connection]]


def _batches(blobs: Iterator[BlobInfo], size: int) -> Iterator[list[BlobInfo]]:
    while batch := list(islice(blobs, size)):
        yield batch


def names_blob(stored_key: str | None, listed_key: str) -> bool:
    """Whether a version row's ``stored_key`` names the blob listed as ``listed_key``.

    Keys of one artifact version that differ only in case are the same blob on a
    case-insensitive file system; anywhere else only a copy made by hand could produce
    the other spelling, and keeping it is a leak, not a loss.
    """
    return stored_key is not None and (
        stored_key == listed_key or stored_key.casefold() == listed_key.casefold()
    )


def collect_garbage(
    *, db: Db, store: BlobStore, cutoff: datetime, dry_run: bool, batch_size: int = BATCH
) -> GcReport:
    """Delete (or with ``dry_run`` only report) unreferenced blobs older than ``cutoff``."""
    scanned = referenced = too_young = garbage_bytes = 0
    garbage: list[str] = []
    aborted = store.abort_stale_uploads(older_than=cutoff, dry_run=dry_run)

    # Staged uploads are never referenced: a version row only ever names a final key.
    for blob in store.list_blobs(STAGING_PREFIX):
        scanned += 1
        if blob.last_modified >= cutoff:
            too_young += 1
            continue
        if not dry_run:
            store.delete(blob.key)
        garbage.append(blob.key)
        garbage_bytes += blob.size_bytes

    for batch in _batches(store.list_blobs(ARTIFACTS_PREFIX), batch_size):
        scanned += len(batch)
        old = [b for b in batch if b.last_modified < cutoff]
        too_young += len(batch) - len(old)
        parsed = {b.key: parse_object_key(b.key) for b in old}
        pairs = [(p.artifact_id, p.version) for p in parsed.values() if p is not None]
        with db() as conn:
            refs = repo.referenced_keys(conn, pairs)
        for blob in old:
            p = parsed[blob.key]
            if p is not None and names_blob(refs.get((p.artifact_id, p.version)), blob.key):
                referenced += 1
                continue
            if _remove_if_unreferenced(db, store, blob.key, p, dry_run=dry_run):
                garbage.append(blob.key)
                garbage_bytes += blob.size_bytes
            else:
                referenced += 1

    return GcReport(
        dry_run=dry_run,
        scanned=scanned,
        referenced=referenced,
        too_young=too_young,
        garbage_keys=garbage,
        garbage_bytes=garbage_bytes,
        aborted_uploads=aborted,
    )


def _remove_if_unreferenced(
    db: Db, store: BlobStore, key: str, parsed: ParsedKey | None, *, dry_run: bool
) -> bool:
    """Check again under the artifact's row lock; delete while holding it."""
    with db() as conn:
        if parsed is not None:
            repo.lock_if_exists(conn, parsed.artifact_id)
            refs = repo.referenced_keys(conn, [(parsed.artifact_id, parsed.version)])
            if names_blob(refs.get((parsed.artifact_id, parsed.version)), key):
                return False
        elif repo.key_is_referenced(conn, key):  # off-convention key: only a scan can tell
            return False
        if not dry_run:
            store.delete(key)
    return True
