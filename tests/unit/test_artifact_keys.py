"""Blob keys: the naming convention, and that no input can make a key leave its prefix."""

from __future__ import annotations

import posixpath

import pytest

from sdk.artifacts.keys import (
    extension_for,
    guess_mime_type,
    object_key,
    parse_object_key,
    staging_key,
    type_segment,
)
from sdk.artifacts.models import is_valid_type

ID = "01J9Z3K8Q4W6X2Y7T5R1V0N8M3"
HASH = "ab" * 32


def test_the_key_names_type_artifact_version_hash_and_extension() -> None:
    key = object_key(
        artifact_type="plan",
        artifact_id=ID,
        version=3,
        content_hash=HASH,
        mime_type="text/markdown",
    )
    assert key == f"artifacts/plan/{ID}/v3/{HASH}.md"
    parsed = parse_object_key(key)
    assert parsed is not None
    assert (parsed.artifact_id, parsed.version, parsed.content_hash) == (ID, 3, HASH)


@pytest.mark.parametrize(
    "hostile",
    ["../../etc", "..", ".", "/abs/path", "a/../../b", "a\\..\\b", "", "\x00", "ü/../x", "-x"],
)
def test_any_type_becomes_one_safe_segment(hostile: str) -> None:
    key = object_key(
        artifact_type=hostile, artifact_id=ID, version=1, content_hash=HASH, mime_type="x/y"
    )
    segment = key.split("/")[1]
    assert key.count("/") == 4
    assert segment not in ("", ".", "..")
    assert not segment.startswith((".", "-"))
    assert posixpath.normpath(key) == key
    assert key.startswith("artifacts/")
    assert segment == type_segment(hostile)
    assert not is_valid_type(hostile)


@pytest.mark.parametrize("good", ["plan", "code_diff", "report.v2", "A-1", "x" * 100])
def test_ordinary_types_are_valid_and_unchanged(good: str) -> None:
    assert is_valid_type(good)
    assert type_segment(good) == good


def test_the_other_key_parts_are_validated() -> None:
    args = {"artifact_type": "t", "artifact_id": ID, "version": 1, "content_hash": HASH}
    with pytest.raises(ValueError, match="ULID"):
        object_key(**{**args, "artifact_id": "../x"}, mime_type="x/y")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="version"):
        object_key(**{**args, "version": 0}, mime_type="x/y")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="hex"):
        object_key(**{**args, "content_hash": "AB" * 32}, mime_type="x/y")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ULID"):
        staging_key("../../x")
    assert staging_key(ID) == f"staging/{ID}"


@pytest.mark.parametrize(
    ("mime", "ext"),
    [
        ("text/plain; charset=utf-8", "txt"),
        ("application/json", "json"),
        ("TEXT/MARKDOWN", "md"),
        ("image/png", "png"),
        ("application/pdf", "pdf"),
        ("application/x-unheard-of", "bin"),
        ("application/octet-stream", "bin"),
    ],
)
def test_extensions_come_from_a_fixed_table(mime: str, ext: str) -> None:
    assert extension_for(mime) == ext


@pytest.mark.parametrize(
    ("name", "mime"),
    [
        ("plan.md", "text/markdown"),
        ("data.JSON", "application/json"),
        ("conf.yaml", "application/yaml"),
        ("notes.txt", "text/plain"),
        ("blob", None),
    ],
)
def test_mime_types_guessed_from_file_names(name: str, mime: str | None) -> None:
    assert guess_mime_type(name) == mime


@pytest.mark.parametrize(
    "key",
    [
        "staging/x",
        f"artifacts/t/{ID}/v0/{HASH}.bin",
        f"artifacts/t/{ID}/v1/{HASH}",
        f"artifacts/../{ID}/v1/{HASH}.bin",
        f"other/t/{ID}/v1/{HASH}.bin",
    ],
)
def test_keys_off_the_convention_do_not_parse(key: str) -> None:
    assert parse_object_key(key) is None
