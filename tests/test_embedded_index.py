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


def _big_index(path, post_filter=True, max_df=None):
    """1,200 chunks: every one says 'policy', a few say 'kayak'; a third are for group:hr only."""
    idx = EmbeddedIndex(path, max_df=max_df, post_filter=post_filter)
    with idx.update():
        for i in range(1200):
            words = "policy office notes" + (" kayak storage rules" if i % 97 == 0 else f" topic{i % 50}")
            idx.upsert(make_chunks(f"wiki:p{i}", [f"{words} page {i}"], acl=("group:hr",) if i % 3 == 0 else ()))
    return idx


def test_an_acl_filter_applied_after_ranking_returns_what_the_filter_in_sql_returns(tmp_path):
    fast = _big_index(tmp_path / "i.db")
    slow = EmbeddedIndex(tmp_path / "i.db", post_filter=False)
    for principals in (["user:U1"], ["user:U1", "group:hr"], []):
        for text in ("kayak storage policy", "topic7 notes", "office"):
            for mode in ("bm25", "hybrid"):
                query = q(text, principals=principals, candidates=20)
                got, want = fast.search(query, 10, mode=mode), slow.search(query, 10, mode=mode)
                assert [r.chunk.id for r in got] == [r.chunk.id for r in want], (principals, text, mode)
                if "group:hr" not in principals:
                    assert all(not r.chunk.acl for r in got)  # nothing the asker may not read


def test_words_in_most_chunks_are_left_out_of_the_keyword_query(tmp_path):
    idx = _big_index(tmp_path / "i.db", max_df=0.2)
    assert idx._keyword_words("policy for kayak storage") == ["kayak", "storage"]
    assert idx._keyword_words("office policy") in (["office"], ["policy"])  # all common: the rarest one stays
    top = idx.search(q("policy kayak"), 5, mode="bm25")
    assert top and all("kayak" in r.chunk.text for r in top)
