"""Sync history next to the index: what `orgbot status` and `/kb status` show."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from retrieval.indexer import SyncReport


class SyncState:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as c:
            c.execute(
                "CREATE TABLE IF NOT EXISTS syncs(id INTEGER PRIMARY KEY, source TEXT NOT NULL,"
                " started_at TEXT NOT NULL, report TEXT NOT NULL)"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def record(self, report: SyncReport) -> None:
        with self._connect() as c:
            c.execute(
                "INSERT INTO syncs(source, started_at, report) VALUES (?, ?, ?)",
                (report.source, report.started_at, json.dumps(report.to_dict())),
            )

    def last(self, source: str, successful: bool = False) -> SyncReport | None:
        with self._connect() as c:
            for (raw,) in c.execute("SELECT report FROM syncs WHERE source = ? ORDER BY id DESC", (source,)):
                report = SyncReport.from_dict(json.loads(raw))
                if not successful or report.ok:
                    return report
        return None

    def sources(self) -> list[str]:
        with self._connect() as c:
            return [r[0] for r in c.execute("SELECT DISTINCT source FROM syncs ORDER BY source")]
