"""Hybrid fusion: one ranked list from a keyword list and a vector list.

Two methods, each with a weight per list, fitted on questions with known answers
(`orgbot eval retrieval --fit`, stored under `retrieval.hybrid` in config):

- weighted reciprocal rank fusion (Cormack et al., 2009): `w / (rrf_k + rank)` summed over the lists;
  equal weights are plain RRF, which lets a weak keyword list pull good vector hits down;
- a convex combination of min-max normalised scores (Bruch et al., 2023, "An analysis of fusion
  functions for hybrid retrieval"): uses how far apart the scores are, not only their order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from retrieval.types import ScoredChunk

RRF_K = 60
FusionMethod = Literal["rrf", "convex"]


@dataclass(frozen=True)
class FusionParams:
    method: FusionMethod = "rrf"
    bm25_weight: float = 1.0
    vector_weight: float = 1.0
    rrf_k: int = RRF_K

    def __post_init__(self):
        if self.method not in ("rrf", "convex"):
            raise ValueError(f"fusion method must be rrf or convex, not {self.method!r}")
        if self.bm25_weight < 0 or self.vector_weight < 0 or self.bm25_weight + self.vector_weight <= 0:
            raise ValueError("fusion weights must be >= 0 and not both 0")
        if self.rrf_k < 1:
            raise ValueError("rrf_k must be >= 1")


# An index opened without settings fuses by plain RRF; orgbot's config (`retrieval.hybrid`, whose
# defaults are the fitted values) passes its own.
PLAIN_RRF = DEFAULT_FUSION = FusionParams()


def _collect(bm25: Sequence[ScoredChunk], vector: Sequence[ScoredChunk]) -> dict[str, dict]:
    fused: dict[str, dict] = {}
    for rank, sc in enumerate(bm25, start=1):
        entry = fused.setdefault(sc.chunk.id, {"chunk": sc.chunk, "score": 0.0})
        entry["bm25_rank"] = rank
        entry["bm25_score"] = sc.score
    for rank, sc in enumerate(vector, start=1):
        entry = fused.setdefault(sc.chunk.id, {"chunk": sc.chunk, "score": 0.0})
        entry["vector_rank"] = rank
        # The vector list ranks by `score` (the cosine, less the long-section penalty where the index
        # applies one); `vector_score` stays the cosine itself, which the answering thresholds read.
        entry["vector_rank_score"] = sc.score
        entry["vector_score"] = sc.score if sc.vector_score is None else sc.vector_score
    return fused


def _ranked(fused: dict[str, dict], k: int) -> list[ScoredChunk]:
    ranked = sorted(
        fused.values(),
        key=lambda e: (-e["score"], e.get("bm25_rank") or 10**9, e["chunk"].id),
    )
    return [ScoredChunk(**{f: v for f, v in e.items() if f != "vector_rank_score"}) for e in ranked[:k]]


def reciprocal_rank_fusion(
    bm25: Sequence[ScoredChunk], vector: Sequence[ScoredChunk], k: int, rrf_k: int = RRF_K,
    bm25_weight: float = 1.0, vector_weight: float = 1.0,
) -> list[ScoredChunk]:
    """Fuse a keyword list and a vector list (each best first) into the top `k`.

    Each input's `score` is its own retriever's score; the output keeps both ranks and the
    cosine similarity so callers can judge relevance (RRF scores say nothing about it).
    """
    fused = _collect(bm25, vector)
    for e in fused.values():
        if "bm25_rank" in e:
            e["score"] += bm25_weight / (rrf_k + e["bm25_rank"])
        if "vector_rank" in e:
            e["score"] += vector_weight / (rrf_k + e["vector_rank"])
    return _ranked(fused, k)


def min_max(values: Sequence[float]):
    """Min-max over one list; a list whose scores are all equal maps them all to 1."""
    if not values:
        return lambda x: 0.0
    lo, hi = min(values), max(values)
    if hi <= lo:
        return lambda x: 1.0
    return lambda x: (x - lo) / (hi - lo)


def convex_fusion(
    bm25: Sequence[ScoredChunk], vector: Sequence[ScoredChunk], k: int,
    bm25_weight: float = 0.5, vector_weight: float = 0.5,
) -> list[ScoredChunk]:
    """`bm25_weight * norm(bm25) + vector_weight * norm(cosine)`, each min-max normalised over its own
    candidate list; a chunk missing from a list gets 0 from it (it scored below that list's cut)."""
    fused = _collect(bm25, vector)
    norm_b = min_max([s.score for s in bm25])
    norm_v = min_max([s.score for s in vector])
    for e in fused.values():
        if "bm25_rank" in e:
            e["score"] += bm25_weight * norm_b(e["bm25_score"])
        if "vector_rank" in e:
            e["score"] += vector_weight * norm_v(e["vector_rank_score"])
    return _ranked(fused, k)


def fuse(bm25: Sequence[ScoredChunk], vector: Sequence[ScoredChunk], k: int,
         params: FusionParams | None = None) -> list[ScoredChunk]:
    """The configured fusion of the two lists (plain RRF when `params` is None)."""
    p = params or DEFAULT_FUSION
    if p.method == "convex":
        return convex_fusion(bm25, vector, k, p.bm25_weight, p.vector_weight)
    return reciprocal_rank_fusion(bm25, vector, k, p.rrf_k, p.bm25_weight, p.vector_weight)
