"""The memory that makes every question answered exactly once, in SQLite under the data dir, so it
survives a restart (Slack retries for about 5 minutes, a deploy can fall in between) and is shared by
every bot process on that data dir. Plain Python, no Slack calls."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bot.settings import ConfigError, Settings

log = logging.getLogger(__name__)

SCHEMA = "CREATE TABLE IF NOT EXISTS claims(key TEXT PRIMARY KEY, claimed_at REAL NOT NULL) WITHOUT ROWID"

# One statement, so the claim is atomic across threads and processes: a new key is inserted, an
# expired one taken over, a live one left alone (0 rows changed).
CLAIM = ("INSERT INTO claims(key, claimed_at) VALUES (?, ?) "
         "ON CONFLICT(key) DO UPDATE SET claimed_at = excluded.claimed_at WHERE claims.claimed_at < ?")


class ClaimStore:
    """Keys claimed for `ttl` seconds; `add` claims a key and says whether it was free. Thread- and
    process-safe. `clock` is wall-clock time (it must mean the same in the next process)."""

    def __init__(self, path: str | Path, ttl: float, *, clock: Callable[[], float] = time.time,
                 busy_timeout_s: float = 5.0, prune_every_s: float = 60.0):
        self.path, self.ttl, self.clock, self.prune_every_s = Path(path), ttl, clock, prune_every_s
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # one connection, shared by the listener threads
        self._db = sqlite3.connect(self.path, timeout=busy_timeout_s, isolation_level=None,
                                   check_same_thread=False)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")  # readers never wait for the other process's writer
            self._db.execute("PRAGMA synchronous=NORMAL")  # durable enough for a memory that expires anyway
            self._db.execute(SCHEMA)
        except sqlite3.Error:
            self._db.close()
            raise
        self._next_prune = float("-inf")

    def add(self, key: str) -> bool:
        now = self.clock()
        try:
            with self._lock:
                if now >= self._next_prune:
                    self._next_prune = now + self.prune_every_s
                    pruned = self._db.execute("DELETE FROM claims WHERE claimed_at < ?", (now - self.ttl,)).rowcount
                    if pruned:
                        log.debug("pruned expired claims", extra={"claims": pruned})
                return self._db.execute(CLAIM, (key, now, now - self.ttl)).rowcount == 1
        except sqlite3.Error as e:
            # A store that cannot answer must not silence the bot: a possible duplicate beats no answer.
            log.warning("claim store unavailable; answering anyway", extra={"key": key, "path": str(self.path),
                                                                          "error": str(e)})
            return True

    def close(self) -> None:
        with self._lock:
            self._db.close()


def claims_path(settings: Settings) -> Path:
    return settings.data_path / "slack-claims.db"


def open_claims(settings: Settings) -> ClaimStore:
    """The store for `settings`, or a `ConfigError` naming the file and the setting to fix."""
    path = claims_path(settings)
    try:
        return ClaimStore(path, settings.slack.dedupe_ttl_s)
    except (OSError, sqlite3.Error) as e:
        raise ConfigError(f"cannot open the Slack dedupe store {path} ({e}). It lives in data_dir: point "
                          "data_dir (config.yaml, ORGBOT_DATA_DIR or --data-dir) at a writable folder.") from None
