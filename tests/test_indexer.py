from pathlib import Path

import pytest

from connectors.base import ConnectorFailure, Deletion, Section, SourceDocument
from connectors.files import FilesConnector
from retrieval.indexer import Indexer
from retrieval.sqlite_index import EmbeddedIndex
from retrieval.types import Query
from tests.fakes.embedder import HashingEmbedder


@pytest.fixture
def wiki(tmp_path: Path) -> Path:
    root = tmp_path / "wiki"
    root.mkdir()
    (root / "vpn.md").write_text("# VPN\n## Install\nImport the acme-vpn profile and sign in with AcmeID.")
    (root / "leave.md").write_text("# Leave\n## Allowance\nEvery Acmer gets 27 Recharge Days a year.")
    (root / "parking.md").write_text("# Parking\nLot B is free for staff.")
    return root


@pytest.fixture
def setup(tmp_path):
    emb = HashingEmbedder()
    index = EmbeddedIndex(tmp_path / "index.db")
    return Indexer(index, emb), index, emb


def top(index, emb, text):
    return [r.chunk.document_id for r in index.search(Query(text, emb.embed_query(text)), k=3)]


def test_sync_indexes_every_document_and_finds_it(wiki, setup):
    indexer, index, emb = setup
    report = indexer.sync(FilesConnector("wiki", wiki))
    assert report.ok and report.documents_indexed == 3 and report.chunks_written == 3
    assert top(index, emb, "how many recharge days")[0] == "wiki:leave.md"


def test_unchanged_documents_are_not_embedded_again(wiki, setup):
    indexer, index, emb = setup
    indexer.sync(FilesConnector("wiki", wiki))
    before = emb.texts_embedded
    (wiki / "vpn.md").write_text("# VPN\n## Install\nUse the new WireGuard profile acme-wg.")
    report = indexer.sync(FilesConnector("wiki", wiki))
    assert (report.documents_indexed, report.documents_unchanged) == (1, 2)
    assert emb.texts_embedded - before == 1
    assert "WireGuard" in index.search(Query("wireguard", emb.embed_query("wireguard")), k=1)[0].chunk.text


def test_deleted_files_disappear_from_answers(wiki, setup):
    indexer, index, emb = setup
    indexer.sync(FilesConnector("wiki", wiki))
    (wiki / "parking.md").unlink()
    report = indexer.sync(FilesConnector("wiki", wiki))
    assert report.documents_deleted == 1
    assert "wiki:parking.md" not in top(index, emb, "parking lot B")


def test_a_file_that_breaks_keeps_its_previous_version(wiki, setup):
    indexer, index, emb = setup
    indexer.sync(FilesConnector("wiki", wiki))
    (wiki / "leave.md").write_bytes(b"\x00\x00 corrupted")
    report = indexer.sync(FilesConnector("wiki", wiki))
    assert len(report.failures) == 1 and "binary" in report.failures[0].reason
    assert top(index, emb, "recharge days")[0] == "wiki:leave.md"


def test_a_source_that_fails_midway_changes_nothing(wiki, setup):
    indexer, index, emb = setup
    indexer.sync(FilesConnector("wiki", wiki))

    class Flaky(FilesConnector):
        def load(self):
            batches = super().load()
            yield next(batches)
            raise TimeoutError("wiki timed out")

    (wiki / "vpn.md").write_text("# VPN\nHalf-synced new text.")
    report = indexer.sync(Flaky("wiki", wiki, batch_size=1))
    assert not report.ok and "TimeoutError" in report.error and "previous data" in report.error
    assert index.stats().documents == 3
    assert "AcmeID" in index.search(Query("vpn", emb.embed_query("vpn")), k=1)[0].chunk.text


def test_full_rebuild_re_embeds_everything(wiki, setup):
    indexer, index, emb = setup
    indexer.sync(FilesConnector("wiki", wiki))
    before = emb.texts_embedded
    report = indexer.sync(FilesConnector("wiki", wiki), full=True)
    assert report.documents_indexed == 3 and emb.texts_embedded - before == 3
    assert index.stats().documents == 3


# -- incremental syncs from a checkpoint -------------------------------------------------------------

class ChangingWiki:
    """A source that can poll (checkpoint = a change counter), list ids and fetch by id."""

    def __init__(self, name: str = "wiki"):
        self.name = name
        self.clock = 0
        self.pages: dict[str, tuple[str, int]] = {}  # id -> (text, changed at)
        self.deleted: dict[str, int] = {}
        self.broken: set[str] = set()
        self.fail_after_batches: int | None = None
        self.forget_deletions = False

    def put(self, page: str, text: str):
        self.clock += 1
        self.pages[f"{self.name}:{page}"] = (text, self.clock)
        self.deleted.pop(f"{self.name}:{page}", None)

    def delete(self, page: str):
        self.clock += 1
        self.pages.pop(f"{self.name}:{page}")
        if not self.forget_deletions:
            self.deleted[f"{self.name}:{page}"] = self.clock

    def doc(self, doc_id: str):
        if doc_id in self.broken:
            return ConnectorFailure(self.name, doc_id, "the wiki could not render it", document_id=doc_id)
        text, _ = self.pages[doc_id]
        title = doc_id.split(":", 1)[1]
        return SourceDocument(doc_id, self.name, title, f"https://wiki/{title}", (Section(title, text),))

    def checkpoint(self) -> str:
        return str(self.clock)

    def _batches(self, items):
        for n, item in enumerate(items):
            if self.fail_after_batches is not None and n >= self.fail_after_batches:
                raise TimeoutError("the wiki stopped answering")
            yield [item]

    def load(self):
        yield from self._batches([self.doc(i) for i in sorted(self.pages)])

    def poll(self, since: str, until: str):
        changed = [self.doc(i) for i, (_, at) in sorted(self.pages.items()) if at > int(since)]
        gone = [Deletion(self.name, i) for i, at in self.deleted.items() if at > int(since)]
        yield from self._batches(gone + changed)

    def list_ids(self) -> set[str]:
        return set(self.pages)

    def fetch(self, ids):
        yield from self._batches([self.doc(i) if i in self.pages else Deletion(self.name, i) for i in sorted(ids)])


@pytest.fixture
def runner(tmp_path):
    from bot.runtime import SyncRunner
    from bot.settings import Settings

    return SyncRunner(Settings(data_dir=str(tmp_path / "data")), embedder=HashingEmbedder())


def seeded() -> ChangingWiki:
    w = ChangingWiki()
    w.put("vpn", "Import the acme-vpn profile and sign in with AcmeID.")
    w.put("leave", "Every Acmer gets 27 Recharge Days a year.")
    w.put("parking", "Lot B is free for staff.")
    return w


def texts(runner) -> dict[str, str]:
    idx, emb = runner.index, runner.embedder
    return {r.chunk.document_id: r.chunk.text
            for r in idx.search(Query("acme vpn recharge lot", emb.embed_query("acme vpn recharge lot")), k=10)}


def test_incremental_sync_reads_only_the_changes_and_applies_deletions(runner):
    w = seeded()
    first = runner.sync(w)
    assert first.mode == "load" and first.documents_indexed == 3 and first.checkpoint == "3"
    w.put("vpn", "Use the new acme-wg WireGuard profile.")
    w.delete("parking")
    before = runner.embedder.texts_embedded
    second = runner.sync(w)
    assert second.mode == "incremental"
    assert (second.documents_seen, second.documents_indexed, second.documents_deleted) == (1, 1, 1)
    assert runner.embedder.texts_embedded - before == 1
    assert set(texts(runner)) == {"wiki:vpn", "wiki:leave"} and "acme-wg" in texts(runner)["wiki:vpn"]


def test_documents_chunked_otherwise_than_now_are_chunked_again_even_unchanged_and_polled(runner, monkeypatch):
    # A newer orgbot that chunks differently (a code block's fence read as CommonMark reads it), or another
    # retrieval.chunk_target_tokens: pages that did not change must be chunked again, or the fix never reaches
    # them. A wiki that polls only reports what changed, so the sync reads everything once.
    w = seeded()
    assert runner.sync(w).mode == "load"
    assert runner.sync(w).mode == "incremental"
    monkeypatch.setattr("retrieval.indexer.CHUNKING_VERSION", -1)
    before = runner.embedder.texts_embedded
    again = runner.sync(w)
    assert again.ok and again.mode == "rechunk" and (again.documents_indexed, again.documents_unchanged) == (3, 0)
    assert runner.embedder.texts_embedded - before == 3 and set(texts(runner)) == {"wiki:vpn", "wiki:leave", "wiki:parking"}
    from bot.slack.admin import report_text

    assert "The chunking changed since the last index: documents chunked otherwise were chunked again." in report_text(again)
    after = runner.sync(w)  # chunked as now: back to reading the changes only
    assert after.mode == "incremental" and after.documents_indexed == 0
    runner.settings.retrieval.chunk_target_tokens = 64
    assert runner.sync(w).mode == "rechunk"


def test_a_sync_that_fails_half_way_changes_nothing_and_the_next_resumes_from_the_checkpoint(runner):
    w = seeded()
    runner.sync(w)
    w.put("vpn", "Use the new acme-wg WireGuard profile.")
    w.put("leave", "Every Acmer gets 30 Recharge Days a year.")
    w.delete("parking")
    w.fail_after_batches = 2
    failed = runner.sync(w)
    assert not failed.ok and "stopped answering" in failed.error
    assert runner.state.checkpoint("wiki") == "3"  # not moved
    assert "AcmeID" in texts(runner)["wiki:vpn"] and "wiki:parking" in texts(runner)  # all or nothing
    w.fail_after_batches = None
    resumed = runner.sync(w)
    assert resumed.ok and resumed.mode == "incremental"
    assert (resumed.documents_indexed, resumed.documents_deleted) == (2, 1)
    assert runner.state.checkpoint("wiki") == "6"
    assert "30 Recharge" in texts(runner)["wiki:leave"] and "wiki:parking" not in texts(runner)


def test_a_page_that_failed_is_read_again_on_the_next_sync(runner):
    w = seeded()
    runner.sync(w)
    w.put("leave", "Every Acmer gets 30 Recharge Days a year.")
    w.broken = {"wiki:leave"}
    report = runner.sync(w)
    assert report.ok and [f.document_id for f in report.failures] == ["wiki:leave"]
    assert "27 Recharge" in texts(runner)["wiki:leave"]  # the previous version keeps serving
    w.broken = set()  # fixed at the source, without a new edit
    report = runner.sync(w)
    assert report.failures == [] and "30 Recharge" in texts(runner)["wiki:leave"]
    assert runner.state.source_state("wiki").failures == []


def test_deletions_the_change_feed_missed_are_pruned_by_listing_ids(runner):
    w = seeded()
    w.forget_deletions = True  # e.g. the wiki's deletion log expired
    runner.sync(w)
    w.delete("parking")
    report = runner.sync(w)
    assert report.mode == "incremental" and report.documents_deleted == 1
    assert "wiki:parking" not in texts(runner)


def test_full_sync_reads_everything_even_with_a_checkpoint(runner):
    w = seeded()
    runner.sync(w)
    before = runner.embedder.texts_embedded
    report = runner.sync(w, full=True)
    assert report.mode == "full" and report.documents_indexed == 3
    assert runner.embedder.texts_embedded - before == 3


def test_the_rule_under_a_table_header_is_kept_for_quotes_and_read_by_no_model(tmp_path):
    # The files connector writes "--- | ---" under an HTML or Word table's header row so a quote can name each
    # row's columns; it is no text of the page: the embedder and the generator read the table as the page has it.
    from bot.answering import Answerer
    from tests.fakes.generator import ScriptedGenerator

    root = tmp_path / "wiki"
    root.mkdir()
    (root / "support.html").write_text(
        "<h1>Pit Crew</h1><h2>Response times</h2><table><tr><th>Category</th><th>First response</th></tr>"
        "<tr><td>Outage</td><td>30 minutes</td></tr><tr><td>Hardware</td><td>1 business day</td></tr></table>")
    emb = HashingEmbedder()
    seen: list[str] = []
    embed = emb.embed
    emb.embed = lambda texts: seen.extend(texts) or embed(texts)
    index = EmbeddedIndex(tmp_path / "index.db")
    Indexer(index, emb).sync(FilesConnector("wiki", root))
    (hit,) = index.search(Query("outage response", emb.embed_query("outage response")), k=1)
    assert "Category | First response\n--- | ---\nOutage | 30 minutes" in hit.chunk.text
    assert any("Category | First response\nOutage | 30 minutes" in t for t in seen)
    assert not any("---" in t for t in seen)
    gen = ScriptedGenerator("An outage gets a first response in 30 minutes [1].")
    Answerer(index, emb, gen, top_k=1, min_similarity=0.0).answer("how fast is an outage answered?")
    prompt = gen.prompts[0][-1]["content"]
    assert "Category | First response\nOutage | 30 minutes" in prompt and "---" not in prompt
