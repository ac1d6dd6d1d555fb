"""The service's inputs and outputs, as pydantic models.

Inputs are validated before anything is read, uploaded or written, so a bad ``type``,
tag or mime type fails at the call site with :class:`InvalidArtifact` naming the field
(never a database error halfway through an upload). Outputs are frozen snapshots of rows.

The input rules, here and nowhere else (docs/architecture.md, "Input rules", explains them):

* **type**: 1-100 ASCII letters, digits, ``.``, ``_``, ``-``, starting with a letter or
  digit (:data:`TYPE_PATTERN`), not ending with ``.``, and not a Windows device name
  (``CON``, ``NUL``, ``COM1``, … also before an extension, any case): it is a folder
  name in the file store and a key segment in S3, so it must mean the same folder on
  every file system a store or a copy of it may live on. ``a..b`` is fine: it is one
  segment, never ``..``.
* **tags**: 1-500 characters of one-line text (no control characters: tags are labels
  shown one per line or joined in tables). ``=``, ``,``, ``/`` and ``..`` are ordinary
  characters: tags are only stored in jsonb and compared exactly, never split and never
  part of a key or path. ``k=v`` is a convention, not a syntax.
* **every text field** (type, tags, owners, link fields, mime type, preview) and every
  string, key and number of ``extracted_fields`` must be storable in Postgres ``text`` /
  ``jsonb``: no NUL, no lone surrogate, finite numbers, integers within 64 bits, nesting
  under 32 levels. That screening is the events' own
  (:func:`sdk.telemetry.values.find_unsafe_value`), so both refuse exactly the same values.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    field_validator,
    model_validator,
)

from sdk.artifacts.content import check_charset, normalise_mime
from sdk.artifacts.errors import InvalidArtifact
from sdk.artifacts.keys import portability_problem
from sdk.telemetry.values import UnsafeValue, find_unsafe_value, printable

ULID_PATTERN = r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
# What `type` may be on input: one key segment, no dots or dashes at the start.
TYPE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
StorageBackendName = Literal["inline", "file", "s3"]


def _storable(value: object) -> object:
    """Refuse a string Postgres cannot store (NUL, lone surrogate), with a clear message.

    Runs before pydantic's own string check, whose message for a lone surrogate ("unable
    to parse raw data as a unicode string") does not say what is wrong.
    """
    if isinstance(value, str):
        problem = find_unsafe_value(value)
        if problem is not None:
            raise problem
    return value


def _one_line(value: str) -> str:
    """Tags are labels, listed one per line and joined in tables: no line breaks in them."""
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value):
        raise ValueError("must not contain control characters (tab, newline, …)")
    return value


def _portable_type(value: str) -> str:
    problem = portability_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


Storable = BeforeValidator(_storable)
Text = Annotated[str, Storable, Field(min_length=1, max_length=500)]
Tag = Annotated[str, Storable, Field(min_length=1, max_length=500), AfterValidator(_one_line)]
ArtifactType = Annotated[str, Storable, Field(pattern=TYPE_PATTERN), AfterValidator(_portable_type)]
Ulid = Annotated[str, Field(pattern=ULID_PATTERN)]
M = TypeVar("M", bound=BaseModel)


def is_valid_type(artifact_type: str) -> bool:
    """True when ``artifact_type`` is acceptable as an artifact's ``type`` on input."""
    try:
        _TypeCheck(type=artifact_type)
    except ValidationError:
        return False
    return True


def validated(model: type[M], **values: Any) -> M:
    """Build ``model`` or raise InvalidArtifact listing every problem by field."""
    try:
        return model(**values)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            loc, msg = e["loc"], e["msg"]
            unsafe = e.get("ctx", {}).get("error")
            if isinstance(unsafe, UnsafeValue):  # from the screening: say where inside
                loc, msg = (*loc, *unsafe.loc), unsafe.message
            elif e["type"] == "value_error":
                msg = msg.removeprefix("Value error, ")
            problems.append(f"{'.'.join(printable(p) for p in loc) or 'input'}: {msg}")
        raise InvalidArtifact("; ".join(problems)) from exc


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VersionOptions(_Input):
    """What a caller may say about one version besides its content."""

    mime_type: Annotated[str, Storable] | None = None
    preview_text: Annotated[str, Storable, Field(max_length=100_000)] | None = None
    extracted_fields: dict[str, JsonValue] | None = None

    @field_validator("mime_type")
    @classmethod
    def _mime(cls, value: str | None) -> str | None:
        if value is None:
            return None
        mime = normalise_mime(value)
        check_charset(mime)
        return mime

    @field_validator("extracted_fields", mode="before")
    @classmethod
    def _jsonb_can_hold(cls, value: object) -> object:
        """NaN, Infinity, huge integers and lone surrogates would pass pydantic and then
        fail in Postgres with its own message; say which field it is instead."""
        problem = find_unsafe_value(value) if isinstance(value, dict) else None
        if problem is not None:
            raise problem  # validated() appends its location to the field's
        return value


class NewArtifact(VersionOptions):
    """A new artifact: its first version's options plus the artifact's own attributes."""

    type: ArtifactType
    tags: list[Tag] = Field(default_factory=list, max_length=100)
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
    link_type: Annotated[str, Storable, Field(min_length=1, max_length=100)]
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

    # Looser than on input: rows written before a rule was tightened stay findable.
    type: Annotated[str, Storable, Field(pattern=TYPE_PATTERN)] | None = None
    tags: list[Text] = Field(default_factory=list)
    owner_item_id: Text | None = None
    owner_run_id: Text | None = None
    limit: int = Field(default=100, ge=1, le=1000)
    cursor: Ulid | None = None


class _TypeCheck(_Input):
    type: ArtifactType


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
