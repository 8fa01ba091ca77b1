"""`orgbot train` and `orgbot eval`: registered on the main CLI by `register(app)`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console(stderr=True)

train_app = typer.Typer(
    help="Fine-tune a LoRA adapter to the organisation's tone.\n\n"
         "Example: orgbot train --overwrite   (or: --base-adapter adapters/grounded --data my-tone/ --out adapters/my-tone)",
    invoke_without_command=True, no_args_is_help=False,
)
eval_app = typer.Typer(help="Evaluations: `orgbot eval tone` compares the base model with an adapter; "
                            "`orgbot eval retrieval` measures search quality.")


def _settings():
    from bot.cli import _settings as cli_settings

    return cli_settings()


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(1)


DataOpt = Annotated[list[str] | None, typer.Option("--data", help="JSONL file or folder; repeat for more "
                                                   "(default: training.data in config)")]


@train_app.callback()
def train(
    ctx: typer.Context,
    data: DataOpt = None,
    base_model: Annotated[str | None, typer.Option(help="model to tune (default: training.base_model, "
                                                   "else generation.model)")] = None,
    out: Annotated[str | None, typer.Option(help="adapter folder (default: training.out)")] = None,
    epochs: Annotated[float | None, typer.Option(help="training.epochs")] = None,
    learning_rate: Annotated[float | None, typer.Option(help="training.learning_rate")] = None,
    rank: Annotated[int | None, typer.Option(help="LoRA rank (training.lora.r)")] = None,
    batch_size: Annotated[int | None, typer.Option(help="training.batch_size")] = None,
    max_length: Annotated[int | None, typer.Option(help="tokens per example (training.max_length)")] = None,
    max_steps: Annotated[int | None, typer.Option(help="stop after N steps (smoke runs)")] = None,
    base_adapter: Annotated[str | None, typer.Option(help="train on top of this adapter (training.base_adapter), "
                                                     "e.g. an organisation's tone on adapters/grounded")] = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing --out folder")] = False,
    resume: Annotated[bool, typer.Option(help="continue from the last checkpoint in --out")] = False,
) -> None:
    """Train: prepare the data, fine-tune with LoRA (TRL SFTTrainer), save the adapter and its card."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"data": data}
        return
    from training.data import DataError
    from training.train import TrainingError
    from training.train import train as run_train

    settings = _settings()
    cfg = settings.training.model_copy(deep=True)
    overrides = {"epochs": epochs, "learning_rate": learning_rate, "batch_size": batch_size, "max_length": max_length}
    for key, value in overrides.items():
        if value is not None:
            setattr(cfg, key, value)
    if data:
        cfg.data = list(data)
    if base_adapter:
        cfg.base_adapter = None if base_adapter == "none" else base_adapter
    if rank:
        cfg.lora.r, cfg.lora.alpha = rank, 2 * rank
    base = base_model or cfg.base_model or settings.generation.model
    target = out or cfg.out
    console.print(f"[bold]Training[/bold] {base} on {', '.join(cfg.data)} → {target}")
    try:
        report = run_train(cfg, base_model=base, out=target, cache_dir=settings.generation.cache_dir,
                           overwrite=overwrite, resume=resume, max_steps=max_steps, console=console,
                           bot_name=settings.answering.bot_name, organisation=settings.answering.organisation)
    except (TrainingError, DataError) as e:
        raise _fail(str(e)) from None
    console.print(
        f"[green]Saved[/green] {report.out_dir}: {report.train_examples} train / {report.eval_examples} eval "
        f"examples, {report.steps} steps, {report.epochs_run} epochs in {report.seconds:.0f} s on {report.device}, "
        f"peak memory {report.peak_rss_mb:.0f} MB; eval loss {report.first_eval_loss} → {report.best_eval_loss}."
    )
    console.print(f"Compare: orgbot eval tone --adapter {report.out_dir}")


@train_app.command("prepare")
def prepare_cmd(
    ctx: typer.Context,
    data: DataOpt = None,
    out: Annotated[str | None, typer.Option(help="folder for train.jsonl / eval.jsonl (default: "
                                            "<data_dir>/training-data)")] = None,
    eval_fraction: Annotated[float | None, typer.Option(help="share held out for eval loss")] = None,
    skip_invalid: Annotated[bool, typer.Option(help="leave invalid lines out instead of stopping")] = False,
) -> None:
    """Build and validate the dataset: schema errors name file:line; de-duplicated; deterministic split."""
    from training.data import DataError, prepare

    settings = _settings()
    cfg = settings.training
    sources = data or (ctx.obj or {}).get("data") or cfg.data
    target = Path(out) if out else settings.data_path / "training-data"
    try:
        report = prepare(sources, target, holdout=cfg.holdout, eval_fraction=eval_fraction or cfg.eval_fraction,
                         seed=cfg.seed, max_passages=cfg.max_passages, skip_invalid=skip_invalid,
                         bot_name=settings.answering.bot_name, organisation=settings.answering.organisation)
    except DataError as e:
        raise _fail(str(e)) from None
    d = report.to_dict()
    console.print(f"[green]Prepared[/green] {target}: {d['train']} train / {d['eval']} eval, kinds {d['kinds']}, "
                  f"dropped {d['dropped']}, hash {d['data_hash']}")
    for w in report.warnings:
        console.print(f"[yellow]warning:[/yellow] {w}")


@train_app.command("merge")
def merge_cmd(
    adapter: Annotated[str, typer.Option(help="adapter folder")],
    out: Annotated[str, typer.Option(help="folder for the merged model")],
    base_model: Annotated[str | None, typer.Option(help="default: the base model in the adapter card")] = None,
    overwrite: Annotated[bool, typer.Option()] = False,
) -> None:
    """Fold an adapter into the base weights (a plain transformers model, e.g. for vLLM without LoRA)."""
    from bot.answering.generator import GeneratorError
    from training.train import TrainingError, merge

    settings = _settings()
    try:
        path = merge(adapter, out, base_model=base_model, cache_dir=settings.generation.cache_dir, overwrite=overwrite)
    except (TrainingError, GeneratorError) as e:
        raise _fail(str(e)) from None
    console.print(f"[green]Merged[/green] {adapter} into {path}. Serve it with generation.model: {path}")


@eval_app.command("tone")
def eval_tone(
    adapter: Annotated[str | None, typer.Option(help="adapter to compare with the base model "
                                                "(default: generation.adapter)")] = None,
    questions: Annotated[int, typer.Option(help="held-out questions to answer per condition")] = 24,
    style_examples: Annotated[int, typer.Option(help="base-model answers for the tone classifier")] = 30,
    out: Annotated[str, typer.Option(help="JSON report")] = "bench/results/tone_eval.json",
    card: Annotated[bool, typer.Option(help="also write the scores into the adapter's card")] = False,
) -> None:
    """Base vs adapter on held-out questions: tone score, citation validity, answer correctness."""
    from bot.runtime import SyncRunner, make_answerer
    from training.evaluate import run_tone_eval
    from training.train import update_card_scores

    settings = _settings()
    chosen = adapter or settings.generation.adapter
    if chosen in ("none", ""):
        chosen = None
    if not settings.training.holdout:
        raise _fail("training.holdout is not set: the tone eval needs held-out questions (a questions.jsonl).")
    runner = SyncRunner(settings)
    console.print("Indexing the configured sources (unchanged documents are skipped)…")
    runner.sync_sources()

    def build(a):
        return make_answerer(settings, embedder=runner.embedder, index=runner.index, adapter=a or "none")

    result = run_tone_eval(build, adapter=chosen, questions_file=settings.training.holdout, data=settings.training.data,
                           n_questions=questions, n_style_examples=style_examples, on_progress=console.print)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    table = Table(title=f"Tone eval: {result['n_questions']} held-out questions")
    names = list(result["conditions"])
    table.add_column("metric")
    for n in names:
        table.add_column(n, justify="right")
    for metric in result["conditions"][names[0]]["summary"]:
        table.add_row(metric, *[str(result["conditions"][n]["summary"][metric]) for n in names])
    Console().print(table)
    console.print(f"Report: {out}")
    if card and chosen:
        update_card_scores(chosen, {"questions_file": result["questions_file"], "classifier": result["classifier"],
                                    **{n: c["summary"] for n, c in result["conditions"].items()}})
        console.print(f"Scores written to {chosen}/adapter_card.json")


def _unit_or_none(flag: str, value: str) -> float | None:
    try:
        number = None if value.lower() in ("none", "null") else float(value)
        if number is not None and not 0 <= number <= 1:
            raise ValueError
    except ValueError:
        raise _fail(f"{flag} {value!r}: give a number between 0 and 1, or 'none'") from None
    return number


def _fit_reports(fitted: str) -> list[dict]:
    """The reports `--fitted` names (comma-separated), each read and checked to hold a fit."""
    reports = []
    for path in (p.strip() for p in fitted.split(",") if p.strip()):
        try:
            report = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise _fail(f"--fitted {path}: not a report of orgbot eval answers with a fit ({e})") from None
        if not isinstance(report, dict) or "fit" not in report:
            raise _fail(f"--fitted {path}: not a report of orgbot eval answers with a fit (it has no 'fit')")
        reports.append(report)
    return reports


@eval_app.command("answers")
def eval_answers(
    set_: Annotated[str, typer.Option("--set", help="python-faq, debian-faq, sample, or a JSONL file of questions "
                                      "({question, reference, relevant, unanswerable})")] = "python-faq",
    arms: Annotated[str, typer.Option(help="comma-separated: base, tuned, base+RAG, tuned+RAG")] =
        "base,tuned,base+RAG,tuned+RAG",
    limit: Annotated[int | None, typer.Option(help="answerable questions to ask (spread over the set; every "
                                              "unanswerable one is asked too); default all")] = None,
    adapter: Annotated[str | None, typer.Option(help="the tuned arms' adapter (default: generation.adapter)")] = None,
    workdir: Annotated[str | None, typer.Option(help="where the python-faq or debian-faq documents and index are "
                                                "built (default: <data_dir>/eval/<set>)")] = None,
    out: Annotated[str, typer.Option(help="folder for answers_<set>.json and .png")] = "bench/results",
    refusal_confidence: Annotated[str | None, typer.Option(
        help="override answering.refusal_confidence for this run: a number in 0–1, or 'none' (what the fit "
             "needs: the model's own refusals)")] = None,
    min_similarity: Annotated[str | None, typer.Option(
        help="override retrieval.min_similarity for this run: a number in 0–1, or 'none' (0: what the fit needs)")]
        = None,
    fitted: Annotated[str | None, typer.Option(
        help="apply the thresholds an earlier run fitted (its answers_<name>.json) to this run, to measure them; "
             "several reports, comma-separated: the thresholds fitted on all their answers at once (the same set "
             "asked another way, e.g. one run with --asker and one without)")]
        = None,
    unfitted: Annotated[bool, typer.Option(
        help="run with every refusal threshold off (the model's own refusals, no similarity cut, no quoting "
             "threshold): the run the fit needs")] = False,
    name: Annotated[str | None, typer.Option(help="report name (default: the set's)")] = None,
    asker: Annotated[str | None, typer.Option(
        help="ask as this person, the way Slack asks (the asker's name goes into the prompt and the house "
             "greeting); default: no name, as orgbot ask")] = None,
) -> None:
    """Base vs tuned model, with and without retrieval, on the same questions.

    Example: orgbot eval answers --set python-faq --limit 60
    """
    from bot.evaluation import answers as ev
    from bot.evaluation.datasets import HELD_OUT_SETS, DatasetError, load_jsonl, sample_questions
    from bot.runtime import SyncRunner, make_answerer, make_focus_embedder, make_generator
    from bot.settings import SourceSettings, StyleSettings

    settings = _settings()
    fit_reports = _fit_reports(fitted) if fitted is not None else []
    if unfitted:
        settings.answering = settings.answering.model_copy(update={
            "refusal_confidence": None, "answer_similarity": None, "extract_similarity": 0.0,
            "unmatched_similarity": None})
        settings.retrieval = settings.retrieval.model_copy(update={"min_similarity": 0.0})
    chosen_arms = [a.strip() for a in arms.split(",") if a.strip()]
    unknown = [a for a in chosen_arms if a not in ev.ARMS]
    if unknown:
        raise _fail(f"unknown arm(s) {unknown}; choose from {', '.join(ev.ARMS)}")
    tuned_adapter = adapter or settings.generation.adapter
    if any(a.startswith("tuned") for a in chosen_arms) and not tuned_adapter:
        raise _fail("the tuned arms need an adapter: set generation.adapter or pass --adapter")
    try:
        if set_ in HELD_OUT_SETS:
            source, organisation, build = HELD_OUT_SETS[set_]
            work = Path(workdir) if workdir else settings.data_path / "eval" / set_
            settings = settings.model_copy(update={"data_dir": str(work / "data")}, deep=True)
            settings.sources = {source: SourceSettings(type="files", path=str(work / "docs"))}
            # Another organisation's documents: none of the configured organisation's names or format.
            settings.answering = settings.answering.model_copy(update={
                "bot_name": "orgbot", "organisation": organisation, "escalation": None,
                "style": StyleSettings()})
            if not (work / "questions.jsonl").exists():
                console.print(f"Building the {set_} set in {work}…")
                build(work)
            questions = load_jsonl(work / "questions.jsonl")
            set_name = set_
        elif set_ == "sample":
            questions, set_name = sample_questions(), "sample"
        else:
            questions, set_name = load_jsonl(set_, next(iter(settings.sources), None)), Path(set_).stem
    except DatasetError as e:
        raise _fail(str(e)) from None
    if fit_reports:
        try:  # one report: its own fit; several: fitted on all their answers together
            fit = fit_reports[0]["fit"] if len(fit_reports) == 1 else ev.fit_together(fit_reports, questions)
        except ev.FitError as e:
            raise _fail(f"--fitted {fitted}: {e}") from None
        if len(fit_reports) > 1:
            console.print(f"Thresholds fitted on {len(fit_reports)} reports together: {fit}")
        settings.answering = settings.answering.model_copy(update={
            k: fit[k] for k in ("refusal_confidence", "answer_similarity", "extract_similarity", "unmatched_similarity")
            if k in fit})
        if fit.get("min_similarity") is not None:
            settings.retrieval = settings.retrieval.model_copy(update={"min_similarity": fit["min_similarity"]})
    if refusal_confidence is not None:
        settings.answering = settings.answering.model_copy(
            update={"refusal_confidence": _unit_or_none("--refusal-confidence", refusal_confidence)})
    if min_similarity is not None:
        settings.retrieval = settings.retrieval.model_copy(
            update={"min_similarity": _unit_or_none("--min-similarity", min_similarity) or 0.0})
    questions = ev.pick(questions, limit)
    # The passage judge, loaded once for every RAG arm, and before anything runs: a missing model is told first.
    judge = make_focus_embedder(settings) if any(a.endswith("+RAG") for a in chosen_arms) else None
    runner = SyncRunner(settings)
    console.print(f"Indexing {', '.join(settings.sources)} (unchanged documents are skipped)…")
    reports = runner.sync_sources()
    if any(r is not None and r.error for r in reports):
        raise _fail("; ".join(r.error for r in reports if r is not None and r.error))
    index = runner.index
    generators: dict[str, object] = {}

    def generator(kind: str):
        if kind not in generators:
            generators[kind] = make_generator(settings, tuned_adapter if kind == "tuned" else "none")
        return generators[kind]

    def answerer(kind: str):
        return make_answerer(settings, generator=generator(kind), embedder=runner.embedder, index=index,
                             adapter=tuned_adapter if kind == "tuned" else "none", focus_embedder=judge)

    def relevant_text(q) -> str:
        """The answering sections' text (what a closed-book answer is checked against)."""
        if not q.relevant or settings.retrieval.backend != "embedded":
            return q.reference
        import sqlite3

        with sqlite3.connect(f"file:{settings.index_path}?mode=ro", uri=True) as conn:
            rows = conn.execute(f"SELECT document_id, heading, text FROM chunks WHERE document_id IN "
                                f"({','.join('?' * len(q.relevant))})", [r.document_id for r in q.relevant])
            return " ".join(t for d, h, t in rows if q.is_relevant(d, h)) or q.reference

    def progress(arm: str, i: int, n: int) -> None:
        if i == n or i % 10 == 0:
            console.print(f"  {arm}: {i}/{n}")

    a = settings.answering
    report = ev.evaluate(questions, arms=chosen_arms, make_answerer=answerer, closed_generator=generator,
                         relevant_text=relevant_text, bot=a.bot_name, org=a.organisation, progress=progress,
                         asker=asker)
    report["set"] = set_name
    report["adapter"] = tuned_adapter
    report["config"] = {"fitted_from": fitted, "asker": asker, "top_k": settings.retrieval.top_k,
                        "min_similarity": settings.retrieval.min_similarity,
                        "answer_similarity": a.answer_similarity, "extract_similarity": a.extract_similarity,
                        "grounding": a.grounding, "dtype": settings.generation.dtype,
                        "refusal_confidence": a.refusal_confidence, "unmatched_similarity": a.unmatched_similarity,
                        "focus_embedder": a.focus_embedder, "focus_headings": a.focus_headings,
                        "focus_margin": a.focus_margin, "focus_rank_weight": a.focus_rank_weight,
                        "rerank_depth": settings.retrieval.rerank_depth,
                        "rerank_rank_weight": settings.retrieval.rerank_rank_weight,
                        "rerank_bm25_weight": settings.retrieval.rerank_bm25_weight}
    js, png = ev.write(report, Path(out), name or set_name,
                       f"orgbot eval answers --set {set_name}: {len(questions)} questions")
    Console().print(ev.table(report))
    if "fit" in report:
        console.print(f"Fitted refusal override: {report['fit']}")
    console.print(f"Report: {js}, chart: {png}")


def register(app: typer.Typer) -> None:
    """Add the training and evaluation commands to the `orgbot` CLI."""
    from bot.evaluation.retrieval_cli import register as register_retrieval
    from training.retriever_cli import register as register_retriever

    register_retrieval(eval_app)
    register_retriever(train_app)
    app.add_typer(train_app, name="train")
    app.add_typer(eval_app, name="eval")
