"""`orgbot eval retrieval`: how well search finds the section that answers a question.

For each question set (the Python FAQ, the sample wiki, the development FAQs, or a JSONL file) the
documents go through the product's own indexing path (files connector, chunker, embedder, index);
then every question is searched in BM25, vector and hybrid mode. Chunk hits are rolled up to the
unit a question is judged on (the section, when its `relevant` names one; else the document), and
scored with nDCG@10, MRR@10 and recall@10/@100. Query latency is measured beside quality.

`fit_hybrid` chooses the fusion method, weights and candidate depth (and the BM25 field weights) that
maximise nDCG@10 on development questions: the ranked lists are fetched once at full depth and fused
offline with the same function the index uses (`retrieval.fusion.fuse`), so a grid costs seconds.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bot.evaluation.datasets import (
    DEV_FAQ_SOURCE,
    HELD_OUT_SETS,
    SAMPLE_SOURCE,
    DatasetError,
    EvalQuestion,
    build_dev_faq,
    load_jsonl,
    sample_questions,
)
from retrieval.chunking import as_read
from retrieval.fusion import FusionParams, fuse
from retrieval.types import Query, ScoredChunk

MODES = ("bm25", "vector", "hybrid")
DEPTH = 200  # chunks fetched per retriever: enough for recall@100 after rolling chunks up to sections
NAMED_SETS = ("python-faq", "debian-faq", "sample", "dev-faq")


@dataclass
class QuestionSet:
    name: str
    questions: list[EvalQuestion]
    docs: Path | None = None  # a folder to index as `source` (None: the configured sources)
    source: str | None = None


def load_set(name: str, workdir: Path, settings=None) -> QuestionSet:
    """A named set (built under `workdir` on first use) or a JSONL file of questions."""
    if name in HELD_OUT_SETS:
        source, _, build = HELD_OUT_SETS[name]
        qfile, docs = workdir / "questions.jsonl", workdir / "docs"
        if not qfile.exists() or not docs.is_dir():
            build(workdir)
        qs = [q for q in load_jsonl(qfile) if not q.unanswerable]
        return QuestionSet(name, qs, docs, source)
    if name == "dev-faq":
        qfile, docs = workdir / "questions.jsonl", workdir / "docs"
        if not qfile.exists() or not docs.is_dir():
            build_dev_faq(workdir)
        return QuestionSet(name, load_jsonl(qfile), docs, DEV_FAQ_SOURCE)
    if name == "sample":
        wiki = settings.sources.get(SAMPLE_SOURCE) if settings is not None else None
        docs = Path(wiki.path) if wiki is not None and wiki.path else Path("examples/acme-wiki")
        qs = [q for q in sample_questions(docs / "questions.jsonl") if q.relevant and not q.unanswerable]
        return QuestionSet(name, qs, docs, SAMPLE_SOURCE)
    path = Path(name)
    if not path.exists():
        raise DatasetError(f"--set {name}: not a known set ({', '.join(NAMED_SETS)}) and no such file. "
                           "Pass one of those names or a JSONL file of questions.")
    qs = [q for q in load_jsonl(path) if q.relevant and not q.unanswerable]
    if not qs:
        raise DatasetError(f"{path}: no answerable question names its \"relevant\" documents")
    return QuestionSet(path.stem, qs)


# -- metrics -------------------------------------------------------------------------------------------

def _unit(question: EvalQuestion, chunk) -> tuple[str, str]:
    by_section = any(r.heading_suffix for r in question.relevant)
    return (chunk.document_id, chunk.heading if by_section else "")


def rollup(question: EvalQuestion, results: Sequence[ScoredChunk]) -> list[tuple[str, str]]:
    """Distinct units (document, or document + section heading) in the order of their best chunk."""
    return list(dict.fromkeys(_unit(question, r.chunk) for r in results))


def score(question: EvalQuestion, units: Sequence[tuple[str, str]]) -> dict[str, float]:
    """nDCG@10, MRR@10, recall@10 and @100 of a ranked list of units; each relevant entry counts once."""
    found: dict[int, int] = {}  # relevant entry -> 1-based rank where it was first found
    for rank, (doc, heading) in enumerate(units, start=1):
        for i, rel in enumerate(question.relevant):
            if i not in found and rel.matches(doc, heading):
                found[i] = rank
                break
    n_rel = len(question.relevant)
    dcg = sum(1 / math.log2(rank + 1) for rank in found.values() if rank <= 10)
    idcg = sum(1 / math.log2(i + 2) for i in range(min(n_rel, 10)))
    first = min(found.values(), default=None)
    return {
        "ndcg@10": dcg / idcg if idcg else 0.0,
        "mrr@10": 1 / first if first and first <= 10 else 0.0,
        "recall@10": sum(r <= 10 for r in found.values()) / n_rel,
        "recall@100": sum(r <= 100 for r in found.values()) / n_rel,
        "hit@1": float(first == 1),
    }


def mean_scores(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    return {m: round(statistics.fmean(r[m] for r in rows), 3) for m in rows[0]} if rows else {}


# -- runs ------------------------------------------------------------------------------------------------

@dataclass
class Run:
    """One question's lists at full depth, plus how long each step took (ms)."""

    question: EvalQuestion
    bm25: list[ScoredChunk]
    vector: list[ScoredChunk]
    query_vector: object = None
    ms: dict[str, float] = field(default_factory=dict)


def fetch_runs(index, embedder, questions: Sequence[EvalQuestion], depth: int = DEPTH) -> list[Run]:
    """BM25 and vector lists for every question, at `depth` chunks; query embedding is timed apart."""
    runs = []
    for q in questions:
        t0 = time.perf_counter()
        vec = embedder.embed_query(q.question)
        t1 = time.perf_counter()
        query = Query(q.question, vec, candidates=depth)
        bm25 = index.search(query, depth, mode="bm25")
        t2 = time.perf_counter()
        vector = index.search(query, depth, mode="vector")
        t3 = time.perf_counter()
        runs.append(Run(q, bm25, vector, vec, {"embed": (t1 - t0) * 1e3, "bm25": (t2 - t1) * 1e3,
                                         "vector": (t3 - t2) * 1e3}))
    return runs


@contextmanager
def section_penalty(index, penalty: float) -> Iterator[None]:
    """The index searches with this long-section penalty inside the block."""
    saved = index.section_penalty
    index.section_penalty = penalty
    try:
        yield
    finally:
        index.section_penalty = saved


def with_section_penalty(index, runs: Sequence[Run], penalty: float, depth: int = DEPTH) -> list[Run]:
    """The same runs with their vector lists searched again at another `section_penalty` (BM25 is unchanged)."""
    with section_penalty(index, penalty):
        return [Run(r.question, r.bm25, index.search(Query(r.question.question, r.query_vector, candidates=depth),
                                                    depth, mode="vector"), r.query_vector, r.ms) for r in runs]


def fused_units(run: Run, params: FusionParams, candidates: int, k: int = DEPTH) -> list[tuple[str, str]]:
    return rollup(run.question, fuse(run.bm25[:candidates], run.vector[:candidates], k, params))


def evaluate(index, embedder, questions: Sequence[EvalQuestion], *,
             variants: dict[str, tuple], runs: list[Run] | None = None) -> dict:
    """Quality and latency of BM25, vector, and each hybrid variant (name -> fusion, candidates per retriever,
    long-section penalty, and optionally a reranker of the hits, `SectionReranker`). Hybrid goes through
    `index.search` as the product calls it, with that fusion and penalty set on the index; latency includes
    the query embedding where the mode needs one, and the reranking."""
    runs = runs if runs is not None else fetch_runs(index, embedder, questions)
    rows: dict[str, list[dict]] = {"bm25": [], "vector": [], **{v: [] for v in variants}}
    latency: dict[str, list[float]] = {m: [] for m in rows}
    for run in runs:
        rows["bm25"].append(score(run.question, rollup(run.question, run.bm25)))
        rows["vector"].append(score(run.question, rollup(run.question, run.vector)))
        latency["bm25"].append(run.ms["bm25"])
        latency["vector"].append(run.ms["embed"] + run.ms["vector"])
    saved = index.fusion
    try:
        for name, (params, candidates, penalty, *extra) in variants.items():
            rerank = extra[0] if extra else None
            index.fusion = params
            with section_penalty(index, penalty):
                for run in runs:
                    q = Query(run.question.question, run.query_vector, candidates=candidates)
                    t0 = time.perf_counter()
                    hybrid = index.search(q, DEPTH, mode="hybrid")
                    if rerank is not None:
                        hybrid = rerank(run.question.question, hybrid)
                    latency[name].append(run.ms["embed"] + (time.perf_counter() - t0) * 1e3)
                    rows[name].append(score(run.question, rollup(run.question, hybrid)))
    finally:
        index.fusion = saved
    out = {}
    for name in rows:
        lat = sorted(latency[name])
        out[name] = {**mean_scores(rows[name]),
                     "latency_ms_p50": round(statistics.median(lat), 1) if lat else None,
                     "latency_ms_p95": round(lat[min(len(lat) - 1, int(0.95 * len(lat)))], 1) if lat else None}
    return out


# -- fitting ---------------------------------------------------------------------------------------------

RRF_BM25_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0)
RRF_KS = (5, 20, 60)
CONVEX_BM25_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7)
CANDIDATES = (20, 50, 100, 200)
SECTION_PENALTIES = (0.0, 0.01, 0.02, 0.03, 0.04, 0.06)


def hybrid_grid() -> list[FusionParams]:
    grid = [FusionParams("rrf", w, 1.0, k) for w in RRF_BM25_WEIGHTS for k in RRF_KS]
    grid += [FusionParams("convex", w, 1.0 - w) for w in CONVEX_BM25_WEIGHTS]
    return grid


def grid_scores(runs_by_set: dict[str, list[Run]], params: FusionParams, candidates: int) -> dict[str, float]:
    """nDCG@10 per set for one fusion setting."""
    return {name: statistics.fmean(score(r.question, fused_units(r, params, candidates))["ndcg@10"] for r in runs)
            for name, runs in runs_by_set.items()}


def fit_hybrid(runs_by_set: dict[str, list[Run]], on_progress: Callable[[str], None] | None = None,
               by_penalty: dict[float, dict[str, list[Run]]] | None = None) -> dict:
    """The fusion setting with the best mean nDCG@10 over the sets (each set counts equally). With
    `by_penalty` (the runs searched again at each `section_penalty`, see `with_section_penalty`) the
    long-section penalty is fitted with it, over those runs instead of `runs_by_set`."""
    best: tuple[float, FusionParams, int, float | None, dict] | None = None
    tried = []
    for penalty, runs in (by_penalty or {None: runs_by_set}).items():
        for params in hybrid_grid():
            for cand in CANDIDATES:
                per_set = grid_scores(runs, params, cand)
                objective = statistics.fmean(per_set.values())
                tried.append({"method": params.method, "bm25_weight": params.bm25_weight,
                              "vector_weight": round(params.vector_weight, 3), "rrf_k": params.rrf_k,
                              "candidates": cand, "section_penalty": penalty,
                              "ndcg@10": {k: round(v, 4) for k, v in per_set.items()}, "objective": round(objective, 4)})
                # Ties: the smaller penalty and candidate depth, then the earlier (simpler) setting.
                if best is None or objective > best[0] + 1e-9:
                    best = (objective, params, cand, penalty, per_set)
    assert best is not None
    objective, params, cand, penalty, per_set = best
    if on_progress:
        on_progress(f"best: {params} candidates={cand} section_penalty={penalty}: nDCG@10 {per_set}")
    return {"method": params.method, "bm25_weight": params.bm25_weight,
            "vector_weight": round(params.vector_weight, 3), "rrf_k": params.rrf_k, "candidates": cand,
            "section_penalty": penalty,
            "objective": round(objective, 4), "per_set": {k: round(v, 4) for k, v in per_set.items()},
            "tried": sorted(tried, key=lambda t: -t["objective"])[:20]}


FIELD_WEIGHTS = ((4.0, 2.0), (2.0, 1.0), (1.0, 1.0), (1.0, 0.5), (8.0, 4.0), (4.0, 1.0))


def fit_field_weights(indexes: dict[str, object], questions: dict[str, Sequence[EvalQuestion]]) -> dict:
    """BM25 (title, heading) weights with the best mean BM25 nDCG@10 over the sets (body = 1)."""
    results = []
    for title_w, heading_w in FIELD_WEIGHTS:
        per_set = {}
        for name, index in indexes.items():
            old = index.field_weights
            index.field_weights = (title_w, heading_w, 1.0)
            try:
                rows = [score(q, rollup(q, index.search(Query(q.question, None, candidates=DEPTH), DEPTH,
                                                        mode="bm25"))) for q in questions[name]]
            finally:
                index.field_weights = old
            per_set[name] = round(statistics.fmean(r["ndcg@10"] for r in rows), 4)
        results.append({"title_weight": title_w, "heading_weight": heading_w, "ndcg@10": per_set,
                        "objective": round(statistics.fmean(per_set.values()), 4)})
    best = max(results, key=lambda r: r["objective"])  # max keeps the first of equals: today's default
    return {**{k: best[k] for k in ("title_weight", "heading_weight")}, "tried": results}


# -- another embedder on the same chunks ----------------------------------------------------------------

def reembed_copy(src: Path, dst: Path, embedder, batch: int = 64,
                 on_progress: Callable[[int, int], None] | None = None) -> Path:
    """A copy of the index at `src` with every vector recomputed by `embedder`, at `dst`; reused when `dst`
    already holds this embedder's vectors for as many chunks.

    The chunks stay those of `src`: the chunker depends only on the tokenizer and the length limit,
    which fine-tuning keeps, so `orgbot index --full` with the new model would cut the same chunks.
    """
    import shutil
    import sqlite3

    import numpy as np

    from retrieval.embedding import same_embedder
    from retrieval.sqlite_index import EmbeddedIndex
    from retrieval.types import Chunk

    def count(path: Path) -> int:
        with sqlite3.connect(path) as c:
            return int(c.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])

    if dst.exists():
        done = EmbeddedIndex(dst)
        reusable = same_embedder(done.embedder_name(), embedder.model_name) and count(dst) == count(src)
        done.close()
        if reusable:
            return dst
        dst.unlink()
    tmp = dst.with_suffix(".partial")
    tmp.unlink(missing_ok=True)
    with sqlite3.connect(src) as s, sqlite3.connect(tmp) as d:
        s.backup(d)  # a consistent copy, even of a WAL database
    conn = sqlite3.connect(tmp)
    rows = conn.execute("SELECT rowid, title, heading, text FROM chunks ORDER BY rowid").fetchall()
    for i in range(0, len(rows), batch):
        part = rows[i:i + batch]
        texts = [as_read(Chunk("", "", "", t, h, x, "", 0, "").embedding_text) for _, t, h, x in part]
        vecs = np.asarray(embedder.embed(texts), dtype=np.float32)
        conn.executemany("UPDATE chunks SET embedding = ? WHERE rowid = ?",
                         [(v.tobytes(), r[0]) for v, r in zip(vecs, part, strict=True)])
        if on_progress:
            on_progress(min(i + batch, len(rows)), len(rows))
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('embedder', ?)", (embedder.model_name,))
    conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
    conn.commit()
    conn.close()
    shutil.move(tmp, dst)
    return dst


def open_reembedded(src: Path, dst: Path, embedder, **engine_options):
    """`reembed_copy`, opened as a user's index opens (`engine_options`: the configured engine), with its
    keyword copy (Tantivy) brought up to date: its hybrid rows then get their keyword list from the engine a
    user's index searches, not from the FTS5 fallback."""
    from retrieval.sqlite_index import EmbeddedIndex

    copy = EmbeddedIndex(reembed_copy(src, dst, embedder), **engine_options)
    copy.catch_up_keywords()
    return copy
