"""Answers the bot posted and the 👍/👎 votes on them, in SQLite; exported as JSONL for training.

One export line per vote, in the shape `training/data.py` reads as a feedback example:
`{"question", "answer", "vote": "up"|"down", "passages": [{title, heading, text, document_id, updated}],
"citations": [document_id, ...], "asker", "user", "channel", "asked_at", "voted_at"}`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bot.answering import Answer

SCHEMA = """
CREATE TABLE IF NOT EXISTS answers(
    id TEXT PRIMARY KEY, question TEXT NOT NULL, answer TEXT NOT NULL, found INTEGER NOT NULL,
    passages TEXT NOT NULL, citations TEXT NOT NULL, asker TEXT, user TEXT, channel TEXT,
    thread_ts TEXT, ts TEXT, asked_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS answers_thread ON answers(channel, thread_ts);
CREATE TABLE IF NOT EXISTS votes(
    answer_id TEXT NOT NULL REFERENCES answers(id), user TEXT NOT NULL, vote TEXT NOT NULL,
    voted_at TEXT NOT NULL, PRIMARY KEY(answer_id, user)
);
"""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class AnswerRecord:
    id: str
    question: str
    answer: str
    found: bool
    passages: list[dict]
    citations: list[dict]  # {number, title, url, document_id, heading}
    asker: str | None = None
    user: str | None = None
    channel: str | None = None
    thread_ts: str | None = None
    ts: str | None = None
    asked_at: str = field(default_factory=now_iso)


def record_of(answer: Answer, *, asker: str | None, user: str | None, channel: str | None,
              thread_ts: str | None) -> AnswerRecord:
    # source and acl: what decides whether the answer may be shared into a channel later
    passages = [{"title": p.chunk.title, "heading": p.chunk.heading, "text": p.chunk.text,
                 "document_id": p.chunk.document_id, "url": p.chunk.url, "source": p.chunk.source,
                 "acl": list(p.chunk.acl),
                 "updated": p.chunk.updated_at.date().isoformat() if p.chunk.updated_at else None}
                for p in answer.passages]
    citations = [{"number": c.number, "title": c.title, "url": c.url, "document_id": c.document_id,
                  "heading": c.heading} for c in answer.citations]
    return AnswerRecord(uuid.uuid4().hex[:16], answer.question, answer.text, answer.found, passages, citations,
                        asker=asker, user=user, channel=channel, thread_ts=thread_ts)


class FeedbackStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # one writer at a time; the bot answers from many threads
        with self._connect() as c:
            c.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def save(self, r: AnswerRecord) -> str:
        with self._lock, self._connect() as c:
            c.execute(
                "INSERT OR REPLACE INTO answers VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (r.id, r.question, r.answer, int(r.found), json.dumps(r.passages), json.dumps(r.citations),
                 r.asker, r.user, r.channel, r.thread_ts, r.ts, r.asked_at),
            )
        return r.id

    def set_ts(self, answer_id: str, ts: str) -> None:
        with self._lock, self._connect() as c:
            c.execute("UPDATE answers SET ts = ? WHERE id = ?", (ts, answer_id))

    def get(self, answer_id: str) -> AnswerRecord | None:
        with self._connect() as c:
            row = c.execute("SELECT * FROM answers WHERE id = ?", (answer_id,)).fetchone()
        return _record(row) if row else None

    def answered_in_thread(self, channel: str, thread_ts: str) -> bool:
        with self._connect() as c:
            return c.execute("SELECT 1 FROM answers WHERE channel = ? AND thread_ts = ? LIMIT 1",
                             (channel, thread_ts)).fetchone() is not None

    def vote(self, answer_id: str, user: str, vote: str) -> bool:
        """Record `user`'s vote ("up" | "down"); a later vote replaces theirs. False if the answer is unknown."""
        if vote not in ("up", "down"):
            raise ValueError(f"vote must be 'up' or 'down', not {vote!r}")
        with self._lock, self._connect() as c:
            if c.execute("SELECT 1 FROM answers WHERE id = ?", (answer_id,)).fetchone() is None:
                return False
            c.execute("INSERT OR REPLACE INTO votes VALUES (?,?,?,?)", (answer_id, user, vote, now_iso()))
        return True

    def votes(self, since: str | None = None) -> Iterator[dict]:
        """Every vote joined with its answer, oldest first, in the export shape."""
        sql = ("SELECT a.*, v.user, v.vote, v.voted_at FROM votes v JOIN answers a ON a.id = v.answer_id"
               + (" WHERE v.voted_at >= ?" if since else "") + " ORDER BY v.voted_at, a.id")
        with self._connect() as c:
            rows = c.execute(sql, (since,) if since else ()).fetchall()
        for row in rows:
            r = _record(row[:12])
            yield {
                "question": r.question, "answer": r.answer, "vote": row[13],
                "passages": [{k: p.get(k) for k in ("title", "heading", "text", "document_id", "updated")}
                             for p in r.passages],
                "citations": [c["document_id"] for c in r.citations],
                "asker": r.asker, "user": row[12], "channel": r.channel, "asked_at": r.asked_at,
                "voted_at": row[14], "found": r.found, "answer_id": r.id,
            }

    def export(self, out: str | Path, since: str | None = None) -> int:
        n = 0
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w", encoding="utf-8") as f:
            for line in self.votes(since):
                f.write(json.dumps(line, ensure_ascii=False) + "\n")
                n += 1
        return n


def _record(row: Sequence) -> AnswerRecord:
    return AnswerRecord(row[0], row[1], row[2], bool(row[3]), json.loads(row[4]), json.loads(row[5]),
                        asker=row[6], user=row[7], channel=row[8], thread_ts=row[9], ts=row[10], asked_at=row[11])


def feedback_path(settings) -> Path:
    return Path(settings.slack.feedback_db).expanduser() if settings.slack.feedback_db \
        else settings.data_path / "feedback.db"
