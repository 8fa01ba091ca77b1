"""`/kb` for admins: reindex a source in the background, show status and sources. Replies are plain
text for the asker only; who may run them is decided by `middleware.admins_only`."""

from __future__ import annotations

import logging
import shlex
import threading
from collections.abc import Callable
from concurrent.futures import Executor

from bot.runtime import SyncRunner
from retrieval.indexer import SyncReport

log = logging.getLogger(__name__)

HELP = """*/kb* — knowledge-base admin commands
• `/kb reindex` — re-sync every source (only changed documents are re-embedded)
• `/kb reindex SOURCE [--full]` — one source; `--full` re-reads and re-embeds everything
• `/kb status` — per source: documents, last sync, next scheduled run, last error, failures
• `/kb sources` — the configured sources"""


def report_text(r: SyncReport) -> str:
    if r.error:
        return f"✗ *{r.source}*: the sync failed, the index is unchanged: {r.error}"
    lines = [f"✓ *{r.source}* reindexed in {r.seconds:.1f}s: {r.documents_seen} documents seen, "
             f"{r.documents_indexed} changed, {r.documents_unchanged} unchanged, {r.documents_deleted} deleted; "
             f"{r.chunks_written} chunks written; {len(r.failures)} failures."
             + (" The chunking changed since the last index: documents chunked otherwise were chunked again." if r.mode == "rechunk"
                else "")]
    lines += [f"  • skipped {f.item}: {f.reason}" for f in r.failures[:10]]
    if len(r.failures) > 10:
        lines.append(f"  • … and {len(r.failures) - 10} more (see `orgbot status`)")
    return "\n".join(lines)


def _when(iso: str | None) -> str:
    return iso[:16].replace("T", " ") if iso else ""


class KbCommands:
    def __init__(self, runner: SyncRunner, executor: Executor):
        self.runner = runner
        self.executor = executor
        self._claimed: set[str] = set()  # submitted but maybe not started yet: refused like running ones
        self._lock = threading.Lock()

    def run(self, text: str, user: str, respond: Callable[[str], object]) -> str:
        """Handle `/kb <text>`; returns the immediate (ephemeral) reply. Long work reports via `respond`."""
        try:
            args = shlex.split(text or "")
        except ValueError:
            args = (text or "").split()
        verb, rest = (args[0].lower(), args[1:]) if args else ("help", [])
        if verb == "reindex":
            return self.reindex(rest, user, respond)
        if verb == "status":
            return self.status()
        if verb == "sources":
            return self.sources()
        return HELP if verb == "help" else f"I don't know `/kb {verb}`.\n{HELP}"

    def reindex(self, args: list[str], user: str, respond: Callable[[str], object]) -> str:
        full = "--full" in args
        names = [a for a in args if not a.startswith("--")] or list(self.runner.settings.sources)
        known = self.runner.settings.sources
        unknown = [n for n in names if n not in known]
        if unknown:
            return (f"There is no source named {', '.join(f'`{n}`' for n in unknown)}. "
                    f"Known: {', '.join(f'`{n}`' for n in known) or 'none'} (see `/kb sources`).")
        with self._lock:
            busy = [n for n in names if n in self._claimed or n in self.runner.running()]
            if not busy:
                self._claimed.update(names)
        if busy:
            return f"`{'`, `'.join(busy)}` is already being reindexed; I'll not start it twice. Try `/kb status` later."
        log.info("reindex requested", extra={"user": user, "sources": names, "full": full})
        for name in names:
            self.executor.submit(self._sync, name, full, respond)
        return f"Reindexing {', '.join(f'`{n}`' for n in names)}{' (full)' if full else ''} — started. " \
               "I'll post the counts here when it's done."

    def _sync(self, name: str, full: bool, respond: Callable[[str], object]) -> None:
        try:
            report = self.runner.sync_sources([name], full=full)[0]
            text = report_text(report) if report else f"`{name}` was already being reindexed; not started twice."
        except Exception as e:  # a broken config or source must not take the bot down
            log.exception("reindex failed", extra={"source": name})
            text = f"✗ *{name}*: the reindex could not run: {e}"
        finally:
            with self._lock:
                self._claimed.discard(name)
        try:
            respond(text)
        except Exception:
            log.exception("could not report a reindex", extra={"source": name})

    def status(self) -> str:
        from bot.status import source_rows

        stats = self.runner.index.stats()
        running = self.runner.running()
        lines = [f"*Index:* {stats.documents} documents, {stats.chunks} chunks"]
        for r in source_rows(self.runner.settings, stats):
            name = r["source"]
            if r["last_sync"]:
                when = f"last synced {_when(r['last_sync'])} UTC ({r['last_mode']}, {r['took_s']:.1f}s)"
                if r["last_error"] and r["last_success"]:
                    when += f", last success {_when(r['last_success'])} UTC"
            else:
                when = "never synced"
            nxt = f", next run {_when(r['next_run'])} UTC" if r["next_run"] else \
                (f", every {r['schedule']} (scheduler not running)" if r["schedule"] else "")
            line = f"• `{name}`: {r['documents']} documents, {r['chunks']} chunks, {when}{nxt}"
            if r["failures"]:
                line += f", {len(r['failures'])} failures"
            if name in running:
                line += " — *reindexing now*"
            lines.append(line)
            if r["last_error"]:
                lines.append(f"    ✗ last error: {r['last_error']}")
            lines += [f"    • skipped {f['item']}: {f['reason']}" for f in r["failures"][:3]]
            if len(r["failures"]) > 3:
                lines.append(f"    • … and {len(r['failures']) - 3} more (`orgbot status --json`)")
        return "\n".join(lines)

    def sources(self) -> str:
        if not self.runner.settings.sources:
            return "No sources are configured. Add one under `sources:` in config.yaml."
        lines = ["*Sources:*"]
        for name, s in sorted(self.runner.settings.sources.items()):
            where = s.path or s.url or ""
            acl = f", visible to {', '.join(s.acl)}" if s.acl else ""
            if s.acl_rules:
                acl += f", {len(s.acl_rules)} ACL rule{'s' if len(s.acl_rules) != 1 else ''} (" + "; ".join(
                    f"{r.match} → {', '.join(r.principals) or 'everyone'}" for r in s.acl_rules[:5]) + ")"
            every = f", schedule {s.effective_schedule}" if s.effective_schedule else ""
            lines.append(f"• `{name}` ({s.type}) {where}{acl}{every}")
        return "\n".join(lines)
