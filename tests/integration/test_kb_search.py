"""Knowledge-base search on a real Postgres: full text, filters, versions, hybrid, CLI.

One corpus per module, ingested once; the tests only read it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import sqlalchemy as sa

import sdk.kb
from sdk.artifacts import ArtifactService
from sdk.artifacts.stores import FileStore
from sdk.kb import IngestOptions, InvalidQuery, KnowledgeBase
from tests.support.cli import run_wdp
from tests.support.embedders import HashingEmbedder

FILLER = "The quarterly report covers staffing, budgets and office moves. " * 6
DOCS = {
    # Both mention the three words; "close" has them together, "far" spread apart.
    "close": (
        "postmortem",
        ["team=db"],
        "The connection pool exhausted during failover. " + FILLER,
    ),
    "far": (
        "postmortem",
        ["team=web"],
        "A connection was slow. " + FILLER + " The pool grew. " + FILLER + " Exhausted staff.",
    ),
    "phrase": (
        "runbook",
        ["team=db", "oncall"],
        "To rotate credentials, run the vault rotation job.",
    ),
    "other": ("note", [], "Lunch menu: soup, bread and an apple."),
    "markup": ("note", [], "Use **bold** markdown for the deployment checklist."),
}


@pytest.fixture(scope="module")
def corpus(engine: sa.Engine, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Label -> artifact id; 'versioned' has v1 (zebra) and v2 (giraffe)."""
    store = FileStore(tmp_path_factory.mktemp("kb-store"))
    artifacts = ArtifactService(engine=engine, store=store, inline_max_bytes=1024)
    ids = {}
    for label, (type_, tags, text) in DOCS.items():
        ids[label] = artifacts.write_artifact(type=type_, content=text, tags=tags).artifact_id
    first = artifacts.write_artifact(type="note", content="the zebra crossing policy", tags=[])
    artifacts.create_version(artifact_id=first.artifact_id, content="the giraffe crossing policy")
    ids["versioned"] = first.artifact_id
    kb = KnowledgeBase(
        engine=engine, store=store, options=IngestOptions(), embedder=HashingEmbedder()
    )
    kb.ingest()
    return ids


@pytest.fixture(scope="module")
def kb(engine: sa.Engine, corpus: dict[str, str]) -> KnowledgeBase:
    """Full-text search over the corpus (no embedder)."""
    return KnowledgeBase(engine=engine, store=FileStore(Path("/nonexistent")))


def test_finds_a_phrase_and_highlights_it(kb: KnowledgeBase, corpus: dict[str, str]) -> None:
    hits = kb.search('"vault rotation"')
    assert [h.artifact_id for h in hits] == [corpus["phrase"]]
    hit = hits[0]
    assert "run the **vault** **rotation**" in hit.marked()
    assert [hit.snippet[a:b] for a, b in hit.highlights][-2:] == ["vault", "rotation"]
    assert hit.version == 1
    assert hit.type == "runbook"
    assert hit.score > 0
    assert "vault rotation job" in hit.chunk_text


def test_highlights_are_unambiguous_when_the_text_has_markdown_bold(
    kb: KnowledgeBase, corpus: dict[str, str]
) -> None:
    [hit] = kb.search("deployment")
    assert "bold** markdown for the deployment checklist" in hit.snippet
    assert "bold** markdown for the [deployment] checklist" in hit.marked("[", "]")
    assert [hit.snippet[a:b] for a, b in hit.highlights] == ["deployment"]


def test_a_small_rank_pool_bounds_the_work_not_the_answer_shape(
    engine: sa.Engine, corpus: dict[str, str]
) -> None:
    pooled = KnowledgeBase(engine=engine, store=FileStore(Path("/x")), rank_pool=1)
    hits = pooled.search("quarterly report", k=5)  # in both "close" and "far"
    assert len(hits) == 1
    assert hits[0].artifact_id in {corpus["close"], corpus["far"]}
    assert [h.artifact_id for h in pooled.search('"vault rotation"')] == [corpus["phrase"]]


def test_ranks_the_closer_match_first(kb: KnowledgeBase, corpus: dict[str, str]) -> None:
    hits = kb.search("connection pool exhausted")
    assert [h.artifact_id for h in hits] == [corpus["close"], corpus["far"]]
    assert hits[0].score > hits[1].score


def test_filters_by_type_tags_and_artifact(kb: KnowledgeBase, corpus: dict[str, str]) -> None:
    assert [
        h.artifact_id for h in kb.search("connection", type="postmortem", tags=["team=web"])
    ] == [corpus["far"]]
    assert kb.search("connection", type="runbook") == []
    assert [h.artifact_id for h in kb.search("rotation", tags=["team=db", "oncall"])] == [
        corpus["phrase"]
    ]
    assert kb.search("rotation", tags=["team=db", "nope"]) == []
    assert [h.artifact_id for h in kb.search("connection", artifact_id=corpus["close"])] == [
        corpus["close"]
    ]


def test_returns_only_the_latest_version_unless_asked(
    kb: KnowledgeBase, corpus: dict[str, str]
) -> None:
    assert kb.search("zebra") == []
    latest = kb.search("crossing policy")
    assert [(h.artifact_id, h.version) for h in latest] == [(corpus["versioned"], 2)]
    every = kb.search("crossing policy", all_versions=True)
    assert sorted((h.artifact_id, h.version) for h in every) == [
        (corpus["versioned"], 1),
        (corpus["versioned"], 2),
    ]
    assert [h.version for h in kb.search("zebra", all_versions=True)] == [1]


@pytest.mark.parametrize(
    "query",
    [
        '"unbalanced quote',
        "connection -staff",
        "pool OR vault",
        '""',
        "-",
        "OR",
        "!!! ::: &&& ||| (((",
        "'; DROP TABLE kb.chunks; --",
        "nul\x00byte",
        "lone \ud800 surrogate",
        "ünïcödé 日本語",
        "   ",
        "",
        "the and of",  # stop words only
    ],
)
@pytest.mark.parametrize("hybrid", [False, True], ids=["full-text", "hybrid"])
def test_user_syntax_never_errors(
    engine: sa.Engine, corpus: dict[str, str], query: str, hybrid: bool
) -> None:
    kb = KnowledgeBase(
        engine=engine, store=FileStore(Path("/x")), embedder=HashingEmbedder() if hybrid else None
    )
    hits = kb.search(query)
    assert all(h.artifact_id in corpus.values() for h in hits)
    if not query.strip():
        assert hits == []


def test_query_operators_mean_what_they_say(kb: KnowledgeBase, corpus: dict[str, str]) -> None:
    assert {h.artifact_id for h in kb.search("pool OR vault")} == {
        corpus["close"],
        corpus["far"],
        corpus["phrase"],
    }
    assert [h.artifact_id for h in kb.search("connection -staff")] == [corpus["close"]]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "k must be"),
        ({"k": 1001}, "k must be"),
        ({"k": True}, "k must be"),
        ({"tags": "team=db"}, "tags must be a list"),
        ({"query": "x" * 4001}, "at most 4000"),
    ],
)
def test_bad_arguments_raise_invalid_query(
    kb: KnowledgeBase, kwargs: dict[str, object], message: str
) -> None:
    query = kwargs.pop("query", "connection")
    with pytest.raises(InvalidQuery, match=message):
        kb.search(query, **kwargs)  # type: ignore[arg-type]


def test_hybrid_search_fuses_text_and_vector_rankings(
    engine: sa.Engine, corpus: dict[str, str]
) -> None:
    hybrid = KnowledgeBase(
        engine=engine, store=FileStore(Path("/nonexistent")), embedder=HashingEmbedder()
    )
    # Full text needs every word; "soup lunchtime" has no chunk with "lunchtime"...
    assert KnowledgeBase(engine=engine, store=FileStore(Path("/x"))).search("soup lunchtime") == []
    # ...but the vector ranking finds the menu by its other words.
    hits = hybrid.search("soup lunchtime", k=3)
    assert hits[0].artifact_id == corpus["other"]
    # A chunk in both rankings scores at most 2/61; one ranking alone at most 1/61.
    both = hybrid.search("vault rotation", k=5)
    assert both[0].artifact_id == corpus["phrase"]
    assert 1 / 61 < both[0].score <= 2 / 61


def test_module_level_search_uses_the_default_instance(
    kb: KnowledgeBase, corpus: dict[str, str]
) -> None:
    sdk.kb.set_default_knowledge_base(kb)
    try:
        assert [h.artifact_id for h in sdk.kb.search("vault", k=1)] == [corpus["phrase"]]
    finally:
        sdk.kb.set_default_knowledge_base(None)


@pytest.fixture(scope="module")
def cli_env(
    migrated_db_url: str, corpus: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KB_", "ARTIFACT_"))}
    env["DATABASE_URL"] = migrated_db_url
    env["WDP_DATA_DIR"] = str(tmp_path_factory.mktemp("cli-data"))
    return env


def test_cli_search_prints_json_lines(cli_env: dict[str, str], corpus: dict[str, str]) -> None:
    result = run_wdp(cli_env, "kb", "search", '"vault rotation"', "--json", "-k", "3")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(h["artifact_id"], h["version"]) for h in lines] == [(corpus["phrase"], 1)]
    table = run_wdp(cli_env, "kb", "search", "crossing", "--all-versions")
    assert table.returncode == 0, table.stderr
    assert corpus["versioned"] in table.stdout


def test_cli_reports_bad_arguments_without_a_traceback(cli_env: dict[str, str]) -> None:
    result = run_wdp(cli_env, "kb", "search", "x", "-k", "0")
    assert result.returncode == 2
    assert "k must be an integer" in result.stderr
    assert "Traceback" not in result.stderr


def test_stats_say_which_embedding_facts_hold(engine: sa.Engine, corpus: dict[str, str]) -> None:
    """The corpus was embedded by an embedder this instance does not have."""
    plain = KnowledgeBase(engine=engine, store=FileStore(Path("/x"))).stats()
    assert plain.vector_column is True
    assert plain.embedder is None
    assert plain.embedded_chunks == plain.chunks > 0
    hybrid = KnowledgeBase(engine=engine, store=FileStore(Path("/x")), embedder=HashingEmbedder())
    assert hybrid.stats().embedder == "test-hashing-64"


def test_cli_stats_print_a_table_or_json(cli_env: dict[str, str], corpus: dict[str, str]) -> None:
    machine = run_wdp(cli_env, "kb", "stats", "--json")
    assert machine.returncode == 0, machine.stderr
    stats = json.loads(machine.stdout)
    # No embedder is configured (KB_EMBEDDER unset): that is what it says, not "true".
    assert stats["embedder"] is None
    assert stats["vector_column"] is True
    assert stats["embedded_chunks"] == stats["chunks"] > 0
    assert "embeddings" not in stats
    human = run_wdp(cli_env | {"COLUMNS": "120"}, "kb", "stats")
    assert human.returncode == 0, human.stderr
    assert not human.stdout.lstrip().startswith("{")
    lines = {" ".join(line.split()) for line in human.stdout.splitlines()}
    assert "embedder none: full-text search only (KB_EMBEDDER=none)" in lines
    assert "vector column present (kb.chunks.embedding)" in lines
    assert f"vectors stored {stats['chunks']} of {stats['chunks']} chunks" in lines
    assert f"chunks {stats['chunks']}" in lines
