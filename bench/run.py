"""orgbot benchmarks, measured in one run and written to bench/results/core.json.

- indexing throughput (chunks/s) on the sample wiki: chunking + writing with embedding
  excluded (precomputed vectors), and the whole path with the real embedder;
- query latency p50/p95 for BM25, vector and hybrid search (with and without an ACL filter, and with the
  query embedding) on the embedded SQLite index (synthetic text drawn from the sample wiki's vocabulary,
  random unit vectors, 30 % of chunks restricted; keywords from the Tantivy copy), the same with FTS5 as
  the keyword engine, the path before issue 13 on the same index, and
  same-run baselines: numpy brute force over an in-memory matrix (the floor for exact vector search)
  and bm25s (an in-memory BM25 library) over the same texts.
Generation speed is bench/bench_generation.py's.

    python bench/run.py [--sizes 10000 100000 1000000] [--queries 100]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import pct  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.runtime import make_connector, make_embedder  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from connectors.base import ConnectorFailure  # noqa: E402
from retrieval.chunking import chunk_document  # noqa: E402
from retrieval.sqlite_index import EmbeddedIndex  # noqa: E402
from retrieval.types import Chunk, Query  # noqa: E402

WIKI = Path("examples/acme-wiki")
QUESTIONS = WIKI / "questions.jsonl"


def ms_stats(values: list[float]) -> dict:
    return {"p50_ms": round(pct(values, 50) * 1000, 3), "p95_ms": round(pct(values, 95) * 1000, 3),
            "mean_ms": round(statistics.fmean(values) * 1000, 3)}


def wiki_documents():
    docs = []
    for batch in make_connector("acme-wiki", load_settings()).load():  # as config.yaml defines it
        docs += [d for d in batch if not isinstance(d, ConnectorFailure)]
    return docs


def bench_indexing(embedder) -> dict:
    docs = wiki_documents()
    embedder.count_tokens("warm up")  # load the tokenizer outside the timed part
    t = time.perf_counter()
    chunks = [c for d in docs for c in chunk_document(d, embedder.count_tokens, embedder.max_tokens)]
    chunk_s = time.perf_counter() - t
    rng = np.random.default_rng(0)
    fake = rng.standard_normal((len(chunks), embedder.dim)).astype(np.float32)
    fake /= np.linalg.norm(fake, axis=1, keepdims=True)
    with tempfile.TemporaryDirectory() as tmp:
        idx = EmbeddedIndex(Path(tmp) / "i.db")
        import dataclasses

        pre = [dataclasses.replace(c, embedding=v) for c, v in zip(chunks, fake, strict=True)]
        t = time.perf_counter()
        with idx.update():
            idx.upsert(pre)
        write_s = time.perf_counter() - t
        t = time.perf_counter()
        vecs = embedder.embed([c.embedding_text for c in chunks])
        embed_s = time.perf_counter() - t
        idx.close()
    n = len(chunks)
    return {
        "documents": len(docs), "chunks": n,
        "chunking_s": round(chunk_s, 3), "write_s": round(write_s, 3), "embedding_s": round(embed_s, 3),
        "chunks_per_s_embedding_excluded": round(n / (chunk_s + write_s), 1),
        "chunks_per_s_embedding_included": round(n / (chunk_s + write_s + embed_s), 1),
        "embedding_dim": int(vecs.shape[1]),
    }


def synthetic_corpus(n: int, dim: int, vocab: list[str], weights: np.ndarray, seed: int = 1):
    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    lengths = rng.integers(60, 160, size=n)
    words = rng.choice(len(vocab), size=int(lengths.sum()), p=weights)
    texts, pos = [], 0
    for ln in lengths:
        texts.append(" ".join(vocab[i] for i in words[pos : pos + ln]))
        pos += ln
    chunks = [
        Chunk(id=f"syn:{i // 4}#{i % 4}", document_id=f"syn:{i // 4}", source="syn" if i % 10 else "syn-private",
              title=f"Page {i // 4}", heading=f"Section {i % 4}", text=texts[i], url=f"https://wiki/{i // 4}",
              position=i % 4, content_hash="x", embedding=vecs[i],
              acl=(f"group:g{i % 20}",) if i % 10 < 3 else ())  # 30 % restricted to one of 20 groups
        for i in range(n)
    ]
    return chunks, vecs, texts


def bench_queries(sizes: list[int], n_queries: int, dim: int, embedder=None, candidates: int = 100,
                  max_df: float | None = 0.2) -> dict:
    """Query latency at each size, the new path (keyword cutoff `max_df`, ACL filter applied after ranking)
    against the path before (every word, the filter inside the SQL) on the same index in the same run."""
    corpus = " ".join(d.text for d in wiki_documents()).lower()
    counts: dict[str, int] = {}
    for w in re.findall(r"[a-z]{2,}", corpus):
        counts[w] = counts.get(w, 0) + 1
    vocab = list(counts)
    weights = np.array([counts[w] for w in vocab], dtype=np.float64)
    weights /= weights.sum()
    questions = [json.loads(x)["question"] for x in QUESTIONS.read_text().splitlines() if x.strip()]
    rng = random.Random(7)
    queries = [questions[i % len(questions)] for i in range(n_queries)]
    rng.shuffle(queries)
    qvecs = np.random.default_rng(3).standard_normal((n_queries, dim)).astype(np.float32)
    asker = ["user:U1", "group:g3", "group:g7"]  # sees the public 70 % and two groups' pages
    out = {}
    for n in sizes:
        chunks, vecs, texts = synthetic_corpus(n, dim, vocab, weights)
        with tempfile.TemporaryDirectory() as tmp:
            idx = EmbeddedIndex(Path(tmp) / "i.db", max_df=max_df)
            t = time.perf_counter()
            with idx.update():
                for i in range(0, n, 5000):
                    idx.upsert(chunks[i : i + 5000])
            build_s = time.perf_counter() - t
            before = EmbeddedIndex(Path(tmp) / "i.db", post_filter=False, keyword_engine="fts5")
            fts5 = EmbeddedIndex(Path(tmp) / "i.db", max_df=max_df, keyword_engine="fts5")
            for index in (idx, before, fts5):
                index.search(Query("warm up", qvecs[0], principals=asker), 10)  # loads the vectors and the mask
            res: dict = {"build_s": round(build_s, 1), "db_mb": round(os.path.getsize(Path(tmp) / "i.db") / 1e6, 1),
                         "candidates": candidates, "max_df": max_df}

            def timed(index, mode, principals=None, embed=False):
                times = []
                for q, v in zip(queries, qvecs, strict=True):
                    t = time.perf_counter()
                    vec = embedder.embed_query(q) if embed else v
                    index.search(Query(q, vec, candidates=candidates, principals=principals), 10, mode=mode)
                    times.append(time.perf_counter() - t)
                return ms_stats(times)

            for mode in ("bm25", "vector", "hybrid"):
                res[mode] = timed(idx, mode)
            res["hybrid_acl"] = timed(idx, "hybrid", asker)
            if embedder is not None:
                res["hybrid_acl_with_query_embedding"] = timed(idx, "hybrid", asker, embed=True)
            # The same new path with SQLite's FTS5 as the keyword engine (the last stop's default).
            res["fts5_keywords"] = {"bm25": timed(fts5, "bm25"), "hybrid_acl": timed(fts5, "hybrid", asker)}
            if embedder is not None:
                res["fts5_keywords"]["hybrid_acl_with_query_embedding"] = timed(fts5, "hybrid", asker, embed=True)
            res["before"] = {"bm25": timed(before, "bm25"), "hybrid": timed(before, "hybrid"),
                             "hybrid_acl": timed(before, "hybrid", asker)}
            res["speedup_hybrid_acl_p95"] = round(res["before"]["hybrid_acl"]["p95_ms"] / res["hybrid_acl"]["p95_ms"], 2)
            before.close()
            fts5.close()
            idx.close()
        # Baselines on the same data in the same run.
        times = []
        for v in qvecs:
            t = time.perf_counter()
            s = vecs @ v
            top = np.argpartition(-s, 10)[:10]
            top[np.argsort(-s[top])]
            times.append(time.perf_counter() - t)
        res["baseline_numpy_vector"] = ms_stats(times)
        try:
            import bm25s

            t = time.perf_counter()
            retriever = bm25s.BM25()
            retriever.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
            res["baseline_bm25s_build_s"] = round(time.perf_counter() - t, 1)
            times = []
            for q in queries:
                t = time.perf_counter()
                retriever.retrieve(bm25s.tokenize([q], stopwords="en", show_progress=False), k=10,
                                   show_progress=False)
                times.append(time.perf_counter() - t)
            res["baseline_bm25s"] = ms_stats(times)
            res["ratio_bm25_vs_bm25s_p50"] = round(res["bm25"]["p50_ms"] / res["baseline_bm25s"]["p50_ms"], 2)
        except ImportError:
            res["baseline_bm25s"] = "not installed (pip install '.[bench]')"
        res["ratio_vector_vs_numpy_p50"] = round(res["vector"]["p50_ms"] / res["baseline_numpy_vector"]["p50_ms"], 2)
        out[str(n)] = res
        print(f"  {n} chunks: " + json.dumps({k: v for k, v in res.items()}), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description="orgbot core benchmarks")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--out", default="bench/results/core.json")
    args = ap.parse_args()
    settings = load_settings()
    embedder = make_embedder(settings)
    result: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                "note": "shared 2-core machine; other work may have been running"}}
    print("indexing throughput…", flush=True)
    result["indexing"] = bench_indexing(embedder)
    print("  " + json.dumps(result["indexing"]), flush=True)
    print("query latency…", flush=True)
    result["queries"] = bench_queries(args.sizes, args.queries, embedder.dim, embedder,
                                      settings.retrieval.candidates, settings.retrieval.hybrid.max_df)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
