"""The passage judge reranking hybrid search's first sections (`retrieval.rerank_depth`)."""

import numpy as np

from retrieval.rerank import SectionReranker
from retrieval.types import Chunk, ScoredChunk


def hit(doc: str, heading: str, text: str, pos: int = 0) -> ScoredChunk:
    return ScoredChunk(Chunk(id=f"{doc}#{heading}#{pos}", document_id=doc, source="s", title=doc, heading=heading,
                             text=text, url="u", position=pos, content_hash="h"), score=1.0)


def judge(similarity: dict[str, float]):
    """Each text's similarity to the question as given (unknown texts: 0), as L2-normalised 2-d vectors."""
    def embed(texts):
        q, *rest = texts
        return np.array([[1.0, 0.0], *([s, np.sqrt(1 - s * s)] for s in (similarity.get(t, 0.0) for t in rest))])
    return embed


def order(hits):
    return [(h.chunk.document_id, h.chunk.heading, h.chunk.position) for h in hits]


def test_sections_move_whole_and_those_below_the_depth_keep_their_place():
    hits = [hit("parking", "Lot B", "park in lot B"), hit("parking", "Lot B", "permits at the desk", 1),
            hit("lunch", "Canteen", "lunch at noon"), hit("bikes", "Basement", "bikes in the basement"),
            hit("vpn", "Install", "bikes and VPN")]
    reranked = SectionReranker(judge({"bikes in the basement": 0.9, "park in lot B": 0.3, "bikes and VPN": 0.99}),
                               depth=3, rank_weight=0.1)("where do bikes go?", hits)
    assert order(reranked) == [("bikes", "Basement", 0), ("parking", "Lot B", 0), ("parking", "Lot B", 1),
                               ("lunch", "Canteen", 0), ("vpn", "Install", 0)]
    # the judge read each reranked section's first chunk once, and its similarity goes with that chunk only
    assert [h.judge_score for h in reranked[:3]] == [0.9, 0.3, None] and reranked[4].judge_score is None


def test_the_fused_order_breaks_near_ties():
    hits = [hit("a", "x", "first"), hit("b", "x", "second")]
    near = judge({"first": 0.50, "second": 0.52})
    assert order(SectionReranker(near, depth=2, rank_weight=0.1)("q", hits))[0][0] == "a"  # 0.52 - 0.1 ln 2 < 0.50
    assert order(SectionReranker(near, depth=2, rank_weight=0.0)("q", hits))[0][0] == "b"


def test_nothing_to_rerank_is_nothing_embedded():
    def never(texts):
        raise AssertionError("embedded")
    assert SectionReranker(never, depth=8)("q", []) == []
