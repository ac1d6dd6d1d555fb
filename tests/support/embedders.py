"""A deterministic test embedder: bag of hashed word stems, no model, no network.

Words that share their first five letters land in the same dimension, so texts about
the same words are near each other: enough to check that vector ranking and the fusion
work end to end against real pgvector, without the MiniLM extra.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence

WORD = re.compile(r"[a-z]+")


class HashingEmbedder:
    def __init__(self, *, dimensions: int = 64) -> None:
        self._dimensions = dimensions
        self.calls = 0

    @property
    def name(self) -> str:
        return f"test-hashing-{self._dimensions}"

    @property
    def dimensions(self) -> int:
        return self._dimensions

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += 1
        return [self._one(text) for text in texts]

    def _one(self, text: str) -> list[float]:
        vector = [0.0] * self._dimensions
        for word in WORD.findall(text.lower()):
            digest = hashlib.blake2b(word[:5].encode(), digest_size=4).digest()
            vector[int.from_bytes(digest, "big") % self._dimensions] += 1.0
        norm = math.sqrt(sum(x * x for x in vector)) or 1.0
        return [x / norm for x in vector]
