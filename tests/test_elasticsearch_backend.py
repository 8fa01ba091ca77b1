"""The Elasticsearch backend through the official client, against the fake server in tests/fakes:
the requests it sends (mapping, queries, bulk, alias swaps) and how it fails."""

from __future__ import annotations

import dataclasses
import logging
import socket

import numpy as np
import pytest

from retrieval.config import ElasticsearchSettings
from retrieval.elasticsearch import (
    ElasticsearchIndex,
    IndexWriteError,
    ReindexError,
    open_elasticsearch_index,
)
from retrieval.elasticsearch import queries as es_queries
from retrieval.elasticsearch.connection import CLIENT_MAJOR
from retrieval.fusion import reciprocal_rank_fusion
from retrieval.index import DocumentIndex, IndexUnavailable
from tests.contract.index_contract import EMB, ids, make_chunks, q
from tests.fakes.fake_elasticsearch import FakeElasticsearch

ALIAS = "orgbot-test"


@pytest.fixture
def fake():
    with FakeElasticsearch() as server:
        yield server


def make_index(fake: FakeElasticsearch, **overrides) -> ElasticsearchIndex:
    settings = ElasticsearchSettings(url=fake.url, index_alias=ALIAS, bulk_initial_backoff=0.0, **overrides)
    return ElasticsearchIndex(settings, EMB.dim)


@pytest.fixture
def index(fake):
    idx = make_index(fake)
    yield idx
    idx.close()


def since(fake: FakeElasticsearch, mark: int) -> list[tuple[str, str]]:
    """(method, endpoint/path) of the requests after `mark`."""
    return [(r.method, r.path) for r in fake.requests[mark:]]


# -- construction ----------------------------------------------------------------------------------
def test_constructing_the_index_sends_nothing(fake):
    idx = open_elasticsearch_index(ElasticsearchSettings(url=fake.url), 384)
    assert isinstance(idx, DocumentIndex)
    assert fake.requests == []
    idx.close()


def test_a_missing_url_says_which_variable_to_set():
    with pytest.raises(IndexUnavailable, match="ELASTICSEARCH_URL"):
        open_elasticsearch_index(ElasticsearchSettings(), 384)


def test_url_without_scheme_is_rejected_at_config_time():
    with pytest.raises(ValueError, match="http:// or https://"):
        ElasticsearchSettings(url="localhost:9200")


# -- the mapping -----------------------------------------------------------------------------------
def test_first_write_creates_a_versioned_index_behind_the_alias_with_the_mapping(fake):
    idx = make_index(fake, shards=2, replicas=1, refresh_interval="5s")
    idx.upsert(make_chunks("wiki:vpn", ["Install the VPN client."]))
    (create,) = fake.calls("index", "PUT")
    assert create.path == f"/{ALIAS}-v000001"
    assert create.body["aliases"] == {ALIAS: {}}
    assert create.body["settings"]["index"] == {"number_of_shards": 2, "number_of_replicas": 1, "refresh_interval": "5s"}
    mappings = create.body["mappings"]
    props = mappings["properties"]
    assert mappings["dynamic"] == "strict"
    assert props["embedding"] == {
        "type": "dense_vector", "dims": EMB.dim, "index": True, "similarity": "cosine",
        "index_options": {"type": "int8_hnsw", "m": 16, "ef_construction": 100},
    }
    for text_field in ("title", "heading", "body"):
        assert props[text_field] == {"type": "text", "analyzer": "english"}
    for keyword in ("chunk_id", "document_id", "source", "acl", "content_hash"):
        assert props[keyword]["type"] == "keyword"
    assert props["updated_at"] == {"type": "date"}
    assert fake.alias_targets(ALIAS) == {f"{ALIAS}-v000001"}


def test_an_index_from_before_section_sizes_gets_the_field_on_its_first_write(fake):
    # An index created by an older orgbot: its strict mapping has no section_chunks (nor superseded_by), and a
    # write with them fails.
    from dataclasses import replace

    from retrieval.elasticsearch.mapping import SECTION_FIELD, SUPERSEDED_FIELD, index_body

    old = index_body(ElasticsearchSettings(url=fake.url), EMB.dim)
    del old["mappings"]["properties"][SECTION_FIELD]
    del old["mappings"]["properties"][SUPERSEDED_FIELD]
    idx = make_index(fake)
    idx.client.indices.create(index=f"{ALIAS}-v000001", mappings=old["mappings"], aliases={ALIAS: {}})
    idx.upsert(make_chunks("wiki:vpn", ["Install the VPN client.", "Sign in with AcmeID."]))
    idx.upsert([replace(c, superseded_by="wiki:vpn") for c in make_chunks("wiki:vpn-2023", ["The old VPN client."])])
    mapping = idx.client.indices.get_mapping(index=ALIAS)[f"{ALIAS}-v000001"]["mappings"]
    assert mapping["properties"][SECTION_FIELD]["type"] == "integer"
    assert mapping["properties"][SUPERSEDED_FIELD]["type"] == "keyword"
    assert ids(idx.search(q("VPN client"), 1)) == ["wiki:vpn"]
    assert idx.search(q("old VPN client"), 1, mode="bm25")[0].chunk.superseded_by == "wiki:vpn"
    idx.close()


def test_vector_options_and_a_custom_analyzer_come_from_config(fake):
    analysis = {"analyzer": {"wiki_text": {"type": "custom", "tokenizer": "standard",
                                           "filter": ["lowercase", "porter_stem"]}}}
    idx = make_index(fake, vector_index_type="flat", analyzer="wiki_text", analysis=analysis)
    idx.upsert(make_chunks("wiki:vpn", ["Install the VPN client."]))
    (create,) = fake.calls("index", "PUT")
    assert create.body["mappings"]["properties"]["embedding"]["index_options"] == {"type": "flat"}
    assert create.body["mappings"]["properties"]["body"]["analyzer"] == "wiki_text"
    assert create.body["settings"]["analysis"] == analysis


def test_chunks_are_written_through_the_alias_with_their_chunk_id(index, fake):
    index.upsert(make_chunks("wiki:vpn", ["Install the VPN client.", "Sign in."], acl=("C_IT",)))
    (bulk,) = fake.calls("_bulk")
    actions, sources = bulk.body[0::2], bulk.body[1::2]
    assert [a["index"]["_id"] for a in actions] == ["wiki:vpn#0", "wiki:vpn#1"]
    assert {a["index"]["_index"] for a in actions} == {ALIAS}
    assert sources[0]["acl"] == ["C_IT"] and sources[0]["body"] == "Install the VPN client."
    assert abs(np.linalg.norm(sources[0]["embedding"]) - 1.0) < 1e-5


# -- the queries -----------------------------------------------------------------------------------
def test_hybrid_search_sends_both_retrievers_with_the_same_filters_in_one_msearch(index, fake):
    index.upsert(make_chunks("hr:leave", ["Parental leave is sixteen weeks."], source="hr"))
    mark = len(fake.requests)
    index.search(q("parental leave", sources=["hr"], principals=["U1", "C_HR"], candidates=30), k=5)
    (msearch,) = [r for r in fake.requests[mark:] if r.endpoint == "_msearch"]
    header1, bm25, header2, knn = msearch.body
    assert header1 == header2 == {"index": ALIAS}
    expected_filter = [
        {"terms": {"source": ["hr"]}},
        {"bool": {"should": [{"bool": {"must_not": [{"exists": {"field": "acl"}}]}},
                             {"terms": {"acl": ["U1", "C_HR"]}}], "minimum_should_match": 1}},
    ]
    match = bm25["query"]["bool"]["must"][0]["multi_match"]
    assert match["query"] == "parental leave"
    assert match["fields"] == ["title^4", "heading^2", "body"]
    assert bm25["query"]["bool"]["filter"] == expected_filter
    assert knn["knn"]["filter"] == expected_filter
    assert knn["knn"]["field"] == "embedding"
    assert knn["knn"]["k"] == 30 and bm25["size"] == 30
    assert knn["knn"]["num_candidates"] == 100  # settings.num_candidates, never below k
    assert "embedding" not in bm25["_source"] and "embedding" not in knn["_source"]


def test_num_candidates_grows_with_k_and_stays_under_the_cluster_limit():
    s = ElasticsearchSettings(url="http://x:9200", num_candidates=100)
    assert es_queries.knn_clause([1.0], [], 500, s)["num_candidates"] == 500
    clause = es_queries.knn_clause([1.0], [], 20_000, s)
    assert clause["k"] == clause["num_candidates"] == 10_000
    assert "filter" not in clause  # no filter: no empty filter list either


def test_trusted_callers_get_no_acl_filter_and_empty_principals_see_only_public():
    assert es_queries.filters(q("x")) == []
    (only_public,) = es_queries.filters(q("x", principals=[]))
    assert only_public == {"bool": {"should": [{"bool": {"must_not": [{"exists": {"field": "acl"}}]}}],
                                    "minimum_should_match": 1}}


def test_question_text_is_reduced_to_words():
    assert es_queries.query_words('vpn* -setup NEAR(x) "quoted') == "vpn setup NEAR x quoted"
    assert len(es_queries.query_words("word " * 500).split()) == es_queries.MAX_QUERY_WORDS


def test_hybrid_results_are_the_rrf_of_the_keyword_and_vector_lists(index):
    index.upsert(make_chunks("wiki:vpn", ["Install the VPN client on your laptop."]))
    index.upsert(make_chunks("wiki:laptop", ["Laptop refresh happens every three years."]))
    index.upsert(make_chunks("wiki:client", ["Client meetings are in room four."]))
    index.upsert(make_chunks("wiki:lunch", ["Lunch is served at noon."]))
    query = q("install client laptop", candidates=10)
    bm25 = index.search(query, k=10, mode="bm25")
    vector = index.search(query, k=10, mode="vector")
    hybrid = index.search(query, k=3)
    expected = reciprocal_rank_fusion(bm25, vector, 3)
    assert [h.chunk.id for h in hybrid] == [e.chunk.id for e in expected]
    assert [(h.bm25_rank, h.vector_rank) for h in hybrid] == [(e.bm25_rank, e.vector_rank) for e in expected]
    assert hybrid[0].score == pytest.approx(expected[0].score)


def test_vector_scores_are_cosine_similarities(index):
    chunks = make_chunks("wiki:vpn", ["Install the VPN client."])
    index.upsert(chunks)
    query = q("VPN client install")
    (hit,) = index.search(query, k=1, mode="vector")
    cosine = float(np.dot(chunks[0].embedding, query.vector)
                   / (np.linalg.norm(chunks[0].embedding) * np.linalg.norm(query.vector)))
    assert hit.vector_score == pytest.approx(cosine, abs=1e-5)


def test_an_empty_source_list_matches_nothing_without_asking_the_cluster(index, fake):
    index.upsert(make_chunks("wiki:vpn", ["VPN"]))
    mark = len(fake.requests)
    assert index.search(q("VPN", sources=[]), k=5) == []
    assert since(fake, mark) == []


# -- native rrf ------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", ["9.1.0", "9.2.0"])
def test_native_rrf_returns_the_same_chunks_as_client_fusion(version):
    with FakeElasticsearch(version=version, licence="enterprise") as fake:
        client_side = make_index(fake)
        native = make_index(fake, fusion="native")
        client_side.upsert(make_chunks("wiki:vpn", ["Install the VPN client on your laptop."]))
        client_side.upsert(make_chunks("wiki:laptop", ["Laptop refresh happens every three years."]))
        client_side.upsert(make_chunks("wiki:lunch", ["Lunch is served at noon."], acl=("C_FOOD",)))
        query = q("install the VPN on a laptop", principals=["U1"])
        mark = len(fake.requests)
        fused_here = client_side.search(query, k=3)
        fused_there = native.search(query, k=3)
        assert native.fusion_path() == "native"
        (search,) = [r for r in fake.requests[mark:] if r.endpoint == "_search"]
        rrf = search.body["retriever"]["rrf"]
        standard, knn = rrf["retrievers"]
        assert standard["standard"]["query"]["bool"]["filter"] == knn["knn"]["filter"] == es_queries.filters(query)
        assert rrf["rank_constant"] == 60 and rrf["rank_window_size"] == query.candidates
        assert ("exclude_vectors" in search.body["_source"]) == (version == "9.2.0")
        assert [h.chunk for h in fused_there] == [h.chunk for h in fused_here]
        assert [h.score for h in fused_there] == pytest.approx([h.score for h in fused_here])
        # the answerer's similarity threshold needs the cosine on this path too
        assert [h.vector_score for h in fused_there] == pytest.approx(
            [h.vector_score for h in fused_here], abs=1e-5)


def test_native_rrf_is_not_used_on_a_basic_licence(fake, caplog):
    idx = make_index(fake, fusion="native")
    idx.upsert(make_chunks("wiki:vpn", ["Install the VPN client."]))
    with caplog.at_level(logging.WARNING, logger="retrieval.elasticsearch"):
        assert ids(idx.search(q("VPN client"), k=3)) == ["wiki:vpn"]
    assert idx.fusion_path() == "client"
    assert not any("retriever" in (r.body or {}) for r in fake.calls("_search"))
    assert "native rrf unavailable" in caplog.text


def test_a_licence_that_lapses_falls_back_to_client_fusion(fake):
    fake.licence = "trial"
    idx = make_index(fake, fusion="native")
    idx.upsert(make_chunks("wiki:vpn", ["Install the VPN client."]))
    assert idx.fusion_path() == "native"
    fake.licence = "basic"  # the trial ended while the bot was running
    assert ids(idx.search(q("VPN client"), k=3)) == ["wiki:vpn"]
    assert idx.fusion_path() == "client"
    assert fake.calls("_msearch")


# -- bulk writes -----------------------------------------------------------------------------------
def test_a_chunk_the_cluster_rejects_is_reported_not_dropped(index, fake, caplog):
    fake.bulk_item_error = lambda index_, doc_id, src: (
        (400, "document_parsing_exception", "[1:20] failed to parse field [title]") if doc_id == "wiki:b#1" else None
    )
    with caplog.at_level(logging.ERROR, logger="retrieval.elasticsearch"), pytest.raises(IndexWriteError) as err:
        index.upsert(make_chunks("wiki:b", ["one", "two", "three"]))
    assert err.value.failures == [("wiki:b#1", 400, "document_parsing_exception: [1:20] failed to parse field [title]")]
    assert "1 of 3 chunks were not written" in str(err.value) and "wiki:b#1" in str(err.value)
    assert [(r.message, r.chunk) for r in caplog.records] == [("chunk not indexed", "wiki:b#1")]


def test_rejected_bulk_items_are_retried_with_backoff(index, fake):
    rejected: set[str] = set()

    def once(index_, doc_id, src):
        if doc_id == "wiki:a#0" and doc_id not in rejected:
            rejected.add(doc_id)
            return 429, "es_rejected_execution_exception", "rejected execution of coordinating operation"
        return None

    fake.bulk_item_error = once
    index.upsert(make_chunks("wiki:a", ["one", "two"]))
    first, retry = fake.calls("_bulk")
    assert len(first.body) == 4 and [a["index"]["_id"] for a in retry.body[0::2]] == ["wiki:a#0"]
    assert index.stats().chunks == 2


def test_bulk_requests_are_batched_by_the_configured_size(fake):
    idx = make_index(fake, bulk_chunk_size=2)
    idx.upsert(make_chunks("wiki:a", ["one", "two", "three", "four", "five"]))
    assert [len(r.body) // 2 for r in fake.calls("_bulk")] == [2, 2, 1]


def test_a_sync_refreshes_once_at_the_end_not_per_write(index, fake):
    index.upsert(make_chunks("wiki:seed", ["seed"]))
    mark = len(fake.requests)
    with index.update():
        for i in range(5):
            index.upsert(make_chunks(f"wiki:{i}", [f"page {i}"]))
        index.delete_documents(["wiki:seed"])
    refreshes = [p for m, p in since(fake, mark) if p.endswith("/_refresh")]
    assert refreshes == [f"/{ALIAS}/_refresh"]
    assert index.document_ids("wiki") == {f"wiki:{i}" for i in range(5)}


def test_deleting_documents_removes_all_their_chunks_and_counts_documents(index):
    index.upsert(make_chunks("wiki:a", ["one", "two", "three"]))
    index.upsert(make_chunks("wiki:b", ["four"]))
    assert index.delete_documents(["wiki:a", "wiki:missing"]) == 1
    assert index.stats().chunks == 1
    assert index.delete_documents([]) == 0


def test_a_document_written_twice_in_one_sync_keeps_only_its_last_chunks(index):
    with index.update():
        index.upsert(make_chunks("wiki:a", ["one", "two", "three"]))
        index.upsert(make_chunks("wiki:a", ["only"], content_hash="h2"))
    assert index.stats().chunks == 1
    assert index.document_hashes("wiki") == {"wiki:a": "h2"}


def test_document_ids_and_hashes_page_through_every_document(index):
    chunks = [c for i in range(1203) for c in make_chunks(f"wiki:{i:04d}", ["x"], content_hash=f"h{i}")]
    index.upsert(chunks)
    assert len(index.document_ids("wiki")) == 1203
    hashes = index.document_hashes("wiki")
    assert len(hashes) == 1203 and hashes["wiki:1202"] == "h1202"


def test_unchanged_documents_are_skipped_by_content_hash(index, fake):
    from connectors.base import Section, SourceDocument
    from retrieval.indexer import Indexer

    docs = [SourceDocument(id=f"wiki:{n}", source="wiki", title=n, url=f"https://wiki/{n}",
                           sections=(Section(n, f"All about {n}."),)) for n in ("vpn", "lunch")]

    class Connector:
        name = "wiki"

        def __init__(self, docs):
            self.docs = docs

        def load(self):
            yield list(self.docs)

    indexer = Indexer(index, EMB)
    assert indexer.sync(Connector(docs)).documents_indexed == 2
    mark = len(fake.calls("_bulk"))
    changed = dataclasses.replace(docs[1], sections=(Section("lunch", "Lunch moved to one."),))
    report = indexer.sync(Connector([docs[0], changed]))
    assert (report.documents_unchanged, report.documents_indexed) == (1, 1), report.error
    sent = [a["index"]["_id"] for r in fake.calls("_bulk")[mark:] for a in r.body[0::2]]
    assert sent and all(s.startswith("wiki:lunch#") for s in sent)


def test_chunks_with_the_wrong_vector_size_ask_for_a_full_rebuild(index, fake):
    index.upsert(make_chunks("wiki:a", ["text"]))
    other = [dataclasses.replace(c, embedding=np.ones(32, dtype=np.float32)) for c in make_chunks("wiki:b", ["x"])]
    with pytest.raises(ValueError, match="orgbot index --full"):
        index.upsert(other)
    assert len(fake.calls("_bulk")) == 1


# -- zero-downtime rebuilds ------------------------------------------------------------------------
def test_a_rebuild_builds_checks_then_swaps_the_alias_in_one_call(index, fake):
    index.upsert(make_chunks("wiki:old", ["Old page."]))
    index.upsert(make_chunks("other:keep", ["Other source."], source="other"))
    mark = len(fake.requests)
    with index.update(replace_source="wiki"):
        index.upsert(make_chunks("wiki:new", ["New page."]))
    steps = [(r.method, r.path) for r in fake.requests[mark:] if r.endpoint != "_alias"]
    new, old = f"{ALIAS}-v000002", f"{ALIAS}-v000001"
    assert steps == [
        ("GET", f"/{ALIAS}/_mapping"),  # which index serves now
        ("PUT", f"/{new}"),  # create the next version
        ("POST", "/_reindex"),  # copy every other source into it
        ("GET", "/_tasks/fakenode%3A1"),
        ("PUT", "/_bulk"),  # the block's writes go to the new index
        ("POST", f"/{new}/_refresh"),
        ("POST", f"/{new}/_count"),  # verify
        ("POST", "/_aliases"),  # swap
    ]
    reindex = next(r for r in fake.requests[mark:] if r.endpoint == "_reindex")
    assert reindex.body["source"]["query"] == {"bool": {"must_not": [{"term": {"source": "wiki"}}]}}
    assert reindex.body["dest"] == {"index": new}
    (swap,) = fake.calls("_aliases")
    assert swap.body["actions"] == [{"remove": {"index": old, "alias": ALIAS}}, {"add": {"index": new, "alias": ALIAS}}]
    assert all(a["index"]["_index"] == new for r in fake.calls("_bulk")[-1:] for a in r.body[0::2])
    assert fake.alias_targets(ALIAS) == {new}
    assert set(fake.indices) == {old, new}  # keep_old_indices=1: the previous one stays for rollback


def test_only_the_configured_number_of_old_indices_is_kept_and_only_after_the_swap(fake):
    idx = make_index(fake, keep_old_indices=1)
    idx.upsert(make_chunks("wiki:a", ["v1"]))
    for i in range(3):
        with idx.update(replace_source="wiki"):
            idx.upsert(make_chunks("wiki:a", [f"v{i + 2}"]))
    assert set(fake.indices) == {f"{ALIAS}-v000003", f"{ALIAS}-v000004"}
    deletes = [i for i, r in enumerate(fake.requests) if r.method == "DELETE"]
    swaps = [i for i, r in enumerate(fake.requests) if r.endpoint == "_aliases"]
    assert [r.path for r in fake.requests if r.method == "DELETE"] == [f"/{ALIAS}-v000001", f"/{ALIAS}-v000002"]
    assert deletes[0] > swaps[1] and deletes[1] > swaps[2]  # each deleted only after the swap that retired it
    assert idx.health()["rollback_indices"] == [f"{ALIAS}-v000003"]


def test_keep_zero_deletes_the_previous_index_after_the_swap(fake):
    idx = make_index(fake, keep_old_indices=0)
    idx.upsert(make_chunks("wiki:a", ["v1"]))
    with idx.update(replace_source="wiki"):
        idx.upsert(make_chunks("wiki:a", ["v2"]))
    assert set(fake.indices) == {f"{ALIAS}-v000002"}


def _assert_untouched(fake: FakeElasticsearch, idx: ElasticsearchIndex) -> None:
    assert fake.alias_targets(ALIAS) == {f"{ALIAS}-v000001"}
    assert set(fake.indices) == {f"{ALIAS}-v000001"}  # the half-built index was deleted
    assert not fake.calls("_aliases")
    assert ids(idx.search(q("office opens"), k=5)) == ["wiki:keep"]


def test_a_rebuild_that_raises_deletes_the_new_index_and_leaves_the_alias(index, fake):
    index.upsert(make_chunks("wiki:keep", ["The office opens at eight."]))
    with pytest.raises(RuntimeError, match="wiki timed out"):
        with index.update(replace_source="wiki"):
            index.upsert(make_chunks("wiki:new", ["Half-written rebuild."]))
            raise RuntimeError("wiki timed out")
    _assert_untouched(fake, index)


def test_a_rebuild_whose_count_does_not_add_up_is_not_swapped_in(index, fake):
    index.upsert(make_chunks("wiki:keep", ["The office opens at eight."]))
    with pytest.raises(ReindexError, match="holds 1 chunks but 2 were written"):
        with index.update(replace_source="wiki"):
            index.upsert(make_chunks("wiki:new", ["one", "two"]))
            fake.indices[f"{ALIAS}-v000002"].docs.pop("wiki:new#1")  # lost on the way
    _assert_untouched(fake, index)


def test_a_rebuild_whose_copy_fails_is_not_swapped_in(index, fake):
    index.upsert(make_chunks("wiki:keep", ["The office opens at eight."]))
    index.upsert(make_chunks("other:a", ["Other source."], source="other"))
    fake.bulk_item_error = lambda idx_, doc_id, src: (
        (400, "document_parsing_exception", "bad") if idx_.endswith("v000002") else None)
    with pytest.raises(ReindexError, match="copying the other sources"):
        with index.update(replace_source="wiki"):
            pytest.fail("the block must not run when the copy failed")
    assert fake.alias_targets(ALIAS) == {f"{ALIAS}-v000001"}
    assert f"{ALIAS}-v000002" not in fake.indices


def test_a_failed_alias_swap_leaves_the_alias_and_deletes_the_new_index(index, fake):
    index.upsert(make_chunks("wiki:keep", ["The office opens at eight."]))
    fake.fail("POST", r"^/_aliases$", 500, "illegal_state_exception", "cluster state update failed")
    with pytest.raises(Exception, match="illegal_state_exception"):
        with index.update(replace_source="wiki"):
            index.upsert(make_chunks("wiki:new", ["New."]))
    assert fake.alias_targets(ALIAS) == {f"{ALIAS}-v000001"}
    assert set(fake.indices) == {f"{ALIAS}-v000001"}


def test_a_swap_that_happened_but_timed_out_never_deletes_the_live_index(index, fake, monkeypatch):
    from elastic_transport import ConnectionTimeout

    index.upsert(make_chunks("wiki:keep", ["The office opens at eight."]))
    real = index.client.indices.update_aliases

    def applied_then_timed_out(**kwargs):
        real(**kwargs)
        raise ConnectionTimeout("Connection timed out")

    monkeypatch.setattr(index.client.indices, "update_aliases", applied_then_timed_out)
    with pytest.raises(IndexUnavailable, match="timed out"):
        with index.update(replace_source="wiki"):
            index.upsert(make_chunks("wiki:new", ["New page."]))
    assert fake.alias_targets(ALIAS) == {f"{ALIAS}-v000002"}
    assert f"{ALIAS}-v000002" in fake.indices


def test_a_slow_copy_is_followed_until_it_completes(index, fake):
    index.upsert(make_chunks("other:a", ["Other."], source="other"))
    fake.reindex_polls_before_done = 2
    with index.update(replace_source="wiki"):
        index.upsert(make_chunks("wiki:new", ["New."]))
    assert len(fake.calls("_tasks")) == 3
    assert index.stats().per_source == {"other": (1, 1), "wiki": (1, 1)}


def test_a_new_embedding_size_cannot_silently_drop_other_sources(fake):
    make_index(fake).upsert(make_chunks("other:a", ["Other."], source="other"))
    bigger = ElasticsearchIndex(ElasticsearchSettings(url=fake.url, index_alias=ALIAS), 128)
    with pytest.raises(ValueError, match="index_alias"):
        with bigger.update(replace_source="wiki"):
            pass
    assert fake.alias_targets(ALIAS) == {f"{ALIAS}-v000001"}


def test_a_rebuild_with_a_new_embedding_size_works_when_it_replaces_everything(fake):
    make_index(fake).upsert(make_chunks("wiki:a", ["Old."]))
    bigger = ElasticsearchIndex(ElasticsearchSettings(url=fake.url, index_alias=ALIAS), 128)
    chunk = dataclasses.replace(make_chunks("wiki:a", ["New."])[0], embedding=np.ones(128, dtype=np.float32))
    with bigger.update(replace_source="wiki"):
        bigger.upsert([chunk])
    assert bigger.health()["embedding_dims"] == 128


def test_an_index_named_like_the_alias_is_explained(fake, index):
    fake.handle("PUT", f"/{ALIAS}", {}, {}, {"mappings": {"properties": {}}})  # made by hand, not by orgbot
    with pytest.raises(IndexUnavailable, match="index_alias"):
        index.upsert(make_chunks("wiki:a", ["x"]))


# -- health and failures ---------------------------------------------------------------------------
def test_health_reports_cluster_index_counts_licence_and_fusion(index):
    index.upsert(make_chunks("wiki:a", ["one", "two"]))
    index.upsert(make_chunks("hr:b", ["three"], source="hr"))
    health = index.health()
    assert health == {
        "backend": "elasticsearch", "url": index.settings.url, "cluster_name": "fake-cluster",
        "cluster_status": "green", "server_version": "9.1.0", "client_version": health["client_version"],
        "licence": "basic", "fusion": "client", "fusion_configured": "client", "alias": ALIAS,
        "index": f"{ALIAS}-v000001", "embedding_dims": EMB.dim, "rollback_indices": [],
        "documents": 2, "chunks": 3,
        "per_source": {"wiki": {"documents": 1, "chunks": 2}, "hr": {"documents": 1, "chunks": 1}},
    }


def test_health_before_anything_is_indexed_creates_nothing(index, fake):
    health = index.health()
    assert (health["index"], health["chunks"]) == (None, 0)
    assert not fake.indices


def test_an_unreadable_licence_means_client_fusion(fake):
    fake.licence = None  # the API key lacks `monitor`
    idx = make_index(fake, fusion="native")
    assert idx.health()["licence"] == "unknown"
    assert idx.fusion_path() == "client"


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("call", [
    lambda idx: idx.search(q("vpn"), k=3),
    lambda idx: idx.upsert(make_chunks("wiki:a", ["x"])),
    lambda idx: idx.delete_documents(["wiki:a"]),
    lambda idx: idx.document_hashes("wiki"),
    lambda idx: idx.stats(),
    lambda idx: idx.health(),
    lambda idx: idx.update(replace_source="wiki").__enter__(),
])
def test_a_cluster_that_is_down_raises_index_unavailable_with_the_url(call):
    url = _closed_port_url()
    idx = ElasticsearchIndex(ElasticsearchSettings(url=url, max_retries=0), EMB.dim)
    with pytest.raises(IndexUnavailable) as err:
        call(idx)
    message = str(err.value)
    assert url in message and "connection refused" in message and "ELASTICSEARCH_URL" in message
    assert err.value.__suppress_context__  # no transport traceback chained onto it


def test_wrong_credentials_say_which_setting_to_fix(fake, index):
    fake.fail("GET", r"^/$", 401, "security_exception", "unable to authenticate user [elastic]")
    with pytest.raises(IndexUnavailable, match="ELASTICSEARCH_API_KEY"):
        index.health()


def test_a_server_that_is_not_elasticsearch_is_named(fake, index):
    fake.product_header = False
    with pytest.raises(IndexUnavailable, match="not Elasticsearch"):
        index.health()


def test_an_unavailable_cluster_state_is_index_unavailable(fake, index):
    index.upsert(make_chunks("wiki:a", ["x"]))
    fake.fail("POST", r"_msearch", 503, "cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/1/state not recovered]",
              times=10)  # the client retries 503s itself first
    with pytest.raises(IndexUnavailable, match="503"):
        index.search(q("x"), k=1)


@pytest.mark.skipif(CLIENT_MAJOR < 9, reason="an 8.x client talks to an 8.x server fine")
def test_a_9x_client_against_an_8x_server_says_which_client_to_install():
    with FakeElasticsearch(version="8.17.0") as fake:
        idx = make_index(fake)
        with pytest.raises(IndexUnavailable, match=r"pip install 'elasticsearch>=8,<9'"):
            idx.health()


@pytest.mark.skipif(CLIENT_MAJOR >= 9, reason="only an 8.x client can talk to an 8.x server")
def test_an_8x_client_works_against_an_8x_server():
    with FakeElasticsearch(version="8.17.0") as fake:
        idx = make_index(fake)
        idx.upsert(make_chunks("wiki:vpn", ["Install the VPN client."]))
        assert ids(idx.search(q("VPN client"), k=1)) == ["wiki:vpn"]
        assert idx.health()["server_version"] == "8.17.0"
