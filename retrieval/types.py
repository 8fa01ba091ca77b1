"""Value types shared by every index backend."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np


@dataclass(frozen=True)
class Chunk:
    """A passage small enough for the embedder, with everything needed to cite it."""

    id: str  # retrieval.index.chunk_id(document_id, position)
    document_id: str
    source: str
    title: str
    heading: str
    text: str
    url: str
    position: int
    content_hash: str  # of the whole document: unchanged documents are skipped
    updated_at: datetime | None = None
    acl: tuple[str, ...] = ()  # empty = everyone
    # None: current. The document says it was replaced (`SourceDocument.superseded_by`): its successor's
    # document id, or "" when it names none. Not given to answer from when the successor is retrieved too.
    superseded_by: str | None = None
    embedding: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def embedding_text(self) -> str:
        """The passage with its title and heading, which give it its context: what BM25 indexes, and, read as
        `retrieval.chunking.as_read` reads it (without the rule under a table's header row), what the embedders see."""
        head = f"{self.title} › {self.heading}" if self.heading and self.heading != self.title else self.title
        return f"{head}\n{self.text}"


@dataclass(frozen=True)
class Query:
    text: str
    vector: np.ndarray | None = None
    sources: Sequence[str] | None = None  # None = every source
    # The principals the asker has (user id, channel id, groups). None = no ACL filtering
    # (trusted callers such as the CLI); an empty tuple sees only public documents.
    principals: Sequence[str] | None = None
    candidates: int = 100  # per retriever, before fusion (retrieval.candidates)


@dataclass(frozen=True)
class ScoredChunk:
    chunk: Chunk
    score: float  # fused score (retrieval.hybrid), higher is better
    bm25_rank: int | None = None  # 1-based rank in the keyword list, None if absent
    vector_rank: int | None = None
    vector_score: float | None = None  # cosine similarity to the query, when known
    bm25_score: float | None = None


@dataclass
class IndexStats:
    documents: int
    chunks: int
    per_source: dict[str, tuple[int, int]]  # source -> (documents, chunks)
