"""The artifact versions linked to a run, as a sans-IO query (``sdk.db.queries``).

The run detail of the read API and ``wdp runs show`` list what a run produced or used.
The links live in the ``work`` schema, which only this package reads, so the query is
here: :func:`run_artifacts` is the statement and the shaping of its rows, and the caller
runs it on whatever connection it has (async in the API, sync in the CLI).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sdk.db.queries import Query, Row, Statement, single
from sdk.db.schema import WORK_SCHEMA, artifact_links, artifact_versions, artifacts

MAX_RUN_ARTIFACTS = 1000
# Of each version's stored preview text (never the blob): what a page shows of it.
PREVIEW_CHARS = 2000

_LINKS = f"{WORK_SCHEMA}.{artifact_links.name}"
_VERSIONS = f"{WORK_SCHEMA}.{artifact_versions.name}"
_ARTIFACTS = f"{WORK_SCHEMA}.{artifacts.name}"

# The title is the writer's, if it gave one (extracted_fields.title); never derived here.
RUN_ARTIFACTS_SQL = f"""
SELECT l.link_id, l.artifact_id, l.version, a.type, l.link_type, l.item_id, l.created_at,
       v.mime_type, v.size_bytes,
       CASE WHEN jsonb_typeof(v.extracted_fields->'title') = 'string'
            THEN v.extracted_fields->>'title' END AS title,
       left(v.preview_text, %(preview_chars)s) AS preview
FROM {_LINKS} l
JOIN {_VERSIONS} v ON v.artifact_id = l.artifact_id AND v.version = l.version
JOIN {_ARTIFACTS} a ON a.artifact_id = l.artifact_id
WHERE l.run_id = %(run_id)s
ORDER BY l.created_at, l.link_id
LIMIT %(limit)s
"""


@dataclass(frozen=True)
class RunArtifact:
    """One link of an artifact version to the run."""

    link_id: int
    artifact_id: str
    version: int
    type: str
    link_type: str
    item_id: str | None
    title: str | None
    mime_type: str
    size_bytes: int
    linked_at: datetime
    preview: str | None = None  # the start of the version's stored preview text

    def as_json(self) -> dict[str, Any]:
        return {
            "artifact_id": self.artifact_id,
            "version": self.version,
            "type": self.type,
            "link_type": self.link_type,
            "item_id": self.item_id,
            "title": self.title,
            "mime_type": self.mime_type,
            "size_bytes": self.size_bytes,
            "linked_at": self.linked_at.isoformat(),
        }


def run_artifacts_statement(run_id: str, *, limit: int = MAX_RUN_ARTIFACTS) -> Statement:
    return Statement(
        RUN_ARTIFACTS_SQL, {"run_id": run_id, "limit": limit, "preview_chars": PREVIEW_CHARS}
    )


def shape_run_artifacts(rows: Sequence[Row]) -> list[RunArtifact]:
    return [
        RunArtifact(
            link_id=r["link_id"],
            artifact_id=r["artifact_id"],
            version=r["version"],
            type=r["type"],
            link_type=r["link_type"],
            item_id=r["item_id"],
            title=r["title"],
            mime_type=r["mime_type"],
            size_bytes=r["size_bytes"],
            linked_at=r["created_at"],
            preview=r["preview"],
        )
        for r in rows
    ]


def run_artifacts(run_id: str, *, limit: int = MAX_RUN_ARTIFACTS) -> Query[list[RunArtifact]]:
    """The versions linked to ``run_id``, oldest link first (at most ``limit``)."""
    return single(run_artifacts_statement(run_id, limit=limit), shape_run_artifacts)
