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
    err.print(f"[bold red]error:[/] {escape(logs.redact(message))}")
    return typer.Exit(code)


@app.callback()
def main(
    config: Annotated[str | None, typer.Option("--config", envvar="ORGBOT_CONFIG", help="config file")] = None,
    data_dir: Annotated[str | None, typer.Option("--data-dir", envvar="ORGBOT_DATA_DIR",
                                                 help="where the index and state live")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log progress to stderr")] = False,
):
    state.config, state.data_dir, state.verbose = config, data_dir, verbose
    logs.configure(os.environ.get("ORGBOT_LOG_LEVEL", "WARNING"), verbose=verbose)


def _settings() -> Settings:
    try:
        settings = state.settings()
    except ConfigError as e:
        raise fail(str(e)) from None
    for secret in settings.secret_values():
        logs.register_secret(secret)
    logs.log_to_file(settings.log_path)
    return settings


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

            report = runner.sync_sources([name], full=full, progress_for=lambda _n: update)[0]
            if report is None:
                err.print(f"[yellow]… {escape(name)} is syncing right now (the scheduler, /kb reindex or another "
                          "orgbot); not started twice. See: orgbot status")
            reports.append(report)
    _print_reports(reports)
    return reports


def _print_reports(reports) -> None:
    for r in reports:
        if r is None:
            continue
        if r.error:
            err.print(f"[red]✗ {escape(r.source)}:[/] {escape(logs.redact(r.error))}")
            continue
        mode, kind = {"incremental": (" (incremental)", "changed "), "full": (" (full)", ""),
                      "rechunk": (" (the chunking changed since the last index: documents chunked again)", "")
                      }.get(r.mode, ("", ""))
        err.print(
            f"[green]✓ {escape(r.source)}{mode}:[/] {r.documents_seen} {kind}documents ({r.documents_indexed} indexed, "
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
    """Sync the configured sources (or a folder): incremental from the last checkpoint where the source
    can report changes (wikis, git), else unchanged documents are skipped; deleted ones are removed.

    Example: orgbot index --source handbook        (orgbot index --source handbook --full re-reads all)
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
            answer = answerer.answer(question, k=k, asker=asker)
            print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
            _audit_cli(question, answer)
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
        _audit_cli(question, final)
        return 0
    except QuestionError as e:
        err.print(f"[yellow]{escape(str(e))}[/]")
        return 2
    except GeneratorError as e:
        err.print(f"[bold red]error:[/] {escape(str(e))}")
        return 1


def _audit_cli(question: str, answer) -> None:
    """The CLI is a trusted caller (no ACL filter): its answers are audited as such, with the OS user."""
    import getpass

    from bot.audit import AuditEntry, open_audit

    settings = state.settings()
    log = open_audit(settings)
    if log is None:
        return
    try:
        who = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        who = None
    log.record(AuditEntry(surface="cli", asker=f"cli:{who}" if who else "cli", channel=None, question=question,
                          audience="trusted", principals=None,
                          retrieved=[p.chunk.document_id for p in answer.passages],
                          cited=[c.document_id for c in answer.citations], found=answer.found,
                          outcome="answered" if answer.found else "not_found"))


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
    from bot.answering.answerer import passages_to_dicts, shown_title
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
        table.add_row(str(i), f"{r.score:.4f}", escape(f"{shown_title(r.chunk)} › {r.chunk.heading}"),
                      escape(r.chunk.text[:160]))
    console.print(table)


def _when(iso: str | None) -> str:
    return iso[:19].replace("T", " ") if iso else ""


@app.command()
def status(json_out: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False):
    """What is indexed, per source: documents, last sync, next scheduled run, last error, failures.

    Example: orgbot status --json
    """
    from bot.runtime import open_index
    from bot.status import source_rows
    from retrieval.index import IndexUnavailable

    settings = _settings()
    try:
        idx = open_index(settings)
        stats = idx.stats()
    except IndexUnavailable as e:
        raise fail(str(e)) from None
    rows = source_rows(settings, stats)
    if json_out:
        print(json.dumps({"documents": stats.documents, "chunks": stats.chunks, "sources": rows}, indent=2))
        return
    table = Table("source", "documents", "chunks", "last sync", "next run", "failures", "last error")
    for r in rows:
        last = f"{_when(r['last_sync'])} ({r['last_mode']}, {r['took_s']:.1f}s)" if r["last_sync"] else "never"
        nxt = _when(r["next_run"]) if r["next_run"] else (f"{r['schedule']} (scheduler not started)"
                                                          if r["schedule"] else "not scheduled")
        table.add_row(r["source"], str(r["documents"]), str(r["chunks"]), last, nxt, str(len(r["failures"])),
                      escape(r["last_error"] or ""))
    console.print(table)
    for r in rows:
        for f in r["failures"][:5]:
            console.print(f"[yellow]{escape(r['source'])}: skipped[/] {escape(f['item'])}: {escape(f['reason'])}")
        if len(r["failures"]) > 5:
            console.print(f"[yellow]{escape(r['source'])}:[/] … and {len(r['failures']) - 5} more (--json)")
    console.print(f"[dim]{stats.documents} documents, {stats.chunks} chunks in {settings.retrieval.backend} "
                  f"index ({settings.index_path if settings.retrieval.backend == 'embedded' else 'elasticsearch'})")
    g = settings.generation
    if g.backend == "transformers":
        from bot.answering.generator import choose_decode_weights
        from retrieval.embedding import choose_dtype

        dtype = choose_dtype(g.dtype, "cpu")
        decode = choose_decode_weights(g.decode_weights, dtype, "cpu")
        why = {"bf16": "this CPU has native bf16 (AVX-512 BF16 / AMX)", "fp32": "no native bf16 on this CPU"}
        console.print(f"[dim]generation: {escape(g.model)} + {escape(g.adapter or 'no adapter')}, {dtype} on CPU "
                      f"({why[dtype] if g.dtype == 'auto' else 'generation.dtype'}; bf16 on a GPU), "
                      f"decoding reads {'int8' if decode == 'int8' else dtype} weights")
    built_by = getattr(idx, "embedder_name", lambda: None)()
    if built_by:
        console.print(f"[dim]vectors built by {escape(built_by)}[/dim]")
    keywords = getattr(idx, "keyword_engine_state", lambda: None)()
    if keywords:
        console.print(f"[dim]keyword search: {escape(keywords)}[/dim]")
    health = getattr(idx, "health", None)
    if callable(health):
        try:
            console.print(_redacted(health()))
        except Exception as e:  # noqa: BLE001
            err.print(f"[red]health check failed:[/] {escape(logs.redact(str(e)))}")


@app.command()
def audit(
    user: Annotated[str | None, typer.Option("--user", "-u", help="only questions by this Slack user id")] = None,
    channel: Annotated[str | None, typer.Option("--channel", "-c", help="only in this channel id")] = None,
    document: Annotated[str | None, typer.Option("--document", "-d", help="only answers that retrieved this "
                                                                         "document id")] = None,
    since: Annotated[str | None, typer.Option("--since", help="on or after this date (YYYY-MM-DD)")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="newest entries shown")] = 50,
    json_out: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
):
    """Who asked what, where, which documents were retrieved and cited, and with which scope (newest first).

    Example: orgbot audit --document wiki:hr/severance.md --since 2026-01-01
    """
    from bot.audit import AuditLog, audit_path

    settings = _settings()
    path = audit_path(settings)
    if not path.exists():
        raise fail(f"No audit log yet at {path}. It is written when the bot answers (orgbot serve, orgbot ask).")
    rows = AuditLog(path, settings.audit.retention_days).query(asker=user, channel=channel, document=document,
                                                               since=since, limit=limit)
    if json_out:
        for r in rows:
            print(json.dumps(r, ensure_ascii=False))
        return
    table = Table("when", "where", "asker", "scope", "question", "cited", "retrieved", "outcome", show_lines=False)
    for r in rows:
        scope = r["audience"] if r["principals"] is None else f"{r['audience']} ({len(r['principals'])} principals)"
        table.add_row(r["at"][:19], escape(f"{r['surface']} {r['channel'] or ''}".strip()), escape(r["asker"] or ""),
                      escape(scope), escape(r["question"][:80]), escape(", ".join(r["cited"])),
                      str(len(r["retrieved"])), r["outcome"])
    console.print(table)
    console.print(f"[dim]{len(rows)} entries from {path} (kept {settings.audit.retention_days} days)")


def _redacted(value):
    """Health reports carry URLs: a password in one is shown as ***."""
    if isinstance(value, str):
        return logs.redact(value)
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


@app.command()
def scheduler():
    """Run only the scheduled syncs (each source's `schedule:`), without the Slack bot.

    Run one beside bot replicas that set scheduler.enabled: false, or let `orgbot serve` schedule.
    Example: orgbot scheduler
    """
    from bot.runtime import SyncRunner
    from bot.scheduler import SyncScheduler

    settings = _settings()
    if not any(s.effective_schedule for s in settings.sources.values()):
        raise fail("no source has a schedule. Add one, e.g. sources.<name>.schedule: 15m (or a cron "
                   "expression like '0 * * * *')")
    sched = SyncScheduler(SyncRunner(settings))
    if not sched.start():
        raise fail(f"another orgbot process already runs the scheduler for {settings.data_path} "
                   "(orgbot serve or orgbot scheduler); stop it first, or leave it to that one")
    for name, at in sorted(sched.next_runs().items()):
        err.print(f"[green]✓[/] {escape(name)}: {escape(settings.sources[name].effective_schedule or '')}, "
                  f"next run {_when(at.isoformat()) if at else 'paused'} UTC")
    err.print("Scheduling syncs. Ctrl-C stops it.")
    try:
        sched.wait()
    except KeyboardInterrupt:
        err.print("stopped")
    finally:
        sched.stop(wait=False)


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
    asker: Annotated[str | None, typer.Option(
        "--as", help="ask as this person, the way Slack passes the asker's name ('' for no name, as orgbot ask)")]
        = "Sam",
):
    """Index the bundled sample wiki and answer a few sample questions, asked as a Slack user would (named
    Sam); then ask your own."""
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
        _ask_one(answerer, q, False, None, asker or None)
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
        _ask_one(answerer, q, False, None, asker or None)


def _register_subcommands() -> None:
    from bot.cli_slack import register as register_slack
    from training.cli import register as register_training

    register_slack(app)
    register_training(app)


_register_subcommands()


def _expected_errors() -> tuple[type[BaseException], ...]:
    """Failures a person can fix (the cluster is down, a key is wrong, a wiki is unreachable, a bad
    config): their message says how, so they get that one line and no traceback."""
    from bot.answering.generator import GeneratorError
    from connectors.base import SourceUnavailable
    from retrieval.embedding import ModelNotFound
    from retrieval.index import IndexUnavailable

    return ConfigError, IndexUnavailable, GeneratorError, SourceUnavailable, ModelNotFound


def entry() -> None:
    """The `orgbot` command: the Typer app, with errors a person can read (tracebacks go to the log file,
    or to the terminal with --verbose)."""
    import logging

    try:
        app()
    except _expected_errors() as e:
        # INFO: the log file (and the terminal with --verbose) get the traceback; the terminal one line
        logging.getLogger("bot.cli").info("command failed", exc_info=True)
        err.print(f"[bold red]error:[/] {escape(logs.redact(str(e)))}")
        sys.exit(1)
    except Exception as e:  # noqa: BLE001 - a bug: say where the details are, not a page of traceback
        log = logging.getLogger("bot.cli")
        log.info("unexpected error", exc_info=True)
        where = logs.log_file()
        hint = f"the traceback is in {where}" if where else "run again with --verbose for the traceback"
        err.print(f"[bold red]error:[/] orgbot stopped on an unexpected {type(e).__name__}: "
                  f"{escape(logs.redact(str(e))[:300])} ({hint}).")
        sys.exit(1)


if __name__ == "__main__":
    entry()
