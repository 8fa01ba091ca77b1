"""A deterministic bag-of-words embedder for tests that are not about embedding quality."""

from __future__ import annotations

import hashlib
import re

import numpy as np


class HashingEmbedder:
    """Same interface as `retrieval.embedding.Embedder`; texts sharing words get similar vectors."""

    def __init__(self, dim: int = 64, max_tokens: int = 256):
        self.dim = dim
        self.max_tokens = max_tokens
        self.model_name = "hashing-test-embedder"
        self.calls = 0
        self.texts_embedded = 0

    def warm_up(self):
        return self

    def count_tokens(self, text: str) -> int:
        return len(re.findall(r"\w+|[^\w\s]", text)) + 2

    def embed(self, texts) -> np.ndarray:
        self.calls += 1
        self.texts_embedded += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"\w+", t.lower()):
                h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little")
                out[i, h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
            n = np.linalg.norm(out[i])
            if n:
                out[i] /= n
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]
