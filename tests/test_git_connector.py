"""The git wiki connector against real repositories made in a temp dir."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bot.runtime import SyncRunner
from bot.settings import Settings, SourceSettings
from connectors.base import ConnectorFailure, Deletion, SourceDocument
from connectors.git import GitConnector
from retrieval.types import Query
from tests.fakes.embedder import HashingEmbedder


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env={"GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "T",
                               "GIT_COMMITTER_EMAIL": "t@x", "PATH": "/usr/bin:/bin", "HOME": str(repo)}).stdout


def commit(repo: Path, message: str = "change") -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = tmp_path / "handbook"
    (r / "docs" / "it").mkdir(parents=True)
    git(r, "init", "-q", "-b", "main")
    (r / "docs" / "it" / "vpn.md").write_text("# VPN\n## Install\nImport the acme-vpn profile into WireGuard.")
    (r / "docs" / "parking.md").write_text("# Parking\n## Toronto\nLot B is free for staff.")
    (r / "docs" / "lunch.md").write_text("# Lunch\nThe canteen serves lunch from noon.")
    (r / "README.md").write_text("# Handbook repo\nNot a page: outside the folder.")
    (r / "docs" / "logo.png").write_bytes(b"\x89PNG")
    commit(r, "first")
    return r


def read(items):
    docs, failures, deletions = {}, [], []
    for batch in items:
        for item in batch:
            if isinstance(item, SourceDocument):
                docs[item.metadata["path"]] = item
            elif isinstance(item, ConnectorFailure):
                failures.append(item)
            elif isinstance(item, Deletion):
                deletions.append(item.document_id)
    return docs, failures, deletions


def test_reads_the_folder_at_the_branch_with_web_urls(repo, tmp_path):
    c = GitConnector("handbook", str(repo), workdir=tmp_path / "clone", branch="main", folder="docs",
                     url_pattern="https://github.com/acme/handbook/blob/{branch}/{path}")
    docs, failures, _ = read(c.load())
    assert not failures
    assert set(docs) == {"docs/it/vpn.md", "docs/parking.md", "docs/lunch.md"}
    vpn = docs["docs/it/vpn.md"]
    assert vpn.id == "handbook:docs/it/vpn.md" and vpn.title == "VPN"
    assert vpn.url == "https://github.com/acme/handbook/blob/main/docs/it/vpn.md"
    assert [s.heading for s in vpn.sections] == ["Install"]
    assert c.list_ids() == {f"handbook:{p}" for p in docs}


def test_changes_come_from_the_diff_with_renames_and_deletions(repo, tmp_path):
    c = GitConnector("handbook", str(repo), workdir=tmp_path / "clone", folder="docs")
    first = c.checkpoint()
    (repo / "docs" / "it" / "vpn.md").write_text("# VPN\n## Install\nUse the new acme-wg profile.")
    git(repo, "mv", "docs/parking.md", "docs/parking-toronto.md")
    git(repo, "rm", "-q", "docs/lunch.md")
    (repo / "README.md").write_text("# Handbook repo\nchanged, but outside the folder")
    commit(repo)
    second = GitConnector("handbook", str(repo), workdir=tmp_path / "clone", folder="docs")
    head = second.checkpoint()
    assert head != first
    docs, failures, deletions = read(second.poll(first, head))
    assert set(docs) == {"docs/it/vpn.md", "docs/parking-toronto.md"}
    assert "acme-wg" in docs["docs/it/vpn.md"].text
    assert sorted(deletions) == ["handbook:docs/lunch.md", "handbook:docs/parking.md"]


def test_sync_follows_commits_and_a_force_push(repo, tmp_path):
    settings = Settings(data_dir=str(tmp_path / "data"), sources={
        "handbook": SourceSettings(type="git", url=str(repo), branch="main", folder="docs")})
    emb = HashingEmbedder()
    runner = SyncRunner(settings, embedder=emb)
    assert runner.sync_sources()[0].ok
    assert runner.index.document_ids("handbook") == {"handbook:docs/it/vpn.md", "handbook:docs/parking.md",
                                                      "handbook:docs/lunch.md"}

    (repo / "docs" / "lunch.md").unlink()
    (repo / "docs" / "parking.md").write_text("# Parking\n## Toronto\nLot C is free for staff now.")
    commit(repo)
    before = emb.texts_embedded
    report = runner.sync_sources()[0]
    assert report.ok and report.mode == "incremental"
    assert (report.documents_indexed, report.documents_deleted) == (1, 1)
    assert emb.texts_embedded - before == 1
    hits = runner.index.search(Query("parking lot", emb.embed_query("parking lot")), k=1)
    assert "Lot C" in hits[0].chunk.text

    # history rewritten (a force push): the index ends up with exactly what the new branch has
    git(repo, "checkout", "-q", "--orphan", "rewritten")
    git(repo, "rm", "-q", "-r", "--cached", ".")
    for p in (repo / "docs").rglob("*.md"):
        if p.name != "vpn.md":
            p.unlink()
    commit(repo, "squashed")
    git(repo, "branch", "-q", "-M", "rewritten", "main")
    report = runner.sync_sources()[0]
    assert report.ok, report.error
    assert runner.index.document_ids("handbook") == {"handbook:docs/it/vpn.md"}


def test_a_repository_that_cannot_be_cloned_is_a_clear_error(tmp_path):
    settings = Settings(data_dir=str(tmp_path / "data"), sources={
        "handbook": SourceSettings(type="git", url=f"https://user:s3cret@127.0.0.1:9/{tmp_path.name}.git")})
    report = SyncRunner(settings, embedder=HashingEmbedder()).sync_sources()[0]
    assert "cannot clone" in report.error and "s3cret" not in report.error
