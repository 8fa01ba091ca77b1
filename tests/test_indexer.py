from pathlib import Path

import pytest

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
