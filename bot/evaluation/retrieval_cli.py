"""`orgbot eval retrieval`: registered on `orgbot eval` by `register(eval_app)`."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console(stderr=True)

DEFAULT_OUT = "bench/results/retrieval_eval.json"


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(1)


def _set_settings(settings, qset, workdir: Path):
    """Settings for one set's own index: embedded engine in `workdir/data`, the set's folder as a files
    source, the fusion and embedder of the config."""
    from bot.settings import SourceSettings

    s = settings.model_copy(deep=True)
    s.data_dir = str(workdir / "data")
    s.retrieval.backend = "embedded"  # never write a benchmark into the configured Elasticsearch alias
    configured = settings.sources.get(qset.source)
    if configured is not None and configured.type == "files":  # the sample wiki: keep its excludes
        s.sources = {qset.source: configured.model_copy(update={"path": str(qset.docs)})}
    else:
        s.sources = {qset.source: SourceSettings(type="files", path=str(qset.docs))}
    return s


def _open_set(settings, name: str, eval_dir: Path, reindex: bool, embedder):
    """(question set, index, settings used, unanswerable questions) for one --set."""
    from bot.evaluation.datasets import HELD_OUT_SETS, SAMPLE_SOURCE, load_jsonl
    from bot.evaluation.retrieval import load_set
    from bot.runtime import SyncRunner, open_index

    workdir = eval_dir / name
    qset = load_set(name, workdir, settings)
    if qset.docs is None:  # a questions file: judged on the configured sources' own index
        index = open_index(settings)
        if index.stats().chunks == 0:
            raise _fail(f"the index at {settings.data_dir} is empty. Run: orgbot index")
        return qset, index, settings, []
    s = _set_settings(settings, qset, workdir)
    runner = SyncRunner(s, embedder=embedder)
    have = runner.index.stats().per_source.get(qset.source, (0, 0))[1]
    if reindex or have == 0:
        console.print(f"Indexing {qset.docs} as {qset.source} into {s.data_path} (the product's files connector)…")
        report = runner.sync_sources([qset.source])[0]
        if report is None or report.error:
            raise _fail(f"indexing {qset.docs} failed: {report.error if report else 'already running'}")
        console.print(f"  {report.documents_seen} documents, {report.chunks_written} chunks in {report.seconds:.0f} s")
    else:
        console.print(f"[dim]{name}: using the index in {s.data_path} ({have} chunks); --reindex to rebuild it[/dim]")
    runner.index.close()
    index = open_index(s)
    unanswerable = []
    if name == "sample":
        unanswerable = [q for q in load_jsonl(qset.docs / "questions.jsonl", SAMPLE_SOURCE) if q.unanswerable]
    elif name in HELD_OUT_SETS:
        unanswerable = [q for q in load_jsonl(workdir / "questions.jsonl") if q.unanswerable]
    return qset, index, s, unanswerable


def separating_cut(answerable: list[float], unanswerable: list[float]) -> tuple[float, float]:
    """The cut on the best cosine that sorts the most questions right (answerable at or above it,
    unanswerable below), stored as the fitted answering thresholds are (`stored_cut`: halfway down to the next
    lower observed cosine), and its accuracy. Ties: the lower cut (answer rather than refuse)."""
    from bot.evaluation.answers import stored_cut

    observed = answerable + unanswerable
    best = (0.0, -1.0)
    for t in sorted(set(observed)):
        acc = (sum(x >= t for x in answerable) + sum(x < t for x in unanswerable)) / len(observed)
        if acc > best[1]:
            best = (t, acc)
    return stored_cut(best[0], observed), best[1]


def _threshold(index, embedder, runs, unanswerable, configured: float) -> dict | None:
    """The cut on the best passage's cosine that best separates answerable from unanswerable questions
    (what `retrieval.min_similarity` is set from)."""
    if not unanswerable:
        return None
    from bot.evaluation.retrieval import DEPTH
    from retrieval.types import Query

    ok = [max((c.vector_score for c in r.vector), default=0.0) for r in runs]
    none = []
    for q in unanswerable:
        hits = index.search(Query(q.question, embedder.embed_query(q.question), candidates=DEPTH), DEPTH,
                            mode="vector")
        none.append(max((c.vector_score for c in hits), default=0.0))
    cut, accuracy = separating_cut(ok, none)
    return {"best_cut": cut, "accuracy_at_best_cut": round(accuracy, 3), "configured_min_similarity": configured,
            "answerable_kept_at_configured": round(sum(x >= configured for x in ok) / len(ok), 3),
            "unanswerable_refused_at_configured": round(sum(x < configured for x in none) / len(none), 3),
            "answerable_similarity_median": round(statistics.median(ok), 3),
            "unanswerable_similarity_median": round(statistics.median(none), 3)}


RERANKED = "hybrid (configured) + rerank"


def eval_retrieval(
    sets: Annotated[list[str] | None, typer.Option(
        "--set", help="python-faq, debian-faq, sample, dev-faq, or a JSONL file of questions; repeat for more")] = None,
    fit: Annotated[bool, typer.Option(help="also fit the hybrid fusion (and BM25 field weights) on --fit-on")] = False,
    fit_on: Annotated[list[str] | None, typer.Option(
        "--fit-on", help="sets to fit on (default: dev-faq and sample; never the Python FAQ)")] = None,
    eval_dir: Annotated[str | None, typer.Option(
        help="where the sets' documents and indexes live (default: <data_dir>/eval)")] = None,
    reindex: Annotated[bool, typer.Option(help="re-index the sets' documents even if an index exists")] = False,
    embedder_model: Annotated[str | None, typer.Option(
        "--embedder", help="also measure vector and hybrid search with this embedder (e.g. one from "
        "`orgbot train retriever`), on a re-embedded copy of each set's index")] = None,
    out: Annotated[str, typer.Option(help="JSON report")] = DEFAULT_OUT,
) -> None:
    """Retrieval quality (nDCG@10, MRR@10, recall@10/@100, hit@1) and query latency for BM25, vector and
    hybrid search, on the product's own indexing path; chunk hits are rolled up to sections/documents.

    Example: orgbot eval retrieval --set python-faq --set sample --set dev-faq --fit
    """
    from bot.evaluation.datasets import DatasetError
    from bot.evaluation.retrieval import (
        SECTION_PENALTIES,
        evaluate,
        fetch_runs,
        fit_field_weights,
        fit_hybrid,
        with_section_penalty,
    )
    from bot.runtime import make_embedder, make_focus_embedder
    from retrieval.fusion import PLAIN_RRF, FusionParams
    from training.cli import _settings

    settings = _settings()
    names = list(dict.fromkeys(sets or ["python-faq"]))
    fit_names = list(dict.fromkeys(fit_on or ["dev-faq", "sample"])) if fit else []
    if "python-faq" in fit_names:
        console.print("[yellow]warning:[/yellow] fitting on the Python FAQ: its scores then say nothing about "
                      "other documents")
    base = Path(eval_dir) if eval_dir else settings.data_path / "eval"
    embedder = make_embedder(settings)
    r = settings.retrieval
    configured = (r.hybrid.params(), r.candidates, r.hybrid.section_penalty)
    variants = {"hybrid (plain RRF)": (PLAIN_RRF, 50, 0.0), "hybrid (configured)": configured}
    if r.hybrid.section_penalty:
        variants["hybrid (configured, no section penalty)"] = (r.hybrid.params(), r.candidates, 0.0)
    if r.rerank_depth:  # what the answers read: the passage judge (settings insist on one) reorders the first sections
        judge = make_focus_embedder(settings)
        variants[RERANKED] = (*configured, r.reranker(judge.embed))
    opened, runs = {}, {}
    t0 = time.perf_counter()
    try:
        for name in dict.fromkeys(fit_names + names):
            opened[name] = _open_set(settings, name, base, reindex, embedder)
            console.print(f"Searching {len(opened[name][0].questions)} {name} questions…")
            runs[name] = fetch_runs(opened[name][1], embedder, opened[name][0].questions)
    except DatasetError as e:
        raise _fail(str(e)) from None
    report: dict = {"embedding_model": r.embedding_model,
                    "configured": {**r.hybrid.model_dump(), "candidates": r.candidates}, "sets": {}}
    if r.rerank_depth:
        report["rerank"] = {"judge": settings.answering.focus_embedder, "depth": r.rerank_depth,
                            "rank_weight": r.rerank_rank_weight, "bm25_weight": r.rerank_bm25_weight}
    if fit:
        fields = fit_field_weights({n: opened[n][1] for n in fit_names}, {n: opened[n][0].questions for n in fit_names})
        console.print(f"Fitting the fusion and the long-section penalty on {', '.join(fit_names)}…")
        by_penalty = {p: {n: with_section_penalty(opened[n][1], runs[n], p) for n in fit_names}
                      for p in SECTION_PENALTIES}
        fitted = fit_hybrid({n: runs[n] for n in fit_names}, on_progress=console.print, by_penalty=by_penalty)
        report["fit"] = {"on": fit_names, "fields": fields, "fusion": fitted}
        variants["hybrid (fitted)"] = (FusionParams(fitted["method"], fitted["bm25_weight"], fitted["vector_weight"],
                                                     fitted["rrf_k"]), fitted["candidates"], fitted["section_penalty"])
    for name in names:
        qset, index, s, unanswerable = opened[name]
        result = evaluate(index, embedder, qset.questions, variants=variants, runs=runs[name])
        if r.hybrid.section_penalty:  # what the long-section penalty does to vector search alone
            plain = evaluate(index, embedder, qset.questions, variants={},
                             runs=with_section_penalty(index, runs[name], 0.0))
            result = {"bm25": result.pop("bm25"), "vector": result.pop("vector"),
                      "vector (no section penalty)": plain["vector"], **result}
        report["sets"][qset.name] = {"questions": len(qset.questions), "chunks": index.stats().chunks, "modes": result,
                                "threshold": _threshold(index, embedder, runs[name], unanswerable, r.min_similarity)}
    if embedder_model:
        _compare_embedder(report, embedder_model, names, opened, settings, variants["hybrid (configured)"])
    report["seconds"] = round(time.perf_counter() - t0, 1)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    _print_table(report)
    if fit:
        f, fld = report["fit"]["fusion"], report["fit"]["fields"]
        console.print("Fitted on " + ", ".join(fit_names) + "; to use it, put in config.yaml under retrieval:\n"
                      f"  candidates: {f['candidates']}\n  hybrid: {{method: {f['method']}, bm25_weight: "
                      f"{f['bm25_weight']}, vector_weight: {f['vector_weight']}, rrf_k: {f['rrf_k']}, "
                      f"title_weight: {fld['title_weight']}, heading_weight: {fld['heading_weight']}, "
                      f"section_penalty: {f['section_penalty']}}}")
    console.print(f"Report: {out}")


def _compare_embedder(report: dict, model: str, names: list[str], opened: dict, settings, configured) -> None:
    """Vector and hybrid rows for another embedder, on a copy of each set's index re-embedded with it."""
    import re

    from bot.evaluation.retrieval import evaluate, fetch_runs, open_reembedded
    from retrieval.embedding import Embedder

    other = Embedder(model, batch_size=settings.retrieval.embedding_batch_size, dtype=settings.retrieval.embedding_dtype)
    label = Path(model).name or model
    h = settings.retrieval.hybrid
    report["compared_embedder"] = model
    for name in names:
        qset, index, s, _ = opened[name]
        src = getattr(index, "path", None)
        if src is None:
            console.print(f"[yellow]{name}: --embedder needs the embedded engine; skipped[/yellow]")
            continue
        dst = Path(src).with_name(f"index-{re.sub(r'[^A-Za-z0-9]+', '-', label)}.db")
        console.print(f"{name}: vectors by {escape(model)} in {dst}…")
        t = time.perf_counter()
        copy = open_reembedded(Path(src), dst, other, **h.engine_options())
        result = evaluate(copy, other, qset.questions, variants={"hybrid (configured)": configured},
                          runs=fetch_runs(copy, other, qset.questions))
        modes = report["sets"][qset.name]["modes"]
        modes[f"vector [{label}]"] = result["vector"]
        modes[f"hybrid (configured) [{label}]"] = result["hybrid (configured)"]
        report["sets"][qset.name].setdefault("reembed_seconds", {})[label] = round(time.perf_counter() - t, 1)
        copy.close()


def _print_table(report: dict) -> None:
    table = Table(title="Retrieval: chunk hits rolled up to the judged section / document; latency includes "
                        "embedding the query")
    for col in ("set", "variant", "nDCG@10", "MRR@10", "R@10", "R@100", "hit@1", "p50 ms", "p95 ms"):
        table.add_column(col, justify="left" if col in ("set", "variant") else "right")
    for name, res in report["sets"].items():
        for variant, m in res["modes"].items():
            table.add_row(escape(f"{name} ({res['questions']})"), escape(variant), *(str(m[k]) for k in (
                "ndcg@10", "mrr@10", "recall@10", "recall@100", "hit@1", "latency_ms_p50", "latency_ms_p95")))
    out = Console()
    if not out.is_terminal:
        out = Console(width=130)
    out.print(table)


def register(eval_app: typer.Typer) -> None:
    eval_app.command("retrieval")(eval_retrieval)
