"""The behaviour every `DocumentIndex` backend must have.

A backend's test module subclasses `IndexContract` and provides an `index` fixture that yields
a fresh, empty index (and cleans it up). Embeddings come from `HashingEmbedder` so results do not
depend on a model.
"""

from __future__ import annotations

import threading

import pytest

from retrieval.types import Chunk, Query
from tests.fakes.embedder import HashingEmbedder

EMB = HashingEmbedder(dim=64)


def make_chunks(doc_id: str, texts: list[str], *, source: str = "wiki", title: str | None = None,
                acl: tuple[str, ...] = (), content_hash: str = "h1") -> list[Chunk]:
    title = title or doc_id.split(":")[-1]
    chunks = [
        Chunk(id=f"{doc_id}#{i}", document_id=doc_id, source=source, title=title, heading=f"Section {i}",
              text=t, url=f"https://wiki.example/{doc_id}", position=i, content_hash=content_hash, acl=acl)
        for i, t in enumerate(texts)
    ]
    vecs = EMB.embed([c.embedding_text for c in chunks])
    from dataclasses import replace

    return [replace(c, embedding=v) for c, v in zip(chunks, vecs, strict=True)]


def q(text: str, **kw) -> Query:
    return Query(text=text, vector=EMB.embed_query(text), **kw)


def ids(results) -> list[str]:
    return [r.chunk.document_id for r in results]


class IndexContract:
    """Subclass and provide an `index` fixture."""

    def test_finds_a_document_by_its_words(self, index):
        index.upsert(make_chunks("wiki:vpn", ["Install the VPN client and sign in with AcmeID."]))
        index.upsert(make_chunks("wiki:lunch", ["The canteen serves lunch from noon until two."]))
        for mode in ("hybrid", "bm25", "vector"):
            results = index.search(q("how do I install the VPN client"), k=5, mode=mode)
            assert ids(results)[0] == "wiki:vpn", mode

    def test_results_carry_what_a_citation_needs(self, index):
        index.upsert(make_chunks("wiki:vpn", ["Install the VPN client."], title="VPN setup"))
        hit = index.search(q("VPN client"), k=1)[0]
        assert hit.chunk.title == "VPN setup"
        assert hit.chunk.url == "https://wiki.example/wiki:vpn"
        assert hit.chunk.heading == "Section 0"
        assert hit.chunk.text == "Install the VPN client."
        assert hit.score > 0

    def test_a_replaced_document_comes_back_marked_with_its_successor(self, index):
        from dataclasses import replace

        index.upsert(make_chunks("wiki:travel", ["Premium economy is allowed on flights over six hours."]))
        index.upsert([replace(c, superseded_by="wiki:travel") for c in
                      make_chunks("wiki:travel-2023", ["Premium economy is not permitted on any flight."])])
        index.upsert([replace(c, superseded_by="") for c in
                      make_chunks("wiki:travel-2019", ["Premium economy needs a director's approval."])])
        for mode in ("hybrid", "bm25", "vector"):
            marks = {h.chunk.document_id: h.chunk.superseded_by
                     for h in index.search(q("premium economy flights"), k=5, mode=mode)}
            assert marks == {"wiki:travel": None, "wiki:travel-2023": "wiki:travel", "wiki:travel-2019": ""}, mode

    def test_deleted_document_is_never_returned(self, index):
        index.upsert(make_chunks("wiki:old", ["Parking permits cost forty euros per month."]))
        index.upsert(make_chunks("wiki:other", ["Bicycles go in the basement."]))
        assert index.delete_documents(["wiki:old"]) == 1
        for mode in ("hybrid", "bm25", "vector"):
            assert "wiki:old" not in ids(index.search(q("parking permits cost"), k=10, mode=mode))
        assert index.document_ids("wiki") == {"wiki:other"}

    def test_upsert_replaces_all_chunks_of_a_document(self, index):
        index.upsert(make_chunks("wiki:doc", ["alpha one", "alpha two", "alpha three"]))
        index.upsert(make_chunks("wiki:doc", ["beta only"], content_hash="h2"))
        texts = [r.chunk.text for r in index.search(q("alpha beta"), k=10)]
        assert texts == ["beta only"]
        assert index.stats().chunks == 1
        assert index.document_hashes("wiki") == {"wiki:doc": "h2"}

    def test_source_filter_is_applied_inside_the_search(self, index):
        index.upsert(make_chunks("hr:leave", ["Parental leave is sixteen weeks."], source="hr"))
        for i in range(30):  # many better matches in another source must not crowd it out
            index.upsert(make_chunks(f"eng:leave{i}", ["parental leave parental leave weeks"], source="eng"))
        for mode in ("hybrid", "bm25", "vector"):
            results = index.search(q("parental leave weeks", sources=["hr"], candidates=5), k=3, mode=mode)
            assert ids(results) == ["hr:leave"], mode

    def test_private_documents_are_only_seen_by_their_principals(self, index):
        index.upsert(make_chunks("wiki:salaries", ["Salary bands for engineers."], acl=("C_PRIVATE", "U_BOSS")))
        index.upsert(make_chunks("wiki:public", ["Engineers onboarding guide."]))
        for mode in ("hybrid", "bm25", "vector"):
            public = ids(index.search(q("salary bands engineers", principals=["C_GENERAL"]), k=10, mode=mode))
            assert "wiki:salaries" not in public, mode
            assert "wiki:public" in public, mode
            allowed = ids(index.search(q("salary bands engineers", principals=["U_BOSS"]), k=10, mode=mode))
            assert "wiki:salaries" in allowed, mode
        trusted = ids(index.search(q("salary bands engineers"), k=10))
        assert "wiki:salaries" in trusted

    def test_acl_filter_is_applied_inside_the_search(self, index):
        index.upsert(make_chunks("wiki:leave", ["Parental leave is sixteen weeks."]))
        for i in range(30):  # many better matches the asker may not see must not crowd out the one they may
            index.upsert(make_chunks(f"hr:leave{i}", ["parental leave parental leave weeks"], acl=("group:hr",)))
        for mode in ("hybrid", "bm25", "vector"):
            results = index.search(q("parental leave weeks", principals=["U1", "slack:U1"], candidates=5), k=3,
                                   mode=mode)
            assert ids(results) == ["wiki:leave"], mode

    def test_any_one_of_the_askers_principals_opens_a_document(self, index):
        index.upsert(make_chunks("wiki:budget", ["Budget figures for the finance team."],
                                 acl=("group:finance", "alice@example.com")))
        for principals in (["U1", "slack:U1", "group:finance"], ["U2", "alice@example.com"]):
            assert ids(index.search(q("budget figures finance", principals=principals), k=5)) == ["wiki:budget"]
        for principals in ([], ["U3", "slack:U3", "group:hr", "slack-group:finance", "group:finance2"]):
            assert ids(index.search(q("budget figures finance", principals=principals), k=5)) == [], principals

    def test_a_tightened_acl_takes_effect_when_the_document_is_written_again(self, index):
        index.upsert(make_chunks("wiki:plan", ["Reorganisation plan for the robotics division."]))
        assert ids(index.search(q("reorganisation plan robotics", principals=[]), k=5)) == ["wiki:plan"]
        index.upsert(make_chunks("wiki:plan", ["Reorganisation plan for the robotics division."],
                                 acl=("group:leads",), content_hash="h2"))
        for mode in ("hybrid", "bm25", "vector"):
            assert ids(index.search(q("reorganisation plan robotics", principals=["U1"]), k=5, mode=mode)) == []
            assert ids(index.search(q("reorganisation plan robotics", principals=["group:leads"]), k=5,
                                    mode=mode)) == ["wiki:plan"]

    def test_stats_and_document_ids_per_source(self, index):
        index.upsert(make_chunks("a:1", ["one", "two"], source="a"))
        index.upsert(make_chunks("b:1", ["three"], source="b"))
        stats = index.stats()
        assert (stats.documents, stats.chunks) == (2, 3)
        assert stats.per_source == {"a": (1, 2), "b": (1, 1)}
        assert index.document_ids("a") == {"a:1"}

    def test_failed_update_keeps_the_previous_data(self, index):
        index.upsert(make_chunks("wiki:keep", ["The office opens at eight."]))
        with pytest.raises(RuntimeError):
            with index.update(replace_source="wiki"):
                index.upsert(make_chunks("wiki:new", ["Half-written rebuild."]))
                raise RuntimeError("wiki timed out")
        assert index.document_ids("wiki") == {"wiki:keep"}
        assert ids(index.search(q("office opens"), k=5)) == ["wiki:keep"]

    def test_full_rebuild_replaces_a_source_atomically(self, index):
        index.upsert(make_chunks("wiki:gone", ["Old page about fax machines."]))
        index.upsert(make_chunks("other:stay", ["Another source survives."], source="other"))
        with index.update(replace_source="wiki"):
            index.upsert(make_chunks("wiki:new", ["New page about printers."]))
        assert index.document_ids("wiki") == {"wiki:new"}
        assert index.document_ids("other") == {"other:stay"}

    def test_readers_see_old_data_until_an_update_completes(self, index):
        index.upsert(make_chunks("wiki:v1", ["Version one of the handbook."]))
        seen_during: list[list[str]] = []
        inside, release = threading.Event(), threading.Event()

        def writer():
            with index.update(replace_source="wiki"):
                index.upsert(make_chunks("wiki:v2", ["Version two of the handbook."]))
                inside.set()
                release.wait(10)

        t = threading.Thread(target=writer)
        t.start()
        assert inside.wait(10)
        seen_during.append(ids(index.search(q("handbook version"), k=5)))
        release.set()
        t.join(10)
        assert seen_during == [["wiki:v1"]]
        assert ids(index.search(q("handbook version"), k=5)) == ["wiki:v2"]

    def test_punctuation_and_query_syntax_in_questions_are_harmless(self, index):
        index.upsert(make_chunks("wiki:vpn", ["VPN setup steps."]))
        for text in ['"VPN', "vpn AND OR NOT (", "vpn* -setup NEAR(x)", "???", "", "ü€漢字"]:
            index.search(q(text), k=3)  # must not raise

    def test_chunks_come_back_by_id_as_written_and_only_while_indexed(self, index):
        from retrieval.index import ChunkLookup, chunk_id

        assert isinstance(index, ChunkLookup)
        index.upsert(make_chunks("wiki:vpn", ["Install the client.", "Then sign in.", "Ask #it-help."],
                                 acl=("group:staff",)))
        got = {c.id: c for c in index.chunks([chunk_id("wiki:vpn", 2), chunk_id("wiki:vpn", 0), "wiki:none#0"])}
        assert sorted(got) == ["wiki:vpn#0", "wiki:vpn#2"]
        first = got["wiki:vpn#0"]
        assert (first.text, first.heading, first.position, first.acl) == (
            "Install the client.", "Section 0", 0, ("group:staff",))
        index.upsert(make_chunks("wiki:vpn", ["Install the new client."]))
        assert [c.text for c in index.chunks(["wiki:vpn#0", "wiki:vpn#2"])] == ["Install the new client."]
        index.delete_documents(["wiki:vpn"])
        assert index.chunks(["wiki:vpn#0"]) == []
        assert index.chunks([]) == []

    def test_empty_index_returns_nothing(self, index):
        assert index.search(q("anything"), k=5) == []
        assert index.stats().chunks == 0

    def test_a_short_section_outranks_one_chunk_of_a_long_chapter_that_looks_closer(self, index):
        # A 30-chunk chapter with one chunk at cosine 0.80 to the question, and a one-chunk section at 0.75.
        # Ranked by cosine − 0.02 × ln(section size): 0.80 − 0.068 < 0.75, so the short section comes first.
        import dataclasses

        import numpy as np

        def unit(cos: float) -> np.ndarray:
            v = np.zeros(EMB.dim, dtype=np.float32)
            v[0], v[1] = cos, (1 - cos * cos) ** 0.5
            return v

        long = [dataclasses.replace(c, heading="Reference", embedding=unit(0.80 if c.position == 7 else 0.2))
                for c in make_chunks("wiki:manual", [f"part {i}" for i in range(30)])]
        short = [dataclasses.replace(c, heading="How do I reset it?", embedding=unit(0.75))
                 for c in make_chunks("wiki:faq", ["press the button"])]
        index.upsert(long + short)
        question = Query("reset", np.eye(EMB.dim, dtype=np.float32)[0])
        index.section_penalty = 0.02
        for mode in ("vector", "hybrid"):
            hits = index.search(question, 2, mode=mode)
            assert ids(hits) == ["wiki:faq", "wiki:manual"], mode
            # Ranked with the penalty; the similarity thresholds read the cosine itself.
            assert [round(h.vector_score, 2) for h in hits] == [0.75, 0.8], mode
        index.section_penalty = 0.0
        assert ids(index.search(question, 1, mode="vector")) == ["wiki:manual"]
