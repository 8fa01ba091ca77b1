import pytest

from retrieval.sqlite_index import EmbeddedIndex, fts_query
from tests.contract.index_contract import IndexContract, make_chunks, q


class TestEmbeddedIndex(IndexContract):
    @pytest.fixture
    def index(self, tmp_path):
        idx = EmbeddedIndex(tmp_path / "index.db")
        yield idx
        idx.close()


def test_index_survives_reopening(tmp_path):
    idx = EmbeddedIndex(tmp_path / "index.db")
    idx.upsert(make_chunks("wiki:vpn", ["Install the VPN client."]))
    idx.close()
    again = EmbeddedIndex(tmp_path / "index.db", create=False)
    assert again.search(q("VPN client"), k=1)[0].chunk.document_id == "wiki:vpn"


def test_missing_index_says_how_to_build_it(tmp_path):
    from retrieval.index import IndexUnavailable

    with pytest.raises(IndexUnavailable, match="orgbot index"):
        EmbeddedIndex(tmp_path / "nope.db", create=False)


def test_changing_embedding_size_asks_for_a_full_rebuild(tmp_path):
    import dataclasses

    import numpy as np

    idx = EmbeddedIndex(tmp_path / "index.db")
    idx.upsert(make_chunks("wiki:a", ["text"]))
    other = [dataclasses.replace(c, embedding=np.ones(32, dtype=np.float32)) for c in make_chunks("wiki:b", ["x"])]
    with pytest.raises(ValueError, match="orgbot index --full"):
        idx.upsert(other)


def test_fts_query_quotes_every_word():
    assert fts_query('how do I "reset" my VPN-token?') == '"reset" OR "vpn" OR "token"'
    assert fts_query("?!") is None
