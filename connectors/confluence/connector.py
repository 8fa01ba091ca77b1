"""Confluence: Cloud (REST v2) and Data Center / Server (REST v1).

- pages of the configured spaces (all spaces when none), following `_links.next`;
- the storage-format body (XHTML with `ac:` macros) turned into text with its headings as sections;
- PDF and DOCX attachments read by the files parsers and added to their page as sections (so the
  page stays one document: one id to prune, one URL to cite);
- changes since a checkpoint by CQL `lastmodified >= now("-Nm")` (relative, so the site's and the
  token owner's time zones do not matter), with an overlap window;
- deletions by listing the ids that still exist (CQL does not return trashed pages);
- Data Center: the page's own read restrictions become its ACL (`group:<name>`, `user:<name>`);
- 429 and 5xx are retried after Retry-After (`connectors.http`).

Document id: `<source>:<page id>` (ids survive renames and moves).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx

from connectors.base import (
    Batch,
    ConnectorFailure,
    Deletion,
    Section,
    SourceDocument,
    SourceUnavailable,
    batched,
    parse_time_checkpoint,
    time_checkpoint,
)
from connectors.files.parsers import ParseError, parse, parse_html
from connectors.http import PoliteClient

log = logging.getLogger(__name__)

ATTACHMENT_TYPES = {"application/pdf": ".pdf",
                    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx"}


def storage_to_sections(storage: str) -> list[Section]:
    """Confluence storage format -> sections. Page headings start at h1 (the title is not in the
    body), so they are shifted one level down to sit under the title like a wiki page's h2s."""
    from bs4 import BeautifulSoup

    storage = re.sub(r"<!\[CDATA\[(.*?)\]\]>", lambda m: _escape(m.group(1)), storage, flags=re.S)
    soup = BeautifulSoup(f"<html><body>{storage}</body></html>", "lxml")
    for tag in soup.find_all(["ac:parameter", "ac:placeholder"]):
        tag.decompose()  # macro settings (language=python, a TOC depth) are not content
    for tag in soup.find_all(["ac:plain-text-body"]):
        tag.name = "pre"
    for tag in soup.find_all(re.compile(r"^h[1-6]$")):
        tag.name = f"h{min(6, int(tag.name[1]) + 1)}"
    return [s for s in parse_html(str(soup)).sections if s.text.strip()]


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class ConfluenceConnector:
    """`LoadConnector`, `PollConnector`, `SlimConnector`, `FetchConnector` over one Confluence site."""

    def __init__(
        self, name: str, url: str, *, spaces: Iterable[str] = (), token: str | None = None, user: str | None = None,
        api: str = "auto", credentials_hint: str = "CONFLUENCE_TOKEN", acl: tuple[str, ...] = (),
        attachments: bool = True, timeout_s: float = 30.0, max_page_bytes: int = 2_000_000,
        max_file_bytes: int = 50_000_000, overlap: timedelta = timedelta(minutes=10), batch_size: int = 25,
        request_interval_s: float = 0.0, attempts: int = 5, backoff_s: float = 1.0, page_limit: int = 100,
    ):
        self.name = name
        self.url = url.rstrip("/")
        self.spaces = [s for s in spaces if s]
        cloud = "atlassian.net" in urlsplit(self.url).netloc
        self.api = ("v2" if cloud else "v1") if api == "auto" else api
        # Cloud serves Confluence under /wiki; a Data Center site's URL already has its context path.
        self.base = self.url if not cloud or self.url.endswith("/wiki") else self.url + "/wiki"
        self.credentials_hint = credentials_hint
        self.acl = tuple(acl)
        self.attachments = attachments
        self.max_page_bytes = max_page_bytes
        self.max_file_bytes = max_file_bytes
        self.overlap = overlap
        self.batch_size = batch_size
        self.page_limit = page_limit
        auth: httpx.Auth | None = None
        headers = {"Accept": "application/json"}
        if token and user:
            auth = httpx.BasicAuth(user, token)  # Cloud: email + API token
        elif token:
            headers["Authorization"] = f"Bearer {token}"  # Data Center: personal access token
        self.http = PoliteClient(timeout_s=timeout_s, attempts=attempts, backoff_s=backoff_s,
                                 interval_s=request_interval_s, headers=headers, auth=auth)
        self._space_ids: dict[str, str] | None = None

    # -- HTTP ---------------------------------------------------------------------------------------
    def _get(self, url: str, params: dict | None = None, *, item: str | None = None) -> dict:
        full = url if url.startswith("http") else self.base + url
        r = self.http.get(full, params=params)
        if r.status_code in (401, 403):
            raise SourceUnavailable(f"Confluence refused the credentials (HTTP {r.status_code}) at {self.url}; "
                                    f"check {self.credentials_hint} (expired or without access?)")
        if r.status_code == 404 and item is None:
            raise SourceUnavailable(f"{full.split('?')[0]} was not found (HTTP 404); check the url "
                                    "(Cloud: https://<site>.atlassian.net, Data Center: with its context path)")
        if r.status_code >= 400:
            raise _ItemError(f"HTTP {r.status_code} for {item or full.split('?')[0]}")
        try:
            return r.json()
        except ValueError:
            raise SourceUnavailable(f"{full.split('?')[0]} did not answer JSON; is {self.url} a Confluence "
                                    "site?") from None

    def _next_url(self, body: dict) -> str | None:
        links = body.get("_links") or {}
        nxt = links.get("next")
        if not nxt:
            return None
        if nxt.startswith("http"):
            return nxt
        site = urlsplit(self.base)
        origin = f"{site.scheme}://{site.netloc}"
        context = urlsplit(links.get("base") or self.base).path.rstrip("/")
        # v2 links carry the context path (/wiki/api/v2/...), v1 links do not (/rest/api/...)
        if context and nxt.startswith(context + "/"):
            return origin + nxt
        return (links.get("base") or self.base).rstrip("/") + nxt

    def _paged(self, path: str, params: dict) -> Iterator[dict]:
        body = self._get(path, params)
        while True:
            yield from body.get("results", [])
            nxt = self._next_url(body)
            if not nxt:
                return
            body = self._get(nxt)

    # -- spaces and listings ----------------------------------------------------------------------
    def space_ids(self) -> dict[str, str]:
        """v2 addresses spaces by id: key -> id."""
        if self._space_ids is None:
            found = {s["key"]: str(s["id"]) for s in self._paged("/api/v2/spaces", {
                "keys": ",".join(self.spaces), "limit": 250} if self.spaces else {"limit": 250})}
            missing = [k for k in self.spaces if k not in found]
            if missing:
                raise SourceUnavailable(f"no Confluence space {', '.join(missing)} at {self.url} (or no access); "
                                        "check sources.<name>.spaces")
            self._space_ids = found
        return self._space_ids

    V1_EXPAND = "body.storage,version,space,restrictions.read.restrictions.group,restrictions.read.restrictions.user"

    def _pages(self, with_body: bool = True) -> Iterator[dict]:
        if self.api == "v2":
            params = {"limit": self.page_limit, **({"body-format": "storage"} if with_body else {})}
            for space_id in self.space_ids().values():
                yield from self._paged(f"/api/v2/spaces/{space_id}/pages", params)
            return
        expand = self.V1_EXPAND if with_body else "version"
        if self.spaces:
            for key in self.spaces:
                yield from self._paged("/rest/api/content", {"spaceKey": key, "type": "page", "status": "current",
                                                             "limit": self.page_limit, "expand": expand})
        else:
            yield from self._paged("/rest/api/content", {"type": "page", "status": "current",
                                                         "limit": self.page_limit, "expand": expand})

    def document_id(self, page_id: str) -> str:
        return f"{self.name}:{page_id}"

    def checkpoint(self) -> str:
        return time_checkpoint(datetime.now(UTC))

    def list_ids(self) -> set[str]:
        return {self.document_id(str(p["id"])) for p in self._pages(with_body=False)}

    def load(self) -> Iterator[Batch]:
        yield from self._batched(self._read(p) for p in self._pages())

    def poll(self, since: str, until: str) -> Iterator[Batch]:
        start = parse_time_checkpoint(since, self.overlap)
        minutes = max(1, math.ceil((datetime.now(UTC) - start).total_seconds() / 60))
        cql = f'lastmodified >= now("-{minutes}m") and type in (page, attachment)'
        if self.spaces:
            cql += " and space in (" + ", ".join(f'"{k}"' for k in self.spaces) + ")"
        page_ids: dict[str, None] = {}
        for hit in self._paged("/rest/api/content/search", {"cql": cql, "limit": self.page_limit,
                                                              "expand": "container"}):
            if hit.get("type") == "attachment":
                container = hit.get("container") or {}
                if container.get("type", "page") == "page" and container.get("id"):
                    page_ids[str(container["id"])] = None
            else:
                page_ids[str(hit["id"])] = None
        yield from self._batched(self._read_ids(page_ids))

    def fetch(self, document_ids: set[str]) -> Iterator[Batch]:
        prefix = f"{self.name}:"
        yield from self._batched(self._read_ids(sorted(i[len(prefix):] for i in document_ids if i.startswith(prefix))))

    def _read_ids(self, page_ids: Iterable[str]) -> Iterator[SourceDocument | ConnectorFailure | Deletion]:
        for page_id in page_ids:
            try:
                if self.api == "v2":
                    page = self._get(f"/api/v2/pages/{page_id}", {"body-format": "storage"}, item=page_id)
                else:
                    page = self._get(f"/rest/api/content/{page_id}", {"expand": self.V1_EXPAND}, item=page_id)
            except _ItemError as e:
                if "HTTP 404" in str(e):
                    yield Deletion(self.name, self.document_id(page_id), "deleted or moved out of reach in Confluence")
                else:
                    yield ConnectorFailure(self.name, page_id, str(e), document_id=self.document_id(page_id))
                continue
            if page.get("status", "current") != "current":
                yield Deletion(self.name, self.document_id(page_id), f"{page.get('status')} in Confluence")
                continue
            if self.spaces and self._space_key(page) not in self.spaces:
                yield Deletion(self.name, self.document_id(page_id), "moved to a space this source does not sync")
                continue
            yield self._read(page)

    def _space_key(self, page: dict) -> str | None:
        if self.api == "v2":
            by_id = {v: k for k, v in self.space_ids().items()}
            return by_id.get(str(page.get("spaceId")))
        return (page.get("space") or {}).get("key")

    # -- one page -----------------------------------------------------------------------------------
    def _read(self, page: dict) -> SourceDocument | ConnectorFailure:
        page_id = str(page["id"])
        title = page.get("title") or page_id
        doc_id = self.document_id(page_id)

        def fail(reason: str) -> ConnectorFailure:
            return ConnectorFailure(self.name, f"{title} ({page_id})", reason, document_id=doc_id)

        storage = ((page.get("body") or {}).get("storage") or {}).get("value") or ""
        if len(storage.encode()) > self.max_page_bytes:
            return fail(f"the page is {len(storage.encode()) / 1e6:.1f} MB, over the "
                        f"{self.max_page_bytes / 1e6:g} MB limit (sources.{self.name}.max_page_mb in config.yaml)")
        try:
            sections = storage_to_sections(storage)
        except Exception as e:  # noqa: BLE001 - one unreadable page must not stop the sync
            log.exception("page could not be parsed", extra={"source": self.name, "page": page_id})
            return fail(f"the page body could not be read ({type(e).__name__})")
        notes: list[str] = []
        if self.attachments:
            try:
                sections += self._attachment_sections(page_id, notes)
            except _ItemError as e:
                notes.append(f"attachments not listed: {e}")
        if not sections:
            return fail("the page has no text" + (f" ({'; '.join(notes)})" if notes else ""))
        version = page.get("version") or {}
        updated = version.get("createdAt") or version.get("when")
        links = page.get("_links") or {}
        return SourceDocument(
            id=doc_id, source=self.name, title=title,
            url=self._web_url(links.get("webui") or f"/pages/viewpage.action?pageId={page_id}"),
            sections=tuple(sections), updated_at=parse_time_checkpoint(updated) if updated else None,
            acl=self._restrictions(page) or self.acl,
            metadata={"space": self._space_key(page) or "", "version": str(version.get("number", "")),
                      **({"skipped_attachments": "; ".join(notes)} if notes else {})},
        )

    def _web_url(self, webui: str) -> str:
        return webui if webui.startswith("http") else self.base + webui

    def _restrictions(self, page: dict) -> tuple[str, ...]:
        """Data Center: the page's own read restrictions (ancestors' are not expanded here)."""
        read = (((page.get("restrictions") or {}).get("read") or {}).get("restrictions") or {})
        groups = [f"group:{g['name']}" for g in (read.get("group") or {}).get("results", []) if g.get("name")]
        users = [f"user:{u.get('username') or u.get('accountId')}" for u in (read.get("user") or {}).get("results", [])
                 if u.get("username") or u.get("accountId")]
        return tuple(groups + users)

    def _attachment_sections(self, page_id: str, notes: list[str]) -> list[Section]:
        if self.api == "v2":
            items = self._paged(f"/api/v2/pages/{page_id}/attachments", {"limit": 100})
        else:
            items = self._paged(f"/rest/api/content/{page_id}/child/attachment", {"limit": 100,
                                                                                  "expand": "version"})
        out: list[Section] = []
        for att in items:
            media = att.get("mediaType") or (att.get("metadata") or {}).get("mediaType") or ""
            name = att.get("title") or "attachment"
            suffix = ATTACHMENT_TYPES.get(media) or ("." + name.rsplit(".", 1)[-1].lower() if "." in name else "")
            if suffix not in (".pdf", ".docx"):
                continue
            size = att.get("fileSize") or (att.get("extensions") or {}).get("fileSize") or 0
            if size and size > self.max_file_bytes:
                notes.append(f"{name}: {size / 1e6:.0f} MB is over the {self.max_file_bytes / 1e6:g} MB limit")
                continue
            link = att.get("downloadLink") or (att.get("_links") or {}).get("download")
            if not link:
                continue
            r = self.http.get(link if link.startswith("http") else self.base + link)
            if r.status_code >= 400:
                notes.append(f"{name}: download failed (HTTP {r.status_code})")
                continue
            try:
                parsed = parse(suffix, r.content)
            except ParseError as e:
                notes.append(f"{name}: {e}")
                continue
            except Exception as e:  # noqa: BLE001
                notes.append(f"{name}: unexpected {type(e).__name__}")
                continue
            for s in parsed.sections:
                if s.text.strip():
                    out.append(Section(f"{name} › {s.heading}" if s.heading else name, s.text))
        return out

    def _batched(self, items: Iterable) -> Iterator[Batch]:
        return batched(items, self.batch_size)

    def close(self) -> None:
        self.http.close()


class _ItemError(Exception):
    """One page or attachment could not be fetched (not the whole source)."""
