"""ACLs from a source's config (folder / namespace patterns), applied by the indexer to every connector's
documents, and permission changes that take effect on the next sync without re-embedding."""

from pathlib import Path

import pytest

from connectors.base import Section, SourceDocument
from connectors.files import FilesConnector
from retrieval.acl import AclPolicy, AclRule, visible_to
from retrieval.indexer import Indexer
from retrieval.sqlite_index import EmbeddedIndex
from retrieval.types import Query
from tests.fakes.embedder import HashingEmbedder

HR_PHRASE = "zebra-quartz severance formula"


@pytest.fixture
def wiki(tmp_path: Path) -> Path:
    root = tmp_path / "wiki"
    (root / "hr" / "private").mkdir(parents=True)
    (root / "eng").mkdir()
    (root / "hr" / "severance.md").write_text(f"# Severance\nThe {HR_PHRASE} is two weeks per year.")
    (root / "hr" / "private" / "cases.md").write_text("# Cases\nOpen disciplinary cases are listed here.")
    (root / "hr" / "boss.md").write_text("---\nacl: [UBOSS]\n---\n# Boss notes\nNotes for the boss only.")
    (root / "eng" / "deploy.md").write_text("# Deploy\nDeploy with make ship.")
    return root


def search(index, emb, text, principals):
    return [r.chunk.document_id for r in index.search(Query(text, emb.embed_query(text), principals=principals), 5)]


def rules(*pairs, default=()):
    return AclPolicy([AclRule(m, tuple(p)) for m, p in pairs], default=default)


def test_folder_rules_restrict_the_documents_under_them(wiki, tmp_path):
    emb, index = HashingEmbedder(), EmbeddedIndex(tmp_path / "i.db")
    Indexer(index, emb, acl=rules(("hr/private/**", ["group:hr-leads"]), ("hr/**", ["group:hr"]))).sync(
        FilesConnector("wiki", wiki))
    acls = index.document_acls("wiki")
    assert acls == {"wiki:hr/severance.md": ("group:hr",), "wiki:hr/private/cases.md": ("group:hr-leads",),
                    "wiki:hr/boss.md": ("UBOSS",),  # its own ACL is more specific than the folder's
                    "wiki:eng/deploy.md": ()}
    assert "wiki:hr/severance.md" not in search(index, emb, HR_PHRASE, ["U1", "slack:U1"])
    assert "wiki:hr/severance.md" in search(index, emb, HR_PHRASE, ["U2", "group:hr"])


def test_the_source_acl_applies_where_no_rule_matches_and_a_rule_can_make_a_folder_public():
    policy = rules(("public/*", []), default=("group:staff",))

    def doc(path, acl=()):
        return SourceDocument(f"s:{path}", "s", path, "u", (Section("", "x"),), acl=acl, metadata={"path": path})

    assert policy.acl_for(doc("public/a.md")) == ()
    assert policy.acl_for(doc("other/a.md")) == ("group:staff",)
    assert policy.acl_for(doc("public/a.md", acl=("U1",))) == ("U1",)
    # a wiki page without a path: its id without the source prefix, e.g. a namespace
    page = SourceDocument("wiki:HR:Severance", "wiki", "Severance", "u", (Section("", "x"),))
    assert rules(("HR:*", ["group:hr"])).acl_for(page) == ("group:hr",)


def test_a_permission_change_takes_effect_on_the_next_sync_without_re_embedding(wiki, tmp_path):
    emb, index = HashingEmbedder(), EmbeddedIndex(tmp_path / "i.db")
    Indexer(index, emb).sync(FilesConnector("wiki", wiki))
    assert "wiki:hr/severance.md" in search(index, emb, HR_PHRASE, [])  # public so far
    before = emb.texts_embedded
    report = Indexer(index, emb, acl=rules(("hr/**", ["group:hr"]))).sync(FilesConnector("wiki", wiki))
    assert (report.documents_acl_changed, report.documents_indexed, report.documents_unchanged) == (2, 0, 2)
    assert emb.texts_embedded == before  # nothing re-embedded
    assert index.document_acls("wiki")["wiki:hr/severance.md"] == ("group:hr",)
    assert "wiki:hr/severance.md" not in search(index, emb, HR_PHRASE, ["U1"])
    assert "wiki:hr/severance.md" in search(index, emb, HR_PHRASE, ["group:hr"])
    # the next sync with the same rules changes nothing; loosening it again is also in place
    again = Indexer(index, emb, acl=rules(("hr/**", ["group:hr"]))).sync(FilesConnector("wiki", wiki))
    assert (again.documents_acl_changed, again.documents_unchanged) == (0, 4)
    before = emb.texts_embedded
    loosened = Indexer(index, emb).sync(FilesConnector("wiki", wiki))
    assert (loosened.documents_acl_changed, emb.texts_embedded) == (2, before)
    assert "wiki:hr/severance.md" in search(index, emb, HR_PHRASE, [])


def test_text_and_acl_changed_together_is_re_embedded(wiki, tmp_path):
    emb, index = HashingEmbedder(), EmbeddedIndex(tmp_path / "i.db")
    Indexer(index, emb).sync(FilesConnector("wiki", wiki))
    (wiki / "hr" / "severance.md").write_text("# Severance\nThe formula changed: three weeks per year.")
    report = Indexer(index, emb, acl=rules(("hr/**", ["group:hr"]))).sync(FilesConnector("wiki", wiki))
    assert (report.documents_indexed, report.documents_acl_changed) == (1, 1)
    hit = index.search(Query("three weeks", emb.embed_query("three weeks"), principals=["group:hr"]), 1)[0]
    assert "three weeks" in hit.chunk.text and hit.chunk.acl == ("group:hr",)


def test_visibility_rule_matches_the_index():
    assert visible_to((), [])
    assert visible_to(("group:hr",), None)
    assert visible_to(("group:hr", "U1"), ["U1"])
    assert not visible_to(("group:hr",), ["C1", "slack:C1"])
