"""The Elasticsearch backend: hybrid BM25 + kNN retrieval behind an alias (see docs/elasticsearch.md)."""

from retrieval.elasticsearch.index import (
    ElasticsearchIndex,
    IndexWriteError,
    ReindexError,
    open_elasticsearch_index,
)

__all__ = ["ElasticsearchIndex", "IndexWriteError", "ReindexError", "open_elasticsearch_index"]
