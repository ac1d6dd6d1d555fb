"""The shipped MiniLM embedder: the real packaged model, offline, through real pgvector."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import sqlalchemy as sa

from sdk.artifacts import ArtifactService
from sdk.artifacts.stores import FileStore
from sdk.kb import KnowledgeBase
from sdk.kb.embedders import build_embedder
from sdk.kb.minilm import MiniLmEmbedder
from sdk.settings import WdpSettings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def minilm() -> MiniLmEmbedder:
    """One loaded model for the module (loading takes a few seconds)."""
    return MiniLmEmbedder()


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_embeds_offline_into_unit_vectors_that_follow_meaning(minilm: MiniLmEmbedder) -> None:
    cat, kitten, stocks = minilm.embed(
        ["A cat sits on the mat.", "A kitten is resting on a rug.", "Shares fell sharply today."]
    )
    assert len(cat) == minilm.dimensions == 384
    assert math.isclose(math.sqrt(cosine(cat, cat)), 1.0, rel_tol=1e-5)
    assert cosine(cat, kitten) > cosine(cat, stocks) + 0.3
    assert minilm.embed([]) == []


def test_the_setting_selects_it() -> None:
    assert build_embedder(WdpSettings(kb_embedder="none")) is None
    embedder = build_embedder(WdpSettings(kb_embedder="minilm"))
    assert isinstance(embedder, MiniLmEmbedder)
    assert embedder.name == "all-MiniLM-L6-v2-384"


def test_hybrid_search_finds_by_meaning_without_shared_words(
    engine: sa.Engine, tmp_path: Path, minilm: MiniLmEmbedder
) -> None:
    store = FileStore(tmp_path / "store")
    artifacts = ArtifactService(engine=engine, store=store)
    texts = {
        "pets": "A kitten is resting on a rug in the living room.",
        "finance": "Shares fell sharply in today's trading session.",
        "cooking": "Knead the sourdough and let it rise overnight.",
    }
    ids = {
        k: artifacts.write_artifact(type="note", content=v).artifact_id for k, v in texts.items()
    }
    kb = KnowledgeBase(engine=engine, store=store, embedder=minilm)
    kb.ingest()
    assert KnowledgeBase(engine=engine, store=store).search("feline sleeping") == []
    hits = kb.search("feline sleeping", k=3)
    assert hits[0].artifact_id == ids["pets"]
    assert kb.search("stock market drop", k=1)[0].artifact_id == ids["finance"]
