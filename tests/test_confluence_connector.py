"""The Confluence connector against a local server answering Atlassian's REST payloads (Cloud v2,
Data Center v1), with pagination, CQL changes, 429s and bad credentials."""

from __future__ import annotations

import socket
import time

import pytest

from bot.runtime import SyncRunner
from bot.settings import Settings, SourceSettings
from connectors.base import ConnectorFailure, SourceDocument
from connectors.confluence import ConfluenceConnector
from retrieval.types import Query
from tests.fakes.documents import write_docx, write_pdf
from tests.fakes.embedder import HashingEmbedder
from tests.fakes.fake_confluence import FakeConfluence

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def read(connector):
    docs, failures = {}, []
    for batch in connector.load():
        for item in batch:
            if isinstance(item, SourceDocument):
                docs[item.title] = item
            elif isinstance(item, ConnectorFailure):
                failures.append(item)
    return docs, failures


@pytest.fixture
def cloud():
    with FakeConfluence(context="/wiki", user="bot@acme.example", token="api-token") as c:
        yield c


@pytest.fixture
def datacenter():
    with FakeConfluence(context="/confluence", token="pat-token") as c:
        yield c


def test_cloud_v2_pages_across_pages_of_results_with_sections_and_attachments(cloud, tmp_path):
    vpn = cloud.add("ENG", "VPN Setup", "<p>Read this first.</p><h1>Install</h1><p>Import the acme-vpn profile."
                    "</p><h2>macOS</h2><p>Use WireGuard.</p><ac:structured-macro ac:name=\"code\">"
                    "<ac:parameter ac:name=\"language\">bash</ac:parameter><ac:plain-text-body><![CDATA[wg-quick up acme]]>"
                    "</ac:plain-text-body></ac:structured-macro>")
    for i in range(4):
        cloud.add("ENG", f"Runbook {i}", f"<h1>Steps</h1><p>Restart service {i}.</p>")
    cloud.add("HR", "Salaries", "<p>Not synced: another space.</p>")
    write_pdf(tmp_path / "p.pdf", ["Travel Policy", "1. Flights", "Economy under six hours."], title="Travel Policy")
    cloud.attach(vpn, "travel.pdf", "application/pdf", (tmp_path / "p.pdf").read_bytes())
    write_docx(tmp_path / "d.docx", "Floor Guide", [("Kitchen", "The kitchen is on level 2.")])
    cloud.attach(vpn, "floor.docx", DOCX, (tmp_path / "d.docx").read_bytes())
    cloud.attach(vpn, "logo.png", "image/png", b"\x89PNG")

    c = ConfluenceConnector("conf", cloud.url, spaces=["ENG"], user="bot@acme.example", token="api-token", api="v2")
    docs, failures = read(c)
    assert not failures
    assert set(docs) == {"VPN Setup", *(f"Runbook {i}" for i in range(4))}  # 3 pages of 2 results
    doc = docs["VPN Setup"]
    assert doc.id == f"conf:{vpn.id}"
    assert doc.url == f"{cloud.url}/spaces/ENG/pages/{vpn.id}/VPN+Setup"
    sections = {s.heading: s.text for s in doc.sections}
    assert sections["Install"] == "Import the acme-vpn profile."
    assert "wg-quick up acme" in sections["Install › macOS"] and "bash" not in sections["Install › macOS"]
    assert "Economy under six hours." in sections["travel.pdf › 1. Flights"]
    assert any(h.startswith("floor.docx") and "level 2" in t for h, t in sections.items())
    assert doc.metadata["space"] == "ENG" and doc.metadata["version"] == "1"
    assert c.list_ids() == {d.id for d in docs.values()}


def test_data_center_v1_restrictions_become_the_acl_and_urls_keep_the_context_path(datacenter):
    datacenter.add("HR", "Salary Bands", "<h2>Bands</h2><p>Band 3 is 60-75k.</p>", groups=["hr-team"],
                   users=["jdoe"])
    datacenter.add("HR", "Holidays", "<p>27 days.</p>")
    datacenter.add("HR", "Parking", "<p>Lot B.</p>")
    c = ConfluenceConnector("conf", datacenter.url, spaces=["HR"], token="pat-token", acl=("C_ALL",))
    assert c.api == "v1"
    docs, _ = read(c)
    assert docs["Salary Bands"].acl == ("group:hr-team", "user:jdoe")
    assert docs["Holidays"].acl == ("C_ALL",)  # no restriction of its own: the source's
    assert docs["Salary Bands"].url == f"{datacenter.url}/display/HR/Salary+Bands"
    assert [s.heading for s in docs["Salary Bands"].sections] == ["Bands"]


def sync_settings(tmp_path, fake, **src) -> Settings:
    return Settings(data_dir=str(tmp_path / "data"), sources={"conf": SourceSettings(
        type="confluence", url=fake.url, spaces=["ENG"], **src)})


def test_sync_follows_edits_deletions_and_new_attachments(cloud, tmp_path, monkeypatch):
    monkeypatch.setenv("CONFLUENCE_USER", "bot@acme.example")
    monkeypatch.setenv("CONFLUENCE_TOKEN", "api-token")
    vpn = cloud.add("ENG", "VPN Setup", "<h1>Install</h1><p>Import the acme-vpn profile.</p>")
    old = cloud.add("ENG", "Old Printer", "<p>The old printer is on level 3.</p>")
    cloud.add("ENG", "Lunch", "<p>Lunch is from noon.</p>")
    emb = HashingEmbedder()
    runner = SyncRunner(sync_settings(tmp_path, cloud, api="v2"), embedder=emb)
    assert runner.sync_sources()[0].ok
    cloud.edit(vpn, "<h1>Install</h1><p>Use the new acme-wg WireGuard profile.</p>")
    cloud.trash(old)
    lunch = next(p for p in cloud.pages.values() if p.title == "Lunch")
    write_pdf(tmp_path / "menu.pdf", ["Menu", "Friday is pizza day."], title="Menu")
    cloud.attach(lunch, "menu.pdf", "application/pdf", (tmp_path / "menu.pdf").read_bytes())
    before = emb.texts_embedded
    report = runner.sync_sources()[0]
    assert report.ok and report.mode == "incremental", report.error
    assert (report.documents_indexed, report.documents_deleted) == (2, 1)
    assert emb.texts_embedded - before < 5  # only the two changed pages
    idx = runner.index
    assert f"conf:{old.id}" not in idx.document_ids("conf")
    hit = idx.search(Query("vpn profile", emb.embed_query("vpn profile")), k=1)[0].chunk
    assert "acme-wg" in hit.text
    hit = idx.search(Query("pizza day", emb.embed_query("pizza day")), k=1)[0].chunk
    assert hit.document_id == f"conf:{lunch.id}" and "pizza" in hit.text


def test_429_with_retry_after_is_waited_out(datacenter):
    datacenter.add("ENG", "VPN Setup", "<p>Import the acme-vpn profile.</p>")
    datacenter.throttle["/confluence/rest/api/content"] = 1
    c = ConfluenceConnector("conf", datacenter.url, spaces=["ENG"], token="pat-token")
    t = time.monotonic()
    docs, failures = read(c)
    assert "VPN Setup" in docs and not failures
    assert time.monotonic() - t >= 0.9  # Retry-After: 1 was honoured


def test_expired_token_and_endless_429_are_clear_errors_and_the_index_keeps_serving(datacenter, tmp_path,
                                                                                     monkeypatch):
    datacenter.add("ENG", "VPN Setup", "<p>Import the acme-vpn profile.</p>")
    monkeypatch.setenv("CONFLUENCE_TOKEN", "pat-token")
    runner = SyncRunner(sync_settings(tmp_path, datacenter), embedder=HashingEmbedder())
    assert runner.sync_sources()[0].ok
    monkeypatch.setenv("CONFLUENCE_TOKEN", "expired")
    report = runner.sync_sources()[0]
    assert "refused the credentials (HTTP 401)" in report.error and "CONFLUENCE_TOKEN" in report.error
    assert "expired" not in report.error.replace("expired or", "")  # the token itself is never shown
    monkeypatch.setenv("CONFLUENCE_TOKEN", "pat-token")
    datacenter.throttle["/confluence/rest/api/content"] = 100
    datacenter.retry_after = "0"
    report = ConfluenceConnector("conf", datacenter.url, spaces=["ENG"], token="pat-token", attempts=3,
                                 backoff_s=0.01)
    with pytest.raises(Exception, match="HTTP 429 3 times"):
        read(report)
    assert runner.index.stats().documents == 1


def test_a_5_mb_page_and_malformed_html_are_handled_page_by_page(datacenter):
    datacenter.add("ENG", "Export", "<p>" + "x" * 5_000_000 + "</p>")
    datacenter.add("ENG", "Broken", "<h1>Steps<p>Unclosed <b>bold <table><tr><td>cell one<td>cell two")
    datacenter.add("ENG", "Fine", "<p>All good.</p>")
    c = ConfluenceConnector("conf", datacenter.url, spaces=["ENG"], token="pat-token")
    docs, failures = read(c)
    assert [f.item.split(" (")[0] for f in failures] == ["Export"]
    assert "5.0 MB, over the 2 MB limit" in failures[0].reason
    assert "cell one | cell two" in docs["Broken"].text and "Fine" in docs


def test_an_unreachable_site_a_wrong_url_or_a_missing_space_says_what_to_check(datacenter, cloud):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/confluence"
    with pytest.raises(Exception, match="cannot reach"):
        read(ConfluenceConnector("conf", dead, token="t", attempts=2, backoff_s=0.01))
    with pytest.raises(Exception, match="was not found .*check the url"):
        read(ConfluenceConnector("conf", datacenter.url.replace("/confluence", "/wiki"), token="pat-token"))
    with pytest.raises(Exception, match="no Confluence space NOPE"):
        read(ConfluenceConnector("conf", cloud.url, spaces=["NOPE"], user="bot@acme.example", token="api-token",
                                 api="v2"))


def test_cli_reports_a_bad_source_in_one_line_without_a_traceback(datacenter, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from bot.cli import app, state

    datacenter.add("ENG", "VPN Setup", "<p>Import the acme-vpn profile.</p>")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"data_dir: {tmp_path / 'data'}\nsources:\n"
                   f"  conf:\n    type: confluence\n    url: {datacenter.url}\n    spaces: [ENG]\n"
                   f"  typo:\n    type: mediawiki\n    url: wiki.acme.example\n")
    monkeypatch.setenv("CONFLUENCE_TOKEN", "revoked")
    state._settings = None
    cli = CliRunner()
    result = cli.invoke(app, ["--config", str(cfg), "index", "--source", "conf"])
    out = " ".join(result.output.split())
    assert result.exit_code == 1 and "refused the credentials (HTTP 401)" in out and "CONFLUENCE_TOKEN" in out
    assert "Traceback" not in result.output
    state._settings = None
    result = cli.invoke(app, ["--config", str(cfg), "index", "--source", "typo"])
    out = " ".join(result.output.split())
    assert result.exit_code == 1 and "sources.typo.url must start with http:// or https://" in out
    assert "Traceback" not in result.output
    state._settings = None
