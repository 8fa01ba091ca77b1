"""Sync a connector into an index: chunk, embed, upsert changed documents, prune deleted ones.

Every document passes through the source's `AclPolicy` here (ACL rules from config apply to every
connector); a document whose only change is its ACL gets the new ACL without being re-embedded, when
the index can do that (`document_acls` + `set_document_acl`).

The whole sync is one `index.update()` block, so searches see the previous data until the
sync completes, and a sync that fails half-way (a wiki that times out) changes nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from connectors.base import ConnectorFailure, LoadConnector, SourceDocument, SourceUnavailable
from retrieval.acl import AclPolicy
from retrieval.chunking import chunk_document
from retrieval.embedding import Embedder
from retrieval.index import DocumentIndex, IndexUnavailable
from retrieval.types import Chunk

log = logging.getLogger(__name__)

Progress = Callable[[int, int | None], None]  # (documents done, total if known)


@dataclass
class SyncReport:
    source: str
    full: bool
    started_at: str
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
        d = dict(d)
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

    def chunk(self, doc: SourceDocument) -> list[Chunk]:
        max_tokens = self.max_tokens or self.embedder.max_tokens
        return chunk_document(doc, self.embedder.count_tokens, max_tokens, self.target_tokens)

    def embed(self, chunks: list[Chunk]) -> list[Chunk]:
        vectors = self.embedder.embed([c.embedding_text for c in chunks])
        return [dataclasses.replace(c, embedding=v) for c, v in zip(chunks, vectors, strict=True)]

    def sync(self, connector: LoadConnector, *, full: bool = False, progress: Progress | None = None) -> SyncReport:
        source = connector.name
        report = SyncReport(source=source, full=full, started_at=datetime.now(UTC).isoformat())
        t0 = time.perf_counter()
        total = getattr(connector, "estimate", lambda: None)()
        try:
            known = {} if full else self.index.document_hashes(source)
            acl_only = self._acl_updater(source) if known else None
            previous_ids = self.index.document_ids(source)
            seen: set[str] = set()
            pending: list[Chunk] = []
            with self.index.update(replace_source=source if full else None):
                for batch in connector.load():
                    for item in batch:
                        if isinstance(item, ConnectorFailure):
                            report.failures.append(item)
                            if item.document_id:
                                seen.add(item.document_id)  # keep its previous version
                            log.warning("document skipped", extra={"source": source, "item": item.item,
                                                                     "reason": item.reason})
                            continue
                        report.documents_seen += 1
                        seen.add(item.id)
                        item = self.acl.apply(item)
                        if known.get(item.id) == item.content_hash:
                            report.documents_unchanged += 1
                        elif acl_only and acl_only(item, known.get(item.id)):
                            report.documents_acl_changed += 1
                        else:
                            chunks = self.chunk(item)
                            report.documents_indexed += 1
                            if not chunks:  # emptied: drop what it had
                                self.index.delete_documents([item.id])
                            pending.extend(chunks)
                            if len(pending) >= self.embed_batch:
                                report.embed_seconds += self._flush(pending, report)
                                pending = []
                    if progress:
                        progress(report.documents_seen + len(report.failures), total)
                report.embed_seconds += self._flush(pending, report)
                gone = previous_ids - seen
                if full:  # replace_source already emptied the source
                    report.documents_deleted = len(gone)
                elif gone:
                    report.documents_deleted = self.index.delete_documents(gone)
        except SourceUnavailable as e:
            report.error = f"{source} could not be read: {e}. The index still serves the previous data."
            log.info("sync failed", extra={"source": source}, exc_info=True)
        except IndexUnavailable as e:  # the message says what to check; the traceback goes to the log file
            report.error = str(e)
            log.info("sync failed", extra={"source": source}, exc_info=True)
        except Exception as e:  # noqa: BLE001 - the report says what broke; the index is unchanged
            log.exception("sync failed", extra={"source": source})
            report.error = f"{type(e).__name__}: {e}. The index still serves the previous data."
        report.seconds = round(time.perf_counter() - t0, 3)
        report.finished_at = datetime.now(UTC).isoformat()
        log.info("sync finished", extra={"source": source, "indexed": report.documents_indexed,
                                          "unchanged": report.documents_unchanged,
                                          "deleted": report.documents_deleted,
                                          "acl_changed": report.documents_acl_changed,
                                          "failures": len(report.failures), "error": report.error})
        return report

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
            if dataclasses.replace(doc, acl=tuple(old)).content_hash != known_hash:
                return False  # the text changed too
            write(doc.id, tuple(doc.acl), doc.content_hash)
            return True

        return update

    def _flush(self, pending: list[Chunk], report: SyncReport) -> float:
        if not pending:
            return 0.0
        t = time.perf_counter()
        embedded = self.embed(pending)
        spent = time.perf_counter() - t
        # upsert replaces whole documents, so all chunks of a document go in one call
        self.index.upsert(embedded)
        report.chunks_written += len(embedded)
        return spent
