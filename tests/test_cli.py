"""The `orgbot` command as a user runs it, with the real embedder and an OpenAI-compatible fake server."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app, state
from tests.fakes.openai_server import FakeOpenAI

runner = CliRunner()


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    wiki = tmp_path / "wiki"
    wiki.mkdir()
    (wiki / "vpn.md").write_text("---\ntitle: VPN Setup\n---\n# VPN Setup\n## Install\n"
                                 "Import the acme-vpn.conf profile into WireGuard and sign in with AcmeID.")
    (wiki / "parking.md").write_text("---\ntitle: Parking\n---\n# Parking\n## Toronto\nStaff park for free in lot B.")
    (wiki / "broken.pdf").write_bytes(b"%PDF-1.4 nonsense")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"data_dir: {tmp_path / 'data'}\nsources:\n  wiki:\n    path: {wiki}\n"
                   "retrieval:\n  min_similarity: 0.2\n")
    monkeypatch.setenv("ORGBOT_CONFIG", str(cfg))
    state._settings = None
    yield tmp_path
    state._settings = None


def run(*args, **kw):
    state._settings = None
    return runner.invoke(app, list(args), **kw)


def test_ask_before_indexing_says_what_to_run(workspace):
    result = run("ask", "where do I park?")
    assert result.exit_code == 1
    assert "orgbot index" in result.output


def test_index_search_status_and_ask_json(workspace, monkeypatch):
    result = run("index")
    assert result.exit_code == 0, result.output
    assert "2 documents" in result.output and "1 failures" in result.output and "broken.pdf" in result.output

    result = run("search", "WireGuard profile", "--json", "--k", "2")
    passages = json.loads(result.stdout)["passages"]
    assert passages[0]["document_id"] == "wiki:vpn.md"
    assert set(passages[0]) >= {"document_id", "title", "score", "heading", "text"}

    result = run("status")
    assert "wiki" in result.output and "never" not in result.output

    with FakeOpenAI("Hi there! Park for free in lot B [1] [4].") as server:
        monkeypatch.setenv("ORGBOT_GENERATION__BACKEND", "openai_compatible")
        monkeypatch.setenv("ORGBOT_GENERATION__OPENAI__URL", server.url)
        monkeypatch.setenv("ORGBOT_GENERATION__OPENAI__MODE", "chat")
        monkeypatch.setenv("ORGBOT_GENERATION__OPENAI__API_KEY", "sk-test")
        result = run("ask", "where do staff park?", "--json", "--k", "2", "--as", "Dana")
        assert result.exit_code == 0, result.output
        out = json.loads(result.stdout)
        assert out["answer"] == "Hi there! Park for free in lot B [1]."  # [4] was never a passage
        assert [c["document_id"] for c in out["citations"]] == ["wiki:parking.md"]
        assert set(out["citations"][0]) >= {"number", "title", "url", "document_id"}
        assert out["passages"][0]["document_id"] == "wiki:parking.md"
        assert server.requests[0]["auth"] == "Bearer sk-test"
        assert "Passages:\n<passage 1> Parking" in server.requests[0]["body"]["messages"][-1]["content"]
        assert "Asker: Dana\n" in server.requests[0]["body"]["messages"][-1]["content"]


def test_index_a_folder_ad_hoc_and_reindex_skips_unchanged(workspace):
    folder = Path(workspace / "wiki")
    assert run("index", str(folder), "--source", "adhoc").exit_code == 0
    result = run("index", str(folder), "--source", "adhoc")
    assert "0 indexed, 2 unchanged" in result.output


def test_empty_question_is_a_friendly_error(workspace):
    run("index")
    result = run("ask", "  ", "--adapter", "none")
    assert result.exit_code == 2 and "empty" in result.output


def test_bad_config_names_the_field(tmp_path, monkeypatch):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("retrieval:\n  top_k: 0\n")
    result = run("--config", str(cfg), "status")
    assert result.exit_code == 1 and "retrieval.top_k" in result.output


def test_the_demo_asks_as_a_slack_user_would_with_a_name(workspace, monkeypatch):
    with FakeOpenAI("Hi there! Park for free in lot B [1].") as server:
        monkeypatch.setenv("ORGBOT_GENERATION__BACKEND", "openai_compatible")
        monkeypatch.setenv("ORGBOT_GENERATION__OPENAI__URL", server.url)
        monkeypatch.setenv("ORGBOT_GENERATION__OPENAI__MODE", "chat")
        monkeypatch.setenv("ORGBOT_RETRIEVAL__MIN_SIMILARITY", "0")  # the sample questions on this small wiki
        result = run("demo", "-n", "2")
        assert result.exit_code == 0, result.output
        asked = [r["body"]["messages"][-1]["content"] for r in server.requests]
        assert asked and all("Asker: Sam\n" in a for a in asked)
        server.requests.clear()
        result = run("demo", "-n", "2", "--as", "")
        assert result.exit_code == 0, result.output
        assert server.requests and all("Asker:" not in r["body"]["messages"][-1]["content"] for r in server.requests)
