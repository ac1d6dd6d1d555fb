"""Blobs as files under one root directory: the embedded default (``ARTIFACT_STORE=file``).

Writes go to a hidden temp file next to the target, are fsynced, then hard-linked into
place: ``link`` fails if the target exists, so a blob is never overwritten, and a reader
sees either no file or the complete one. The directory is fsynced after the link so the
new name survives a crash. A temp file left behind by a crash is an unfinished upload
that :meth:`FileStore.abort_stale_uploads` removes.
"""

from __future__ import annotations

import errno
import os
import queue
import re
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from sdk.artifacts.errors import BlobExists, BlobNotFound, InvalidArtifact, StorageUnavailable
from sdk.artifacts.stores.base import BlobInfo, StoreBackend

_SEGMENT_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
_TEMP_SUFFIX = ".part"
_QUEUE_DEPTH = 8  # chunks waiting for the writer thread (1 MiB each from the service)
_SYNC_EVERY = 32 * 1024 * 1024
_fdatasync = getattr(os, "fdatasync", os.fsync)  # macOS has no fdatasync
# Filesystems without hard links (some network and container mounts) answer with these.
_NO_LINK_ERRNOS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}


@contextmanager
def _io(action: str, key: str) -> Iterator[None]:
    """Translate the store's own OSErrors (disk full, permissions) into StorageUnavailable."""
    try:
        yield
    except OSError as exc:
        raise StorageUnavailable(f"file store: cannot {action} {key!r}: {exc}") from exc


def _mkstemp_in(path: Path) -> tuple[int, str]:
    """Create ``path``'s folder and a temp file in it for the write.

    ``delete`` prunes folders a blob leaves empty, so the folder can vanish between
    our mkdir and the file's creation (another writer's blob in it just got deleted):
    create it again and retry, a few times.
    """
    for attempt in range(3):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_TEMP_SUFFIX)
        except FileNotFoundError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_behind(out: BinaryIO, chunks: Iterable[bytes], key: str) -> int:
    """Write ``chunks`` to ``out`` on a helper thread, fsynced, and return the size.

    The caller's iterator (reading the source, hashing it) keeps running on this thread
    while the helper writes, and the helper flushes to disk every ``_SYNC_EVERY`` bytes,
    so the final fsync finds little left to do: the write costs about the larger of
    "hash" and "write + flush" instead of their sum. At most ``_QUEUE_DEPTH`` chunks wait.
    Errors of the caller's iterator pass through unchanged; the store's own OSErrors
    become StorageUnavailable.
    """
    pending: queue.Queue[bytes | None] = queue.Queue(maxsize=_QUEUE_DEPTH)
    failure: list[BaseException] = []
    aborted = threading.Event()

    def writer() -> None:
        written = synced = 0
        try:
            while (chunk := pending.get()) is not None:
                out.write(chunk)
                written += len(chunk)
                if written - synced >= _SYNC_EVERY:
                    _fdatasync(out.fileno())
                    synced = written
            if not aborted.is_set():
                out.flush()
                os.fsync(out.fileno())
        except BaseException as exc:  # recorded for the caller's thread, which re-raises it
            failure.append(exc)
            while pending.get() is not None:  # keep draining: the producer must not block
                pass

    thread = threading.Thread(target=writer, name="wdp-file-store-writer", daemon=True)
    thread.start()
    size = 0
    try:
        for chunk in chunks:
            if failure:
                break
            pending.put(chunk)
            size += len(chunk)
    except BaseException:
        aborted.set()
        raise
    finally:
        pending.put(None)
        thread.join()
    if failure:
        if isinstance(failure[0], OSError):
            raise StorageUnavailable(f"file store: cannot write {key!r}: {failure[0]}") from (
                failure[0]
            )
        raise failure[0]
    return size


class _FileReader:
    """A blob file opened for reading, with I/O errors translated."""

    def __init__(self, handle: BinaryIO, key: str) -> None:
        self._handle = handle
        self._key = key

    def read(self, size: int = -1, /) -> bytes:
        with _io("read", self._key):
            return self._handle.read(size)

    def close(self) -> None:
        self._handle.close()


class FileStore:
    """Blobs as files under ``root`` (created on first write)."""

    def __init__(self, root: Path) -> None:
        self._root = Path(root).expanduser().resolve()

    @property
    def backend(self) -> StoreBackend:
        return "file"

    @property
    def root(self) -> Path:
        return self._root

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or not all(_SEGMENT_RE.fullmatch(p) for p in parts):
            raise InvalidArtifact(f"blob key {key!r} is not a safe relative path")
        path = self._root.joinpath(*parts)
        # Segments cannot be ".." (they start with a letter, digit or "_"); a symlink
        # planted inside the root still must not lead out of it.
        if not path.resolve().is_relative_to(self._root):
            raise InvalidArtifact(f"blob key {key!r} resolves outside the store")
        return path

    def _link_no_replace(self, src: Path, dst: Path, key: str) -> None:
        try:
            os.link(src, dst)
        except FileExistsError as exc:
            raise BlobExists(f"file store: {key!r} exists and is never overwritten") from exc
        except OSError as exc:
            if exc.errno not in _NO_LINK_ERRNOS:
                raise
            # No hard links here: check, then rename. Not atomic against a concurrent
            # creator, but only the holder of the artifact's row lock writes a version's
            # key (staging keys are fresh ULIDs), so nobody else is creating this name.
            if dst.exists():
                raise BlobExists(f"file store: {key!r} exists and is never overwritten") from exc
            os.rename(src, dst)

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        path = self._path(key)
        if path.exists():
            raise BlobExists(f"file store: {key!r} exists and is never overwritten")
        with _io("write", key):
            fd, tmp_name = _mkstemp_in(path)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                size = _write_behind(out, chunks, key)
            with _io("write", key):
                self._link_no_replace(tmp, path, key)
                _fsync_dir(path.parent)
        finally:
            with suppress(OSError):
                tmp.unlink(missing_ok=True)
        return size

    def promote(self, src: str, dst: str) -> None:
        src_path, dst_path = self._path(src), self._path(dst)
        with _io("promote to", dst):
            if not src_path.is_file():
                raise BlobNotFound(f"file store: no blob {src!r} to promote")
            for attempt in range(3):  # see _mkstemp_in: a pruner may remove the folder
                dst_path.parent.mkdir(parents=True, exist_ok=True)
                try:
                    self._link_no_replace(src_path, dst_path, dst)
                    break
                except FileNotFoundError:
                    if attempt == 2 or not src_path.is_file():
                        raise
            os.utime(dst_path)  # gc's grace period counts from the commit, not the upload
            _fsync_dir(dst_path.parent)
        self.delete(src)

    def open(self, key: str) -> _FileReader:
        path = self._path(key)
        try:
            handle = path.open("rb")
        except FileNotFoundError as exc:
            raise BlobNotFound(f"file store: no blob {key!r} under {self._root}") from exc
        except OSError as exc:
            raise StorageUnavailable(f"file store: cannot open {key!r}: {exc}") from exc
        return _FileReader(handle, key)

    def delete(self, key: str) -> None:
        path = self._path(key)
        with _io("delete", key):
            path.unlink(missing_ok=True)
        # Drop directories the blob leaves empty (best effort: a concurrent writer may
        # just have created a file in one, which makes rmdir fail harmlessly).
        # The top-level folders (staging/, artifacts/) are never removed: every write
        # passes through them.
        parent = path.parent
        while parent.parent != self._root and parent.is_relative_to(self._root):
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def presigned_url(self, key: str, *, expires_in: int = 3600) -> str:
        """A ``file://`` URL: local files need no signature, and it does not expire."""
        return self._path(key).as_uri()

    def _walk(self, prefix: str) -> Iterator[tuple[str, Path]]:
        top = self._root / prefix.rstrip("/") if prefix.rstrip("/") else self._root
        if not top.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            for name in sorted(filenames):
                path = Path(dirpath, name)
                key = path.relative_to(self._root).as_posix()
                if key.startswith(prefix):
                    yield key, path

    def list_blobs(self, prefix: str) -> Iterator[BlobInfo]:
        for key, path in self._walk(prefix):
            if path.name.startswith(".") and path.name.endswith(_TEMP_SUFFIX):
                continue  # an unfinished write, not a blob
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue  # deleted while we walked
            yield BlobInfo(
                key=key,
                size_bytes=stat.st_size,
                last_modified=datetime.fromtimestamp(stat.st_mtime, UTC),
            )

    def abort_stale_uploads(self, *, older_than: datetime, dry_run: bool = False) -> int:
        """Remove temp files of writes that crashed before ``older_than``."""
        count = 0
        cutoff = older_than.timestamp()
        for _key, path in self._walk(""):
            if not (path.name.startswith(".") and path.name.endswith(_TEMP_SUFFIX)):
                continue
            with suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    if not dry_run:
                        path.unlink()
                    count += 1
        return count
