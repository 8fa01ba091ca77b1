"""What each Elasticsearch version and flavor gets from the backend, checked against a fake that
refuses what that server would refuse (400 for a body it cannot parse, 410 for an API Serverless
lacks, 403 for a privilege the key lacks), and how long a person waits when the cluster hangs."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

from retrieval.config import ElasticsearchSettings
from retrieval.elasticsearch import ElasticsearchIndex, ReindexError
from retrieval.elasticsearch.connection import CLIENT_MAJOR
from retrieval.index import IndexUnavailable
from tests.contract.index_contract import EMB, make_chunks, q
from tests.fakes.fake_elasticsearch import FakeElasticsearch

ALIAS = "orgbot-test"
SERVERLESS = "serverless"


@pytest.fixture
def server(request, monkeypatch):
    """A started fake for request.param = (version, flavor, licence); with an 8.x server the client
    sends the 8.x compatibility header, as the 8.x client (the one to install for 8.x) does."""
    version, flavor, licence = request.param
    fake = FakeElasticsearch(version=version, flavor=flavor, licence=licence)
    if flavor != SERVERLESS and fake.major == 8 and CLIENT_MAJOR == 9:
        monkeypatch.setattr("elasticsearch._sync.client._base._COMPAT_MIMETYPE_SUB",
                            r"application/vnd.elasticsearch+\g<1>; compatible-with=8")
    with fake:
        yield fake


def make_index(fake: FakeElasticsearch, dim: int = EMB.dim, **overrides) -> ElasticsearchIndex:
    settings = ElasticsearchSettings(url=fake.url, index_alias=ALIAS, bulk_initial_backoff=0.0, **overrides)
    return ElasticsearchIndex(settings, dim)


def seed(idx: ElasticsearchIndex) -> None:
    idx.upsert(make_chunks("wiki:vpn", ["Install the VPN client on your laptop."]))
    idx.upsert(make_chunks("wiki:laptop", ["Laptop refresh happens every three years."]))
    idx.upsert(make_chunks("wiki:lunch", ["Lunch is served at noon."]))


def searches(fake: FakeElasticsearch, mark: int) -> list:
    return [r for r in fake.requests[mark:] if r.endpoint in ("_search", "_msearch")]


# -- native rrf: the window parameter per version --------------------------------------------------
RRF_SERVERS = [
    ("8.14.3", "default", "trial"),
    ("8.15.5", "default", "enterprise"),
    ("8.17.4", "default", "trial"),
    ("8.18.0", "default", "enterprise"),
    ("9.1.0", "default", "enterprise"),
    ("9.2.0", "default", "trial"),
    ("8.11.0", SERVERLESS, None),  # Serverless reports a version number that means nothing
]


@pytest.mark.parametrize("server", RRF_SERVERS, indirect=True, ids=lambda p: f"{p[1]}-{p[0]}")
def test_native_rrf_sends_the_window_parameter_the_server_knows(server):
    fake = server
    idx = make_index(fake, fusion="native")
    seed(idx)
    query = q("install the VPN on a laptop")
    mark = len(fake.requests)
    native = idx.search(query, k=3)
    assert idx.fusion_path() == "native"  # no 400 sent it back to client fusion
    (search,) = searches(fake, mark)
    rrf = search.body["retriever"]["rrf"]
    expected, other = (("window_size", "rank_window_size") if fake.version.startswith("8.14")
                       and fake.flavor != SERVERLESS else ("rank_window_size", "window_size"))
    assert rrf[expected] == query.candidates and other not in rrf
    client_side = make_index(fake).search(query, k=3)
    assert [h.chunk for h in native] == [h.chunk for h in client_side]


@pytest.mark.parametrize(("version", "field", "status"), [
    ("8.14.3", "rank_window_size", 400), ("8.14.3", "window_size", 200),
    ("8.15.0", "window_size", 400), ("8.15.0", "rank_window_size", 200),
])
def test_the_fake_refuses_the_window_name_the_version_does_not_know(version, field, status):
    """What makes the test above able to fail: the 8.14 body with the 8.15 name is a 400, as on 8.14."""
    with FakeElasticsearch(version=version, licence="trial") as fake:
        fake.handle("PUT", "/i", {}, {}, {"mappings": {"properties": {"t": {"type": "text"}}}})
        body = {"retriever": {"rrf": {"retrievers": [{"standard": {"query": {"match_all": {}}}},
                                                     {"standard": {"query": {"match_all": {}}}}],
                                      field: 10}}}
        got, answer = fake.handle("POST", "/i/_search", {}, {}, body)
        assert got == status, answer


# -- Serverless ------------------------------------------------------------------------------------
@pytest.mark.parametrize("server", [("8.11.0", SERVERLESS, None)], indirect=True)
def test_serverless_gets_no_shard_settings_and_no_cluster_apis(server):
    fake = server
    idx = make_index(fake, shards=3, replicas=2)
    seed(idx)
    (create,) = fake.calls("index", "PUT")
    assert "index" not in create.body["settings"]  # no shards, replicas, refresh interval
    health = idx.health()
    assert (health["cluster_status"], health["server_version"], health["chunks"]) == (None, "serverless", 3)
    assert not [r for r in fake.requests if r.path.startswith("/_cluster")]
    # what the previous body got there
    status, answer = fake.handle("PUT", "/other", {}, {}, {"settings": {"index": {"number_of_shards": 1}}})
    assert status == 400 and "serverless" in answer["error"]["reason"]
    assert fake.handle("GET", "/_cluster/health", {}, {}, None)[0] == 410


# -- vector index types per version ----------------------------------------------------------------
@pytest.mark.parametrize(("server", "vector_type", "needs"), [
    (("8.11.4", "default", "basic"), "int8_hnsw", "8.12"),
    (("8.14.3", "default", "basic"), "int4_hnsw", "8.15"),
    (("8.15.0", "default", "basic"), "bbq_hnsw", "8.16"),
    (("8.12.2", "default", "basic"), "flat", "8.13"),
], indirect=["server"], ids=["int8@8.11", "int4@8.14", "bbq@8.15", "flat@8.12"])
def test_a_vector_type_the_server_does_not_have_is_refused_before_creating_anything(server, vector_type, needs):
    fake = server
    idx = make_index(fake, vector_index_type=vector_type)
    with pytest.raises(IndexUnavailable, match=rf"{vector_type}, which needs Elasticsearch {needs}\+.*vector_index_type"):
        idx.upsert(make_chunks("wiki:a", ["x"]))
    assert not fake.indices and not fake.calls("index", "PUT")
    # and the cluster itself would have refused the mapping
    status, _ = fake.handle("PUT", "/probe", {}, {}, {"mappings": {"properties": {"v": {
        "type": "dense_vector", "dims": 4, "index": True, "similarity": "cosine",
        "index_options": {"type": vector_type}}}}})
    assert status == 400


@pytest.mark.parametrize(("server", "vector_type"), [
    (("8.12.2", "default", "basic"), "int8_hnsw"),
    (("8.15.0", "default", "basic"), "int4_hnsw"),
    (("8.16.1", "default", "basic"), "bbq_hnsw"),
    (("8.11.0", SERVERLESS, None), "bbq_hnsw"),
], indirect=["server"], ids=["int8@8.12", "int4@8.15", "bbq@8.16", "bbq@serverless"])
def test_a_vector_type_is_created_from_its_first_version(server, vector_type):
    idx = make_index(server, vector_index_type=vector_type)
    idx.upsert(make_chunks("wiki:a", ["x"]))
    (create,) = server.calls("index", "PUT")
    assert create.body["mappings"]["properties"]["embedding"]["index_options"]["type"] == vector_type


# -- scores: the cosine the answerer's min_similarity is compared with -----------------------------
DIM = 96


def dense_chunks(n: int, rng: np.random.Generator):
    chunks = make_chunks("wiki:dense", [f"page {i} about the vpn" for i in range(n)])
    return [dataclasses.replace(c, embedding=rng.normal(size=DIM).astype(np.float32)) for c in chunks]


def exact_cosine(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize(("server", "vector_type", "rescored"), [
    (("8.17.4", "default", "basic"), "int8_hnsw", False),
    (("8.17.4", "default", "basic"), "int4_hnsw", False),
    (("8.18.0", "default", "basic"), "int8_hnsw", True),
    (("9.1.0", "default", "basic"), "bbq_hnsw", True),
    (("9.2.0", "default", "basic"), "int4_hnsw", True),
    (("8.11.0", SERVERLESS, None), "int8_hnsw", True),
], indirect=["server"], ids=["int8@8.17", "int4@8.17", "int8@8.18", "bbq@9.1", "int4@9.2", "int8@serverless"])
@pytest.mark.parametrize("mode", ["vector", "hybrid"])
def test_vector_scores_are_the_exact_cosine_on_quantized_indices(server, vector_type, rescored, mode):
    fake = server
    rng = np.random.default_rng(7)
    idx = make_index(fake, dim=DIM, vector_index_type=vector_type)
    chunks = dense_chunks(12, rng)
    idx.upsert(chunks)
    by_id = {c.id: c.embedding for c in chunks}
    query = dataclasses.replace(q("vpn page"), vector=rng.normal(size=DIM).astype(np.float32))
    mark = len(fake.requests)
    hits = idx.search(query, k=5, mode=mode)
    assert hits and all(h.vector_score is not None for h in hits)
    for h in hits:
        assert h.vector_score == pytest.approx(exact_cosine(by_id[h.chunk.id], query.vector), abs=1e-5)
    if mode == "vector":
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    knn = next(b for r in searches(fake, mark) for b in (r.body[1::2] if r.endpoint == "_msearch" else [r.body])
               if "knn" in b)["knn"]
    assert ("rescore_vector" in knn) == rescored
    fetches = [r for r in searches(fake, mark) if r.endpoint == "_search" and "ids" in r.body.get("query", {})]
    assert len(fetches) == (0 if rescored else 1)  # older servers: the k hits' float vectors, once
    # what min_similarity was compared with before: the quantized score is measurably off
    raw = fake.handle("POST", f"/{ALIAS}/_search", {}, {}, {"size": 5, "knn": {
        "field": "embedding", "query_vector": [float(x) for x in query.vector / np.linalg.norm(query.vector)],
        "k": 5, "num_candidates": 100}})[1]["hits"]["hits"]
    errors = [abs(2 * h["_score"] - 1 - exact_cosine(by_id[h["_id"]], query.vector)) for h in raw]
    assert max(errors) > 1e-3


@pytest.mark.parametrize("server", [("8.17.4", "default", "basic")], indirect=True)
def test_rescore_vector_is_refused_before_8_18(server):
    server.handle("PUT", "/v", {}, {}, {"mappings": {"properties": {"e": {"type": "dense_vector", "dims": 2}}}})
    status, answer = server.handle("POST", "/v/_search", {}, {}, {"knn": {
        "field": "e", "query_vector": [1.0, 0.0], "k": 1, "num_candidates": 10, "rescore_vector": {"oversample": 2}}})
    assert status == 400 and "rescore_vector" in answer["error"]["reason"]


# -- timeouts: a person waiting on a search, an indexer waiting on a write -------------------------
def test_a_hung_cluster_says_search_is_unavailable_within_the_search_timeout():
    with FakeElasticsearch() as fake:
        idx = make_index(fake, search_timeout=0.5, request_timeout=5.0)
        seed(idx)
        idx.search(q("vpn"), k=3)  # connected: server info read
        fake.hang("POST", r"_msearch$", 3.0)
        t0 = time.monotonic()
        with pytest.raises(IndexUnavailable, match=r"^Search is unavailable: .*did not answer in time") as err:
            idx.search(q("vpn"), k=3)
        assert time.monotonic() - t0 < 1.5
        assert fake.hung == [("POST", "/_msearch")]  # a timed-out search is not sent again
        assert err.value.__suppress_context__


def test_indexing_keeps_the_longer_request_timeout():
    with FakeElasticsearch() as fake:
        idx = make_index(fake, search_timeout=0.3, request_timeout=5.0)
        fake.hang("PUT", r"_bulk$", 0.8, times=1)
        idx.upsert(make_chunks("wiki:a", ["slow write"]))
        assert idx.stats().chunks == 1 and len(fake.calls("_bulk")) == 1


def test_a_hung_first_connection_is_bounded_too():
    with FakeElasticsearch() as fake:
        idx = make_index(fake, search_timeout=0.4)
        fake.hang("GET", r"^/$", 3.0)
        t0 = time.monotonic()
        with pytest.raises(IndexUnavailable, match="^Search is unavailable"):
            idx.search(q("vpn"), k=3)
        assert time.monotonic() - t0 < 1.5


# -- deletes run as tasks --------------------------------------------------------------------------
def test_stale_chunks_are_deleted_by_a_task_that_is_followed():
    with FakeElasticsearch() as fake:
        idx = make_index(fake)
        idx.upsert(make_chunks("wiki:a", ["one", "two", "three"]))
        assert not fake.calls("_delete_by_query")  # nothing stale, no task
        fake.delete_polls_before_done = 2
        idx.upsert(make_chunks("wiki:a", ["only"], content_hash="h2"))
        (dbq,) = fake.calls("_delete_by_query")
        assert dbq.params["wait_for_completion"] == "false"
        assert len(fake.calls("_tasks")) == 3  # followed until it completed
        assert idx.stats().chunks == 1
        assert idx.delete_documents(["wiki:a"]) == 1 and idx.stats().chunks == 0


def test_a_delete_whose_submission_times_out_is_not_sent_again():
    with FakeElasticsearch() as fake:
        idx = make_index(fake, request_timeout=0.4, max_retries=3)
        idx.upsert(make_chunks("wiki:a", ["one", "two"]))
        fake.hang("POST", r"_delete_by_query$", 1.5)
        with pytest.raises(IndexUnavailable, match="did not answer in time"):
            idx.delete_documents(["wiki:a"])
        assert [p for _, p in fake.hung] == [f"/{ALIAS}/_delete_by_query"]  # once, not max_retries + 1 times


def test_a_delete_that_overruns_its_timeout_is_reported_and_cancelled():
    with FakeElasticsearch() as fake:
        idx = make_index(fake, delete_timeout=0.3)
        idx.upsert(make_chunks("wiki:a", ["one"]))
        fake.delete_polls_before_done = 10_000
        with pytest.raises(RuntimeError, match="delete_timeout"):
            idx.delete_documents(["wiki:a"])
        assert fake.calls("_tasks", "POST")  # the cancel


def test_version_conflicts_in_a_delete_task_are_reported_not_raised_as_409():
    with FakeElasticsearch() as fake:
        idx = make_index(fake)
        idx.upsert(make_chunks("wiki:a", ["one", "two"]))
        fake.delete_polls_before_done = 1
        real_start = fake._start_task

        def start_then_change(*args, **kwargs):  # another writer touches a chunk under the task
            out = real_start(*args, **kwargs)
            fake._index_doc(fake.indices[f"{ALIAS}-v000001"], "wiki:a#0",
                            dict(fake.indices[f"{ALIAS}-v000001"].docs["wiki:a#0"][1]), "index")
            return out

        fake._start_task = start_then_change
        with pytest.raises(RuntimeError, match="delete_by_query on .* failed: version_conflict_engine_exception"):
            idx.delete_documents(["wiki:a"])


# -- a copy that overruns reindex_timeout ----------------------------------------------------------
@pytest.mark.parametrize(("server", "can_cancel"), [
    (("9.1.0", "default", "basic"), False), (("9.1.0", "default", "basic"), True), (("8.11.0", SERVERLESS, None), False),
], indirect=["server"], ids=["no-cancel-privilege", "cancel_task-privilege", "serverless"])
def test_a_copy_that_overruns_cannot_recreate_the_index_it_was_writing(server, can_cancel):
    fake = server
    fake.can_cancel_tasks = can_cancel  # the documented key has monitor + all on orgbot-*, not cancel_task
    idx = make_index(fake, reindex_timeout=0.3)
    idx.upsert(make_chunks("other:a", ["Other source."], source="other"))
    fake.reindex_polls_before_done = 10_000
    with pytest.raises(ReindexError, match="reindex_timeout"):
        with idx.update(replace_source="wiki"):
            pytest.fail("the block must not run when the copy did not finish")
    fake.run_pending_tasks()  # the cluster gets to the copy after orgbot gave up on it
    assert set(fake.indices) == {f"{ALIAS}-v000001"}
    assert fake.alias_targets(ALIAS) == {f"{ALIAS}-v000001"}
    order = [(r.method, r.endpoint) for r in fake.requests]
    assert order.index(("PUT", "_settings")) < order.index(("DELETE", "index"))  # blocked, then deleted


# -- settings the transport would refuse -----------------------------------------------------------
def test_a_ca_certificate_with_an_http_url_says_to_use_https(tmp_path):
    ca = tmp_path / "http_ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    idx = ElasticsearchIndex(ElasticsearchSettings(url="http://127.0.0.1:9200", ca_certs=str(ca)), EMB.dim)
    with pytest.raises(IndexUnavailable, match=r"https://127\.0\.0\.1:9200.*ELASTICSEARCH_CA_CERTS"):
        idx.health()
    with pytest.raises(IndexUnavailable, match="^Search is unavailable: .*https://"):
        idx.search(q("vpn"), k=1)


def test_a_missing_ca_certificate_file_is_named():
    idx = ElasticsearchIndex(ElasticsearchSettings(url="https://127.0.0.1:9200", ca_certs="/nonexistent/ca.crt"),
                             EMB.dim)
    with pytest.raises(IndexUnavailable, match="/nonexistent/ca.crt, which does not exist"):
        idx.health()


def test_a_key_that_cannot_read_the_version_still_gets_exact_scores_and_no_version_guesses():
    with FakeElasticsearch(version="9.1.0") as fake:
        fake.fail("GET", r"^/$", 403, "security_exception", "action [cluster:monitor/main] is unauthorized", times=100)
        rng = np.random.default_rng(3)
        idx = make_index(fake, dim=DIM, vector_index_type="int4_hnsw")  # no version: no pre-check either
        chunks = dense_chunks(6, rng)
        idx.upsert(chunks)
        query = dataclasses.replace(q("vpn"), vector=rng.normal(size=DIM).astype(np.float32))
        by_id = {c.id: c.embedding for c in chunks}
        hits = idx.search(query, k=3, mode="vector")
        for h in hits:
            assert h.vector_score == pytest.approx(exact_cosine(by_id[h.chunk.id], query.vector), abs=1e-5)
        assert idx.health()["server_version"] == "unknown"
