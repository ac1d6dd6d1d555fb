"""Blob keys: where a version's content lives in the store, and nothing can escape it.

A committed blob lives at ``artifacts/{type}/{artifact_id}/v{version}/{content_hash}.{ext}``.
The key names everything a person browsing the bucket needs (what kind of artifact, which
one, which version, which bytes) and is unique per version, so a store never has a reason
to overwrite. Uploads in progress live at ``staging/{ulid}`` until the version row is
being committed (see :mod:`sdk.artifacts.service`).

``type`` comes from callers. It is validated on input (:mod:`sdk.artifacts.models` holds
the rule), and the key builder sanitises it again on its own, so a row written by other
means (SQL, an older version of this code) still cannot produce ``..``, a slash, an
absolute path, or a folder name that Windows aliases (``CON``, a trailing dot) in a key.
The file store additionally checks that every resolved path stays under its root.
"""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass
from functools import lru_cache

ARTIFACTS_PREFIX = "artifacts/"
STAGING_PREFIX = "staging/"

# Names Windows maps to devices whatever the folder and extension ("nul.txt" too). The
# file store runs on POSIX file systems (it needs hard links and directory fsync), but
# its tree, or a bucket synced down, may be copied to one that is not.
_WINDOWS_DEVICES = frozenset(
    {"CON", "PRN", "AUX", "NUL"} | {f"{d}{n}" for d in ("COM", "LPT") for n in range(10)}
)
_UNSAFE_SEGMENT_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_ULID_RE = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")
_HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
_EXT_RE = re.compile(r"^[a-z0-9]{1,12}$")
_KEY_RE = re.compile(
    r"^artifacts/(?P<type>[A-Za-z0-9_][A-Za-z0-9._-]*)/(?P<artifact_id>[0-7][0-9A-HJKMNP-TV-Z]{25})"
    r"/v(?P<version>[1-9][0-9]*)/(?P<content_hash>[0-9a-f]{64})\.(?P<ext>[a-z0-9]{1,12})$"
)

# Extensions for the types agents produce most; the standard library's built-in table
# (not the machine's /etc/mime.types, so keys are the same on every host) covers the rest.
_EXTENSIONS = {
    "text/plain": "txt",
    "text/markdown": "md",
    "text/csv": "csv",
    "text/html": "html",
    "application/json": "json",
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/yaml": "yaml",
    "application/x-yaml": "yaml",
    "text/yaml": "yaml",
    "application/toml": "toml",
    "application/xml": "xml",
    "text/x-diff": "diff",
    "text/x-patch": "patch",
    "application/octet-stream": "bin",
    "application/gzip": "gz",
    "application/zip": "zip",
    "application/pdf": "pdf",
    "image/png": "png",
    "image/jpeg": "jpg",
    "application/vnd.apache.parquet": "parquet",
}
_TYPES_BY_SUFFIX = {
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".jsonl": "application/x-ndjson",
    ".ndjson": "application/x-ndjson",
    ".toml": "application/toml",
    ".log": "text/plain",
    ".diff": "text/x-diff",
    ".patch": "text/x-patch",
    ".parquet": "application/vnd.apache.parquet",
    ".gz": "application/gzip",
}


@lru_cache(maxsize=1)
def _builtin_mimetypes() -> mimetypes.MimeTypes:
    return mimetypes.MimeTypes()


def portability_problem(segment: str) -> str | None:
    """Why ``segment`` would not name the same, ordinary folder on every file system.

    Windows drops trailing dots (``plan.`` and ``plan`` would share a folder) and treats
    device names as devices, with or without an extension.
    """
    if segment.endswith("."):
        return "must not end with a dot (Windows drops trailing dots from file names)"
    if segment.split(".", 1)[0].upper() in _WINDOWS_DEVICES:
        return f"{segment!r} is a reserved device name on Windows (CON, NUL, COM1, …)"
    return None


def type_segment(artifact_type: str) -> str:
    """``artifact_type`` as one safe, portable key segment (whatever it contains)."""
    cleaned = _UNSAFE_SEGMENT_CHARS.sub("_", artifact_type).lstrip(".-")[:100].rstrip(".")
    if not cleaned or portability_problem(cleaned) is not None:
        cleaned = f"_{cleaned}"
    return cleaned


def extension_for(mime_type: str) -> str:
    """The file extension (without dot) that a blob of ``mime_type`` gets; ``bin`` if unknown."""
    base = mime_type.split(";", 1)[0].strip().lower()
    ext = _EXTENSIONS.get(base)
    if ext is None:
        guessed = _builtin_mimetypes().guess_extension(base)
        ext = guessed.lstrip(".").lower() if guessed else "bin"
    return ext if _EXT_RE.fullmatch(ext) else "bin"


def guess_mime_type(filename: str) -> str | None:
    """The mime type a file name suggests, from a fixed table (same answer on every host)."""
    lowered = filename.lower()
    for suffix, mime in _TYPES_BY_SUFFIX.items():
        if lowered.endswith(suffix):
            return mime
    guessed, _encoding = _builtin_mimetypes().guess_type(lowered, strict=False)
    return guessed


def object_key(
    *, artifact_type: str, artifact_id: str, version: int, content_hash: str, mime_type: str
) -> str:
    """The key of one version's blob: ``artifacts/{type}/{id}/v{version}/{sha256}.{ext}``."""
    if not _ULID_RE.fullmatch(artifact_id):
        raise ValueError(f"artifact id {artifact_id!r} is not a ULID")
    if version < 1:
        raise ValueError(f"version must be >= 1, got {version}")
    if not _HEX64_RE.fullmatch(content_hash):
        raise ValueError("content_hash must be 64 lower-case hex digits")
    segment = type_segment(artifact_type)
    return (
        f"{ARTIFACTS_PREFIX}{segment}/{artifact_id}/v{version}/"
        f"{content_hash}.{extension_for(mime_type)}"
    )


def staging_key(upload_id: str) -> str:
    """Where an upload waits until its version is committed."""
    if not _ULID_RE.fullmatch(upload_id):
        raise ValueError(f"upload id {upload_id!r} is not a ULID")
    return f"{STAGING_PREFIX}{upload_id}"


@dataclass(frozen=True)
class ParsedKey:
    """The parts of a committed blob's key."""

    artifact_id: str
    version: int
    content_hash: str


def parse_object_key(key: str) -> ParsedKey | None:
    """Split a committed blob's key; None for anything that does not follow the convention."""
    match = _KEY_RE.fullmatch(key)
    if match is None:
        return None
    return ParsedKey(
        artifact_id=match["artifact_id"],
        version=int(match["version"]),
        content_hash=match["content_hash"],
    )
