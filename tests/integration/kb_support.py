"""Helpers of the knowledge-base tests: a mixed set of artifact versions and row counts."""

from __future__ import annotations

import json
from dataclasses import dataclass

import sqlalchemy as sa

from sdk.artifacts import ArtifactService

# Inline below this; the tests' service puts anything larger in the blob store.
KB_INLINE_MAX = 2048

LONG_MARKDOWN = "# Incident review\n\n" + "\n\n".join(
    f"Paragraph {i}: the retry budget of the payment gateway was exhausted after "
    f"timeouts in region {i % 7}, and the circuit breaker opened too late."
    for i in range(60)
)
HTML = (
    "<html><head><title>Runbook</title><style>.x{color:red}</style>"
    "<script>var secretScript = 1;</script></head>"
    "<body><h1>Database failover</h1><p>Promote the <b>standby replica</b> "
    "and repoint the connection pooler.</p></body></html>"
)
JSON_DOC = {
    "title": "Deployment plan",
    "steps": [{"name": "canary", "traffic": 5}, {"name": "rollout", "traffic": 100}],
    "owner": {"team": "platform"},
}


@dataclass(frozen=True)
class Written:
    artifact_id: str
    version: int
    mime_type: str


def write_mixed_set(service: ArtifactService) -> dict[str, Written]:
    """Text, markdown (object-stored), JSON, HTML, a binary and an empty text."""

    def put(label: str, content: bytes, mime: str, type_: str, tags: list[str]) -> None:
        r = service.write_artifact(type=type_, content=content, mime_type=mime, tags=tags)
        written[label] = Written(r.artifact_id, r.version, mime)

    written: dict[str, Written] = {}
    put("text", b"Plain notes about the quarterly capacity review.", "text/plain", "note", [])
    put("markdown", LONG_MARKDOWN.encode(), "text/markdown", "report", ["team=payments"])
    put("json", json.dumps(JSON_DOC).encode(), "application/json", "plan", ["team=platform"])
    put("html", HTML.encode(), "text/html", "runbook", ["team=platform", "oncall"])
    put("binary", bytes(range(256)) * 16, "application/octet-stream", "blob", [])
    put("blank", b"   \n\n  ", "text/plain", "note", [])
    return written


def documents(engine: sa.Engine) -> dict[tuple[str, int], sa.Row[tuple[object, ...]]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT artifact_id, version, type, tags, title, chunk_count, skipped_reason, "
                "is_latest, embedding_model FROM kb.documents"
            )
        ).fetchall()
    return {(r.artifact_id, r.version): r for r in rows}


def chunk_count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM kb.chunks")).scalar_one())


def pending(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT count(*) FROM work.artifact_versions WHERE NOT is_kb_ingested")
            ).scalar_one()
        )
