"""Politeness of the web connectors: MediaWiki's maxlag, Retry-After, and errors in words.

(The real-server behaviour is in test_mediawiki_connector.py and test_confluence_connector.py; a
replica lag cannot be produced on a one-server SQLite wiki, so maxlag is answered by a mock here.)
"""

from __future__ import annotations

import httpx
import pytest

from connectors.base import SourceUnavailable
from connectors.http import PoliteClient, retry_after_seconds
from connectors.mediawiki import MediaWikiConnector

MAXLAG = {"error": {"code": "maxlag", "info": "Waiting for 10.0.0.1: 7 seconds lagged.", "host": "10.0.0.1",
                    "lag": 7}}
SITEINFO = {"batchcomplete": True, "query": {"general": {"time": "2026-03-01T10:00:00Z"}}}


def wiki_with(responses: list) -> tuple[MediaWikiConnector, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status, body, headers = responses.pop(0) if len(responses) > 1 else responses[0]
        return httpx.Response(status, json=body, headers=headers)

    c = MediaWikiConnector("wiki", "https://wiki.example/w/api.php", attempts=3, backoff_s=0.01)
    c.http.client = httpx.Client(transport=httpx.MockTransport(handler))
    c._api = "https://wiki.example/w/api.php"  # found already (discovery has its own test)
    return c, seen


def test_maxlag_errors_are_waited_out_and_every_request_says_maxlag():
    c, seen = wiki_with([(200, MAXLAG, {"Retry-After": "0"}), (200, SITEINFO, {})])
    assert c.checkpoint() == "2026-03-01T10:00:00Z"
    assert len(seen) == 2 and all(r.url.params["maxlag"] == "5" for r in seen)


def test_a_wiki_that_stays_lagged_is_unavailable_not_a_crash():
    c, _ = wiki_with([(200, MAXLAG, {"Retry-After": "0"})])
    with pytest.raises(SourceUnavailable, match="stayed lagged"):
        c.checkpoint()


def test_503_is_retried_with_backoff_then_reported_with_the_status():
    c, seen = wiki_with([(503, {}, {}), (200, SITEINFO, {})])
    assert c.checkpoint() == "2026-03-01T10:00:00Z" and len(seen) == 2
    c, seen = wiki_with([(503, {}, {"Retry-After": "0"})])
    with pytest.raises(SourceUnavailable, match="HTTP 503 3 times"):
        c.checkpoint()


def test_an_html_page_instead_of_the_api_says_what_to_check():
    def handler(request):
        return httpx.Response(200, text="<html>Welcome to our intranet</html>")

    c = MediaWikiConnector("wiki", "https://intranet.example", attempts=1)
    c.http.client = httpx.Client(transport=httpx.MockTransport(handler))
    with pytest.raises(SourceUnavailable, match="no MediaWiki API found at https://intranet.example/api.php or "
                                                "https://intranet.example/w/api.php"):
        c.checkpoint()


def test_retry_after_in_both_forms():
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: no wait
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    assert PoliteClient(max_wait_s=2).max_wait_s == 2
