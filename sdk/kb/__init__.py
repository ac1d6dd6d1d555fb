"""Knowledge base: artifact versions as searchable chunks.

    import sdk.kb

    for hit in sdk.kb.search('"retry budget" -draft', k=5, tags=["team=infra"]):
        print(hit.artifact_id, hit.version, hit.score, hit.marked("**", "**"))

Ingestion runs in Dagster (asset ``kb_ingestion``) or from ``wdp kb reindex``; see
docs/architecture.md ("Knowledge base").
"""

from __future__ import annotations

from collections.abc import Sequence

from sdk.kb.embedders import Embedder
from sdk.kb.errors import EmbeddingsUnavailable, InvalidQuery, KbError, KbUnavailable
from sdk.kb.ingest import BatchReport, IngestOptions, IngestReport
from sdk.kb.search import SearchHit
from sdk.kb.service import (
    KbStats,
    KnowledgeBase,
    default_knowledge_base,
    set_default_knowledge_base,
)

__all__ = [
    "BatchReport",
    "Embedder",
    "EmbeddingsUnavailable",
    "IngestOptions",
    "IngestReport",
    "InvalidQuery",
    "KbError",
    "KbStats",
    "KbUnavailable",
    "KnowledgeBase",
    "SearchHit",
    "default_knowledge_base",
    "search",
    "set_default_knowledge_base",
]


def search(
    query: str,
    *,
    k: int = 10,
    type: str | None = None,
    tags: Sequence[str] | None = None,
    artifact_id: str | None = None,
    all_versions: bool = False,
) -> list[SearchHit]:
    """Search the knowledge base configured by the settings (see :class:`KnowledgeBase`)."""
    return default_knowledge_base().search(
        query, k=k, type=type, tags=tags, artifact_id=artifact_id, all_versions=all_versions
    )
