"""The service's inputs and outputs, as pydantic models.

Inputs are validated before anything is read, uploaded or written, so a bad ``type``,
tag or mime type fails at the call site with :class:`InvalidArtifact` naming the field
(never a database error halfway through an upload). Outputs are frozen snapshots of rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    field_validator,
    model_validator,
)

from sdk.artifacts.content import check_charset, jsonb_can_hold, normalise_mime
from sdk.artifacts.errors import InvalidArtifact
from sdk.artifacts.keys import TYPE_PATTERN

ULID_PATTERN = r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
StorageBackendName = Literal["inline", "file", "s3"]


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str, Field(min_length=1, max_length=500), AfterValidator(_no_nul)]
Ulid = Annotated[str, Field(pattern=ULID_PATTERN)]
M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], **values: Any) -> M:
    """Build ``model`` or raise InvalidArtifact listing every problem by field."""
    try:
        return model(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidArtifact(problems) from exc


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VersionOptions(_Input):
    """What a caller may say about one version besides its content."""

    mime_type: str | None = None
    preview_text: Annotated[str, Field(max_length=100_000), AfterValidator(_no_nul)] | None = None
    extracted_fields: dict[str, JsonValue] | None = None

    @field_validator("mime_type")
    @classmethod
    def _mime(cls, value: str | None) -> str | None:
        if value is None:
            return None
        mime = normalise_mime(value)
        check_charset(mime)
        return mime

    @field_validator("extracted_fields")
    @classmethod
    def _storable(cls, value: dict[str, JsonValue] | None) -> dict[str, JsonValue] | None:
        if value is not None and not jsonb_can_hold(value):
            raise ValueError("strings must not contain NUL characters or lone surrogates")
        return value


class NewArtifact(VersionOptions):
    """A new artifact: its first version's options plus the artifact's own attributes."""

    type: Annotated[str, Field(pattern=TYPE_PATTERN)]
    tags: list[Text] = Field(default_factory=list, max_length=100)
    owner_item_id: Text | None = None
    owner_run_id: Text | None = None

    @field_validator("tags")
    @classmethod
    def _dedupe(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class LinkSpec(_Input):
    """A link from one artifact version to what it belongs to."""

    artifact_id: Ulid
    version: int = Field(ge=1)
    link_type: Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_no_nul)]
    item_id: Text | None = None
    run_id: Text | None = None
    event_id: Ulid | None = None
    workflow_name: Text | None = None

    @model_validator(mode="after")
    def _has_target(self) -> LinkSpec:
        if not (self.item_id or self.run_id or self.event_id or self.workflow_name):
            raise ValueError("give at least one of item_id, run_id, event_id, workflow_name")
        return self


class ArtifactQuery(_Input):
    """Filters of :meth:`ArtifactService.list_artifacts`; all given filters must match."""

    type: Annotated[str, Field(pattern=TYPE_PATTERN)] | None = None
    tags: list[Text] = Field(default_factory=list)
    owner_item_id: Text | None = None
    owner_run_id: Text | None = None
    limit: int = Field(default=100, ge=1, le=1000)
    cursor: Ulid | None = None


class _Output(BaseModel):
    model_config = ConfigDict(frozen=True)


class Artifact(_Output):
    """One artifact (all its versions share these)."""

    artifact_id: str
    type: str
    latest_version: int
    tags: list[str]
    owner_item_id: str | None
    owner_run_id: str | None
    created_at: datetime
    updated_at: datetime


class ArtifactVersion(_Output):
    """One immutable version's metadata, with its artifact's attributes as of the read.

    Content is not part of it: use ``open_content`` / ``read_content``.
    """

    artifact_id: str
    version: int
    type: str
    mime_type: str
    size_bytes: int
    content_hash: str
    storage_backend: StorageBackendName
    storage_key: str | None
    preview_text: str | None
    extracted_fields: dict[str, JsonValue]
    is_kb_ingested: bool
    created_at: datetime
    latest_version: int
    tags: list[str]
    owner_item_id: str | None
    owner_run_id: str | None

    @property
    def inline(self) -> bool:
        """True when the content is kept in Postgres (no blob)."""
        return self.storage_backend == "inline"


class WriteResult(ArtifactVersion):
    """The version a write produced, or - ``deduplicated=True`` - the existing latest
    version whose content was identical, in which case nothing was written."""

    deduplicated: bool = False


class ArtifactPage(_Output):
    """One page of :meth:`ArtifactService.list_artifacts`, newest first."""

    items: list[Artifact]
    next_cursor: str | None = Field(
        description="Pass as cursor= for the next page; None on the last page."
    )


class ArtifactLink(_Output):
    """A stored link."""

    link_id: int
    artifact_id: str
    version: int
    link_type: str
    item_id: str | None
    run_id: str | None
    event_id: str | None
    workflow_name: str | None
    created_at: datetime


class GcReport(_Output):
    """What a garbage collection found and (unless ``dry_run``) removed."""

    dry_run: bool
    scanned: int = 0
    referenced: int = 0
    too_young: int = 0
    garbage_keys: list[str] = Field(default_factory=list)
    garbage_bytes: int = 0
    aborted_uploads: int = 0
