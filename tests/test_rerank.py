"""The passage judge reranking hybrid search's first sections (`retrieval.rerank_depth`)."""

import numpy as np

from retrieval.rerank import SectionReranker
from retrieval.types import Chunk, ScoredChunk


def hit(doc: str, heading: str, text: str, pos: int = 0, bm25: float | None = None) -> ScoredChunk:
    return ScoredChunk(Chunk(id=f"{doc}#{heading}#{pos}", document_id=doc, source="s", title=doc, heading=heading,
                             text=text, url="u", position=pos, content_hash="h"), score=1.0, bm25_score=bm25)


def judge(similarity: dict[str, float]):
    """Each passage's similarity to the question as given, looked up by what the judge reads ("title › heading",
    a new line, the text) or else by the text alone (unknown: 0), as L2-normalised 2-d vectors."""
    def embed(texts):
        q, *rest = texts
        sims = (similarity.get(t, similarity.get(t.partition("\n")[2], 0.0)) for t in rest)
        return np.array([[1.0, 0.0], *([s, np.sqrt(1 - s * s)] for s in sims)])
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


def test_the_fused_order_breaks_near_ties():
    hits = [hit("a", "x", "first"), hit("b", "x", "second")]
    near = judge({"first": 0.50, "second": 0.52})
    assert order(SectionReranker(near, depth=2, rank_weight=0.1)("q", hits))[0][0] == "a"  # 0.52 - 0.1 ln 2 < 0.50
    assert order(SectionReranker(near, depth=2, rank_weight=0.0)("q", hits))[0][0] == "b"


def test_nothing_to_rerank_is_nothing_embedded():
    def never(texts):
        raise AssertionError("embedded")
    assert SectionReranker(never, depth=8)("q", []) == []


def test_the_judge_reads_which_page_and_section_a_passage_is_from():
    # The same words on two offices' pages: only the title says which office's parking it is.
    hits = [hit("Toronto office", "Parking", "Ask reception for a permit."),
            hit("Lisbon office", "Parking", "Ask reception for a permit.")]
    reads = judge({"Lisbon office › Parking\nAsk reception for a permit.": 0.7,
                   "Toronto office › Parking\nAsk reception for a permit.": 0.4})
    assert order(SectionReranker(reads, depth=2)("parking at the lisbon office?", hits))[0][0] == "Lisbon office"


def test_a_word_few_pages_share_with_the_question_still_counts():
    # The judge finds the generic page a little closer; the keyword score (scaled over the reranked sections)
    # keeps the page that names what was asked ahead, unless its weight is 0.
    hits = [hit("pune", "Wi-Fi", "Guest network: OrgGuest.", bm25=12.0),
            hit("guests", "Visitors", "Visitors get a badge and the guest network.", bm25=3.0)]
    near = judge({"Guest network: OrgGuest.": 0.50, "Visitors get a badge and the guest network.": 0.56})
    assert order(SectionReranker(near, depth=2, rank_weight=0.0, bm25_weight=0.1)("guest wifi in pune?", hits))[0][0] == "pune"
    assert order(SectionReranker(near, depth=2, rank_weight=0.0, bm25_weight=0.0)("guest wifi in pune?", hits))[0][0] == "guests"
