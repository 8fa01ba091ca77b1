"""The index orgbot creates (settings + mapping), and chunks as Elasticsearch documents."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np

from retrieval.config import ElasticsearchSettings
from retrieval.elasticsearch.connection import ServerInfo
from retrieval.types import Chunk

SCHEMA_VERSION = 1
VECTOR_FIELD = "embedding"
# How many chunks the chunk's section has (for the long-section penalty, `retrieval.hybrid.section_penalty`);
# written with every chunk, added to an older index's mapping on its first write (a chunk without it counts 1).
SECTION_FIELD = "section_chunks"
SECTION_MAPPING = {"type": "integer", "index": False, "doc_values": False}
# The successor's document id of a chunk whose document says it was replaced (`Chunk.superseded_by`); "" when
# it names none, absent while current. Added to an older index's mapping on its first write, like SECTION_FIELD.
SUPERSEDED_FIELD = "superseded_by"
# Fields later orgbot versions write, and their mappings: `missing_fields` puts them on an older index.
ADDED_FIELDS = {SECTION_FIELD: SECTION_MAPPING, SUPERSEDED_FIELD: {"type": "keyword", "index": False}}
# Fields returned with hits: everything a citation needs, never the vector (kilobytes per hit).
SOURCE_FIELDS = [
    "chunk_id", "document_id", "source", "title", "heading", "body", "url", "position", "content_hash",
    "updated_at", "acl", SECTION_FIELD, SUPERSEDED_FIELD,
]
_HNSW_TYPES = {"hnsw", "int8_hnsw", "int4_hnsw", "bbq_hnsw"}
# Quantized types score kNN candidates on int8 / int4 / 1-bit copies of the vectors: the `_score`
# is an approximation of the cosine unless the candidates are rescored with the float vectors.
QUANTIZED_TYPES = frozenset({"int8_hnsw", "int4_hnsw", "bbq_hnsw", "int8_flat", "int4_flat", "bbq_flat"})
# First self-managed release that accepts each `index_options.type` (the dense_vector reference).
VECTOR_TYPE_SINCE: dict[str, tuple[int, int]] = {
    "hnsw": (8, 0), "int8_hnsw": (8, 12), "flat": (8, 13), "int8_flat": (8, 13),
    "int4_hnsw": (8, 15), "int4_flat": (8, 15), "bbq_hnsw": (8, 16), "bbq_flat": (8, 16),
}


def unsupported_vector_type(vector_type: str, server: ServerInfo) -> str | None:
    """Why this server cannot create an index with `vector_type`, or None if it can (or the
    version is unknown: the cluster then answers for itself)."""
    since = VECTOR_TYPE_SINCE.get(vector_type)
    if since is None or not server.version_known or server.at_least(*since):
        return None
    older = [t for t, v in VECTOR_TYPE_SINCE.items() if server.at_least(*v) and t in _HNSW_TYPES]
    return (
        f"retrieval.elasticsearch.vector_index_type is {vector_type}, which needs Elasticsearch "
        f"{since[0]}.{since[1]}+, but the cluster runs {server.version}. Set vector_index_type to one this "
        f"version has ({', '.join(sorted(older, key=lambda t: VECTOR_TYPE_SINCE[t]))}) or upgrade the cluster."
    )


def index_body(settings: ElasticsearchSettings, dims: int, *, serverless: bool = False) -> dict[str, Any]:
    """`settings` + `mappings` for `indices.create` of one versioned index.

    Serverless manages shards, replicas and the refresh interval itself and refuses the first two,
    so none of them is sent there (orgbot refreshes explicitly after writing anyway).
    """
    analyzer = settings.analyzer
    text = {"type": "text", "analyzer": analyzer}
    index_options: dict[str, Any] = {"type": settings.vector_index_type}
    if settings.vector_index_type in _HNSW_TYPES:
        index_options |= {"m": settings.hnsw_m, "ef_construction": settings.hnsw_ef_construction}
    index_settings: dict[str, Any] = {} if serverless else {
        "number_of_shards": settings.shards,
        "number_of_replicas": settings.replicas,
        "refresh_interval": settings.refresh_interval,
    }
    body: dict[str, Any] = {"index": index_settings} if index_settings else {}
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
                **ADDED_FIELDS,
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


def to_document(chunk: Chunk, vector: list[float], section_chunks: int = 1) -> dict[str, Any]:
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
        SECTION_FIELD: section_chunks,
        **({} if chunk.superseded_by is None else {SUPERSEDED_FIELD: chunk.superseded_by}),
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
        superseded_by=src.get(SUPERSEDED_FIELD),
    )


def section_chunks(hit: dict[str, Any]) -> int:
    """The hit's section size in chunks; 1 for a chunk written before orgbot stored it."""
    return max(1, int((hit.get("_source") or {}).get(SECTION_FIELD) or 1))


def missing_fields(mapping: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The `ADDED_FIELDS` an index's mapping lacks (an index an older orgbot created), with their mappings."""
    props = (mapping.get("mappings") or {}).get("properties") or {}
    return {name: field for name, field in ADDED_FIELDS.items() if name not in props}


def mapping_dims(mapping: dict[str, Any]) -> int | None:
    """Vector dims from one index's `get_mapping` entry."""
    props = (mapping.get("mappings") or {}).get("properties") or {}
    dims = (props.get(VECTOR_FIELD) or {}).get("dims")
    return int(dims) if dims is not None else None
