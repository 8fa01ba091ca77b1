"""MediaWiki through its Action API (`api.php`).

- every page of the configured namespaces (`list=allpages`, with continuation), redirects skipped;
- content from `action=parse` (the rendered HTML), its headings kept as sections;
- changes since a checkpoint from `list=recentchanges`, deletions and moves from `list=logevents`:
  every title they touch is looked up again, so a deleted, moved-away or now-redirecting page
  becomes a `Deletion` and a moved page is read under its new title;
- private wikis through a bot password (Special:BotPasswords), polite with `maxlag` and retries.

Document id: `<source>:<page title>` (titles are unique per wiki; a move changes the id).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from connectors.base import (
    Batch,
    ConnectorFailure,
    Deletion,
    SourceDocument,
    SourceUnavailable,
    batched,
    parse_time_checkpoint,
    time_checkpoint,
)
from connectors.files.parsers import parse_html
from connectors.http import PoliteClient, RetryableStatus

log = logging.getLogger(__name__)

# MediaWiki keeps recent changes 90 days by default ($wgRCMaxAge); older checkpoints reload everything.
RECENT_CHANGES_DAYS = 80
# Footnote markers ([1]) would read like our own citations; edit links and navboxes are chrome.
DROP = "sup.reference, .mw-editsection, .navbox, .noprint, .mw-jump-link, .catlinks, #toc"


class MediaWikiError(SourceUnavailable):
    """An error the API answered. Raised from a listing, the source cannot be read; from one page's
    parse, only that page failed."""

    def __init__(self, code: str, info: str):
        super().__init__(f"the wiki answered {code}: {info}")
        self.code = code
        self.info = info


class MediaWikiConnector:
    """`LoadConnector`, `PollConnector`, `SlimConnector` and `FetchConnector` over one wiki."""

    def __init__(
        self, name: str, url: str, *, namespaces: Iterable[int | str] = (0,),
        namespace_acl: dict[str, list[str]] | None = None, acl: tuple[str, ...] = (),
        username: str | None = None, password: str | None = None,
        credentials_hint: str = "MEDIAWIKI_USER and MEDIAWIKI_PASSWORD",
        timeout_s: float = 30.0, max_page_bytes: int = 2_000_000, overlap: timedelta = timedelta(minutes=10),
        batch_size: int = 20, request_interval_s: float = 0.0, maxlag: int = 5, attempts: int = 5,
        backoff_s: float = 1.0,
    ):
        if not url:
            raise ValueError("a mediawiki source needs url: the wiki's base URL or its api.php")
        self.name = name
        self.url = url.rstrip("/")
        self.wanted_namespaces = list(namespaces) or [0]
        self.namespace_acl = {str(k): tuple(v) for k, v in (namespace_acl or {}).items()}
        self.acl = tuple(acl)
        self.username, self.password = username, password
        self.credentials_hint = credentials_hint
        self.max_page_bytes = max_page_bytes
        self.overlap = overlap
        self.batch_size = batch_size
        self.maxlag = maxlag
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.http = PoliteClient(timeout_s=timeout_s, attempts=attempts, backoff_s=backoff_s,
                                 interval_s=request_interval_s)
        self._api: str | None = None
        self._logged_in = False
        self._site: dict | None = None
        self._ns_ids: list[int] | None = None
        self._acl_by_ns: dict[int, tuple[str, ...]] = {}

    # -- API plumbing ------------------------------------------------------------------------
    @property
    def api(self) -> str:
        if self._api is None:
            self._api = self._find_api()
        return self._api

    def _find_api(self) -> str:
        candidates = [self.url] if self.url.endswith("api.php") else [f"{self.url}/api.php", f"{self.url}/w/api.php"]
        for candidate in candidates:
            r = self.http.get(candidate, params={"action": "query", "meta": "siteinfo", "format": "json",
                                                 "maxlag": str(self.maxlag)})
            try:
                body = r.json()
            except ValueError:
                continue
            if isinstance(body, dict) and ("query" in body or "error" in body):
                return candidate
        raise SourceUnavailable(f"no MediaWiki API found at {' or '.join(candidates)}; set url to the wiki's "
                                "base URL or to its api.php")

    def _login(self) -> None:
        if not (self.username and self.password):
            raise SourceUnavailable(f"the wiki at {self.url} needs a login: set {self.credentials_hint} to a bot "
                                    "password (Special:BotPasswords on the wiki)")
        token = self._call({"action": "query", "meta": "tokens", "type": "login"}, login=False)
        r = self._call({"action": "login", "lgname": self.username, "lgpassword": self.password,
                        "lgtoken": token["query"]["tokens"]["logintoken"]}, post=True, login=False)
        result = r.get("login", {})
        if result.get("result") != "Success":
            reason = result.get("reason") or result.get("result") or "no reason given"
            raise SourceUnavailable(f"login to {self.url} as {self.username} failed ({reason}); check "
                                    f"{self.credentials_hint} (a bot password from Special:BotPasswords)")
        self._logged_in = True
        log.info("logged in", extra={"source": self.name, "user": self.username})

    def _call(self, params: dict, *, post: bool = False, login: bool = True) -> dict:
        params = {**params, "format": "json", "formatversion": "2", "maxlag": str(self.maxlag)}
        if login and self.username and not self._logged_in:
            self._login()
        for attempt in range(self.attempts):
            r = self.http.post(self.api, data=params) if post else self.http.get(self.api, params=params)
            try:
                body = r.json()
            except ValueError:
                raise SourceUnavailable(f"{self.api} answered HTTP {r.status_code} with something that is not "
                                        "JSON; is it a MediaWiki api.php?") from None
            error = body.get("error") if isinstance(body, dict) else None
            if not error:
                return body
            code, info = error.get("code", "?"), error.get("info", "")
            if code == "maxlag":  # the database replicas lag: the API asks bots to wait
                wait = float(r.headers.get("Retry-After") or 5) * (attempt + 1)
                log.info("maxlag, waiting", extra={"source": self.name, "wait_s": wait})
                time.sleep(min(wait, 60))
                continue
            if code in ("readapidenied", "assertuserfailed", "assertbotfailed") and login:
                if self._logged_in and attempt == 0:  # the session expired: log in again, once
                    self._logged_in = False
                    self._login()
                    continue
                if not self._logged_in:
                    self._login()
                    continue
            raise MediaWikiError(code, info)
        raise SourceUnavailable(f"{self.url} stayed lagged (maxlag) after {self.attempts} tries; try again later")

    def _query_all(self, params: dict) -> Iterator[dict]:
        """Every page of results, following `continue`."""
        cont: dict = {}
        while True:
            body = self._call({"action": "query", **params, **cont})
            yield body
            if "continue" not in body:
                return
            cont = body["continue"]

    # -- site ----------------------------------------------------------------------------------
    @property
    def site(self) -> dict:
        if self._site is None:
            self._site = self._call({"action": "query", "meta": "siteinfo", "siprop": "general|namespaces"})["query"]
            self._resolve_namespaces()
        return self._site

    def _resolve_namespaces(self) -> None:
        by_name: dict[str, int] = {}
        for ns in self._site["namespaces"].values():
            for key in (ns.get("name"), ns.get("canonical")):
                if key is not None:
                    by_name[str(key).lower()] = int(ns["id"])
            by_name[str(ns["id"])] = int(ns["id"])
        by_name["main"] = 0

        def ns_id(value) -> int:
            key = str(value).lower()
            if key not in by_name:
                raise SourceUnavailable(f"the wiki has no namespace {value!r}; known: "
                                        + ", ".join(sorted({k for k in by_name if not k.isdigit()} - {""})))
            return by_name[key]

        self._ns_ids = sorted({ns_id(v) for v in self.wanted_namespaces})
        self._acl_by_ns = {ns_id(k): v for k, v in self.namespace_acl.items()}

    @property
    def namespaces(self) -> list[int]:
        _ = self.site
        return self._ns_ids or [0]

    def page_url(self, title: str) -> str:
        general = self.site["general"]
        server = general["server"]
        if server.startswith("//"):
            server = self.api.split(":", 1)[0] + ":" + server
        path = general.get("articlepath", "/index.php/$1").replace("$1", quote(title.replace(" ", "_"), safe="/:"))
        return server + path

    def document_id(self, title: str) -> str:
        return f"{self.name}:{title}"

    # -- capabilities ---------------------------------------------------------------------------
    def checkpoint(self) -> str:
        general = self._call({"action": "query", "meta": "siteinfo", "siprop": "general"})["query"]["general"]
        server_time = general.get("time")
        at = parse_time_checkpoint(server_time) if server_time else datetime.now(UTC)
        return time_checkpoint(at)

    def _all_pages(self) -> Iterator[dict]:
        for ns in self.namespaces:
            pages: dict[str, dict] = {}  # one generator batch, merged across its prop continuations
            for body in self._query_all({"generator": "allpages", "gapnamespace": ns, "gapfilterredir": "nonredirects",
                                         "gaplimit": 50, "prop": "info|revisions", "rvprop": "timestamp|ids"}):
                for page in body.get("query", {}).get("pages", []):
                    merged = pages.setdefault(page["title"], {})
                    merged.update({k: v for k, v in page.items() if v or k not in merged})
                if "batchcomplete" in body:
                    yield from (pages[t] for t in sorted(pages))
                    pages = {}
            yield from (pages[t] for t in sorted(pages))

    def estimate(self) -> int | None:
        return None

    def list_ids(self) -> set[str]:
        ids = set()
        for ns in self.namespaces:
            for body in self._query_all({"list": "allpages", "apnamespace": ns, "apfilterredir": "nonredirects",
                                         "aplimit": "max"}):
                ids.update(self.document_id(p["title"]) for p in body["query"]["allpages"])
        return ids

    def load(self) -> Iterator[Batch]:
        yield from self._batched(self._read(page) for page in self._all_pages())

    def poll(self, since: str, until: str) -> Iterator[Batch]:
        start = parse_time_checkpoint(since, self.overlap)
        if datetime.now(UTC) - start > timedelta(days=RECENT_CHANGES_DAYS):
            log.info("checkpoint older than the wiki's recent changes: reading everything",
                     extra={"source": self.name, "since": since})
            yield from self.load()
            return
        titles = self._changed_titles(time_checkpoint(start))
        yield from self._batched(self._read_titles(titles))

    def fetch(self, document_ids: set[str]) -> Iterator[Batch]:
        prefix = f"{self.name}:"
        titles = sorted(i[len(prefix):] for i in document_ids if i.startswith(prefix))
        yield from self._batched(self._read_titles(titles))

    # -- reading --------------------------------------------------------------------------------
    def _changed_titles(self, start: str) -> list[str]:
        """Titles edited, created, deleted, restored or moved (both ends) since `start`, oldest first."""
        titles: dict[str, None] = {}
        for body in self._query_all({"list": "recentchanges", "rcstart": start, "rcdir": "newer",
                                     "rcnamespace": "|".join(map(str, self.namespaces)), "rctype": "edit|new",
                                     "rcprop": "title|timestamp", "rclimit": "max"}):
            for rc in body["query"]["recentchanges"]:
                titles[rc["title"]] = None
        for letype in ("delete", "move"):
            for body in self._query_all({"list": "logevents", "letype": letype, "lestart": start, "ledir": "newer",
                                         "leprop": "title|type|details|timestamp", "lelimit": "max"}):
                for ev in body["query"]["logevents"]:
                    if ev.get("ns") in self.namespaces:
                        titles[ev["title"]] = None
                    target = (ev.get("params") or {}).get("target_title")
                    if target:
                        titles[target] = None
        return list(titles)

    def _read_titles(self, titles: list[str]) -> Iterator[SourceDocument | ConnectorFailure | Deletion]:
        """Look each title up again: gone, a redirect or out of scope -> Deletion; else read it."""
        for i in range(0, len(titles), 50):
            body = self._call({"action": "query", "titles": "|".join(titles[i:i + 50]), "prop": "info|revisions",
                               "rvprop": "timestamp|ids"})
            query = body.get("query", {})
            for page in query.get("pages", []):
                title = page["title"]
                if page.get("invalid"):
                    continue
                if page.get("missing") or page.get("redirect") or page.get("ns") not in self.namespaces:
                    why = "deleted" if page.get("missing") else "now a redirect" if page.get("redirect") \
                        else "moved out of the synced namespaces"
                    yield Deletion(self.name, self.document_id(title), f"{why} on the wiki")
                    continue
                yield self._read(page)

    def _read(self, page: dict) -> SourceDocument | ConnectorFailure | Deletion:
        title = page["title"]
        doc_id = self.document_id(title)

        def fail(reason: str) -> ConnectorFailure:
            return ConnectorFailure(self.name, title, reason, document_id=doc_id)

        size = int(page.get("length") or 0)
        if size > self.max_page_bytes:
            return fail(f"the page is {size / 1e6:.1f} MB, over the {self.max_page_bytes / 1e6:g} MB limit "
                        f"(sources.{self.name}.max_page_mb in config.yaml)")
        try:
            parsed = self._call({"action": "parse", "page": title, "prop": "text|revid|displaytitle",
                                 "disableeditsection": "1", "disablelimitreport": "1"})["parse"]
        except MediaWikiError as e:
            if e.code == "missingtitle":
                return Deletion(self.name, doc_id, "deleted on the wiki")
            return fail(f"the wiki could not render the page ({e.code}: {e.info})")
        except SourceUnavailable as e:
            if isinstance(e.__cause__, RetryableStatus) and e.__cause__.response.status_code >= 500:
                return fail(f"the wiki fails to render this page: {e}")
            raise
        try:
            content = parse_html(parsed.get("text") or "", drop=DROP)
        except Exception as e:  # noqa: BLE001 - one unreadable page must not stop the sync
            log.exception("page could not be parsed", extra={"source": self.name, "title": title})
            return fail(f"the page's HTML could not be read ({type(e).__name__})")
        sections = tuple(s for s in content.sections if s.text.strip())
        if not sections:
            return fail("the page has no text")
        revisions = page.get("revisions") or [{}]
        updated = revisions[0].get("timestamp")
        ns = page.get("ns", 0)
        return SourceDocument(
            id=doc_id, source=self.name, title=title, url=self.page_url(title), sections=sections,
            updated_at=parse_time_checkpoint(updated) if updated else None,
            acl=self._acl_by_ns.get(ns, self.acl),
            metadata={"namespace": str(ns), "revision": str(parsed.get("revid") or revisions[0].get("revid", ""))},
        )

    def _batched(self, items: Iterable) -> Iterator[Batch]:
        return batched(items, self.batch_size)

    def close(self) -> None:
        self.http.close()
