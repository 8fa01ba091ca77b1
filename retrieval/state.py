"""Per-source sync state next to the index: what `orgbot status` and `/kb status` show, and where
the next incremental sync starts.

`syncs` keeps every report (counts, failures with their item and document ids, the error);
`checkpoints` holds one checkpoint per source, written only after the sync's changes are in the
index, so a crash between the two repeats a little work and never skips any.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from connectors.base import ConnectorFailure
from retrieval.indexer import SyncReport


@dataclass
class SourceState:
    source: str
    checkpoint: str | None = None
    last_success_at: str | None = None
    last_attempt_at: str | None = None
    last_error: str | None = None  # of the last attempt; None when it succeeded
    last: SyncReport | None = None
    failures: list[ConnectorFailure] = field(default_factory=list)  # of the last successful sync

    @property
    def retry_ids(self) -> set[str]:
        return {f.document_id for f in self.failures if f.document_id}


class SyncState:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as c:
            c.execute(
                "CREATE TABLE IF NOT EXISTS syncs(id INTEGER PRIMARY KEY, source TEXT NOT NULL,"
                " started_at TEXT NOT NULL, report TEXT NOT NULL)"
            )
            c.execute("CREATE INDEX IF NOT EXISTS syncs_source ON syncs(source, id)")
            c.execute("CREATE TABLE IF NOT EXISTS checkpoints(source TEXT PRIMARY KEY, value TEXT NOT NULL,"
                      " updated_at TEXT NOT NULL)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def record(self, report: SyncReport) -> None:
        """Store the report and, for a successful sync, its checkpoint (in one transaction)."""
        with self._connect() as c:
            c.execute(
                "INSERT INTO syncs(source, started_at, report) VALUES (?, ?, ?)",
                (report.source, report.started_at, json.dumps(report.to_dict())),
            )
            if report.ok and report.checkpoint is not None:
                c.execute("INSERT INTO checkpoints VALUES (?, ?, ?) ON CONFLICT(source) DO UPDATE SET"
                          " value = excluded.value, updated_at = excluded.updated_at",
                          (report.source, report.checkpoint, datetime.now(UTC).isoformat()))

    def checkpoint(self, source: str) -> str | None:
        with self._connect() as c:
            row = c.execute("SELECT value FROM checkpoints WHERE source = ?", (source,)).fetchone()
        return row[0] if row else None

    def forget(self, source: str) -> None:
        """Drop the checkpoint: the next sync reads everything."""
        with self._connect() as c:
            c.execute("DELETE FROM checkpoints WHERE source = ?", (source,))

    def last(self, source: str, successful: bool = False) -> SyncReport | None:
        with self._connect() as c:
            for (raw,) in c.execute("SELECT report FROM syncs WHERE source = ? ORDER BY id DESC", (source,)):
                report = SyncReport.from_dict(json.loads(raw))
                if not successful or report.ok:
                    return report
        return None

    def source_state(self, source: str) -> SourceState:
        last = self.last(source)
        ok = last if last is None or last.ok else self.last(source, successful=True)
        return SourceState(
            source=source, checkpoint=self.checkpoint(source),
            last_success_at=ok.finished_at if ok else None,
            last_attempt_at=last.finished_at if last else None,
            last_error=last.error if last else None, last=last,
            failures=list(ok.failures) if ok else [],
        )

    def sources(self) -> list[str]:
        with self._connect() as c:
            return [r[0] for r in c.execute("SELECT DISTINCT source FROM syncs ORDER BY source")]
