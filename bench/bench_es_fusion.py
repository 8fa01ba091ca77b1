"""What client-side RRF costs against Elasticsearch's native rrf retriever; writes bench/results/es_fusion.json.

No cluster needed: the numbers are about what orgbot sends and does, not about the server.

- request bytes: the `_msearch` NDJSON orgbot sends for hybrid search with client-side fusion
  (a BM25 body + a kNN body, same filters), and the one `_search` body for the native rrf
  retriever, serialised by the official client's own serializers (uncompressed and gzipped);
- response bytes: what comes back to fuse (every candidate of both lists, with its text) against
  the native path (k fused hits, with their vectors so the cosine can be computed);
- fusion overhead, µs per query: `retrieval.fusion.reciprocal_rank_fusion` alone, and the whole
  client-side step (parsed hits -> Chunk -> ScoredChunk -> fusion), at k=10 with 500 (and 50)
  candidates per list, half of them in both lists.

    python bench/bench_es_fusion.py [--candidates 500 50] [--k 10] [--dims 384]
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import elasticsearch  # noqa: E402
from elasticsearch.serializer import JsonSerializer, NdjsonSerializer  # noqa: E402

from retrieval.config import ElasticsearchSettings  # noqa: E402
from retrieval.elasticsearch import queries  # noqa: E402
from retrieval.elasticsearch.mapping import SOURCE_FIELDS, VECTOR_FIELD, from_hit, unit_vector  # noqa: E402
from retrieval.fusion import reciprocal_rank_fusion  # noqa: E402
from retrieval.types import Query, ScoredChunk  # noqa: E402

OUT = Path("bench/results/es_fusion.json")
QUESTION = "How many weeks of parental leave do I get, and how do I request it in Workday?"
PRINCIPALS = ["U04ABCDEF12", "C01GENERAL", "C02ENGINEERING", "group:engineering"]
VOCABULARY = sorted(set(re.findall(r"\w+", """
    Parental leave at Acme Robotics is sixteen weeks at full pay for every parent. Request it in Workday under
    Time Off at least eight weeks before the expected date; your manager and People Ops approve it. The VPN
    client signs in with AcmeID; laptops are refreshed every three years; on-call engineers page the incident
    commander, write a postmortem within five working days and file follow-up tickets in the Forge tracker.
    Expenses over two hundred euros need a receipt and a cost centre; travel is booked through the portal.
""")))


def body_text(rng: np.random.Generator) -> str:
    """~800 characters of wiki-like words: compresses like prose, unlike one sentence repeated."""
    return " ".join(rng.choice(VOCABULARY, 130)).capitalize() + "."


def wire_bytes(data: bytes) -> dict:
    return {"bytes": len(data), "gzip_bytes": len(gzip.compress(data, compresslevel=6))}


def request_sizes(settings: ElasticsearchSettings, query: Query, k: int, n: int) -> dict:
    flt = queries.filters(query)
    text = queries.query_words(query.text)
    vector = unit_vector(query.vector)
    bm25 = queries.bm25_body(text, flt, n, settings)
    knn = queries.knn_body(vector, flt, n, settings)
    msearch = NdjsonSerializer().dumps([{"index": settings.index_alias}, bm25, {"index": settings.index_alias}, knn])
    native = JsonSerializer().dumps(queries.rrf_body(text, vector, flt, k, n, settings, vectors_in_source=True))
    raw_vector = JsonSerializer().dumps(np.asarray(query.vector, dtype=np.float32).tolist())
    return {
        "client_fusion_msearch": wire_bytes(msearch),
        "client_fusion_bm25_body": wire_bytes(JsonSerializer().dumps(bm25)),
        "client_fusion_knn_body": wire_bytes(JsonSerializer().dumps(knn)),
        "native_rrf_search": wire_bytes(native),
        "query_vector_rounded_7dp": len(JsonSerializer().dumps(vector)),
        "query_vector_float32_repr": len(raw_vector),
    }


def fake_hit(i: int, score: float, rng: np.random.Generator, dims: int, with_vector: bool = False) -> dict:
    src = {
        "chunk_id": f"wiki:page-{i}#0", "document_id": f"wiki:page-{i}", "source": "acme-wiki",
        "title": f"Page {i}", "heading": "Parental leave", "body": body_text(rng), "url": f"https://wiki.example/page-{i}",
        "position": 0, "content_hash": "0" * 64, "updated_at": "2026-03-01T00:00:00+00:00", "acl": [],
    }
    assert set(src) == set(SOURCE_FIELDS)
    if with_vector:
        src[VECTOR_FIELD] = unit_vector(rng.standard_normal(dims))
    return {"_index": "orgbot-chunks-v000001", "_id": src["chunk_id"], "_score": score, "_source": src}


def lists(n: int, rng: np.random.Generator, dims: int) -> tuple[list[dict], list[dict]]:
    """Two candidate lists of n hits each; half of each list is also in the other."""
    shared = list(range(n // 2))
    bm25_ids = shared + list(range(n, n + n - len(shared)))
    vec_ids = list(reversed(shared)) + list(range(2 * n, 2 * n + n - len(shared)))
    rng.shuffle(bm25_ids)
    rng.shuffle(vec_ids)
    bm25 = [fake_hit(i, 20.0 - r * 0.01, rng, dims) for r, i in enumerate(bm25_ids)]
    vec = [fake_hit(i, 0.95 - r * 0.0005, rng, dims) for r, i in enumerate(vec_ids)]
    return bm25, vec


def per_call_us(fn, min_seconds: float = 0.3, repeats: int = 7) -> dict:
    number = 1
    while True:  # calibrate so one repeat takes long enough to time
        t = time.perf_counter()
        for _ in range(number):
            fn()
        if time.perf_counter() - t >= min_seconds / repeats:
            break
        number *= 2
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - t) / number * 1e6)
    return {"median_us": round(statistics.median(samples), 2), "min_us": round(min(samples), 2),
            "calls_per_repeat": number, "repeats": repeats}


def fusion_costs(n: int, k: int, dims: int, rng: np.random.Generator) -> dict:
    bm25_hits, vec_hits = lists(n, rng, dims)
    bm25_sc = [ScoredChunk(from_hit(h), h["_score"]) for h in bm25_hits]
    vec_sc = [ScoredChunk(from_hit(h), 2 * h["_score"] - 1) for h in vec_hits]

    def fuse_only():
        reciprocal_rank_fusion(bm25_sc, vec_sc, k)

    def hits_to_fused():  # what search() does after the client has parsed the _msearch response
        b = [ScoredChunk(from_hit(h), float(h["_score"])) for h in bm25_hits]
        v = [ScoredChunk(from_hit(h), 2.0 * float(h["_score"]) - 1.0) for h in vec_hits]
        reciprocal_rank_fusion(b, v, k)

    client_response = json.dumps({"took": 3, "responses": [
        {"took": 2, "timed_out": False, "hits": {"max_score": 1.0, "hits": bm25_hits}, "status": 200},
        {"took": 2, "timed_out": False, "hits": {"max_score": 1.0, "hits": vec_hits}, "status": 200},
    ]}).encode()
    native_hits = [fake_hit(i, 1 / (60 + i), rng, dims, with_vector=True) for i in range(k)]
    native_response = json.dumps({"took": 3, "timed_out": False,
                                  "hits": {"max_score": 1.0, "hits": native_hits}}).encode()
    q = unit_vector(rng.standard_normal(dims))

    def native_post():  # native path: k hits, cosine from the returned vectors
        for h in native_hits:
            ScoredChunk(from_hit(h), h["_score"], vector_score=float(np.dot(q, unit_vector(h["_source"][VECTOR_FIELD]))))

    return {
        "candidates_per_list": n,
        "k": k,
        "rrf_fusion_only": per_call_us(fuse_only),
        "client_fusion_hits_to_results": per_call_us(hits_to_fused),
        "client_fusion_json_decode_response": per_call_us(lambda: json.loads(client_response)),
        "native_rrf_hits_to_results": per_call_us(native_post),
        "native_rrf_json_decode_response": per_call_us(lambda: json.loads(native_response)),
        "response_bytes": {"client_fusion_msearch": wire_bytes(client_response),
                           "native_rrf_search": wire_bytes(native_response)},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", type=int, nargs="+", default=[500, 50])
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--dims", type=int, default=384, help="all-MiniLM-L6-v2, the default embedder")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    settings = ElasticsearchSettings(url="http://localhost:9200")
    query_vector = rng.standard_normal(args.dims).astype(np.float32)
    results = {
        "what": "client-side RRF vs the native rrf retriever: request/response bytes and fusion cost per query",
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {platform.processor() or platform.system()}",
        "elasticsearch_client": elasticsearch.__versionstr__,
        "dims": args.dims,
        "k": args.k,
        "filters": {"sources": 1, "principals": len(PRINCIPALS)},
        "runs": [],
    }
    for n in args.candidates:
        query = Query(text=QUESTION, vector=query_vector, sources=["acme-wiki"], principals=PRINCIPALS, candidates=n)
        run = {"candidates_per_list": n, "request_bytes": request_sizes(settings, query, args.k, n)}
        run |= fusion_costs(n, args.k, args.dims, rng)
        results["runs"].append(run)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    for run in results["runs"]:
        rb = run["request_bytes"]
        print(f"candidates={run['candidates_per_list']} k={args.k}: request msearch {rb['client_fusion_msearch']['bytes']} B "
              f"vs native {rb['native_rrf_search']['bytes']} B; rrf {run['rrf_fusion_only']['median_us']} µs, "
              f"hits->results {run['client_fusion_hits_to_results']['median_us']} µs, "
              f"decode {run['client_fusion_json_decode_response']['median_us']} µs "
              f"({run['response_bytes']['client_fusion_msearch']['bytes']} B) vs native decode "
              f"{run['native_rrf_json_decode_response']['median_us']} µs "
              f"({run['response_bytes']['native_rrf_search']['bytes']} B)")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
