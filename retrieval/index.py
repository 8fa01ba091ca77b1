"""The `DocumentIndex` protocol every search backend implements (embedded SQLite, Elasticsearch).

One contract test suite (`tests/contract/index_contract.py`) checks every backend, the way
haystack's document stores share one suite.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Literal, Protocol, runtime_checkable

from retrieval.types import Chunk, IndexStats, Query, ScoredChunk

SearchMode = Literal["hybrid", "bm25", "vector"]


class IndexUnavailable(Exception):
    """The index cannot be read (missing, or its server is down). The message says what to do."""


@runtime_checkable
class DocumentIndex(Protocol):
    def upsert(self, chunks: Sequence[Chunk]) -> None:
        """Replace every chunk of the documents in `chunks` by these (chunks need embeddings)."""
        ...

    def delete_documents(self, doc_ids: Iterable[str]) -> int:
        """Remove every chunk of these documents; returns how many documents were removed."""
        ...

    def search(self, query: Query, k: int, mode: SearchMode = "hybrid") -> list[ScoredChunk]:
        """Best `k` chunks, filtered by source and ACL inside the search (never after ranking)."""
        ...

    def document_ids(self, source: str) -> set[str]: ...

    def document_hashes(self, source: str) -> dict[str, str]:
        """document id -> content hash, to skip unchanged documents."""
        ...

    def stats(self) -> IndexStats: ...

    def update(self, replace_source: str | None = None) -> AbstractContextManager[None]:
        """Group writes: searches keep seeing the previous data until the block ends without error;
        on error nothing of the block is kept. `replace_source` starts that source from empty
        (a full rebuild) without readers ever seeing it empty."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class AclUpdatable(Protocol):
    """Optional: an index that can change a document's ACL in place (a permission change on the next
    sync without re-embedding). The indexer re-embeds the document on indexes without it."""

    def document_acls(self, source: str) -> dict[str, tuple[str, ...]]: ...

    def set_document_acl(self, doc_id: str, acl: Sequence[str], content_hash: str) -> None: ...


@runtime_checkable
class ChunkLookup(Protocol):
    """Optional: an index that returns chunks by id (`Chunk.id`, "<document id>#<position>"). The answerer
    reads the opening of a section this way when a passage comes from further down it."""

    def chunks(self, ids: Sequence[str]) -> list[Chunk]:
        """The chunks with these ids that the index holds (in no particular order; unknown ids are left out).
        No ACL filter: callers ask only for chunks of documents the asker was already given."""
        ...


def chunk_id(document_id: str, position: int) -> str:
    """The id of a document's chunk at `position` (its place in the document, from 0)."""
    return f"{document_id}#{position}"


def iter_batches(items: Sequence, size: int) -> Iterator[Sequence]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
