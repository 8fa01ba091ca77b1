"""Search bodies: BM25 `multi_match`, `knn`, and the native `rrf` retriever.

The source and ACL filters go inside every retriever (the bool `filter` of the BM25 query and the
`filter` of the kNN search), so a filtered-out chunk can never take a slot in the top k.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from retrieval.config import ElasticsearchSettings
from retrieval.elasticsearch.mapping import SOURCE_FIELDS, VECTOR_FIELD
from retrieval.fusion import RRF_K
from retrieval.types import Query

MAX_NUM_CANDIDATES = 10_000  # Elasticsearch's limit for knn.num_candidates and k
RESCORE_OVERSAMPLE = 3.0  # Elasticsearch's own default for bbq; cheap at orgbot's k
MAX_QUERY_WORDS = 64  # keeps the multi_match well under the clause limit, like the embedded engine
_WORD = re.compile(r"\w+", re.UNICODE)


def query_words(text: str) -> str:
    """The words of a question; punctuation is dropped (multi_match has no syntax, but 5000 words
    would hit the clause limit)."""
    return " ".join(_WORD.findall(text)[:MAX_QUERY_WORDS])


def filters(query: Query) -> list[dict[str, Any]]:
    """Source and ACL filters for both retrievers; an empty list means no filtering."""
    out: list[dict[str, Any]] = []
    if query.sources is not None:
        out.append({"terms": {"source": list(query.sources)}})
    if query.principals is not None:
        # Public chunks have no `acl` values; private ones need one of the asker's principals.
        should: list[dict[str, Any]] = [{"bool": {"must_not": [{"exists": {"field": "acl"}}]}}]
        if query.principals:
            should.append({"terms": {"acl": list(query.principals)}})
        out.append({"bool": {"should": should, "minimum_should_match": 1}})
    return out


def bm25_query(text: str, flt: list[dict[str, Any]], settings: ElasticsearchSettings) -> dict[str, Any]:
    return {
        "bool": {
            "must": [{
                "multi_match": {
                    "query": text,
                    "fields": [f"title^{settings.title_boost:g}", f"heading^{settings.heading_boost:g}", "body"],
                    "type": "best_fields",
                    "tie_breaker": 0.3,
                }
            }],
            "filter": flt,
        }
    }


def num_candidates(settings: ElasticsearchSettings, k: int) -> int:
    return min(MAX_NUM_CANDIDATES, max(settings.num_candidates, k))


def knn_clause(vector: Sequence[float], flt: list[dict[str, Any]], k: int, settings: ElasticsearchSettings,
               *, rescore: bool = False) -> dict[str, Any]:
    """`rescore`: rescore the quantized candidates with the float vectors (`rescore_vector`,
    Elasticsearch 8.18+ / 9.x), so each hit's `_score` is the exact (1 + cosine) / 2."""
    k = min(k, MAX_NUM_CANDIDATES)
    clause: dict[str, Any] = {
        "field": VECTOR_FIELD,
        "query_vector": list(vector),
        "k": k,
        "num_candidates": num_candidates(settings, k),
    }
    if flt:
        clause["filter"] = flt
    if rescore:
        # k * oversample candidates per shard are rescored; keep that under the candidate limit.
        clause["rescore_vector"] = {"oversample": max(1.0, min(RESCORE_OVERSAMPLE, MAX_NUM_CANDIDATES / k))}
    return clause


def bm25_body(text: str, flt: list[dict[str, Any]], size: int, settings: ElasticsearchSettings) -> dict[str, Any]:
    return {
        "size": size,
        "query": bm25_query(text, flt, settings),
        "_source": SOURCE_FIELDS,
        "track_total_hits": False,
    }


def knn_body(vector: Sequence[float], flt: list[dict[str, Any]], size: int, settings: ElasticsearchSettings,
             *, rescore: bool = False) -> dict[str, Any]:
    return {
        "size": size,
        "knn": knn_clause(vector, flt, size, settings, rescore=rescore),
        "_source": SOURCE_FIELDS,
        "track_total_hits": False,
    }


def rrf_body(
    text: str, vector: Sequence[float], flt: list[dict[str, Any]], k: int, window: int,
    settings: ElasticsearchSettings, *, vectors_in_source: bool, window_param: str = "rank_window_size",
    rescore: bool = False, rank_constant: int = RRF_K,
) -> dict[str, Any]:
    """One request fused by the server's `rrf` retriever (Elasticsearch 8.14+, Enterprise/trial).

    The vector comes back with the hits so the caller can compute each hit's cosine similarity:
    the answerer's "did we find it" threshold needs it and RRF scores say nothing about it.
    On 9.2+ vectors are left out of `_source` unless asked for with `exclude_vectors: false`.
    `window_param` is `window_size` on 8.14 and `rank_window_size` from 8.15 (each refuses the other).
    """
    source: dict[str, Any] = {"includes": [*SOURCE_FIELDS, VECTOR_FIELD]}
    if vectors_in_source:
        source["exclude_vectors"] = False
    window = min(max(window, k), MAX_NUM_CANDIDATES)
    return {
        "size": k,
        "retriever": {
            "rrf": {
                "retrievers": [
                    {"standard": {"query": bm25_query(text, flt, settings)}},
                    {"knn": knn_clause(vector, flt, window, settings, rescore=rescore)},
                ],
                window_param: window,
                "rank_constant": rank_constant,
            }
        },
        "_source": source,
        "track_total_hits": False,
    }
