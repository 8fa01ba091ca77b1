"""The embedded default engine: one SQLite file with FTS5 (BM25) and float32 vectors (numpy).

Why SQLite (see shared ENGINES notes): transactions mean a crash or failed sync mid-reindex loses
nothing and readers keep the previous data until commit (WAL); deletes and upserts by id;
permission filters as SQL; one file to back up; no extra dependency for BM25. Vectors are
searched brute force with one matrix product (100k x 384 floats is ~150 MB).
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import numpy as np

from retrieval.fusion import FusionParams, fuse
from retrieval.index import IndexUnavailable, SearchMode, iter_batches
from retrieval.keywords import KeywordIndex, keywords_busy
from retrieval.types import Chunk, IndexStats, Query, ScoredChunk

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks(
    rowid INTEGER PRIMARY KEY,
    id TEXT UNIQUE NOT NULL,
    document_id TEXT NOT NULL,
    source TEXT NOT NULL,
    title TEXT NOT NULL,
    heading TEXT NOT NULL,
    text TEXT NOT NULL,
    url TEXT NOT NULL,
    position INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    updated_at TEXT,
    acl TEXT NOT NULL,
    embedding BLOB NOT NULL,
    superseded_by TEXT
);
CREATE INDEX IF NOT EXISTS chunks_document ON chunks(document_id);
CREATE INDEX IF NOT EXISTS chunks_source ON chunks(source);
CREATE INDEX IF NOT EXISTS chunks_acl ON chunks(acl);
CREATE INDEX IF NOT EXISTS chunks_source_acl ON chunks(source, acl);
CREATE TABLE IF NOT EXISTS chunk_acl(chunk_rowid INTEGER NOT NULL, principal TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chunk_acl_rowid ON chunk_acl(chunk_rowid);
CREATE INDEX IF NOT EXISTS chunk_acl_principal ON chunk_acl(principal);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    title, heading, text, content='chunks', content_rowid='rowid',
    tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TABLE IF NOT EXISTS keyword_log(seq INTEGER PRIMARY KEY AUTOINCREMENT, chunk_rowid INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS chunks_log_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO keyword_log(chunk_rowid) VALUES (new.rowid);
END;
CREATE TRIGGER IF NOT EXISTS chunks_log_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO keyword_log(chunk_rowid) VALUES (old.rowid);
END;
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, title, heading, text) VALUES (new.rowid, new.title, new.heading, new.text);
END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, title, heading, text)
        VALUES ('delete', old.rowid, old.title, old.heading, old.text);
    DELETE FROM chunk_acl WHERE chunk_rowid = old.rowid;
END;
"""

# Column weights for bm25() (title, heading, body): a word in the title says more than one in the
# body. For an index opened without settings; orgbot passes `retrieval.hybrid.title_weight` / `heading_weight`.
BM25_WEIGHTS = (4.0, 2.0, 1.0)

_STOPWORDS = frozenset(
    """a an and are as at be but by can do does for from how i if in into is it its me my of on or our
    so than that the their then there these they this to was we what when where which who why will
    with you your about should would could any has have had get got""".split()
)
_WORD = re.compile(r"\w+", re.UNICODE)


def query_words(text: str) -> list[str]:
    """The distinct words of free text that a keyword search looks for (stopwords out unless that is all)."""
    words = [w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]
    if not words:
        words = _WORD.findall(text.lower())
    return list(dict.fromkeys(words[:64]))


def fts_query(text: str | Sequence[str]) -> str | None:
    """A safe FTS5 MATCH expression (any word may match) from free text or words, or None if no words.

    User text can hold FTS5 syntax (quotes, `-`, `NEAR`, `*`); quoting every word keeps it literal.
    """
    words = query_words(text) if isinstance(text, str) else list(text)
    return " OR ".join(f'"{w}"' for w in words) or None


def _scores(matrix: np.ndarray, q: np.ndarray) -> np.ndarray:
    """matrix @ q on torch's thread pool when torch is loaded (it is, for the query embedder): numpy's
    OpenBLAS threads left spinning after the product slowed the next query embedding in the same
    process 3x (6.9 ms alone, 21 ms after a 100k-row product); one pool for both avoids it."""
    torch = sys.modules.get("torch")
    if torch is None:
        return matrix @ q
    with torch.inference_mode():
        return torch.from_numpy(matrix).mv(torch.from_numpy(q)).numpy()


class EmbeddedIndex:
    """`DocumentIndex` on one SQLite file. Safe to search from many threads while one writes."""

    def __init__(self, path: str | Path, create: bool = True, fusion: FusionParams | None = None,
                 field_weights: tuple[float, float, float] = BM25_WEIGHTS, max_df: float | None = None,
                 post_filter: bool = True, keyword_engine: str = "tantivy", section_penalty: float = 0.0):
        self.path = Path(path)
        # Vector ranking: cosine − section_penalty × ln(chunks in the chunk's section). A section cut into
        # many chunks has many tries at looking close to a question by chance (the largest of n noisy
        # scores grows with n), so a short section that answers outranks one chunk of a long chapter.
        # The cosine itself is kept as the hit's `vector_score`.
        self.section_penalty = section_penalty
        self.max_df = max_df
        self.post_filter = post_filter  # False: filters always inside the SQL (the path before; benchmarks)
        self._df: tuple[int, int, dict[str, int]] | None = None  # (generation, chunks, word → chunks holding it)
        self.fusion = fusion  # None = plain RRF
        self.field_weights = tuple(float(w) for w in field_weights)
        if not create and not self.path.exists():
            raise IndexUnavailable(f"No index at {self.path}. Run: orgbot index")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.RLock()
        self._writer: sqlite3.Connection | None = None
        self._vectors_lock = threading.Lock()
        # (generation, rowids, matrix, ln of each chunk's section size)
        self._vectors: tuple[int, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._masks: dict[tuple, tuple[int, np.ndarray]] = {}
        with self._connect() as conn:
            conn.executescript(SCHEMA)
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('generation', '0')")
            if "superseded_by" not in {r[1] for r in conn.execute("PRAGMA table_info(chunks)")}:
                # An index written before orgbot kept it: its replaced documents are written again (their
                # content hash now says so) by the next sync.
                conn.execute("ALTER TABLE chunks ADD COLUMN superseded_by TEXT")
        self._keywords = None  # the Tantivy copy (retrieval/keywords.py); None: FTS5 only
        self._keywords_seen: str | None = None  # the keyword generation this process's searcher shows
        if keyword_engine == "tantivy":
            from retrieval import keywords

            if keywords.available():
                self._keywords = keywords.KeywordIndex(self.path.with_name(self.path.name + ".keywords"))
            else:
                log.warning("keyword engine falls back to FTS5", extra={"reason": "tantivy is not installed"})

    # -- connections -------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def _in_update(self) -> bool:
        return getattr(self._local, "updating", False)

    @contextmanager
    def update(self, replace_source: str | None = None) -> Iterator[None]:
        if self._in_update():  # nested: part of the enclosing transaction
            if replace_source:
                self._delete_where("source = ?", (replace_source,))
            yield
            return
        with self._write_lock:
            self._writer = self._connect()
            self._local.updating = True
            try:
                self._writer.execute("BEGIN IMMEDIATE")
                if replace_source:
                    self._delete_where("source = ?", (replace_source,))
                yield
                self._writer.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
                if self._keywords is None:  # nothing reads the log: keep it empty
                    self._writer.execute("DELETE FROM keyword_log")
                    self._writer.execute("DELETE FROM meta WHERE key = 'keyword_generation'")
                self._writer.execute("COMMIT")
            except BaseException:
                self._writer.execute("ROLLBACK")
                raise
            finally:
                self._local.updating = False
                self._writer.close()
                self._writer = None
            self.catch_up_keywords()

    # -- the keyword copy ----------------------------------------------------------------------
    def catch_up_keywords(self) -> bool:
        """Bring the Tantivy copy to the committed generation: replay the change log, or rebuild it all
        when there is no copy yet. Searches use FTS5 until this is done. True when the copy is current."""
        if self._keywords is None:
            return False
        with self._write_lock:
            conn = self._connect()
            try:
                conn.execute("BEGIN")  # one snapshot: the generation, the log up to `last`, and those rows
                meta = dict(conn.execute("SELECT key, value FROM meta WHERE key IN "
                                         "('generation', 'keyword_generation')").fetchall())
                gen, done = meta["generation"], meta.get("keyword_generation")
                if gen == done and self._keywords.exists():
                    conn.execute("COMMIT")
                    return True
                last = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM keyword_log").fetchone()[0]
                changed: list[int] = []
                full = done is None or not self._keywords.exists()
                if not full:
                    changed = [r[0] for r in conn.execute(
                        "SELECT DISTINCT chunk_rowid FROM keyword_log WHERE seq <= ?", (last,))]
                    # most of the index changed (a full sync): rebuilding is faster than replaying
                    full = len(changed) > conn.execute("SELECT count(*) FROM chunks").fetchone()[0] // 2
                if full:  # streamed from the snapshot, never all in memory (1M chunks: GBs of text)
                    self._keywords.reset()
                    self._keywords.apply([], conn.execute("SELECT rowid, title, heading, text FROM chunks"))
                    conn.execute("COMMIT")
                else:
                    rows = []
                    for i in range(0, len(changed), 500):
                        part = changed[i : i + 500]
                        rows += conn.execute("SELECT rowid, title, heading, text FROM chunks WHERE rowid IN "
                                             f"({','.join('?' * len(part))})", part).fetchall()
                    conn.execute("COMMIT")
                    self._keywords.apply(changed, rows)
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('keyword_generation', ?)", (gen,))
                conn.execute("DELETE FROM keyword_log WHERE seq <= ?", (last,))
                conn.execute("COMMIT")
                log.info("keyword index caught up", extra={"generation": gen, "rebuilt": full, "changed": len(changed)})
                return True
            except Exception as e:  # noqa: BLE001 - FTS5 keeps serving; the next update rebuilds the copy
                log.warning("keyword index not caught up; FTS5 serves keyword search meanwhile",
                            exc_info=not keywords_busy(e))
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if not keywords_busy(e):  # another process is catching up: leave it to it
                    self._keywords.reset()  # unreadable or half-written: start again from SQLite next time
                return False
            finally:
                conn.close()

    def keyword_engine_state(self) -> str:
        """For `orgbot status`: which engine answers keyword search now, and why."""
        if self._keywords is None:
            return "FTS5 (retrieval.hybrid.keyword_engine: fts5, or tantivy not installed)"
        if self._keyword_copy() is not None:
            return f"Tantivy copy, current ({self._keywords.path})"
        return "FTS5: the Tantivy copy is behind or missing; the next orgbot index (or any sync) rebuilds it"

    def _keyword_copy(self):
        """The Tantivy copy when it shows the generation this search reads, else None (FTS5 then)."""
        if self._keywords is None or self._in_update():
            return None
        meta = dict(self._conn_for_read().execute(
            "SELECT key, value FROM meta WHERE key IN ('generation', 'keyword_generation')").fetchall())
        done = meta.get("keyword_generation")
        if done is None or done != meta["generation"] or not self._keywords.exists():
            return None
        if self._keywords_seen != done:  # written since (maybe by another process): open the new commit
            self._keywords.reload()
            self._keywords_seen = done
        return self._keywords

    # -- writes --------------------------------------------------------------------------------
    def upsert(self, chunks: Sequence[Chunk]) -> None:
        if not chunks:
            return
        with self.update():
            w = self._writer
            assert w is not None
            dim = self._check_dim(w, chunks)
            doc_ids = sorted({c.document_id for c in chunks})
            self._delete_where(f"document_id IN ({','.join('?' * len(doc_ids))})", doc_ids)
            for c in chunks:
                if c.embedding is None:
                    raise ValueError(f"chunk {c.id} has no embedding; embed chunks before upserting")
                vec = np.asarray(c.embedding, dtype=np.float32)
                if vec.shape != (dim,):
                    raise ValueError(f"chunk {c.id} has a {vec.shape} embedding, the index holds {dim}-d vectors")
                cur = w.execute(
                    "INSERT INTO chunks(id, document_id, source, title, heading, text, url, position,"
                    " content_hash, updated_at, acl, embedding, superseded_by) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        c.id, c.document_id, c.source, c.title, c.heading, c.text, c.url, c.position,
                        c.content_hash, c.updated_at.isoformat() if c.updated_at else None,
                        json.dumps(list(c.acl)) if c.acl else "", vec.tobytes(), c.superseded_by,
                    ),
                )
                if c.acl:
                    w.executemany(
                        "INSERT INTO chunk_acl(chunk_rowid, principal) VALUES (?, ?)",
                        [(cur.lastrowid, p) for p in c.acl],
                    )

    def embedder_name(self) -> str | None:
        """The embedding model that built the vectors (None: an index from before this was recorded)."""
        row = self._conn_for_read().execute("SELECT value FROM meta WHERE key = 'embedder'").fetchone()
        return row[0] if row else None

    def record_embedder(self, name: str) -> None:
        """Say which embedding model built the vectors; call inside `update()`."""
        w = self._writer
        if w is None:
            with self.update():
                self.record_embedder(name)
            return
        w.execute("INSERT OR REPLACE INTO meta VALUES ('embedder', ?)", (name,))

    def _check_dim(self, w: sqlite3.Connection, chunks: Sequence[Chunk]) -> int:
        first = next((c.embedding for c in chunks if c.embedding is not None), None)
        if first is None:
            raise ValueError("chunks have no embeddings; embed chunks before upserting")
        dim = int(np.asarray(first).shape[-1])
        row = w.execute("SELECT value FROM meta WHERE key = 'dim'").fetchone()
        if row is None:
            w.execute("INSERT INTO meta VALUES ('dim', ?)", (str(dim),))
        elif int(row[0]) != dim:
            has_rows = w.execute("SELECT 1 FROM chunks LIMIT 1").fetchone()
            if has_rows:
                raise ValueError(
                    f"the index holds {row[0]}-d vectors but the embedder makes {dim}-d ones; "
                    "after changing the embedding model, rebuild with: orgbot index --full"
                )
            w.execute("UPDATE meta SET value = ? WHERE key = 'dim'", (str(dim),))
        return dim

    def _delete_where(self, where: str, params: Sequence) -> int:
        w = self._writer
        assert w is not None
        return w.execute(f"DELETE FROM chunks WHERE {where}", tuple(params)).rowcount

    def delete_documents(self, doc_ids: Iterable[str]) -> int:
        ids = sorted(set(doc_ids))
        if not ids:
            return 0
        removed = 0
        with self.update():
            w = self._writer
            assert w is not None
            for i in range(0, len(ids), 500):
                part = ids[i : i + 500]
                marks = ",".join("?" * len(part))
                removed += w.execute(
                    f"SELECT COUNT(DISTINCT document_id) FROM chunks WHERE document_id IN ({marks})", part
                ).fetchone()[0]
                self._delete_where(f"document_id IN ({marks})", part)
        return removed

    def set_document_acl(self, doc_id: str, acl: Sequence[str], content_hash: str) -> None:
        """A permission change: every chunk of `doc_id` gets `acl` (and the document's new hash), in place."""
        with self.update():
            w = self._writer
            assert w is not None
            acl = tuple(acl)
            w.execute("UPDATE chunks SET acl = ?, content_hash = ? WHERE document_id = ?",
                      (json.dumps(list(acl)) if acl else "", content_hash, doc_id))
            rowids = [r[0] for r in w.execute("SELECT rowid FROM chunks WHERE document_id = ?", (doc_id,))]
            marks = ",".join("?" * len(rowids))
            if rowids:
                w.execute(f"DELETE FROM chunk_acl WHERE chunk_rowid IN ({marks})", rowids)
                w.executemany("INSERT INTO chunk_acl(chunk_rowid, principal) VALUES (?, ?)",
                              [(r, p) for r in rowids for p in acl])

    # -- reads ---------------------------------------------------------------------------------
    def document_acls(self, source: str) -> dict[str, tuple[str, ...]]:
        """document id -> its ACL (() = public), to see a permission change without re-embedding."""
        rows = self._conn_for_read().execute(
            "SELECT document_id, acl FROM chunks WHERE source = ? GROUP BY document_id", (source,)
        )
        return {r[0]: tuple(json.loads(r[1])) if r[1] else () for r in rows}

    def _conn_for_read(self) -> sqlite3.Connection:
        # Inside an update, this thread reads its own uncommitted writes.
        return self._writer if self._in_update() and self._writer is not None else self._reader()

    def document_ids(self, source: str) -> set[str]:
        rows = self._conn_for_read().execute("SELECT DISTINCT document_id FROM chunks WHERE source = ?", (source,))
        return {r[0] for r in rows}

    def document_hashes(self, source: str) -> dict[str, str]:
        rows = self._conn_for_read().execute(
            "SELECT document_id, content_hash FROM chunks WHERE source = ? GROUP BY document_id", (source,)
        )
        return {r[0]: r[1] for r in rows}

    def stats(self) -> IndexStats:
        rows = self._conn_for_read().execute(
            "SELECT source, COUNT(DISTINCT document_id), COUNT(*) FROM chunks GROUP BY source"
        ).fetchall()
        per = {r[0]: (r[1], r[2]) for r in rows}
        return IndexStats(
            documents=sum(d for d, _ in per.values()), chunks=sum(c for _, c in per.values()), per_source=per
        )

    def _filter_sql(self, query: Query, alias: str = "c") -> tuple[str, list]:
        clauses, params = [], []
        if query.sources is not None:
            srcs = list(query.sources)
            clauses.append(f"{alias}.source IN ({','.join('?' * len(srcs))})" if srcs else "0")
            params += srcs
        if query.principals is not None:
            ps = list(query.principals)
            acl = f"{alias}.acl = ''"
            if ps:
                # Uncorrelated: the rows any of these principals opens are looked up once (chunk_acl's
                # principal index), not once per chunk; with chunks_acl, both halves of the OR use an index.
                acl += (f" OR {alias}.rowid IN (SELECT a.chunk_rowid FROM chunk_acl a"
                        f" WHERE a.principal IN ({','.join('?' * len(ps))}))")
                params += ps
            clauses.append(f"({acl})")
        return (" AND ".join(clauses) or "1"), params

    def chunks(self, ids: Sequence[str]) -> list[Chunk]:
        """`ChunkLookup`: the chunks with these ids (each id is UNIQUE: one indexed lookup per id)."""
        conn = self._conn_for_read()
        rowids = [r[0] for part in iter_batches(list(dict.fromkeys(ids)), 500)
                  for r in conn.execute(f"SELECT rowid FROM chunks WHERE id IN ({','.join('?' * len(part))})", part)]
        return list(self._rows_to_chunks(rowids).values())

    def _rows_to_chunks(self, rowids: Sequence[int]) -> dict[int, Chunk]:
        if not rowids:
            return {}
        conn = self._conn_for_read()
        out: dict[int, Chunk] = {}
        for i in range(0, len(rowids), 500):
            part = list(rowids[i : i + 500])
            for r in conn.execute(
                "SELECT rowid, id, document_id, source, title, heading, text, url, position, content_hash,"
                f" updated_at, acl, superseded_by FROM chunks WHERE rowid IN ({','.join('?' * len(part))})",
                part,
            ):
                out[r[0]] = Chunk(
                    id=r[1], document_id=r[2], source=r[3], title=r[4], heading=r[5], text=r[6], url=r[7],
                    position=r[8], content_hash=r[9],
                    updated_at=datetime.fromisoformat(r[10]) if r[10] else None,
                    acl=tuple(json.loads(r[11])) if r[11] else (), superseded_by=r[12],
                )
        return out

    def _generation(self) -> int:
        if self._in_update():
            return -1  # uncommitted writes: never cache
        row = self._conn_for_read().execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0])

    def _keyword_words(self, text: str, copy: KeywordIndex | None = None) -> list[str]:
        """The query's words, less those in more than `max_df` of the chunks (kept when all are); counted in the
        Tantivy copy when the caller has it current, else in FTS5."""
        words = query_words(text)
        if not self.max_df or len(words) < 2:
            return words
        conn = self._conn_for_read()
        gen = self._generation()
        if self._df is None or self._df[0] != gen or gen < 0 or len(self._df[2]) > 50_000:
            self._df = (gen, conn.execute("SELECT count(*) FROM chunks").fetchone()[0], {})
        _, total, cache = self._df
        if total < 1000:
            return words  # a small index is fast anyway, and its counts say little
        for w in words:
            if w not in cache:
                cache[w] = copy.count(w) if copy is not None else conn.execute(
                    "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?", [f'"{w}"']).fetchone()[0]
        rare = [w for w in words if cache[w] <= self.max_df * total]
        return rare or [min(words, key=cache.__getitem__)]

    def _bm25(self, query: Query, n: int) -> list[tuple[int, float]]:
        copy = self._keyword_copy()  # None inside an update, or when the Tantivy copy is behind
        words = self._keyword_words(query.text, copy)
        match = fts_query(words)
        if match is None:
            return []
        where, params = self._filter_sql(query)
        filtered_later = where != "1" and self.post_filter
        if copy is not None and (where == "1" or filtered_later):
            if where == "1":
                return copy.search(words, n)
            kept = self._allowed_first(query, copy.search(words, 4 * n), n)
            if kept is not None:
                return kept
        w1, w2, w3 = self.field_weights
        sql = (f"SELECT rowid, bm25(chunks_fts, {w1}, {w2}, {w3}) AS s FROM chunks_fts"
               " WHERE chunks_fts MATCH ?{filtered} ORDER BY s LIMIT ?")  # bm25(): lower is better
        conn = self._conn_for_read()
        if filtered_later and copy is None and not self._in_update():
            rows = conn.execute(sql.format(filtered=""), [match, 4 * n]).fetchall()
            kept = self._allowed_first(query, [(r[0], -r[1]) for r in rows], n)
            if kept is not None:
                return kept
        # No JOIN: SQLite then ranks inside FTS5 (measured 3x faster at 100k chunks). Filters, when
        # there are any, become a rowid set the FTS scan checks; the unary + keeps SQLite from
        # handing that set to FTS5 as rowid lookups (one MATCH per allowed row: 70x slower at 10k).
        filtered = "" if where == "1" else f" AND +rowid IN (SELECT c.rowid FROM chunks c WHERE {where})"
        rows = conn.execute(sql.format(filtered=filtered), [match, *params, n]).fetchall()
        return [(r[0], -float(r[1])) for r in rows]

    def _allowed_first(self, query: Query, rows: Sequence, n: int) -> list[tuple[int, float]] | None:
        """Of `rows` (rowid, score), ranked without the filter over the first 4n, the first n the asker may
        see (the vector search's cached mask), or None when too few of them are allowed: exact whenever it
        answers, and no SQL filter then; the caller asks FTS5 with the filter in the SQL otherwise."""
        rowids, _, _ = self._load_vectors()
        mask = self._allowed_mask(query, rowids)
        pos = np.searchsorted(rowids, [r[0] for r in rows])
        kept = [r for r, i in zip(rows, pos, strict=True) if i < len(rowids) and rowids[i] == r[0] and mask[i]]
        if len(kept) >= n or len(rows) < 4 * n:
            return [(r[0], float(r[1])) for r in kept[:n]]
        return None

    def _load_vectors(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rowids, unit vectors, ln of each chunk's section size in chunks), cached per index generation."""
        conn = self._conn_for_read()
        gen = self._generation()
        with self._vectors_lock:
            if self._vectors is not None and self._vectors[0] == gen and gen >= 0:
                return self._vectors[1:]
            rows = conn.execute("SELECT rowid, embedding, count(*) OVER (PARTITION BY document_id, heading)"
                                " FROM chunks ORDER BY rowid").fetchall()
            rowids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            log_sizes = np.log(np.fromiter((r[2] for r in rows), dtype=np.float32, count=len(rows)))
            if rows:
                # joined into a bytearray (one copy), so the matrix is writable: torch.from_numpy warns otherwise
                matrix = np.frombuffer(bytearray().join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
            else:
                matrix = np.zeros((0, 0), dtype=np.float32)
            if gen >= 0:
                self._vectors = (gen, rowids, matrix, log_sizes)
            return rowids, matrix, log_sizes

    def _allowed_mask(self, query: Query, rowids: np.ndarray) -> np.ndarray:
        """Which loaded vectors the query may see; cached per filter until the index changes."""
        key = (tuple(query.sources) if query.sources is not None else None,
               tuple(sorted(query.principals)) if query.principals is not None else None)
        gen = self._vectors[0] if self._vectors is not None and not self._in_update() else None
        cached = self._masks.get(key)
        if gen is not None and cached is not None and cached[0] == gen:
            return cached[1]
        where, params = self._filter_sql(query)
        allowed = np.fromiter(
            (r[0] for r in self._conn_for_read().execute(f"SELECT c.rowid FROM chunks c WHERE {where}", params)),
            dtype=np.int64,
        )
        mask = np.isin(rowids, allowed)
        if gen is not None:
            if len(self._masks) >= 256:  # one entry per channel policy / asker: keep it bounded
                self._masks.clear()
            self._masks[key] = (gen, mask)
        return mask

    def _vector(self, query: Query, n: int) -> list[tuple[int, float, float]]:
        """(rowid, ranking score, cosine) of the `n` best chunks: the ranking score is the cosine less the
        long-section penalty."""
        if query.vector is None:
            return []
        rowids, matrix, log_sizes = self._load_vectors()
        if len(rowids) == 0:
            return []
        q = np.asarray(query.vector, dtype=np.float32).reshape(-1)
        if q.shape[0] != matrix.shape[1]:
            raise ValueError(f"query vector has {q.shape[0]} dims, the index holds {matrix.shape[1]}")
        q = q / (np.linalg.norm(q) or 1.0)
        cosines = _scores(matrix, q)  # stored vectors are unit length
        scores = cosines - self.section_penalty * log_sizes if self.section_penalty else cosines
        if query.sources is not None or query.principals is not None:
            scores = np.where(self._allowed_mask(query, rowids), scores, -np.inf)
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(rowids[i]), float(scores[i]), float(cosines[i])) for i in top if np.isfinite(scores[i])]

    def search(self, query: Query, k: int, mode: SearchMode = "hybrid") -> list[ScoredChunk]:
        if k <= 0:
            return []
        n = max(query.candidates, k)
        bm25 = self._bm25(query, n) if mode in ("hybrid", "bm25") else []
        vec = self._vector(query, n) if mode in ("hybrid", "vector") else []
        chunks = self._rows_to_chunks(sorted({r for r, _ in bm25} | {r[0] for r in vec}))
        bm25_sc = [ScoredChunk(chunks[r], s) for r, s in bm25 if r in chunks]
        vec_sc = [ScoredChunk(chunks[r], s, vector_score=cos) for r, s, cos in vec if r in chunks]
        if mode == "bm25":
            return [ScoredChunk(c.chunk, c.score, bm25_rank=i, bm25_score=c.score) for i, c in enumerate(bm25_sc[:k], 1)]
        if mode == "vector":
            return [ScoredChunk(c.chunk, c.score, vector_rank=i, vector_score=c.vector_score)
                    for i, c in enumerate(vec_sc[:k], 1)]
        return fuse(bm25_sc, vec_sc, k, self.fusion)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
