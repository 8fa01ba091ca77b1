"""The index contract on Elasticsearch: against a live cluster when ELASTICSEARCH_URL is set, and
always against the fake server in tests/fakes (real client, real HTTP, simplified scoring)."""

from __future__ import annotations

import os
import uuid

import pytest

from retrieval.config import ElasticsearchSettings
from retrieval.elasticsearch import ElasticsearchIndex
from tests.contract.index_contract import EMB, IndexContract
from tests.fakes.fake_elasticsearch import FakeElasticsearch

LIVE_URL = os.environ.get("ELASTICSEARCH_URL")


def unique_alias() -> str:
    return f"orgbot-test-{uuid.uuid4().hex[:10]}"


class TestElasticsearchIndexOnFake(IndexContract):
    @pytest.fixture
    def index(self):
        with FakeElasticsearch() as fake:
            idx = ElasticsearchIndex(ElasticsearchSettings(url=fake.url, index_alias=unique_alias()), EMB.dim)
            yield idx
            idx.close()


@pytest.mark.elasticsearch
@pytest.mark.skipif(not LIVE_URL, reason="set ELASTICSEARCH_URL to run the Elasticsearch contract tests against a "
                                         "live cluster")
class TestElasticsearchIndexLive(IndexContract):
    @pytest.fixture
    def index(self):
        settings = ElasticsearchSettings(
            url=LIVE_URL,
            api_key=os.environ.get("ELASTICSEARCH_API_KEY") or None,
            username=os.environ.get("ELASTICSEARCH_USERNAME") or None,
            password=os.environ.get("ELASTICSEARCH_PASSWORD") or None,
            ca_certs=os.environ.get("ELASTICSEARCH_CA_CERTS") or None,
            index_alias=unique_alias(),  # each test on its own alias and indices
            replicas=0,
            vector_index_type="hnsw",  # exact enough for a handful of vectors on any 8.x
        )
        idx = ElasticsearchIndex(settings, EMB.dim)
        yield idx
        client = idx.client
        found = client.indices.get_alias(index=f"{settings.index_alias}-v*", ignore_unavailable=True)
        for name in found:  # by name: clusters refuse wildcard deletes
            client.indices.delete(index=name, ignore_unavailable=True)
        idx.close()
