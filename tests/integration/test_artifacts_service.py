"""The artifact service on a real Postgres, once per blob store backend (file, s3)."""

from __future__ import annotations

import io
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sdk.artifacts import (
    ArtifactIntegrityError,
    ArtifactNotFound,
    ArtifactService,
    InvalidArtifact,
    VersionNotFound,
)
from sdk.artifacts.keys import parse_object_key
from sdk.artifacts.stores import BlobStore, FileStore
from sdk.artifacts.stores.s3 import S3Store
from tests.integration.artifact_support import (
    INLINE_MAX,
    ExplodingStore,
    all_keys,
    count_rows,
    sha,
)

pytest_plugins = ["tests.integration.artifact_fixtures"]


def version_row(engine: sa.Engine, artifact_id: str, version: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT * FROM work.artifact_versions WHERE artifact_id = :a AND version = :v"),
            {"a": artifact_id, "v": version},
        ).one()


# --- inline or offloaded ------------------------------------------------------------------


def test_small_text_is_inline_and_never_touches_the_store(
    engine: sa.Engine, service: ArtifactService
) -> None:
    result = service.write_artifact(
        type="plan", content="# Plan\nstep one\nstep two\n", owner_run_id="run-1", tags=["a=1"]
    )
    assert result.version == 1
    assert result.latest_version == 1
    assert result.deduplicated is False
    assert result.storage_backend == "inline"
    assert result.storage_key is None
    assert result.mime_type == "text/plain; charset=utf-8"
    assert result.content_hash == sha(b"# Plan\nstep one\nstep two\n")
    assert result.preview_text == "# Plan\nstep one\nstep two\n"
    assert result.extracted_fields == {"line_count": 3, "char_count": 25, "word_count": 6}
    row = version_row(engine, result.artifact_id, 1)
    assert row.inline_content_text == "# Plan\nstep one\nstep two\n"
    assert row.inline_content_json is None
    assert all_keys(service.store) == []
    assert service.read_content(result.artifact_id) == b"# Plan\nstep one\nstep two\n"


def test_content_at_the_limit_is_offloaded_and_one_byte_less_is_inline(
    engine: sa.Engine, service: ArtifactService, artifact_store: BlobStore
) -> None:
    at_limit = os.urandom(INLINE_MAX)
    below = at_limit[:-1]
    big = service.write_artifact(type="blob", content=at_limit)
    small = service.write_artifact(type="blob", content=below)

    assert small.storage_backend == "inline"
    assert small.size_bytes == INLINE_MAX - 1
    assert big.storage_backend == artifact_store.backend
    assert big.size_bytes == INLINE_MAX
    assert big.storage_key is not None
    parsed = parse_object_key(big.storage_key)
    assert parsed is not None
    assert (parsed.artifact_id, parsed.version, parsed.content_hash) == (
        big.artifact_id,
        1,
        sha(at_limit),
    )
    assert big.storage_key == f"artifacts/blob/{big.artifact_id}/v1/{sha(at_limit)}.bin"
    assert all_keys(artifact_store) == [big.storage_key]  # staging cleaned up
    assert version_row(engine, big.artifact_id, 1).inline_content_text is None
    assert service.read_content(big.artifact_id) == at_limit
    assert service.read_content(small.artifact_id) == below


def test_large_text_is_offloaded_with_a_preview_and_counts(service: ArtifactService) -> None:
    text = "".join(f"line {i} ünïcode\n" for i in range(60_000))  # ~1.1 MB
    result = service.write_artifact(type="log", content=text, mime_type="text/plain")
    assert result.storage_backend != "inline"
    assert result.preview_text == text[:1000]
    assert result.extracted_fields["line_count"] == 60_000
    assert result.extracted_fields["char_count"] == len(text)
    assert service.read_content(result.artifact_id).decode() == text


def test_empty_content_is_a_valid_inline_version(service: ArtifactService) -> None:
    result = service.write_artifact(type="empty", content=b"")
    assert result.size_bytes == 0
    assert result.storage_backend == "inline"
    assert result.content_hash == sha(b"")
    assert service.read_content(result.artifact_id) == b""
    text = service.write_artifact(type="empty", content="")
    assert text.extracted_fields == {"line_count": 0, "char_count": 0, "word_count": 0}


def test_json_is_queryable_and_read_back_byte_for_byte(
    engine: sa.Engine, service: ArtifactService
) -> None:
    raw = b'{ "b": [1, 2.50, {"x": null}],\n  "a": "\xc3\xa9t\xc3\xa9" }'
    result = service.write_artifact(type="data", content=raw, mime_type="application/json")
    row = version_row(engine, result.artifact_id, 1)
    assert row.inline_content_json == {"b": [1, 2.5, {"x": None}], "a": "été"}
    assert service.read_content(result.artifact_id) == raw  # jsonb would reorder and respace
    assert result.extracted_fields["json_type"] == "object"
    assert result.extracted_fields["json_keys"] == ["b", "a"]
    assert result.preview_text is not None
    assert result.preview_text.startswith('{\n  "b": [\n    1,')
    with engine.connect() as conn:  # the point of inline_content_json
        found = conn.execute(
            sa.text(
                "SELECT artifact_id FROM work.artifact_versions "
                "WHERE inline_content_json ->> 'a' = 'été'"
            )
        ).scalars()
        assert result.artifact_id in list(found)


def test_a_dict_is_stored_as_json(engine: sa.Engine, service: ArtifactService) -> None:
    result = service.write_artifact(type="data", content={"k": [1, "two"]})
    assert result.mime_type == "application/json"
    assert json.loads(service.read_content(result.artifact_id)) == {"k": [1, "two"]}
    assert version_row(engine, result.artifact_id, 1).inline_content_json == {"k": [1, "two"]}


def test_json_that_jsonb_cannot_hold_is_kept_as_text_only(
    engine: sa.Engine, service: ArtifactService
) -> None:
    raw = b'{"nul": "a\\u0000b"}'
    result = service.write_artifact(type="data", content=raw, mime_type="application/json")
    assert version_row(engine, result.artifact_id, 1).inline_content_json is None
    assert service.read_content(result.artifact_id) == raw


def test_small_binary_is_inline_as_base64_and_exact(
    engine: sa.Engine, service: ArtifactService
) -> None:
    data = bytes(range(256)) * 4
    result = service.write_artifact(type="image", content=data, mime_type="image/png")
    assert result.storage_backend == "inline"
    assert result.preview_text is None
    assert result.extracted_fields == {}
    row = version_row(engine, result.artifact_id, 1)
    assert row.inline_content_text.startswith("AAECAwQF")
    assert service.read_content(result.artifact_id) == data


# --- sources ------------------------------------------------------------------------------


def test_stream_and_path_sources(tmp_path: Path, service: ArtifactService) -> None:
    data = os.urandom(700_000)
    from_stream = service.write_artifact(type="blob", stream=io.BytesIO(data))
    assert from_stream.mime_type == "application/octet-stream"
    assert service.read_content(from_stream.artifact_id) == data

    notes = tmp_path / "notes.md"
    notes.write_text("# Notes\n")
    from_path = service.write_artifact(type="notes", path=notes)
    assert from_path.mime_type == "text/markdown"
    assert service.read_content(from_path.artifact_id) == b"# Notes\n"


@pytest.mark.parametrize(
    "sources",
    [{}, {"content": "a", "path": "b"}, {"content": b"a", "stream": io.BytesIO(b"a")}],
)
def test_exactly_one_source_is_required(service: ArtifactService, sources: Any) -> None:
    with pytest.raises(InvalidArtifact, match="exactly one of content=, stream=, path="):
        service.write_artifact(type="x", **sources)


def test_a_missing_file_is_a_clear_error(tmp_path: Path, service: ArtifactService) -> None:
    with pytest.raises(InvalidArtifact, match=r"cannot read .*nope"):
        service.write_artifact(type="x", path=tmp_path / "nope")


def test_caller_preview_and_fields_win_over_automatic_ones(service: ArtifactService) -> None:
    result = service.write_artifact(
        type="note",
        content="one two three",
        preview_text="custom",
        extracted_fields={"word_count": 99, "topic": "infra"},
    )
    assert result.preview_text == "custom"
    assert result.extracted_fields == {
        "line_count": 1,
        "char_count": 13,
        "word_count": 99,
        "topic": "infra",
    }


# --- versions -------------------------------------------------------------------------------


def test_new_version_only_when_content_changes(
    engine: sa.Engine, service: ArtifactService, artifact_store: BlobStore
) -> None:
    first = service.write_artifact(type="report", content=b"v1" * 400_000)  # offloaded
    blobs = all_keys(artifact_store)
    same = service.create_version(first.artifact_id, content=b"v1" * 400_000)
    assert same.deduplicated is True
    assert same.version == 1
    assert same.content_hash == first.content_hash
    assert all_keys(artifact_store) == blobs  # the staged duplicate was removed

    second = service.create_version(first.artifact_id, content=b"v2")
    assert (second.version, second.latest_version, second.deduplicated) == (2, 2, False)
    # Only the latest version counts: going back to v1's content is a new version.
    third = service.create_version(first.artifact_id, content=b"v1" * 400_000)
    assert (third.version, third.deduplicated) == (3, False)
    assert [v.version for v in service.list_versions(first.artifact_id)] == [1, 2, 3]
    assert service.read_artifact(first.artifact_id).version == 3
    assert service.read_content(first.artifact_id, 2) == b"v2"
    assert service.read_content(first.artifact_id, 1) == b"v1" * 400_000


def test_a_new_version_keeps_the_mime_type_unless_told(service: ArtifactService) -> None:
    first = service.write_artifact(type="doc", content="text", mime_type="text/markdown")
    assert service.create_version(first.artifact_id, content=b"more").mime_type == "text/markdown"
    with pytest.raises(InvalidArtifact, match="not valid UTF-8"):
        service.create_version(first.artifact_id, content=b"\xff\xfe")
    changed = service.create_version(
        first.artifact_id, content=b"\xff\xfe", mime_type="application/octet-stream"
    )
    assert changed.mime_type == "application/octet-stream"


def test_lookup_by_content_hash(service: ArtifactService) -> None:
    data = os.urandom(64)
    a = service.write_artifact(type="x", content=data)
    b = service.write_artifact(type="y", content=data)
    found = service.find_by_hash(sha(data))
    assert {(v.artifact_id, v.version) for v in found} == {(a.artifact_id, 1), (b.artifact_id, 1)}
    assert service.find_by_hash(sha(b"nothing stored")) == []
    with pytest.raises(InvalidArtifact):
        service.find_by_hash("not-a-hash")


# --- read_artifact never touches the store ---------------------------------------------


def test_read_artifact_never_calls_the_store(engine: sa.Engine, service: ArtifactService) -> None:
    big = service.write_artifact(type="blob", content=os.urandom(INLINE_MAX + 10))
    small = service.write_artifact(type="note", content="hello")
    blind = ArtifactService(engine=engine, store=ExplodingStore(), inline_max_bytes=INLINE_MAX)  # type: ignore[arg-type]

    meta = blind.read_artifact(big.artifact_id)
    assert meta.storage_key == big.storage_key
    assert meta.content_hash == big.content_hash
    assert blind.read_artifact(small.artifact_id).preview_text == "hello"
    assert blind.list_versions(big.artifact_id)[0].version == 1
    assert blind.list_artifacts(type="blob").items
    assert blind.find_by_hash(big.content_hash)
    blind.link(big.artifact_id, 1, link_type="input", run_id="r")
    # Inline content is read and written without the store too...
    assert blind.read_content(small.artifact_id) == b"hello"
    assert blind.write_artifact(type="note", content="inline").storage_backend == "inline"
    # ...and offloaded content is where the store is needed: the exploding store fires.
    with pytest.raises(AssertionError, match="blob store was used"):
        blind.read_content(big.artifact_id)


# --- integrity ----------------------------------------------------------------------------


def _corrupt(store: BlobStore, key: str, data: bytes) -> None:
    if isinstance(store, FileStore):
        (store.root / key).chmod(0o644)
        (store.root / key).write_bytes(data)
    else:
        assert isinstance(store, S3Store)
        store.client.put_object(Bucket=store._bucket, Key=key, Body=data)


def test_a_corrupted_blob_is_an_integrity_error(
    service: ArtifactService, artifact_store: BlobStore
) -> None:
    data = os.urandom(INLINE_MAX + 1)
    result = service.write_artifact(type="blob", content=data)
    assert result.storage_key is not None
    flipped = bytes([data[0] ^ 1]) + data[1:]
    _corrupt(artifact_store, result.storage_key, flipped)
    with pytest.raises(ArtifactIntegrityError, match="sha256"):
        service.read_content(result.artifact_id)
    # A caller reading exactly the recorded size and stopping still gets the error,
    # before the last bytes are handed out.
    with (
        service.open_content(result.artifact_id) as reader,
        pytest.raises(ArtifactIntegrityError, match="sha256"),
    ):
        reader.read(len(data))
    _corrupt(artifact_store, result.storage_key, data + b"extra")
    with pytest.raises(ArtifactIntegrityError, match="more than the recorded"):
        service.read_content(result.artifact_id)
    artifact_store.delete(result.storage_key)
    with pytest.raises(ArtifactIntegrityError, match="missing"):
        service.read_content(result.artifact_id)


def test_tampered_inline_content_is_an_integrity_error(
    engine: sa.Engine, service: ArtifactService
) -> None:
    result = service.write_artifact(type="note", content="the original")
    with engine.begin() as conn:
        # Only a superuser bypassing the immutability trigger can do this.
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        conn.execute(
            sa.text(
                "UPDATE work.artifact_versions SET inline_content_text = 'the tampered' "
                "WHERE artifact_id = :a"
            ),
            {"a": result.artifact_id},
        )
    with pytest.raises(ArtifactIntegrityError, match="sha256"):
        service.read_content(result.artifact_id)
    reader = service.open_content(result.artifact_id)
    assert reader.read(3) == b"the"  # the data streams; the check fires at the end
    with pytest.raises(ArtifactIntegrityError):
        reader.read()


# --- bad input ----------------------------------------------------------------------------


def test_unknown_artifacts_and_versions_are_not_found(service: ArtifactService) -> None:
    missing = "01J0000000000000000000000Z"
    for call in (
        lambda: service.read_artifact(missing),
        lambda: service.create_version(missing, content=b"x"),
        lambda: service.list_versions(missing),
        lambda: service.read_content(missing),
        lambda: service.link(missing, 1, link_type="x", run_id="r"),
    ):
        with pytest.raises(ArtifactNotFound, match=f"no artifact {missing}"):
            call()
    with pytest.raises(ArtifactNotFound, match="ULID"):
        service.read_artifact("../../etc/passwd")

    existing = service.write_artifact(type="x", content=b"x")
    for bad_version in (0, 2, 99):
        with pytest.raises(VersionNotFound, match=f"no version {bad_version} .latest is 1"):
            service.read_artifact(existing.artifact_id, bad_version)
    with pytest.raises(VersionNotFound):
        service.read_content(existing.artifact_id, 2)
    with pytest.raises(VersionNotFound):
        service.link(existing.artifact_id, 2, link_type="x", run_id="r")


@pytest.mark.parametrize("size", [100, INLINE_MAX + 100, 6 * 1024 * 1024])
def test_invalid_utf8_declared_as_text_is_refused_and_leaves_nothing(
    engine: sa.Engine, service: ArtifactService, artifact_store: BlobStore, size: int
) -> None:
    data = b"a" * (size - 2) + b"\xc3\x28"  # an invalid two-byte sequence at the end
    before = count_rows(engine)
    with pytest.raises(InvalidArtifact, match=r"text/plain is not valid UTF-8 \(near byte"):
        service.write_artifact(type="note", content=data, mime_type="text/plain")
    truncated = b"a" * (size - 1) + b"\xc3"  # ends inside a character
    with pytest.raises(InvalidArtifact, match="ends inside a multi-byte character"):
        service.write_artifact(type="note", content=truncated, mime_type="text/plain")
    with pytest.raises(InvalidArtifact, match="NUL byte at offset 3"):
        service.write_artifact(type="note", content=b"abc\x00" + b"a" * size, mime_type="text/csv")
    assert count_rows(engine) == before
    assert all_keys(artifact_store) == []  # no staged upload left behind


def test_a_non_utf8_charset_is_refused(service: ArtifactService) -> None:
    with pytest.raises(InvalidArtifact, match="must be UTF-8"):
        service.write_artifact(type="x", content=b"x", mime_type="text/plain; charset=latin-1")


@pytest.mark.parametrize(
    "artifact_type", ["../etc", "a/b", "..", ".hidden", "", "x" * 101, "a\x00b", "a b"]
)
def test_a_type_that_could_leave_its_key_prefix_is_refused(
    engine: sa.Engine, service: ArtifactService, artifact_type: str
) -> None:
    before = count_rows(engine)
    with pytest.raises(InvalidArtifact, match="type"):
        service.write_artifact(type=artifact_type, content=os.urandom(INLINE_MAX))
    assert count_rows(engine) == before


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("mime_type", "not a mime", "type/subtype"),
        ("tags", ["ok", ""], "tags.1"),
        ("owner_item_id", "a\x00b", "NUL"),
        ("extracted_fields", {"k": "a\x00b"}, "NUL"),
    ],
)
def test_bad_options_are_refused_before_anything_is_read(
    service: ArtifactService, field: str, value: Any, message: str
) -> None:
    class Unreadable(io.RawIOBase):
        def read(self, *_: Any) -> bytes:
            raise AssertionError("the content was read")

    with pytest.raises(InvalidArtifact, match=message):
        service.write_artifact(type="x", stream=Unreadable(), **{field: value})


def test_a_text_mode_stream_is_refused(service: ArtifactService) -> None:
    with pytest.raises(InvalidArtifact, match="binary mode"):
        service.write_artifact(type="x", stream=io.StringIO("text"))  # type: ignore[arg-type]


# --- links, listing, URLs -----------------------------------------------------------------


def test_links(engine: sa.Engine, service: ArtifactService) -> None:
    result = service.write_artifact(type="x", content=b"linked")
    link = service.link(
        result.artifact_id,
        1,
        link_type="produced_by",
        run_id="run-9",
        item_id="item-3",
        event_id="01J00000000000000000000000",
    )
    assert (link.artifact_id, link.version, link.run_id) == (result.artifact_id, 1, "run-9")
    with engine.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT link_type, item_id FROM work.artifact_links WHERE link_id = :i"),
            {"i": link.link_id},
        ).one()
    assert tuple(stored) == ("produced_by", "item-3")
    with pytest.raises(InvalidArtifact, match="at least one of"):
        service.link(result.artifact_id, 1, link_type="orphan")
    with pytest.raises(InvalidArtifact, match="event_id"):
        service.link(result.artifact_id, 1, link_type="x", event_id="not-a-ulid")


def test_listing_filters_and_pages(service: ArtifactService) -> None:
    kind = f"listing-{uuid.uuid4().hex[:8]}"
    made = [
        service.write_artifact(
            type=kind,
            content=f"n{i}",
            tags=["team=a", f"n={i}"] if i % 2 else ["team=b"],
            owner_item_id="item-1" if i < 3 else "item-2",
        ).artifact_id
        for i in range(5)
    ]
    newest_first = made[::-1]
    pages, cursor = [], None
    while True:
        page = service.list_artifacts(type=kind, limit=2, cursor=cursor)
        pages.append([a.artifact_id for a in page.items])
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == [newest_first[0:2], newest_first[2:4], newest_first[4:]]
    team_a = service.list_artifacts(type=kind, tags=["team=a"]).items
    assert [a.artifact_id for a in team_a] == [made[3], made[1]]
    assert [
        a.artifact_id for a in service.list_artifacts(type=kind, tags=["team=a", "n=3"]).items
    ] == [made[3]]
    item_2 = service.list_artifacts(type=kind, owner_item_id="item-2").items
    assert {a.artifact_id for a in item_2} == {made[3], made[4]}
    with pytest.raises(InvalidArtifact, match="limit"):
        service.list_artifacts(limit=0)


def test_presigned_url_of_an_offloaded_version(backend: str, service: ArtifactService) -> None:
    import httpx

    data = os.urandom(INLINE_MAX + 5)
    result = service.write_artifact(type="blob", content=data)
    url = service.presigned_url(result.artifact_id, expires_in=120)
    if backend == "s3":
        assert httpx.get(url).content == data
    else:
        assert Path(url.removeprefix("file://")).read_bytes() == data
    inline = service.write_artifact(type="blob", content=b"small")
    with pytest.raises(InvalidArtifact, match="inline"):
        service.presigned_url(inline.artifact_id)
