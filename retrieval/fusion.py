"""Reciprocal rank fusion: one ranked list from several, using ranks only (Cormack et al., 2009)."""

from __future__ import annotations

from collections.abc import Sequence

from retrieval.types import ScoredChunk

RRF_K = 60


def reciprocal_rank_fusion(
    bm25: Sequence[ScoredChunk], vector: Sequence[ScoredChunk], k: int, rrf_k: int = RRF_K
) -> list[ScoredChunk]:
    """Fuse a keyword list and a vector list (each best first) into the top `k`.

    Each input's `score` is its own retriever's score; the output keeps both ranks and the
    cosine similarity so callers can judge relevance (RRF scores say nothing about it).
    """
    fused: dict[str, dict] = {}
    for rank, sc in enumerate(bm25, start=1):
        entry = fused.setdefault(sc.chunk.id, {"chunk": sc.chunk, "score": 0.0})
        entry["score"] += 1.0 / (rrf_k + rank)
        entry["bm25_rank"] = rank
        entry["bm25_score"] = sc.score
    for rank, sc in enumerate(vector, start=1):
        entry = fused.setdefault(sc.chunk.id, {"chunk": sc.chunk, "score": 0.0})
        entry["score"] += 1.0 / (rrf_k + rank)
        entry["vector_rank"] = rank
        entry["vector_score"] = sc.score
    ranked = sorted(
        fused.values(),
        key=lambda e: (-e["score"], e.get("bm25_rank") or 10**9, e["chunk"].id),
    )
    return [ScoredChunk(**e) for e in ranked[:k]]
