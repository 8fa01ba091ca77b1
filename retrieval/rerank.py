"""Reranking hybrid search's first sections with a second, larger embedder (the passage judge).

Hybrid search ranks chunks with MiniLM and BM25; a larger bi-encoder (all-mpnet-base-v2 by default) sees
better which section answers. It reads one passage per section, the section's best chunk, for the first
`depth` sections, and orders them by its similarity to the question less `rank_weight` × ln(fused rank),
so the fused order still breaks near-ties. The sections below `depth` keep their place after them. Depth
and weight chosen on the git/SQLite/zsh FAQs and the sample wiki, never the Python FAQ. Opt-in
(`retrieval.rerank_depth`): it ranks better but the answers gain nothing (README, "Reranking with the
passage judge").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

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
    rank_weight: float = 0.1

    def __call__(self, question: str, hits: Sequence[ScoredChunk]) -> list[ScoredChunk]:
        """The hits reordered section by section; each section's first hit carries the judge's similarity
        (`judge_score`), which the focus score reuses instead of embedding the passage again."""
        groups = sections(hits)
        head, tail = groups[:self.depth], groups[self.depth:]
        if not head:
            return list(hits)
        vectors = self.embed([question, *(g[0].chunk.text for g in head)])
        similarity = [float(x) for x in vectors[1:] @ vectors[0]]
        order = sorted(range(len(head)), key=lambda i: -(similarity[i] - self.rank_weight * math.log(i + 1)))
        out = []
        for i in order:
            first, *rest = head[i]
            out += [replace(first, judge_score=similarity[i]), *rest]
        return out + [hit for g in tail for hit in g]
