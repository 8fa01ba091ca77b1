"""The MediaWiki connector against a real MediaWiki 1.39 (SQLite, `php -S` on loopback).

One private wiki per test session; each test works on its own pages so the order does not matter.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.answering import Answerer
from bot.runtime import SyncRunner
from bot.settings import Settings, SourceSettings
from connectors.base import ConnectorFailure, Deletion, SourceDocument
from connectors.mediawiki import MediaWikiConnector
from retrieval.indexer import Indexer
from retrieval.sqlite_index import EmbeddedIndex
from retrieval.types import Query
from tests.fakes.embedder import HashingEmbedder
from tests.fakes.generator import ScriptedGenerator
from tests.fakes.mediawiki_server import MediaWikiServer, mediawiki_missing

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(mediawiki_missing() is not None, reason=f"no real MediaWiki: {mediawiki_missing()}")]


@pytest.fixture(scope="session")
def wiki(tmp_path_factory):
    server = MediaWikiServer(tmp_path_factory.mktemp("mediawiki")).start()
    yield server
    server.stop()


@pytest.fixture
def creds(wiki, monkeypatch):
    monkeypatch.setenv("MEDIAWIKI_USER", wiki.bot_user)
    monkeypatch.setenv("MEDIAWIKI_PASSWORD", wiki.bot_password)


def connector(wiki, **kw) -> MediaWikiConnector:
    kw.setdefault("username", wiki.bot_user)
    kw.setdefault("password", wiki.bot_password)
    return MediaWikiConnector("wiki", kw.pop("url", wiki.url), attempts=2, backoff_s=0.01, **kw)


def read(items) -> tuple[dict[str, SourceDocument], list[ConnectorFailure], list[Deletion]]:
    docs, failures, deletions = {}, [], []
    for batch in items:
        for item in batch:
            if isinstance(item, SourceDocument):
                docs[item.title] = item
            elif isinstance(item, ConnectorFailure):
                failures.append(item)
            else:
                deletions.append(item)
    return docs, failures, deletions


def cite_first(messages) -> str:
    return "Hi there! Here is what the wiki says [1]."


def test_answers_follow_edits_deletions_and_moves(wiki, creds, tmp_path):
    wiki.edit("Badge Office", "== Opening hours ==\nThe badge office opens at 8am in building C.")
    wiki.edit("Coffee Machine", "== Descaling ==\nDescale the coffee machine every Friday with Citrox tablets.")
    wiki.edit("Bike Storage", "== Where ==\nBikes go in the cage under the north ramp, code 4711.")
    settings = Settings(data_dir=str(tmp_path / "data"),
                        sources={"wiki": SourceSettings(type="mediawiki", url=wiki.url)})
    embedder = HashingEmbedder()
    runner = SyncRunner(settings, embedder=embedder)
    first = runner.sync_sources(["wiki"])[0]
    assert first.ok and first.mode == "load", first.error
    gen = ScriptedGenerator(cite_first)
    answerer = Answerer(runner.index, embedder, gen, top_k=3, min_similarity=0.1, few_shot=False)
    ans = answerer.answer("when does the badge office open?")
    assert ans.citations[0].title == "Badge Office"
    assert ans.citations[0].url == f"{wiki.url}/index.php/Badge_Office"
    assert ans.citations[0].heading == "Opening hours"

    wiki.edit("Badge Office", "== Opening hours ==\nThe badge office now opens at 7:30am in building D.")
    wiki.delete("Coffee Machine")
    wiki.move("Bike Storage", "Bicycle Parking")
    embedded_before = embedder.texts_embedded
    second = runner.sync_sources(["wiki"])[0]
    assert second.ok and second.mode == "incremental", second.error
    assert second.documents_deleted == 2  # the deleted page and the moved page's old title
    # only what changed was read and embedded again: the edit and the move target
    assert embedder.texts_embedded - embedded_before == 2

    ans = answerer.answer("when does the badge office open?")
    assert "7:30am" in gen.prompts[-1][-1]["content"] and "8am" not in gen.prompts[-1][-1]["content"]
    assert ans.citations[0].title == "Badge Office"
    ans = answerer.answer("how do I descale the coffee machine with Citrox?")
    assert all(c.document_id != "wiki:Coffee Machine" for c in ans.citations)
    assert all(p.chunk.document_id != "wiki:Coffee Machine" for p in ans.passages)
    ans = answerer.answer("where do bikes go, cage code?")
    assert ans.citations[0].title == "Bicycle Parking"
    assert ans.citations[0].url.endswith("/index.php/Bicycle_Parking")
    assert "wiki:Bike Storage" not in runner.index.document_ids("wiki")

    state = runner.state.source_state("wiki")
    assert state.checkpoint and state.last_success_at and state.last_error is None


def test_headings_become_sections_and_wiki_chrome_is_dropped(wiki):
    wiki.edit("Travel Policy", "Book through Navan.\n== Flights ==\nEconomy under 6 hours.\n"
                               "=== Upgrades ===\nBusiness class above 6 hours.\n== Hotels ==\nUp to 180 EUR a night.")
    docs, failures, _ = read(connector(wiki).fetch({"wiki:Travel Policy"}))
    assert not failures
    doc = docs["Travel Policy"]
    assert [(s.heading, s.text) for s in doc.sections] == [
        ("", "Book through Navan."), ("Flights", "Economy under 6 hours."),
        ("Flights › Upgrades", "Business class above 6 hours."), ("Hotels", "Up to 180 EUR a night.")]
    assert "[edit]" not in doc.text
    assert doc.updated_at is not None and doc.metadata["revision"]


def test_the_api_php_url_works_too_and_namespaces_carry_their_acl(wiki):
    wiki.edit("HR:Salary Bands", "== Bands ==\nBand 3 is 60-75k.")
    c = connector(wiki, url=f"{wiki.url}/api.php", namespaces=[0, "HR"], namespace_acl={"HR": ["group:hr"]})
    docs, failures, _ = read(c.load())
    assert docs["HR:Salary Bands"].acl == ("group:hr",)
    assert docs["HR:Salary Bands"].url == f"{wiki.url}/index.php/HR:Salary_Bands"
    assert docs["Main Page"].acl == ()
    assert "wiki:HR:Salary Bands" in c.list_ids()
    # without HR in the namespaces, the page is not part of the source
    assert "wiki:HR:Salary Bands" not in connector(wiki).list_ids()


def test_a_page_over_the_size_limit_is_a_recorded_failure_and_the_rest_syncs(wiki, tmp_path):
    wiki.edit("Huge Export", "== Dump ==\n" + "lorem ipsum dolor " * 2000)
    wiki.edit("Small Page", "== Note ==\nSmall pages still sync.")
    index = EmbeddedIndex(tmp_path / "i.db")
    report = Indexer(index, HashingEmbedder()).sync(connector(wiki, max_page_bytes=20_000))
    assert report.ok
    failure = next(f for f in report.failures if f.item == "Huge Export")
    assert "over the 0.02 MB limit" in failure.reason and "max_page_mb" in failure.reason
    assert "wiki:Small Page" in index.document_ids("wiki")


def test_private_wiki_without_or_with_wrong_credentials_says_how_to_fix_and_keeps_the_index(wiki, tmp_path):
    index = EmbeddedIndex(tmp_path / "i.db")
    indexer = Indexer(index, HashingEmbedder())
    assert indexer.sync(connector(wiki)).ok
    before = index.stats().documents

    anonymous = indexer.sync(MediaWikiConnector("wiki", wiki.url, credentials_hint="WIKI_USER and WIKI_PASS"))
    assert "needs a login" in anonymous.error and "WIKI_USER and WIKI_PASS" in anonymous.error
    expired = indexer.sync(connector(wiki, password="expired-or-revoked"))
    assert "login" in expired.error and "failed" in expired.error and "previous data" in expired.error
    assert index.stats().documents == before


def test_an_unreachable_wiki_is_an_error_and_the_previous_index_keeps_serving(wiki, tmp_path):
    index = EmbeddedIndex(tmp_path / "i.db")
    indexer = Indexer(index, HashingEmbedder())
    assert indexer.sync(connector(wiki)).ok
    before = index.stats().documents
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    report = indexer.sync(connector(wiki, url=dead))
    assert "cannot reach" in report.error and "previous data" in report.error
    assert index.stats().documents == before


def test_poll_looks_back_an_overlap_window_and_reports_deleted_titles(wiki):
    wiki.edit("Overlap Page", "== A ==\nFirst version.")
    c = connector(wiki, overlap=timedelta(minutes=5))
    mark = c.checkpoint()
    docs, _, deletions = read(c.poll(mark, mark))  # an edit just before the mark is in the window
    assert "Overlap Page" in docs
    wiki.delete("Overlap Page")
    docs, _, deletions = read(c.poll(mark, c.checkpoint()))
    assert "Overlap Page" not in docs
    assert "wiki:Overlap Page" in {d.document_id for d in deletions}


def test_a_wiki_that_goes_down_mid_sync_changes_nothing_and_the_next_sync_resumes(wiki, tmp_path):
    wiki.edit("Resume Alpha", "== Rule ==\nAlpha rule version one.")
    wiki.edit("Resume Beta", "== Rule ==\nBeta rule version one.")
    runner = SyncRunner(Settings(data_dir=str(tmp_path / "data")), embedder=HashingEmbedder())
    assert runner.sync(connector(wiki)).ok
    checkpoint = runner.state.checkpoint("wiki")
    wiki.edit("Resume Alpha", "== Rule ==\nAlpha rule version two.")
    wiki.edit("Resume Beta", "== Rule ==\nBeta rule version two.")

    def texts() -> str:
        q = "alpha beta rule version"
        hits = runner.index.search(Query(q, runner.embedder.embed_query(q)), k=20)
        return " ".join(r.chunk.text for r in hits if r.chunk.document_id in ("wiki:Resume Alpha", "wiki:Resume Beta"))

    def go_down(done, total):
        if done >= 1 and wiki._proc is not None:
            wiki.suspend()

    try:
        failed = runner.sync(connector(wiki, batch_size=1), progress=go_down)
    finally:
        wiki.resume()
    assert not failed.ok and "cannot reach" in failed.error
    assert runner.state.checkpoint("wiki") == checkpoint
    assert "version one" in texts() and "version two" not in texts()  # all or nothing
    resumed = runner.sync(connector(wiki))
    assert resumed.ok and resumed.mode == "incremental"
    assert "Alpha rule version two" in texts() and "Beta rule version two" in texts()
