"""Sync a connector into an index: chunk, embed, upsert changed documents, prune deleted ones.

The whole sync is one `index.update()` block, so searches see the previous data until the
sync completes, and a sync that fails half-way (a wiki that times out) changes nothing. The new
checkpoint is handed back in the report, to be stored only once the block has committed: the next
sync then resumes from the last checkpoint whose changes are all in the index.

Four ways to sync, chosen from what the connector can do and what the index holds:
- full (`--full`): load everything and replace the source;
- load: load everything, skip unchanged documents by content hash, delete those not seen;
- rechunk: a load, where some document in the index was chunked otherwise than now (a newer orgbot chunks or
  reads code blocks differently, `CHUNKING_VERSION`; or `retrieval.chunk_target_tokens` changed): each stored
  hash carries the chunking it was made with, so those documents are chunked again though unchanged, whatever
  the source can poll;
- incremental (a `PollConnector` with a stored checkpoint): only what changed since it, the
  `Deletion`s it reports, failures of the last sync read again (`FetchConnector`), then the ids
  that no longer exist at the source pruned (`SlimConnector`).

Every document passes through the source's `AclPolicy` here (ACL rules from config apply to every
connector); a document whose only change is its ACL gets the new ACL without being re-embedded, when
the index can do that (`document_acls` + `set_document_acl`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from connectors.base import (
    ConnectorFailure,
    Deletion,
    FetchConnector,
    LoadConnector,
    PollConnector,
    SlimConnector,
    SourceDocument,
    SourceUnavailable,
)
from retrieval.acl import AclPolicy
from retrieval.chunking import CHUNKING_VERSION, as_read, chunk_document
from retrieval.embedding import Embedder, ModelNotFound, same_embedder
from retrieval.index import DocumentIndex, IndexUnavailable
from retrieval.types import Chunk

log = logging.getLogger(__name__)

Progress = Callable[[int, int | None], None]  # (documents done, total if known)


class EmbedderChanged(Exception):
    """The configured embedder is not the one that built the index: its vectors would not compare."""


@dataclass
class SyncReport:
    source: str
    full: bool
    started_at: str
    mode: str = "load"  # full | load | incremental | rechunk (a load: documents chunked otherwise are chunked again)
    checkpoint: str | None = None  # where the next incremental sync starts (None: the connector has none)
    finished_at: str | None = None
    documents_seen: int = 0
    documents_indexed: int = 0
    documents_unchanged: int = 0
    documents_deleted: int = 0
    documents_acl_changed: int = 0  # only their ACL changed: updated in place, not re-embedded
    chunks_written: int = 0
    failures: list[ConnectorFailure] = field(default_factory=list)
    error: str | None = None  # the sync as a whole failed; the index is unchanged
    seconds: float = 0.0
    embed_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["failures"] = [dataclasses.asdict(f) for f in self.failures]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SyncReport:
        names = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in names}
        d["failures"] = [ConnectorFailure(**f) for f in d.get("failures", [])]
        return cls(**d)


class Indexer:
    def __init__(
        self, index: DocumentIndex, embedder: Embedder, *, max_tokens: int | None = None,
        target_tokens: int = 200, embed_batch: int = 64, acl: AclPolicy | None = None,
    ):
        self.acl = acl or AclPolicy()
        self.index = index
        self.embedder = embedder
        self.max_tokens = max_tokens
        self.target_tokens = target_tokens
        self.embed_batch = embed_batch
        self._pending: list[Chunk] = []  # chunks waiting to be embedded, within one sync
        self._acl_only: Callable[[SourceDocument, str | None], bool] | None = None
        # What a document's chunks depend on besides the document (`CHUNKING_VERSION`, the chunk sizes set; the
        # embedding model is checked on its own, `EmbedderChanged`), as a short key its stored hash carries.
        self.chunking = hashlib.sha256(f"{CHUNKING_VERSION}|{max_tokens}|{target_tokens}".encode()).hexdigest()[:12]

    def stored_hash(self, doc: SourceDocument) -> str:
        """The hash a document's chunks are stored with: its content's, and the chunking's (`chunking`)."""
        return f"{doc.content_hash}+{self.chunking}"

    def chunk(self, doc: SourceDocument) -> list[Chunk]:
        max_tokens = self.max_tokens or self.embedder.max_tokens
        stored = self.stored_hash(doc)
        return [dataclasses.replace(c, content_hash=stored)
                for c in chunk_document(doc, self.embedder.count_tokens, max_tokens, self.target_tokens)]

    def embed(self, chunks: list[Chunk]) -> list[Chunk]:
        vectors = self.embedder.embed([as_read(c.embedding_text) for c in chunks])
        return [dataclasses.replace(c, embedding=v) for c, v in zip(chunks, vectors, strict=True)]

    def sync(self, connector: LoadConnector, *, full: bool = False, checkpoint: str | None = None,
             retry_ids: set[str] | frozenset[str] = frozenset(), progress: Progress | None = None) -> SyncReport:
        """Sync one source. `checkpoint` (from the last successful sync) makes it incremental when the
        connector can poll; `retry_ids` are documents that failed last time, read again if it can fetch."""
        source = connector.name
        incremental = not full and checkpoint is not None and isinstance(connector, PollConnector)
        report = SyncReport(source=source, full=full, started_at=datetime.now(UTC).isoformat(),
                            mode="full" if full else "incremental" if incremental else "load")
        t0 = time.perf_counter()
        try:
            # Taken before reading: whatever changes while we read is polled again next time.
            mark = connector.checkpoint() if isinstance(connector, PollConnector) else None
            total = None if incremental else getattr(connector, "estimate", lambda: None)()
            built_by = getattr(self.index, "embedder_name", lambda: None)()
            model = self.embedder.model_name
            if built_by and not same_embedder(built_by, model) and not full and self.index.stats().chunks:
                raise EmbedderChanged(
                    f"the index was built with embedder {built_by!r} but retrieval.embedding_model is {model!r}; "
                    "vectors of the two cannot be compared. Rebuild it: orgbot index --full "
                    f"(or set retrieval.embedding_model back to {built_by!r})")
            known = {} if full else self.index.document_hashes(source)
            if any(not h.endswith(f"+{self.chunking}") for h in known.values()):
                # chunked otherwise than now (an upgrade, another chunk size): every document is read, and those
                # chunked otherwise chunked again, in this one update: searches see the old chunks until it is done
                if incremental:
                    total = getattr(connector, "estimate", lambda: None)()
                incremental, report.mode = False, "rechunk"
                log.info("chunking changed: re-chunking every document", extra={"source": source})
            self._acl_only = self._acl_updater(source) if known else None
            previous_ids = self.index.document_ids(source)
            seen: set[str] = set()  # documents that exist (or failed and keep their previous version)
            deleted: set[str] = set()
            self._pending = []
            with self.index.update(replace_source=source if full else None):
                record = getattr(self.index, "record_embedder", None)
                if record is not None:
                    record(model)
                if incremental:
                    batches = connector.poll(checkpoint, mark)
                    retry = set(retry_ids) if isinstance(connector, FetchConnector) else set()
                    if retry:
                        batches = itertools.chain(batches, connector.fetch(retry))
                else:
                    batches = connector.load()
                for batch in batches:
                    for item in batch:
                        self._take(item, report, known, seen, deleted)
                    if progress:
                        progress(report.documents_seen + len(report.failures), total)
                report.embed_seconds += self._flush(report)
                if incremental:
                    gone = deleted & (previous_ids | seen)
                    if isinstance(connector, SlimConnector):
                        # Deletions the change feed did not report (expired logs, restrictions).
                        gone |= (previous_ids | seen) - connector.list_ids()
                    gone -= {f.document_id for f in report.failures if f.document_id}
                else:
                    gone = previous_ids - seen
                if full:  # replace_source already emptied the source
                    report.documents_deleted = len(gone)
                elif gone:
                    report.documents_deleted = self.index.delete_documents(gone)
            report.checkpoint = mark
        except SourceUnavailable as e:
            report.error = f"{source} could not be read: {e}. The index still serves the previous data."
            log.info("sync failed", extra={"source": source}, exc_info=True)
        except IndexUnavailable as e:  # the message says what to check; the traceback goes to the log file
            report.error = str(e)
            log.info("sync failed", extra={"source": source}, exc_info=True)
        except EmbedderChanged as e:
            report.error = f"{e}. The index still serves the previous data."
        except ModelNotFound as e:  # a config problem: the message says what to set
            report.error = f"{e} The index still serves the previous data."
            log.info("sync failed", extra={"source": source}, exc_info=True)
        except Exception as e:  # noqa: BLE001 - the report says what broke; the index is unchanged
            log.exception("sync failed", extra={"source": source})
            report.error = f"{type(e).__name__}: {e}. The index still serves the previous data."
        finally:
            self._pending = []
        report.seconds = round(time.perf_counter() - t0, 3)
        report.finished_at = datetime.now(UTC).isoformat()
        log.info("sync finished", extra={"source": source, "mode": report.mode, "indexed": report.documents_indexed,
                                          "unchanged": report.documents_unchanged,
                                          "deleted": report.documents_deleted,
                                          "acl_changed": report.documents_acl_changed,
                                          "failures": len(report.failures), "error": report.error})
        return report

    def _take(self, item, report: SyncReport, known: dict[str, str], seen: set[str], deleted: set[str]) -> None:
        source = report.source
        if isinstance(item, Deletion):
            deleted.add(item.document_id)
            seen.discard(item.document_id)
            return
        if isinstance(item, ConnectorFailure):
            report.failures.append(item)
            if item.document_id:
                seen.add(item.document_id)  # keep its previous version
                deleted.discard(item.document_id)
            log.warning("document skipped", extra={"source": source, "item": item.item, "reason": item.reason})
            return
        report.documents_seen += 1
        seen.add(item.id)
        deleted.discard(item.id)  # deleted, then created again in the same window
        item = self.acl.apply(item)
        stored = self.stored_hash(item)
        if known.get(item.id) == stored:
            report.documents_unchanged += 1
            return
        if self._acl_only and self._acl_only(item, known.get(item.id)):
            report.documents_acl_changed += 1
            known[item.id] = stored
            return
        chunks = self.chunk(item)
        report.documents_indexed += 1
        known[item.id] = stored  # a document seen twice in one sync (overlap) is embedded once
        if not chunks:  # emptied: drop what it had
            self.index.delete_documents([item.id])
        self._pending.extend(chunks)
        if len(self._pending) >= self.embed_batch:
            report.embed_seconds += self._flush(report)

    def _acl_updater(self, source: str) -> Callable[[SourceDocument, str | None], bool] | None:
        """A function that, for a document whose stored version differs from `doc` only in its ACL,
        updates the ACL in place and returns True; None if the index cannot do that (it re-embeds)."""
        read, write = getattr(self.index, "document_acls", None), getattr(self.index, "set_document_acl", None)
        if read is None or write is None:
            return None
        stored = read(source)

        def update(doc: SourceDocument, known_hash: str | None) -> bool:
            old = stored.get(doc.id)
            if known_hash is None or old is None or tuple(old) == tuple(doc.acl):
                return False
            if self.stored_hash(dataclasses.replace(doc, acl=tuple(old))) != known_hash:
                return False  # the text changed too (or the chunking)
            write(doc.id, tuple(doc.acl), self.stored_hash(doc))
            return True

        return update

    def _flush(self, report: SyncReport) -> float:
        pending, self._pending = self._pending, []
        if not pending:
            return 0.0
        t = time.perf_counter()
        embedded = self.embed(pending)
        spent = time.perf_counter() - t
        # upsert replaces whole documents, so all chunks of a document go in one call
        self.index.upsert(embedded)
        report.chunks_written += len(embedded)
        return spent
