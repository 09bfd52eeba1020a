"""Embeddings for tests: fast and deterministic, or the real local model shared by the whole session.

- ``KeywordEmbeddings``: a bag of words hashed into 64 dimensions and normalised. Texts that share words
  are similar, so searches mean something, and nothing is downloaded or loaded.
- ``FixedEmbeddings``: exact vectors by the text's first line (a creative item's title) or by the whole
  query, for tests that need exact cosine similarities.
- ``shared_local_embeddings()``: the real all-MiniLM-L6-v2, memoising every text it has embedded, so the
  tests that need the real model pay for each text once per session.

All return Python ``float``, which the Pinecone SDK requires.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache

from langchain_core.embeddings import Embeddings

from agents.embeddings import LocalEmbeddings

_WORD = re.compile(r"[a-z0-9]+")


class KeywordEmbeddings(Embeddings):
    name = "keywords-64"

    def __init__(self, size: int = 64) -> None:
        self.size = size

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._embed(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._embed(text)

    def _embed(self, text: str) -> list[float]:
        vector = [0.0] * self.size
        for word in _WORD.findall(text.lower()):
            vector[int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "big") % self.size] += 1.0
        norm = math.sqrt(sum(value * value for value in vector))
        return [value / norm for value in vector] if norm else [1.0] + [0.0] * (self.size - 1)


class FixedEmbeddings(Embeddings):
    """Documents by their first line, queries by their text; anything unknown is an error, not a guess."""

    name = "fixed"

    def __init__(self, vectors: Mapping[str, Sequence[float]]) -> None:
        self.vectors = {key: [float(value) for value in vector] for key, vector in vectors.items()}

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.vectors[text.split("\n", 1)[0]] for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.vectors[text]


class MemoisedEmbeddings(Embeddings):
    def __init__(self, inner: Embeddings, name: str) -> None:
        self.inner, self.name = inner, name
        self.cache: dict[str, list[float]] = {}

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        missing = [text for text in dict.fromkeys(texts) if text not in self.cache]
        self.cache.update(zip(missing, self.inner.embed_documents(missing), strict=True))
        return [self.cache[text] for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


@lru_cache(maxsize=1)
def shared_local_embeddings() -> MemoisedEmbeddings:
    """The real local model for the session; torch uses one thread, since pytest may run beside other work."""
    import torch

    torch.set_num_threads(1)
    # Batches of 16 pad less than 64 on a library of 73 texts of mixed length: indexing is ~35 % faster.
    local = LocalEmbeddings(batch_size=16)
    return MemoisedEmbeddings(local, local.name)
