"""Hostile input through the whole write path, on a real Postgres and both blob stores.

Each input is either refused with InvalidArtifact before anything is written (no row, no
blob) or accepted and shown to be harmless: the blob stays under the file store's root,
the tag comes back exactly as given.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from sdk.artifacts import ArtifactService, InvalidArtifact
from sdk.artifacts.stores import BlobStore, FileStore
from sdk.cli.main import app
from sdk.settings import reset_settings_cache
from tests.integration.artifact_support import INLINE_MAX, all_keys, count_rows

pytest_plugins = ["tests.integration.artifact_fixtures"]

BIG = INLINE_MAX + 10  # offloaded: goes through the store


def _nothing_written(engine: sa.Engine, store: BlobStore, before: tuple[int, int]) -> None:
    assert count_rows(engine) == before
    assert all_keys(store) == []


@pytest.mark.parametrize(
    "content",
    ["a\ud800b", "x" * BIG + "\udc00", {"note": "a\ud800b"}],
    ids=["inline-text", "offloaded-text", "json-value"],
)
def test_content_with_a_lone_surrogate_is_refused_and_nothing_is_written(
    engine: sa.Engine, service: ArtifactService, artifact_store: BlobStore, content: Any
) -> None:
    before = count_rows(engine)
    with pytest.raises(InvalidArtifact, match="lone surrogate"):
        service.write_artifact(type="plan", content=content)
    _nothing_written(engine, artifact_store, before)

    first = service.write_artifact(type="plan", content="fine")
    with pytest.raises(InvalidArtifact, match="lone surrogate"):
        service.create_version(first.artifact_id, content=content)
    assert [v.version for v in service.list_versions(first.artifact_id)] == [1]


@pytest.mark.parametrize(
    ("kwargs", "where"),
    [
        ({"tags": ["team=\ud800"]}, "tags.0"),
        ({"owner_run_id": "run-\udfff"}, "owner_run_id"),
        ({"mime_type": "text/plain; name=\ud800"}, "mime_type"),
        ({"extracted_fields": {"title": "\ud800"}}, "extracted_fields.title"),
    ],
)
def test_other_fields_with_a_lone_surrogate_are_refused_naming_them(
    engine: sa.Engine,
    service: ArtifactService,
    artifact_store: BlobStore,
    kwargs: dict[str, Any],
    where: str,
) -> None:
    before = count_rows(engine)
    with pytest.raises(InvalidArtifact, match=f"^{where}: contains a lone surrogate"):
        service.write_artifact(type="plan", content=b"x" * BIG, **kwargs)
    _nothing_written(engine, artifact_store, before)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"a": float("nan")}, "extracted_fields.a: number must be finite"),
        ({"score": {"runs": [1.0, float("inf")]}}, "extracted_fields.score.runs.1: number must"),
        ({"n": 2**64}, "extracted_fields.n: integer does not fit in 64 bits"),
    ],
)
def test_extracted_fields_jsonb_cannot_hold_are_refused_in_validation(
    engine: sa.Engine,
    service: ArtifactService,
    artifact_store: BlobStore,
    fields: dict[str, Any],
    message: str,
) -> None:
    before = count_rows(engine)
    with pytest.raises(InvalidArtifact, match=f"^{message}") as caught:
        service.write_artifact(type="metrics", content=b"x" * BIG, extracted_fields=fields)
    assert "database" not in str(caught.value)  # ours, not Postgres' message
    _nothing_written(engine, artifact_store, before)

    first = service.write_artifact(type="metrics", content="v1")
    with pytest.raises(InvalidArtifact, match=f"^{message}"):
        service.create_version(first.artifact_id, content="v2", extracted_fields=fields)
    assert service.read_artifact(first.artifact_id).version == 1


def test_json_content_with_an_out_of_range_number_is_stored_as_exact_text(
    engine: sa.Engine, service: ArtifactService
) -> None:
    raw = b'{"a": 1e400, "b": 1}'
    result = service.write_artifact(type="data", content=raw, mime_type="application/json")
    with engine.connect() as conn:
        as_json = conn.execute(
            sa.text(
                "SELECT inline_content_json FROM work.artifact_versions WHERE artifact_id = :a"
            ),
            {"a": result.artifact_id},
        ).scalar_one()
    assert as_json is None  # jsonb cannot hold inf; the text keeps the exact bytes
    assert service.read_content(result.artifact_id) == raw


@pytest.mark.parametrize("artifact_type", ["CON", "nul.txt", "COM1", "plan."])
def test_types_that_windows_aliases_are_refused_before_the_store_is_used(
    engine: sa.Engine, service: ArtifactService, artifact_store: BlobStore, artifact_type: str
) -> None:
    before = count_rows(engine)
    with pytest.raises(InvalidArtifact, match=r"^type: "):
        service.write_artifact(type=artifact_type, content=b"x" * BIG)
    _nothing_written(engine, artifact_store, before)


def test_a_type_with_dots_inside_stays_one_folder_under_the_root(
    backend: str, service: ArtifactService, artifact_store: BlobStore, tmp_path: Path
) -> None:
    data = os.urandom(BIG)
    result = service.write_artifact(type="a..b", content=data, mime_type="application/octet-stream")
    assert result.storage_key is not None
    assert result.storage_key.startswith(f"artifacts/a..b/{result.artifact_id}/v1/")
    assert service.read_content(result.artifact_id) == data
    if backend == "file":
        assert isinstance(artifact_store, FileStore)
        root = artifact_store.root
        blob = root.joinpath(*result.storage_key.split("/"))
        assert blob.is_file()
        assert blob.resolve().is_relative_to(root)
        assert (root / "artifacts" / "a..b").is_dir()
        outside = [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_relative_to(root)]
        assert outside == []


HOSTILE_TAGS = ["../x", "a,b", "k=v=w", "=", "/etc/passwd", "[/]", "[bold]x"]


def test_hostile_tags_are_stored_verbatim_and_found_exactly(service: ArtifactService) -> None:
    kind = f"tagged-{uuid.uuid4().hex[:8]}"  # the database is shared by the module's tests
    tagged = service.write_artifact(type=kind, content="t", tags=HOSTILE_TAGS)
    other = service.write_artifact(type=kind, content="o", tags=["a", "b", "k=v"])
    assert service.read_artifact(tagged.artifact_id).tags == HOSTILE_TAGS
    for tag in HOSTILE_TAGS:
        found = service.list_artifacts(type=kind, tags=[tag]).items
        assert [a.artifact_id for a in found] == [tagged.artifact_id], tag
    # "a,b" is one tag, not two: it does not match an artifact tagged "a" and "b".
    both = service.list_artifacts(type=kind, tags=["a", "b"]).items
    assert [a.artifact_id for a in both] == [other.artifact_id]


@pytest.fixture
def file_cli_env(
    migrated_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    monkeypatch.setenv("DATABASE_URL", migrated_db_url)
    monkeypatch.setenv("WDP_DATA_DIR", str(tmp_path / "wdp"))
    monkeypatch.setenv("ARTIFACT_STORE", "file")
    reset_settings_cache()
    yield
    reset_settings_cache()


def test_the_cli_passes_each_tag_through_verbatim(file_cli_env: None, tmp_path: Path) -> None:
    """One ``--tag`` is one tag: never split at ``,`` or ``=``."""
    source = tmp_path / "note.txt"
    source.write_text("hello\n")
    args = ["artifacts", "put", str(source), "--type", "note"]
    for tag in HOSTILE_TAGS:
        args += ["--tag", tag]
    put = CliRunner().invoke(app, args, catch_exceptions=False)
    assert put.exit_code == 0, put.stderr
    stored = json.loads(put.stdout)
    assert stored["tags"] == HOSTILE_TAGS

    shown = CliRunner().invoke(app, ["artifacts", "show", stored["artifact_id"]])
    assert json.loads(shown.stdout)["tags"] == HOSTILE_TAGS
    listed = CliRunner().invoke(app, ["artifacts", "ls", "--tag", "a,b", "--tag", "k=v=w"])
    assert listed.exit_code == 0, listed.stderr
    assert stored["artifact_id"] in listed.stdout
    # Rich markup in a tag is shown as text, and "a,b" is not mistaken for two tags.
    assert json.dumps(HOSTILE_TAGS) in listed.stdout.replace("\n", "")

    refused = CliRunner().invoke(app, ["artifacts", "put", str(source), "--type", "CON"])
    assert isinstance(refused.exception, InvalidArtifact)  # `wdp` prints it as one line
    assert "reserved device name" in str(refused.exception)
