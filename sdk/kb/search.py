"""Search over chunks: full-text ranking, fused with vector ranking when embeddings exist.

The query goes through ``websearch_to_tsquery``, which accepts anything a person types
(quotes, ``-word``, ``OR``, unbalanced quotes) without a syntax error, and matches are
ranked by ``ts_rank_cd`` (cover density: terms close together rank higher). With an
embedder, the full-text and vector candidate lists are fused by Reciprocal Rank Fusion,
``score = Σ 1 / (60 + rank)``, which needs no score calibration between the two.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from sdk.db.schema import KB_TEXT_SEARCH_CONFIG
from sdk.kb.embedders import Embedder, vector_literal
from sdk.kb.errors import InvalidQuery

RRF_K = 60
MAX_K = 1000
MAX_QUERY_CHARS = 4000
# How many candidates each ranking contributes to the fusion.
MIN_CANDIDATES = 50

SNIPPET_OPTIONS = "StartSel=**, StopSel=**, MaxWords=35, MinWords=12, MaxFragments=2"


@dataclass(frozen=True)
class SearchHit:
    """One matching chunk of one artifact version."""

    artifact_id: str
    version: int
    chunk_text: str
    snippet: str  # matched words between ** … **
    score: float  # ts_rank_cd, or the RRF score in hybrid search
    type: str
    title: str | None
    ordinal: int
    start_char: int
    end_char: int


@dataclass(frozen=True)
class SearchFilters:
    type: str | None = None
    tags: Sequence[str] | None = None
    artifact_id: str | None = None
    all_versions: bool = False


def check_arguments(query: str, k: int, filters: SearchFilters) -> str:
    """The query as Postgres can take it, or InvalidQuery for arguments (never syntax)."""
    if not isinstance(query, str):
        raise InvalidQuery(f"query must be a string, not {type(query).__name__}")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InvalidQuery(f"k must be an integer from 1 to {MAX_K}, got {k!r}")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidQuery(f"query is {len(query)} characters; at most {MAX_QUERY_CHARS}")
    if filters.tags is not None and (
        isinstance(filters.tags, str) or not all(isinstance(t, str) for t in filters.tags)
    ):
        raise InvalidQuery("tags must be a list of strings")
    # Postgres text cannot hold NUL; a lone surrogate cannot be encoded at all.
    return query.replace("\x00", " ").encode("utf-8", "replace").decode("utf-8")


def _filter_sql(filters: SearchFilters, params: dict[str, Any]) -> str:
    clauses = []
    if not filters.all_versions:
        clauses.append("d.is_latest")
    if filters.type is not None:
        clauses.append("d.type = :type")
        params["type"] = filters.type
    if filters.tags:
        clauses.append("d.tags @> CAST(:tags AS jsonb)")
        params["tags"] = json.dumps(list(filters.tags))
    if filters.artifact_id is not None:
        clauses.append("d.artifact_id = :artifact_id")
        params["artifact_id"] = filters.artifact_id
    return "".join(f" AND {c}" for c in clauses)


def _text_ranking(where: str) -> str:
    return f"""
SELECT c.chunk_id, ts_rank_cd(c.tsv, q.tsq) AS score
FROM kb.chunks c JOIN kb.documents d ON d.document_id = c.document_id, q
WHERE c.tsv @@ q.tsq{where}
ORDER BY score DESC, c.chunk_id
LIMIT :candidates"""


def _vector_ranking(where: str) -> str:
    return f"""
SELECT c.chunk_id, c.embedding <=> CAST(:vector AS vector) AS distance
FROM kb.chunks c JOIN kb.documents d ON d.document_id = c.document_id
WHERE d.embedding_model = :model AND c.embedding IS NOT NULL{where}
ORDER BY distance, c.chunk_id
LIMIT :candidates"""


def _hits_sql(ranked: str) -> str:
    return f"""
WITH q AS (SELECT websearch_to_tsquery('{KB_TEXT_SEARCH_CONFIG}', :query) AS tsq),
ranked AS ({ranked})
SELECT d.artifact_id, d.version, d.type, d.title, c.ordinal, c.start_char, c.end_char,
       c.text, ranked.score,
       ts_headline('{KB_TEXT_SEARCH_CONFIG}', c.text, q.tsq, '{SNIPPET_OPTIONS}') AS snippet
FROM ranked JOIN kb.chunks c USING (chunk_id)
JOIN kb.documents d ON d.document_id = c.document_id, q
ORDER BY ranked.score DESC, c.chunk_id"""


def search_chunks(
    conn: sa.Connection,
    query: str,
    *,
    k: int,
    filters: SearchFilters,
    embedder: Embedder | None = None,
) -> list[SearchHit]:
    """The ``k`` best chunks; hybrid when ``embedder`` is given (the caller checked that
    the embedding column exists)."""
    if not query.strip():
        return []
    params: dict[str, Any] = {"query": query, "k": k}
    where = _filter_sql(filters, params)
    if embedder is None:
        params["candidates"] = k
        sql = _hits_sql(_text_ranking(where))
    else:
        params["candidates"] = max(MIN_CANDIDATES, 5 * k)
        params["model"] = embedder.name
        params["vector"] = vector_literal(embedder.embed([query])[0])
        fused = f"""
SELECT chunk_id, sum(1.0 / ({RRF_K} + rank)) AS score FROM (
  SELECT chunk_id, row_number() OVER (ORDER BY score DESC, chunk_id) AS rank
  FROM ({_text_ranking(where)}) t
  UNION ALL
  SELECT chunk_id, row_number() OVER (ORDER BY distance, chunk_id) AS rank
  FROM ({_vector_ranking(where)}) v
) both_rankings GROUP BY chunk_id ORDER BY score DESC, chunk_id LIMIT :k"""
        sql = _hits_sql(fused)
    rows = conn.execute(sa.text(sql), params).fetchall()
    return [
        SearchHit(
            artifact_id=r.artifact_id,
            version=r.version,
            chunk_text=r.text,
            snippet=r.snippet,
            score=float(r.score),
            type=r.type,
            title=r.title,
            ordinal=r.ordinal,
            start_char=r.start_char,
            end_char=r.end_char,
        )
        for r in rows
    ]
