"""Reranking hybrid search's first sections with a second, larger embedder (the passage judge).

Hybrid search ranks chunks with MiniLM and BM25; a larger bi-encoder (all-mpnet-base-v2 by default) sees
better which section answers. It reads one passage per section, the section's best chunk with its page
title and heading (what the retriever embeds: "Lisbon Office › Parking" says which office), for the first
`depth` sections, and orders them by its similarity to the question, plus `bm25_weight` × the chunk's
keyword score scaled to 0–1 over those sections (a name the question shares with few pages), less
`rank_weight` × ln(fused rank), so the fused order still breaks near-ties. The sections below `depth` keep
their place after them. Depth and weights fitted on the git/SQLite/zsh FAQs and the sample wiki, never the
Python FAQ (README, "Reranking with the passage judge").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from retrieval.chunking import as_read
from retrieval.fusion import min_max
from retrieval.types import ScoredChunk

Embed = Callable[[Sequence[str]], np.ndarray]


def sections(hits: Sequence[ScoredChunk]) -> list[list[ScoredChunk]]:
    """The hits grouped by section (document, heading), the sections in the order their best hit came."""
    grouped: dict[tuple[str, str], list[ScoredChunk]] = {}
    for hit in hits:
        grouped.setdefault((hit.chunk.document_id, hit.chunk.heading), []).append(hit)
    return list(grouped.values())


@dataclass(frozen=True)
class SectionReranker:
    embed: Embed  # texts -> L2-normalised vectors, the question first
    depth: int = 8
    rank_weight: float = 0.05
    bm25_weight: float = 0.1

    def __call__(self, question: str, hits: Sequence[ScoredChunk]) -> list[ScoredChunk]:
        """The hits reordered section by section."""
        groups = sections(hits)
        head, tail = groups[:self.depth], groups[self.depth:]
        if not head:
            return list(hits)
        vectors = self.embed([question, *(as_read(g[0].chunk.embedding_text) for g in head)])
        similarity = [float(x) for x in vectors[1:] @ vectors[0]]
        bm25 = [g[0].bm25_score or 0.0 for g in head]  # 0: the chunk came from the vector list alone
        keywords = [*map(min_max(bm25), bm25)]
        order = sorted(range(len(head)), key=lambda i: -(
            similarity[i] + self.bm25_weight * keywords[i] - self.rank_weight * math.log(i + 1)))
        return [hit for i in order for hit in head[i]] + [hit for g in tail for hit in g]
