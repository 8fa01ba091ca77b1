import pytest

from retrieval.sqlite_index import EmbeddedIndex, fts_query
from tests.contract.index_contract import IndexContract, make_chunks, q


class TestEmbeddedIndex(IndexContract):
    @pytest.fixture
    def index(self, tmp_path):
        idx = EmbeddedIndex(tmp_path / "index.db")
        yield idx
        idx.close()


class TestEmbeddedIndexWithFTS5Only(IndexContract):
    """The fallback keyword engine (no Tantivy copy) keeps the same contract."""

    @pytest.fixture
    def index(self, tmp_path):
        idx = EmbeddedIndex(tmp_path / "index.db", keyword_engine="fts5")
        yield idx
        idx.close()


def test_index_survives_reopening(tmp_path):
    idx = EmbeddedIndex(tmp_path / "index.db")
    idx.upsert(make_chunks("wiki:vpn", ["Install the VPN client."]))
    idx.close()
    again = EmbeddedIndex(tmp_path / "index.db", create=False)
    assert again.search(q("VPN client"), k=1)[0].chunk.document_id == "wiki:vpn"


def test_an_index_from_before_replaced_documents_were_marked_opens_and_marks_them(tmp_path):
    # An index an older orgbot wrote: no superseded_by column. It keeps serving, and takes the mark on writes.
    import sqlite3
    from dataclasses import replace

    idx = EmbeddedIndex(tmp_path / "index.db")
    idx.upsert(make_chunks("wiki:vpn", ["Install the VPN client."]))
    idx.close()
    with sqlite3.connect(tmp_path / "index.db") as conn:
        conn.execute("ALTER TABLE chunks DROP COLUMN superseded_by")
    again = EmbeddedIndex(tmp_path / "index.db", create=False)
    assert again.search(q("VPN client"), k=1)[0].chunk.superseded_by is None
    again.upsert([replace(c, superseded_by="wiki:vpn") for c in make_chunks("wiki:vpn-2023", ["The old VPN client."])])
    assert {h.chunk.document_id: h.chunk.superseded_by for h in again.search(q("old VPN client"), k=2)} == \
        {"wiki:vpn": None, "wiki:vpn-2023": "wiki:vpn"}
    again.close()


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


def _keyword_hits(idx, text, **kw):
    return [r.chunk.document_id for r in idx.search(q(text, **kw), 5, mode="bm25")]


def test_the_keyword_copy_serves_only_the_generation_being_read_and_catches_up(tmp_path):
    idx = EmbeddedIndex(tmp_path / "i.db")
    for i in range(6):  # enough unchanged pages that catching up replays the log instead of rebuilding
        idx.upsert(make_chunks(f"wiki:p{i}", [f"Office notes, topic {i}."]))
    idx.upsert(make_chunks("wiki:kayak", ["Kayak storage rules for the boathouse."]))
    assert idx._keyword_copy() is not None  # caught up after the commit: Tantivy serves
    assert idx.keyword_engine_state().startswith("Tantivy copy, current")
    assert _keyword_hits(idx, "kayak boathouse") == ["wiki:kayak"]
    # A copy that is behind (an update committed, its catch-up lost: a crash) is never read: FTS5 answers,
    # the deleted page stays gone, and the next catch-up replays the log.
    caught_up = idx.catch_up_keywords
    idx.catch_up_keywords = lambda: False
    with idx.update():
        idx.delete_documents(["wiki:kayak"])
        idx.upsert(make_chunks("wiki:canoe", ["Canoe storage rules for the boathouse."]))
    idx.catch_up_keywords = caught_up
    keywords = idx._keywords
    assert idx._keyword_copy() is None and idx.keyword_engine_state().startswith("FTS5: the Tantivy copy is behind")
    assert _keyword_hits(idx, "storage boathouse") == ["wiki:canoe"]
    assert keywords.search(["kayak"], 5)  # Tantivy still has it: behind
    assert idx.catch_up_keywords() and idx._keyword_copy() is not None
    assert _keyword_hits(idx, "storage boathouse") == ["wiki:canoe"]  # the replay removed kayak from Tantivy
    assert keywords.search(["kayak"], 5) == []


def test_a_missing_keyword_copy_is_rebuilt_and_another_process_sees_new_writes(tmp_path):
    writer = EmbeddedIndex(tmp_path / "i.db")
    writer.upsert(make_chunks("wiki:vpn", ["Install the VPN client before travelling."]))
    writer._keywords.reset()  # e.g. deleted by hand, or an index built before the copy existed
    reader = EmbeddedIndex(tmp_path / "i.db", create=False)
    assert _keyword_hits(reader, "vpn client") == ["wiki:vpn"]  # FTS5 meanwhile
    writer.upsert(make_chunks("wiki:mfa", ["Set up MFA on the VPN client."]))  # rebuilds from SQLite
    assert reader._keyword_copy() is not None
    assert sorted(_keyword_hits(reader, "vpn client")) == ["wiki:mfa", "wiki:vpn"]
    writer.delete_documents(["wiki:vpn"])
    assert _keyword_hits(reader, "vpn client") == ["wiki:mfa"]  # the reader reloads the new commit


def test_an_unreadable_keyword_copy_is_rebuilt_from_sqlite(tmp_path):
    idx = EmbeddedIndex(tmp_path / "i.db")
    idx.upsert(make_chunks("wiki:vpn", ["Install the VPN client before travelling."]))
    for f in idx._keywords.path.iterdir():  # e.g. a disk error, or a copy from another version
        f.write_bytes(b"not a tantivy file")
    again = EmbeddedIndex(tmp_path / "i.db", create=False)
    again.upsert(make_chunks("wiki:mfa", ["Set up MFA on the VPN client."]))  # catch-up fails: FTS5 serves
    assert again._keyword_copy() is None
    assert sorted(_keyword_hits(again, "vpn client")) == ["wiki:mfa", "wiki:vpn"]
    assert again.catch_up_keywords() and again._keyword_copy() is not None  # rebuilt from SQLite
    assert sorted(_keyword_hits(again, "vpn client")) == ["wiki:mfa", "wiki:vpn"]


def test_a_copy_another_process_is_writing_is_left_alone(tmp_path):
    import tantivy

    idx = EmbeddedIndex(tmp_path / "i.db")
    idx.upsert(make_chunks("wiki:vpn", ["Install the VPN client before travelling."]))
    other = tantivy.Index(idx._keywords.schema, path=str(idx._keywords.path))
    held = other.writer(heap_size=15_000_000, num_threads=1)  # e.g. `orgbot index` in another process
    idx.upsert(make_chunks("wiki:mfa", ["Set up MFA on the VPN client."]))  # cannot catch up: FTS5 serves
    assert idx._keywords.exists() and idx._keyword_copy() is None
    assert sorted(_keyword_hits(idx, "vpn client")) == ["wiki:mfa", "wiki:vpn"]
    held.rollback()
    del held
    assert idx.catch_up_keywords() and sorted(_keyword_hits(idx, "vpn client")) == ["wiki:mfa", "wiki:vpn"]
