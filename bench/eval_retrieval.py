"""Retrieval quality on a questions file, and the "nothing relevant" threshold measured on it.

For each question: the rank of the first expected page among distinct documents, for BM25,
vector and hybrid search; hit@1, hit@k, MRR@10; and, from the best passage's cosine similarity,
the threshold that best separates answerable from unanswerable questions.

    python bench/eval_retrieval.py --questions examples/acme-wiki/questions.jsonl --data-dir /tmp/eval
(indexes the configured sources into --data-dir first if that index is empty)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.runtime import SyncRunner, make_embedder  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from retrieval.types import Query  # noqa: E402


def page_of(document_id: str) -> str:
    return document_id.split(":", 1)[-1]


def doc_rank(results, pages: set[str]) -> int | None:
    seen: list[str] = []
    for r in results:
        p = page_of(r.chunk.document_id)
        if p not in seen:
            seen.append(p)
        if p in pages:
            return seen.index(p) + 1
    return None


def best_threshold(answerable: list[float], unanswerable: list[float]) -> tuple[float, float]:
    """The cut that classifies most questions right (ties: the lower cut, to answer rather than refuse)."""
    best = (0.0, -1.0)
    for t in sorted({round(x, 3) for x in answerable + unanswerable}):
        correct = sum(x >= t for x in answerable) + sum(x < t for x in unanswerable)
        acc = correct / max(1, len(answerable) + len(unanswerable))
        if acc > best[1]:
            best = (t, acc)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--questions", default="examples/acme-wiki/questions.jsonl")
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--config", default=None)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--out", default="bench/results/retrieval_acme.json")
    args = ap.parse_args()

    settings = load_settings(args.config, data_dir=args.data_dir)
    embedder = make_embedder(settings)
    runner = SyncRunner(settings, embedder=embedder)
    if runner.index.stats().chunks == 0:
        runner.sync_sources()
    index = runner.index
    rows = [json.loads(line) for line in Path(args.questions).read_text().splitlines() if line.strip()]
    per_mode: dict[str, dict] = {}
    sims_ok, sims_none = [], []
    t0 = time.perf_counter()
    for mode in ("bm25", "vector", "hybrid"):
        ranks = []
        for r in rows:
            if not r.get("pages"):
                continue
            q = Query(r["question"], embedder.embed_query(r["question"]), candidates=settings.retrieval.candidates)
            ranks.append(doc_rank(index.search(q, 20, mode=mode), set(r["pages"])))
        n = len(ranks)
        per_mode[mode] = {
            "questions": n,
            "hit@1": round(sum(1 for x in ranks if x == 1) / n, 3),
            f"hit@{args.k}": round(sum(1 for x in ranks if x and x <= args.k) / n, 3),
            "hit@10": round(sum(1 for x in ranks if x and x <= 10) / n, 3),
            "mrr@10": round(sum(1 / x for x in ranks if x and x <= 10) / n, 3),
        }
    for r in rows:
        q = Query(r["question"], embedder.embed_query(r["question"]), candidates=settings.retrieval.candidates)
        hits = index.search(q, settings.retrieval.top_k)
        best = max((h.vector_score or 0.0) for h in hits) if hits else 0.0
        (sims_ok if r.get("pages") else sims_none).append(best)
    threshold, accuracy = best_threshold(sims_ok, sims_none)
    configured = settings.retrieval.min_similarity
    result = {
        "questions_file": args.questions,
        "chunks": index.stats().chunks,
        "retrieval": per_mode,
        "threshold": {
            "best_cut": threshold,
            "accuracy_at_best_cut": round(accuracy, 3),
            "configured_min_similarity": configured,
            "answerable_kept_at_configured": round(sum(x >= configured for x in sims_ok) / max(1, len(sims_ok)), 3),
            "unanswerable_refused_at_configured": round(sum(x < configured for x in sims_none) / max(1, len(sims_none)), 3),
            "answerable_similarity_min_median": [round(min(sims_ok), 3), round(sorted(sims_ok)[len(sims_ok) // 2], 3)],
            "unanswerable_similarity_median_max": [round(sorted(sims_none)[len(sims_none) // 2], 3), round(max(sims_none), 3)]
            if sims_none else None,
        },
        "seconds": round(time.perf_counter() - t0, 1),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
