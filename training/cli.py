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
         "Example: orgbot train --out adapters/acme-tone --overwrite",
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


def register(app: typer.Typer) -> None:
    """Add the training and evaluation commands to the `orgbot` CLI."""
    from bot.evaluation.retrieval_cli import register as register_retrieval
    from training.retriever_cli import register as register_retriever

    register_retrieval(eval_app)
    register_retriever(train_app)
    app.add_typer(train_app, name="train")
    app.add_typer(eval_app, name="eval")
