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

TSQUERY = f"websearch_to_tsquery('{KB_TEXT_SEARCH_CONFIG}', :query)"

RRF_K = 60
MAX_K = 1000
MAX_QUERY_CHARS = 4000
# How many candidates each ranking contributes to the fusion.
MIN_CANDIDATES = 50

# Control characters cannot occur in chunks (extraction drops them), so these marks are
# unambiguous; hits carry plain snippets plus match offsets (see SearchHit.marked).
START_MARK, STOP_MARK = "\x02", "\x03"
SNIPPET_OPTIONS = (
    f"StartSel={START_MARK}, StopSel={STOP_MARK}, MaxWords=35, MinWords=12, MaxFragments=2"
)


@dataclass(frozen=True)
class SearchHit:
    """One matching chunk of one artifact version."""

    artifact_id: str
    version: int
    chunk_text: str
    snippet: str  # the best fragments of the chunk, plain text
    highlights: tuple[tuple[int, int], ...]  # [start, end) of matched words in snippet
    score: float  # ts_rank_cd, or the RRF score in hybrid search
    type: str
    title: str | None
    ordinal: int
    start_char: int
    end_char: int

    def marked(self, start: str = "**", end: str = "**") -> str:
        """The snippet with each matched word between ``start`` and ``end``."""
        parts: list[str] = []
        pos = 0
        for lo, hi in self.highlights:
            parts += [self.snippet[pos:lo], start, self.snippet[lo:hi], end]
            pos = hi
        parts.append(self.snippet[pos:])
        return "".join(parts)


def parse_snippet(marked: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    """ts_headline's output as plain text and the offsets of its marked words."""
    plain: list[str] = []
    spans: list[tuple[int, int]] = []
    size = 0
    for n, part in enumerate(marked.split(START_MARK)):
        if n == 0:
            plain.append(part)
            size += len(part)
            continue
        word, _, rest = part.partition(STOP_MARK)
        spans.append((size, size + len(word)))
        plain += [word, rest]
        size += len(word) + len(rest)
    return "".join(plain), tuple(spans)


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
    # Ranking reads every match's row; a word found in most chunks would make search
    # time grow with the knowledge base. So at most :rank_pool matches (the first the
    # index yields) are ranked: KB_SEARCH_RANK_POOL, see docs/architecture.md.
    return f"""
SELECT m.chunk_id, ts_rank_cd(m.tsv, q.tsq) AS score
FROM (
  SELECT c.chunk_id, c.tsv
  FROM kb.chunks c JOIN kb.documents d ON d.document_id = c.document_id, q
  WHERE c.tsv @@ q.tsq{where}
  LIMIT :rank_pool
) m, q
ORDER BY score DESC, m.chunk_id
LIMIT :candidates"""


def _vector_ranking(where: str, vector_schema: str) -> str:
    schema = '"' + vector_schema.replace('"', '""') + '"'
    return f"""
SELECT c.chunk_id, c.embedding OPERATOR({schema}.<=>) CAST(:vector AS {schema}.vector)
       AS distance
FROM kb.chunks c JOIN kb.documents d ON d.document_id = c.document_id
WHERE d.embedding_model = :model AND {schema}.vector_dims(c.embedding) = :dims{where}
ORDER BY distance, c.chunk_id
LIMIT :candidates"""


def _hits_sql(ranked: str) -> str:
    return f"""
WITH q AS (SELECT {TSQUERY} AS tsq),
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
    vector_schema: str = "public",
    rank_pool: int = 2000,
) -> list[SearchHit]:
    """The ``k`` best chunks; hybrid when ``embedder`` is given (the caller checked that
    the embedding column exists and found pgvector's schema)."""
    if not query.strip():
        return []
    params: dict[str, Any] = {"query": query, "k": k, "rank_pool": rank_pool}
    where = _filter_sql(filters, params)
    if embedder is None:
        params["candidates"] = k
        sql = _hits_sql(_text_ranking(where))
    else:
        params["candidates"] = max(MIN_CANDIDATES, 5 * k)
        params["model"] = embedder.name
        params["dims"] = embedder.dimensions
        params["vector"] = vector_literal(embedder.embed([query])[0])
        fused = f"""
SELECT chunk_id, sum(1.0 / ({RRF_K} + rank)) AS score FROM (
  SELECT chunk_id, row_number() OVER (ORDER BY score DESC, chunk_id) AS rank
  FROM ({_text_ranking(where)}) t
  UNION ALL
  SELECT chunk_id, row_number() OVER (ORDER BY distance, chunk_id) AS rank
  FROM ({_vector_ranking(where, vector_schema)}) v
) both_rankings GROUP BY chunk_id ORDER BY score DESC, chunk_id LIMIT :k"""
        sql = _hits_sql(fused)
    rows = conn.execute(sa.text(sql), params).fetchall()
    hits = []
    for r in rows:
        snippet, highlights = parse_snippet(r.snippet)
        hits.append(
            SearchHit(
                artifact_id=r.artifact_id,
                version=r.version,
                chunk_text=r.text,
                snippet=snippet,
                highlights=highlights,
                score=float(r.score),
                type=r.type,
                title=r.title,
                ordinal=r.ordinal,
                start_char=r.start_char,
                end_char=r.end_char,
            )
        )
    return hits
