"""The input rules of sdk/artifacts/models.py: what a type, a tag and a text field may be.

Every refusal is an InvalidArtifact that names the field (and the place inside
``extracted_fields``), in a message that is itself valid UTF-8.
"""

from __future__ import annotations

import posixpath
from typing import Any

import pytest

from sdk.artifacts.content import inline_form
from sdk.artifacts.errors import InvalidArtifact
from sdk.artifacts.intake import Source
from sdk.artifacts.keys import object_key, portability_problem, type_segment
from sdk.artifacts.models import (
    ArtifactQuery,
    LinkSpec,
    NewArtifact,
    VersionOptions,
    is_valid_type,
    validated,
)

ID = "01J9Z3K8Q4W6X2Y7T5R1V0N8M3"
LONE = "a\ud800b"
DEEP: Any = 1
for _ in range(40):
    DEEP = [DEEP]


def refused(model: type[Any], **values: Any) -> str:
    with pytest.raises(InvalidArtifact) as caught:
        validated(model, **values)
    message = str(caught.value)
    message.encode("utf-8")  # the message itself never carries the surrogate
    return message


# --- 10: lone surrogates anywhere that goes into Postgres text or jsonb -------------------


@pytest.mark.parametrize(
    ("model", "values", "where"),
    [
        (NewArtifact, {"type": LONE}, "type"),
        (NewArtifact, {"type": "plan", "tags": ["ok", LONE]}, "tags.1"),
        (NewArtifact, {"type": "plan", "owner_item_id": LONE}, "owner_item_id"),
        (NewArtifact, {"type": "plan", "owner_run_id": LONE}, "owner_run_id"),
        (NewArtifact, {"type": "plan", "mime_type": f"text/plain; name={LONE}"}, "mime_type"),
        (NewArtifact, {"type": "plan", "preview_text": LONE}, "preview_text"),
        (VersionOptions, {"extracted_fields": {"title": LONE}}, "extracted_fields.title"),
        (VersionOptions, {"extracted_fields": {LONE: 1}}, "extracted_fields"),
        (VersionOptions, {"extracted_fields": {"a": [{"b": LONE}]}}, "extracted_fields.a.0.b"),
        (LinkSpec, {"link_type": LONE, "item_id": "i"}, "link_type"),
        (LinkSpec, {"link_type": "out", "item_id": LONE}, "item_id"),
        (LinkSpec, {"link_type": "out", "run_id": LONE}, "run_id"),
        (LinkSpec, {"link_type": "out", "workflow_name": LONE}, "workflow_name"),
        (ArtifactQuery, {"tags": [LONE]}, "tags.0"),
        (ArtifactQuery, {"owner_run_id": LONE}, "owner_run_id"),
    ],
)
def test_a_lone_surrogate_is_refused_naming_the_field(
    model: type[Any], values: dict[str, Any], where: str
) -> None:
    if model is LinkSpec:
        values = {"artifact_id": ID, "version": 1, **values}
    message = refused(model, **values)
    assert message.startswith(f"{where}: ") or f"{where}." in message, message
    assert "lone surrogate" in message


@pytest.mark.parametrize(
    "content", [LONE, "x" * 2_000_000 + "\udfff", {"k": LONE}, {LONE: 1}, [1, [LONE]]]
)
def test_content_with_a_lone_surrogate_is_refused_before_anything_is_read(content: Any) -> None:
    with pytest.raises(InvalidArtifact, match=r"lone surrogate .*not valid Unicode text"):
        Source.of(content=content, stream=None, path=None)


def test_nul_is_refused_with_the_same_screening() -> None:
    assert "NUL" in refused(NewArtifact, type="plan", tags=["a\x00b"])
    assert "extracted_fields.k" in refused(VersionOptions, extracted_fields={"k": "\x00"})


# --- 11: numbers jsonb cannot hold, refused in validation ---------------------------------


@pytest.mark.parametrize(
    ("fields", "where", "what"),
    [
        ({"a": float("nan")}, "extracted_fields.a", "finite"),
        ({"a": float("inf")}, "extracted_fields.a", "finite"),
        ({"a": {"b": [1, float("-inf")]}}, "extracted_fields.a.b.1", "finite"),
        ({"big": 2**63}, "extracted_fields.big", "64 bits"),
        ({"small": -(2**63) - 1}, "extracted_fields.small", "64 bits"),
        ({"deep": DEEP}, "extracted_fields.deep." + ".".join(["0"] * 31), "nesting deeper"),
    ],
)
def test_numbers_jsonb_cannot_hold_are_refused_naming_the_path(
    fields: dict[str, Any], where: str, what: str
) -> None:
    message = refused(VersionOptions, extracted_fields=fields)
    assert message.startswith(f"{where}: "), message
    assert what in message


def test_the_largest_storable_numbers_pass() -> None:
    fields = {"max": 2**63 - 1, "min": -(2**63), "f": 1.5e308, "neg": -0.0}
    assert validated(VersionOptions, extracted_fields=fields).extracted_fields == fields


def test_json_content_with_a_number_beyond_float_is_kept_as_text_only() -> None:
    # json.loads turns 1e400 into inf, which jsonb refuses: the exact text still holds it.
    raw = b'{"a": 1e400}'
    form = inline_form(raw, mime_type="application/json", head_text=raw.decode())
    assert not form.has_json
    assert form.text == raw.decode()


# --- 13: types and tags -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hostile", "why"),
    [
        ("CON", "reserved device name"),
        ("con", "reserved device name"),
        ("Nul", "reserved device name"),
        ("COM1", "reserved device name"),
        ("lpt9", "reserved device name"),
        ("nul.txt", "reserved device name"),
        ("AUX.v2", "reserved device name"),
        ("plan.", "end with a dot"),
        ("a..", "end with a dot"),
        ("..", "pattern"),
        ("a b", "pattern"),
        ("plan ", "pattern"),
        ("../x", "pattern"),
        ("a/b", "pattern"),
        ("a\\b", "pattern"),
    ],
)
def test_types_that_are_not_one_portable_folder_name_are_refused(hostile: str, why: str) -> None:
    message = refused(NewArtifact, type=hostile)
    assert message.startswith("type: ")
    assert why in message
    assert not is_valid_type(hostile)


@pytest.mark.parametrize("fine", ["a..b", "CONTROL", "console", "com10", "COM", "report.v2", "x_-"])
def test_types_that_merely_look_odd_are_accepted_and_unchanged_in_keys(fine: str) -> None:
    assert validated(NewArtifact, type=fine).type == fine
    key = object_key(
        artifact_type=fine, artifact_id=ID, version=1, content_hash="a" * 64, mime_type="x/y"
    )
    assert key.split("/")[1] == fine
    assert posixpath.normpath(key) == key


@pytest.mark.parametrize("legacy", ["CON", "nul.txt", "plan.", "a..", "com1.x.", "..."])
def test_the_key_builder_makes_legacy_types_portable_on_its_own(legacy: str) -> None:
    """Rows written before the rule (or by SQL) still get a portable key segment."""
    segment = type_segment(legacy)
    assert portability_problem(segment) is None
    assert segment not in ("", ".", "..")
    assert not segment.startswith((".", "-"))


@pytest.mark.parametrize("tag", ["../x", "a,b", "k=v=w", "=", ",", "/abs/path", "..", "été ok"])
def test_tags_are_free_text_and_kept_verbatim(tag: str) -> None:
    assert validated(NewArtifact, type="plan", tags=[tag]).tags == [tag]


@pytest.mark.parametrize("tag", ["a\nb", "tab\there", "\x7f", "\x85next-line"])
def test_tags_are_one_line(tag: str) -> None:
    assert "control characters" in refused(NewArtifact, type="plan", tags=[tag])


def test_queries_still_find_types_and_tags_written_before_the_rules() -> None:
    query = validated(ArtifactQuery, type="CON", tags=["a\nb"])
    assert (query.type, query.tags) == ("CON", ["a\nb"])
