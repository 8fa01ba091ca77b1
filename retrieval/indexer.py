"""Sync a connector into an index: chunk, embed, upsert changed documents, prune deleted ones.

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
from retrieval.chunking import chunk_document
from retrieval.embedding import Embedder
from retrieval.index import DocumentIndex
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
    finished_at: str | None = None
    documents_seen: int = 0
    documents_indexed: int = 0
    documents_unchanged: int = 0
    documents_deleted: int = 0
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
        target_tokens: int = 200, embed_batch: int = 64,
    ):
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
            built_by = getattr(self.index, "embedder_name", lambda: None)()
            model = self.embedder.model_name
            if built_by and built_by != model and not full and self.index.stats().chunks:
                raise EmbedderChanged(
                    f"the index was built with embedder {built_by!r} but retrieval.embedding_model is {model!r}; "
                    "vectors of the two cannot be compared. Rebuild it: orgbot index --full "
                    f"(or set retrieval.embedding_model back to {built_by!r})")
            known = {} if full else self.index.document_hashes(source)
            previous_ids = self.index.document_ids(source)
            seen: set[str] = set()
            pending: list[Chunk] = []
            with self.index.update(replace_source=source if full else None):
                record = getattr(self.index, "record_embedder", None)
                if record is not None:
                    record(model)
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
                        if known.get(item.id) == item.content_hash:
                            report.documents_unchanged += 1
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
        except EmbedderChanged as e:
            report.error = f"{e}. The index still serves the previous data."
        except Exception as e:  # noqa: BLE001 - the report says what broke; the index is unchanged
            log.exception("sync failed", extra={"source": source})
            report.error = f"{type(e).__name__}: {e}. The index still serves the previous data."
        report.seconds = round(time.perf_counter() - t0, 3)
        report.finished_at = datetime.now(UTC).isoformat()
        log.info("sync finished", extra={"source": source, "indexed": report.documents_indexed,
                                          "unchanged": report.documents_unchanged,
                                          "deleted": report.documents_deleted,
                                          "failures": len(report.failures), "error": report.error})
        return report

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
