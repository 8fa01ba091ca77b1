"""`orgbot train retriever`: registered on `orgbot train` by `register(train_app)`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

console = Console(stderr=True)


def train_retriever_cmd(
    out: Annotated[str, typer.Option(help="folder for the fine-tuned embedder")] = "models/retriever",
    source: Annotated[list[str] | None, typer.Option(
        "--source", "-s", help="configured source(s) whose pages give heading -> section pairs (default: all)")] = None,
    folder: Annotated[list[str] | None, typer.Option(
        "--folder", help="a folder of pages to use as well (read with the files connector); repeat for more")] = None,
    faq: Annotated[bool, typer.Option(help="add the Git/SQLite/zsh FAQ pairs (Debian git-doc, sqlite3-doc, "
                                      "zsh-doc)")] = True,
    max_heading_pairs: Annotated[int, typer.Option(help="cap on heading -> section pairs")] = 3000,
    base_model: Annotated[str | None, typer.Option(help="default: retrieval.embedding_model")] = None,
    epochs: Annotated[float, typer.Option()] = 1.0,
    batch_size: Annotated[int, typer.Option(help="in-batch negatives: larger is better, and slower")] = 32,
    max_steps: Annotated[int | None, typer.Option(help="stop after N steps (smoke runs)")] = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing --out folder")] = False,
    hard_negatives: Annotated[bool, typer.Option(help="add one mined near-miss passage per pair (ranked 3-10 by "
                                                 "the base model) as an explicit negative")] = False,
    lora: Annotated[bool, typer.Option(help="train a LoRA adapter (a few MB, on top of --base-model) instead of "
                                       "every weight")] = False,
    bf16: Annotated[bool, typer.Option(help="train in bfloat16 autocast (on a CPU with native bf16: AVX-512 BF16 or AMX)")]
    = False,
) -> None:
    """Fine-tune the embedder for retrieval (sentence-transformers, MultipleNegativesRankingLoss) on question ->
    passage pairs from the organisation's pages and public FAQs. Then set retrieval.embedding_model to --out,
    run `orgbot index --full`, and compare with `orgbot eval retrieval`.

    Example: orgbot train retriever --out models/retriever --overwrite
    """
    from bot.runtime import make_connector
    from bot.settings import ConfigError
    from connectors.base import SourceDocument
    from connectors.files import FilesConnector
    from training.cli import _fail, _settings
    from training.retriever import RetrieverTrainingError, faq_pairs, heading_pairs, train_retriever

    settings = _settings()
    connectors = []
    try:
        for name in (source if source is not None else list(settings.sources)):
            connectors.append(make_connector(name, settings))
    except ConfigError as e:
        raise _fail(str(e)) from None
    for f in folder or []:
        if not Path(f).is_dir():
            raise _fail(f"--folder {f}: no such folder")
        connectors.append(FilesConnector(Path(f).resolve().name, f))
    docs = [d for c in connectors for batch in c.load() for d in batch if isinstance(d, SourceDocument)]
    pairs = heading_pairs(docs, max_heading_pairs)
    if faq:
        pairs += faq_pairs()
    base = base_model or settings.retrieval.embedding_model
    console.print(f"[bold]Training retriever[/bold] {escape(base)} on {len(pairs)} pairs "
                  f"({len(docs)} pages from {', '.join(c.name for c in connectors) or 'no source'}"
                  f"{' + FAQs' if faq else ''}) → {escape(out)}")
    try:
        report = train_retriever(pairs, base, out, epochs=epochs, batch_size=batch_size, max_steps=max_steps,
                                 overwrite=overwrite, sources=[c.name for c in connectors] + (["faq"] if faq else []),
                                 hard_negatives=hard_negatives, lora=lora, bf16=bf16)
    except RetrieverTrainingError as e:
        raise _fail(str(e)) from None
    console.print(f"[green]Saved[/green] {escape(report.out_dir)}: {report.pairs} pairs {report.pairs_by_kind}, "
                  f"{report.steps} steps in {report.seconds:.0f} s.")
    console.print(f"Use it: retrieval.embedding_model: {escape(report.out_dir)}, then orgbot index --full; "
                  "compare: orgbot eval retrieval --set python-faq")


def register(train_app: typer.Typer) -> None:
    train_app.command("retriever")(train_retriever_cmd)
