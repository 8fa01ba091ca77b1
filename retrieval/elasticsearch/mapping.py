"""The index orgbot creates (settings + mapping), and chunks as Elasticsearch documents."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np

from retrieval.config import ElasticsearchSettings
from retrieval.types import Chunk

SCHEMA_VERSION = 1
VECTOR_FIELD = "embedding"
# Fields returned with hits: everything a citation needs, never the vector (kilobytes per hit).
SOURCE_FIELDS = [
    "chunk_id", "document_id", "source", "title", "heading", "body", "url", "position", "content_hash",
    "updated_at", "acl",
]
_HNSW_TYPES = {"hnsw", "int8_hnsw", "int4_hnsw", "bbq_hnsw"}


def index_body(settings: ElasticsearchSettings, dims: int) -> dict[str, Any]:
    """`settings` + `mappings` for `indices.create` of one versioned index."""
    analyzer = settings.analyzer
    text = {"type": "text", "analyzer": analyzer}
    index_options: dict[str, Any] = {"type": settings.vector_index_type}
    if settings.vector_index_type in _HNSW_TYPES:
        index_options |= {"m": settings.hnsw_m, "ef_construction": settings.hnsw_ef_construction}
    index_settings: dict[str, Any] = {
        "number_of_shards": settings.shards,
        "number_of_replicas": settings.replicas,
        "refresh_interval": settings.refresh_interval,
    }
    body: dict[str, Any] = {"index": index_settings}
    if settings.analysis:
        body["analysis"] = settings.analysis
    return {
        "settings": body,
        "mappings": {
            # A typo in a field name fails the write instead of quietly adding a new field.
            "dynamic": "strict",
            "_meta": {"orgbot": {"schema": SCHEMA_VERSION, "embedding_dims": dims}},
            "properties": {
                "chunk_id": {"type": "keyword"},
                "document_id": {"type": "keyword"},
                "source": {"type": "keyword"},
                # Title and heading weights are query-time boosts (title^4, heading^2), so they can be
                # tuned without a reindex; index-time boosts are deprecated in Elasticsearch.
                "title": text,
                "heading": text,
                "body": text,
                "url": {"type": "keyword", "index": False, "doc_values": False},
                "position": {"type": "integer"},
                "content_hash": {"type": "keyword"},
                "updated_at": {"type": "date"},
                "acl": {"type": "keyword"},  # empty = public; filtered with terms / must_not exists
                VECTOR_FIELD: {
                    "type": "dense_vector",
                    "dims": dims,
                    "index": True,
                    "similarity": "cosine",
                    "index_options": index_options,
                },
            },
        },
    }


def unit_vector(vec: Any, decimals: int = 7) -> list[float] | None:
    """A JSON-ready unit-length vector, or None for a zero vector (cosine cannot index those).

    Rounding to 7 decimals halves the JSON (float32 values print as 17 digits otherwise) and
    moves the cosine by less than 1e-6 on unit vectors.
    """
    v = np.asarray(vec, dtype=np.float64).reshape(-1)
    norm = float(np.linalg.norm(v))
    if not np.isfinite(norm) or norm == 0.0:
        return None
    return np.round(v / norm, decimals).tolist()


def to_document(chunk: Chunk, vector: list[float]) -> dict[str, Any]:
    return {
        "chunk_id": chunk.id,
        "document_id": chunk.document_id,
        "source": chunk.source,
        "title": chunk.title,
        "heading": chunk.heading,
        "body": chunk.text,
        "url": chunk.url,
        "position": chunk.position,
        "content_hash": chunk.content_hash,
        "updated_at": chunk.updated_at.isoformat() if chunk.updated_at else None,
        "acl": list(chunk.acl),
        VECTOR_FIELD: vector,
    }


def from_hit(hit: dict[str, Any]) -> Chunk:
    src = hit.get("_source") or {}
    updated = src.get("updated_at")
    return Chunk(
        id=src.get("chunk_id") or hit["_id"],
        document_id=src["document_id"],
        source=src["source"],
        title=src.get("title") or "",
        heading=src.get("heading") or "",
        text=src.get("body") or "",
        url=src.get("url") or "",
        position=int(src.get("position") or 0),
        content_hash=src.get("content_hash") or "",
        updated_at=datetime.fromisoformat(updated) if updated else None,
        acl=tuple(src.get("acl") or ()),
    )


def mapping_dims(mapping: dict[str, Any]) -> int | None:
    """Vector dims from one index's `get_mapping` entry."""
    props = (mapping.get("mappings") or {}).get("properties") or {}
    dims = (props.get(VECTOR_FIELD) or {}).get("dims")
    return int(dims) if dims is not None else None
