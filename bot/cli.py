"""The `orgbot` command: index, search, ask, demo, status (and serve, train, eval, feedback)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from bot import logs
from bot.settings import ConfigError, Settings, SourceSettings, load_settings

app = typer.Typer(
    help="orgbot answers staff questions from your wikis and files, citing its sources.\n\n"
    "Example: orgbot index && orgbot ask \"How do I set up the VPN?\"",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)

SAMPLE_QUESTIONS = Path("examples/acme-wiki/questions.jsonl")


class State:
    config: str | None = None
    data_dir: str | None = None
    verbose: bool = False
    _settings: Settings | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            overrides = {"data_dir": self.data_dir} if self.data_dir else {}
            self._settings = load_settings(self.config, **overrides)
        return self._settings


state = State()


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(code)


@app.callback()
def main(
    config: Annotated[str | None, typer.Option("--config", envvar="ORGBOT_CONFIG", help="config file")] = None,
    data_dir: Annotated[str | None, typer.Option("--data-dir", envvar="ORGBOT_DATA_DIR",
                                                 help="where the index and state live")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log progress to stderr")] = False,
):
    state.config, state.data_dir, state.verbose = config, data_dir, verbose
    logs.configure("INFO" if verbose else os.environ.get("ORGBOT_LOG_LEVEL", "WARNING"))


def _settings() -> Settings:
    try:
        return state.settings()
    except ConfigError as e:
        raise fail(str(e)) from None


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err, transient=False)


def run_index(settings: Settings, names: list[str], full: bool) -> list:
    from bot.runtime import SyncRunner

    runner = SyncRunner(settings)
    reports = []
    with _progress() as progress:
        for name in names:
            task = progress.add_task(f"indexing {name}", total=None)

            def update(done: int, total: int | None, task=task):
                progress.update(task, completed=done, total=total)

            reports.append(runner.sync_sources([name], full=full, progress_for=lambda _n: update)[0])
    _print_reports(reports)
    return reports


def _print_reports(reports) -> None:
    for r in reports:
        if r is None:
            continue
        if r.error:
            err.print(f"[red]✗ {escape(r.source)}:[/] {escape(r.error)}")
            continue
        err.print(
            f"[green]✓ {escape(r.source)}:[/] {r.documents_seen} documents ({r.documents_indexed} indexed, "
            f"{r.documents_unchanged} unchanged, {r.documents_deleted} removed), {r.chunks_written} chunks, "
            f"{len(r.failures)} failures, {r.seconds:.1f}s"
        )
        for f in r.failures:
            err.print(f"   [yellow]skipped[/] {escape(f.item)}: {escape(f.reason)}")


@app.command()
def index(
    path: Annotated[str | None, typer.Argument(help="a folder to index ad hoc as a files source")] = None,
    source: Annotated[list[str] | None, typer.Option("--source", "-s", help="source name(s) from the config")] = None,
    full: Annotated[bool, typer.Option("--full", help="re-read and re-embed everything")] = False,
):
    """Index the configured sources (or a folder). Unchanged documents are skipped.

    Example: orgbot index --source acme-wiki
    """
    settings = _settings()
    names = list(source or [])
    if path:
        folder = Path(path)
        if not folder.is_dir():
            raise fail(f"{path} is not a folder")
        name = names[0] if names else folder.resolve().name
        settings.sources[name] = SourceSettings(type="files", path=str(folder))
        names = [name]
    if not names:
        names = list(settings.sources)
    if not names:
        raise fail("no sources configured. Add one under sources: in config.yaml, or run: orgbot index PATH")
    try:
        reports = run_index(settings, names, full)
    except ConfigError as e:
        raise fail(str(e)) from None
    if any(r is not None and r.error for r in reports):
        raise typer.Exit(1)


def _answerer(settings: Settings, adapter: str | None = "config"):
    from bot.answering.generator import GeneratorError
    from bot.runtime import make_answerer
    from retrieval.index import IndexUnavailable

    try:
        return make_answerer(settings, adapter=adapter)
    except (IndexUnavailable, GeneratorError, ConfigError) as e:
        raise fail(str(e)) from None


def _render_answer(answer) -> None:
    console.print(Panel(escape(answer.text), title=f"[bold]{escape(answer.question[:80])}", title_align="left",
                        border_style="green" if answer.found else "yellow"))
    if answer.citations:
        console.print("[bold]Sources[/]")
        for c in answer.citations:
            head = f" — {escape(c.heading)}" if c.heading and c.heading != c.title else ""
            console.print(f"  [{c.number}] [bold]{escape(c.title)}[/]{head}\n      [dim]{escape(c.url)}[/]")
    elif answer.passages:
        console.print("[bold]Nearest pages[/] [dim](not cited)[/]")
        for p in answer.nearest[:3]:
            console.print(f"  • [bold]{escape(p.chunk.title)}[/] — {escape(p.chunk.heading)}\n"
                          f"      [dim]{escape(p.chunk.url)}[/]")
    for note in answer.notes:
        console.print(f"[dim]note: {escape(note)}[/]")


def _ask_one(answerer, question: str, json_out: bool, k: int | None, asker: str | None = None) -> int:
    from bot.answering import Delta, QuestionError
    from bot.answering.generator import GeneratorError

    try:
        if json_out:
            print(json.dumps(answerer.answer(question, k=k, asker=asker).to_dict(), ensure_ascii=False, indent=2))
            return 0
        final = None
        with console.status("[dim]searching the knowledge base…"):
            events = answerer.stream(question, k=k, asker=asker)
            first = next(events)
        if isinstance(first, Delta):
            # Stream the text as it is generated, then show the validated answer with sources.
            with console.status("[dim]writing the answer…") as status:
                for event in events:
                    if isinstance(event, Delta):
                        status.update(f"[dim]{escape(event.text[-100:].replace(chr(10), ' '))}")
                    else:
                        final = event
        else:
            final = first
        _render_answer(final)
        return 0
    except QuestionError as e:
        err.print(f"[yellow]{escape(str(e))}[/]")
        return 2
    except GeneratorError as e:
        err.print(f"[bold red]error:[/] {escape(str(e))}")
        return 1


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="your question")],
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    k: Annotated[int | None, typer.Option("--k", min=1, max=50, help="passages to retrieve")] = None,
    adapter: Annotated[str | None, typer.Option("--adapter", help="LoRA adapter folder, or none")] = "config",
    asker: Annotated[str | None, typer.Option("--as", help="the asker's first name (the answer greets them)")] = None,
):
    """Answer a question from the index, citing its sources.

    Example: orgbot ask "How many Recharge Days do I get?" --as Dana
    """
    answerer = _answerer(_settings(), adapter)
    raise typer.Exit(_ask_one(answerer, question, json_out, k, asker))


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="what to look for")],
    json_out: Annotated[bool, typer.Option("--json", help="print {\"passages\": [...]}")] = False,
    k: Annotated[int, typer.Option("--k", min=1, max=100)] = 5,
    mode: Annotated[str, typer.Option("--mode", help="hybrid, bm25 or vector")] = "hybrid",
):
    """Retrieval only: the ranked passages, no generation.

    Example: orgbot search "parental leave" --k 3
    """
    from bot.answering.answerer import passages_to_dicts
    from bot.runtime import make_embedder, open_index
    from retrieval.index import IndexUnavailable
    from retrieval.types import Query

    if mode not in ("hybrid", "bm25", "vector"):
        raise fail("--mode must be hybrid, bm25 or vector")
    settings = _settings()
    try:
        idx = open_index(settings)
    except IndexUnavailable as e:
        raise fail(str(e)) from None
    embedder = make_embedder(settings)
    q = Query(text=query, vector=embedder.embed_query(query) if mode != "bm25" else None,
              candidates=max(settings.retrieval.candidates, k * 4))
    results = idx.search(q, k, mode=mode)  # type: ignore[arg-type]
    if json_out:
        print(json.dumps({"passages": passages_to_dicts(results)}, ensure_ascii=False, indent=2))
        return
    table = Table("#", "score", "title › heading", "text", show_lines=True)
    for i, r in enumerate(results, 1):
        table.add_row(str(i), f"{r.score:.4f}", escape(f"{r.chunk.title} › {r.chunk.heading}"),
                      escape(r.chunk.text[:160]))
    console.print(table)


@app.command()
def status():
    """What is indexed: documents, chunks, last sync and failures per source."""
    from bot.runtime import open_index
    from retrieval.index import IndexUnavailable
    from retrieval.state import SyncState

    settings = _settings()
    try:
        idx = open_index(settings)
        stats = idx.stats()
    except IndexUnavailable as e:
        raise fail(str(e)) from None
    sync_state = SyncState(settings.data_path / "state.db")
    table = Table("source", "documents", "chunks", "last indexed", "took", "failures", "last error")
    for name in sorted(set(stats.per_source) | set(settings.sources) | set(sync_state.sources())):
        docs, chunks = stats.per_source.get(name, (0, 0))
        last = sync_state.last(name)
        table.add_row(name, str(docs), str(chunks), (last.finished_at or "")[:19] if last else "never",
                      f"{last.seconds:.1f}s" if last else "", str(len(last.failures)) if last else "",
                      escape(last.error or "") if last else "")
    console.print(table)
    console.print(f"[dim]{stats.documents} documents, {stats.chunks} chunks in {settings.retrieval.backend} "
                  f"index ({settings.index_path if settings.retrieval.backend == 'embedded' else 'elasticsearch'})")
    built_by = getattr(idx, "embedder_name", lambda: None)()
    if built_by:
        console.print(f"[dim]vectors built by {escape(built_by)}[/dim]")
    health = getattr(idx, "health", None)
    if callable(health):
        try:
            console.print(health())
        except Exception as e:  # noqa: BLE001
            err.print(f"[red]health check failed:[/] {escape(str(e))}")


def _sample_questions(n: int = 3) -> list[str]:
    if not SAMPLE_QUESTIONS.exists():
        return ["How many Recharge Days do I get per year?"]
    rows = [json.loads(line) for line in SAMPLE_QUESTIONS.read_text().splitlines() if line.strip()]
    facts = [r["question"] for r in rows if r.get("kind") == "fact"]
    # an off-topic question shows the polite "not in the knowledge base" path
    unanswerable = [r["question"] for r in rows if r.get("kind") == "unanswerable" and r.get("off_topic")]
    picked = facts[:: max(1, len(facts) // (n - 1))][: n - 1] if facts else []
    return picked + unanswerable[:1]


@app.command()
def demo(
    questions: Annotated[int, typer.Option("--questions", "-n", min=1, help="sample questions to answer")] = 3,
):
    """Index the bundled sample wiki and answer a few sample questions; then ask your own."""
    settings = _settings()
    console.rule("[bold]orgbot demo: indexing the sample knowledge base")
    reports = run_index(settings, list(settings.sources), full=False)
    if any(r is not None and r.error for r in reports):
        raise typer.Exit(1)
    answerer = _answerer(settings)
    with console.status("[dim]loading the language model (the first run converts it, about a minute)…"):
        warm = getattr(answerer.generator, "warm_up", None)
        if warm:
            warm()
    for q in _sample_questions(questions):
        console.rule(f"[bold]Q: {escape(q)}")
        _ask_one(answerer, q, False, None)
    if not sys.stdin.isatty():
        return
    console.rule("[bold]Your turn: ask anything (empty line or Ctrl-D to quit)")
    while True:
        try:
            q = console.input("[bold cyan]? [/]").strip()
        except (EOFError, KeyboardInterrupt):
            break
        if not q:
            break
        _ask_one(answerer, q, False, None)


def _register_subcommands() -> None:
    from bot.cli_slack import register as register_slack
    from training.cli import register as register_training

    register_slack(app)
    register_training(app)


_register_subcommands()

if __name__ == "__main__":
    app()
