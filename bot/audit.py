"""The audit trail: one row per answer (and per answer shared into a channel), in SQLite.

Who asked, where, the question, the documents retrieved and cited, and the scope the search used
(the principals and sources, and who would read the answer). Kept `audit.retention_days`; read with
`orgbot audit`. Secrets never reach it: it stores only what the answer path already had in hand.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit(
    id INTEGER PRIMARY KEY, at TEXT NOT NULL, surface TEXT NOT NULL, asker TEXT, channel TEXT,
    question TEXT NOT NULL, answer_id TEXT, audience TEXT NOT NULL, principals TEXT NOT NULL,
    sources TEXT, retrieved TEXT NOT NULL, cited TEXT NOT NULL, found INTEGER NOT NULL, outcome TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_at ON audit(at);
CREATE INDEX IF NOT EXISTS audit_asker ON audit(asker);
CREATE INDEX IF NOT EXISTS audit_channel ON audit(channel);
"""

PRUNE_EVERY = 500  # inserts between retention sweeps (also one at start)


@dataclass
class AuditEntry:
    surface: str  # mention | message | assistant | ask | share | dm_offer | cli
    asker: str | None
    channel: str | None
    question: str
    audience: str  # "channel:C…", "user:U…", or "trusted" (the CLI: no ACL filter)
    principals: Sequence[str] | None  # None = no ACL filter
    sources: Sequence[str] | None = None
    retrieved: Sequence[str] = ()  # document ids, in rank order, distinct
    cited: Sequence[str] = ()
    found: bool = False
    answer_id: str | None = None
    outcome: str = "answered"  # answered | not_found | refused | failed | shared | share_refused
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))


def distinct(ids: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(ids))


class AuditLog:
    def __init__(self, path: str | Path, retention_days: int = 90):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.retention_days = retention_days
        self._lock = threading.Lock()
        self._inserts = 0
        with self._connect() as c:
            c.executescript(SCHEMA)
        self.prune()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30)
        conn.row_factory = sqlite3.Row
        return conn

    def record(self, e: AuditEntry) -> None:
        """Never raises: an audit row that cannot be written is logged, and the answer still goes out."""
        try:
            with self._lock, self._connect() as c:
                c.execute(
                    "INSERT INTO audit(at, surface, asker, channel, question, answer_id, audience, principals, "
                    "sources, retrieved, cited, found, outcome) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (e.at, e.surface, e.asker, e.channel, e.question, e.answer_id, e.audience,
                     json.dumps(None if e.principals is None else list(e.principals)),
                     None if e.sources is None else json.dumps(list(e.sources)),
                     json.dumps(distinct(e.retrieved)), json.dumps(distinct(e.cited)), int(e.found), e.outcome),
                )
                self._inserts += 1
            if self._inserts % PRUNE_EVERY == 0:
                self.prune()
        except Exception:
            log.exception("could not write the audit log", extra={"path": str(self.path), "surface": e.surface})

    def prune(self) -> int:
        cutoff = (datetime.now(UTC) - timedelta(days=self.retention_days)).isoformat(timespec="seconds")
        with self._lock, self._connect() as c:
            return c.execute("DELETE FROM audit WHERE at < ?", (cutoff,)).rowcount

    def query(self, *, asker: str | None = None, channel: str | None = None, document: str | None = None,
              since: str | None = None, limit: int = 50) -> list[dict]:
        """Newest first. `document` matches retrieved or cited document ids; `since` is a date or ISO time."""
        where, params = [], []
        if asker:
            where.append("asker = ?")
            params.append(asker)
        if channel:
            where.append("channel = ?")
            params.append(channel)
        if document:
            where.append("EXISTS (SELECT 1 FROM json_each(audit.retrieved) WHERE value = ?)")
            params.append(document)
        if since:
            where.append("at >= ?")
            params.append(since)
        sql = ("SELECT * FROM audit" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY id DESC LIMIT ?")
        with self._connect() as c:
            rows = c.execute(sql, [*params, limit]).fetchall()
        out = []
        for r in rows:
            d = dict(r)
            for k in ("principals", "sources", "retrieved", "cited"):
                d[k] = json.loads(d[k]) if d[k] is not None else None
            d["found"] = bool(d["found"])
            out.append(d)
        return out


def audit_path(settings) -> Path:
    a = settings.audit
    return Path(a.path).expanduser() if a.path else settings.data_path / "audit.db"


def open_audit(settings) -> AuditLog | None:
    return AuditLog(audit_path(settings), settings.audit.retention_days) if settings.audit.enabled else None
