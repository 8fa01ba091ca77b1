"""A local Confluence for tests: the endpoints the connector uses, with payloads shaped after
Atlassian's published REST reference (Cloud v2 under /wiki, Data Center v1 under a context path),
cursor/start pagination through `_links.next`, CQL `lastmodified >= now("-Nm")`, auth, and 429s
with Retry-After on demand. Port 0, one thread per request."""

from __future__ import annotations

import base64
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlencode, urlsplit


@dataclass
class Page:
    id: str
    space: str
    title: str
    body: str
    version: int = 1
    modified: datetime = field(default_factory=lambda: datetime.now(UTC))
    status: str = "current"
    groups: list[str] = field(default_factory=list)  # read restrictions
    users: list[str] = field(default_factory=list)
    attachments: list[dict] = field(default_factory=list)


class FakeConfluence:
    def __init__(self, *, context: str = "/wiki", token: str = "good-token", user: str | None = None,
                 limit_cap: int = 2):
        self.context = context
        self.token, self.user = token, user
        self.limit_cap = limit_cap  # the server caps page sizes, so pagination always happens
        self.spaces = {"ENG": "98306", "HR": "98307"}
        self.pages: dict[str, Page] = {}
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        self.throttle: dict[str, int] = {}  # path prefix -> how many 429s to answer first
        self.retry_after = "1"
        self._next_id = 65600
        handler = type("Handler", (_Handler,), {"fake": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{self.context}"

    def __enter__(self) -> FakeConfluence:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- content, as people change it ----------------------------------------------------------
    def add(self, space: str, title: str, body: str, **kw) -> Page:
        with self.lock:
            self._next_id += 1
            page = Page(str(self._next_id), space, title, body, **kw)
            self.pages[page.id] = page
            return page

    def edit(self, page: Page, body: str) -> None:
        page.body, page.version, page.modified = body, page.version + 1, datetime.now(UTC)

    def trash(self, page: Page) -> None:
        page.status, page.modified = "trashed", datetime.now(UTC)

    def attach(self, page: Page, name: str, media_type: str, data: bytes) -> None:
        att_id = f"att{len(self.files) + 1}"
        self.files[att_id] = data
        page.attachments.append({"id": att_id, "title": name, "mediaType": media_type, "fileSize": len(data),
                                 "modified": datetime.now(UTC)})


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class _Handler(BaseHTTPRequestHandler):
    fake: FakeConfluence
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, status: int, body, headers: dict | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream" if isinstance(body, bytes) else "application/json")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        auth = self.headers.get("Authorization", "")
        f = self.fake
        if f.user:
            expected = "Basic " + base64.b64encode(f"{f.user}:{f.token}".encode()).decode()
            return auth == expected
        return auth == f"Bearer {f.token}"

    def do_GET(self):  # noqa: N802
        f = self.fake
        url = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        f.requests.append(url.path)
        for prefix, n in list(f.throttle.items()):
            if url.path.startswith(prefix) and n > 0:
                f.throttle[prefix] = n - 1
                return self._send(429, {"message": "Rate limit exceeded"}, {"Retry-After": f.retry_after})
        if not self._authorized():
            return self._send(401, {"statusCode": 401, "message": "Unauthorized; scope does not match"})
        if not url.path.startswith(f.context + "/"):
            return self._send(404, {"message": "not found"})
        path = url.path[len(f.context):]
        routes = [
            (r"/api/v2/spaces", self.v2_spaces),
            (r"/api/v2/spaces/(\d+)/pages", self.v2_space_pages),
            (r"/api/v2/pages/(\d+)", self.v2_page),
            (r"/api/v2/pages/(\d+)/attachments", self.v2_attachments),
            (r"/rest/api/content", self.v1_content),
            (r"/rest/api/content/search", self.v1_search),
            (r"/rest/api/content/(\d+)", self.v1_page),
            (r"/rest/api/content/(\d+)/child/attachment", self.v1_attachments),
            (r"/download/attachments/(\d+)/(att\d+)", self.download),
        ]
        for pattern, handler in routes:
            m = re.fullmatch(pattern, path)
            if m:
                return handler(q, *m.groups())
        return self._send(404, {"message": f"no route {path}"})

    # -- helpers ---------------------------------------------------------------------------------
    def _page_of(self, items: list, q: dict, path: str, *, cursor: bool) -> tuple[list, dict]:
        f = self.fake
        limit = min(int(q.get("limit", 25)), f.limit_cap)
        start = int(q.get("cursor" if cursor else "start", 0))
        chunk = items[start:start + limit]
        links = {"base": f"http://127.0.0.1:{f.server.server_address[1]}{f.context}"}
        if start + limit < len(items):
            nq = {**q, ("cursor" if cursor else "start"): str(start + limit), "limit": str(limit)}
            # v2 links carry the context path, v1 links are relative to the context (as Atlassian's are)
            links["next"] = (f.context if cursor else "") + path + "?" + urlencode(nq)
        if not cursor:
            links["context"] = f.context
        return chunk, links

    def _current(self, space: str | None = None) -> list[Page]:
        return sorted((p for p in self.fake.pages.values()
                       if p.status == "current" and (space is None or p.space == space)), key=lambda p: int(p.id))

    def _v2(self, p: Page, body: bool) -> dict:
        d = {"id": p.id, "status": p.status, "title": p.title, "spaceId": self.fake.spaces[p.space],
             "parentType": "page", "version": {"number": p.version, "createdAt": _iso(p.modified),
                                               "minorEdit": False, "authorId": "5b10ac8d82e05b22cc7d4ef5"},
             "_links": {"webui": f"/spaces/{p.space}/pages/{p.id}/{quote(p.title, safe='').replace('%20', '+')}",
                        "tinyui": f"/x/{p.id}"}}
        if body:
            d["body"] = {"storage": {"representation": "storage", "value": p.body}}
        return d

    def _v1(self, p: Page, expand: str) -> dict:
        d = {"id": p.id, "type": "page", "status": p.status, "title": p.title,
             "_links": {"webui": f"/display/{p.space}/{quote(p.title, safe='').replace('%20', '+')}",
                        "self": f"{self.fake.url}/rest/api/content/{p.id}"}}
        if "space" in expand:
            d["space"] = {"key": p.space, "name": p.space, "type": "global"}
        if "version" in expand:
            d["version"] = {"number": p.version, "when": _iso(p.modified)}
        if "body.storage" in expand:
            d["body"] = {"storage": {"value": p.body, "representation": "storage"}}
        if "restrictions" in expand:
            d["restrictions"] = {"read": {"operation": "read", "restrictions": {
                "user": {"results": [{"type": "known", "username": u} for u in p.users], "size": len(p.users)},
                "group": {"results": [{"type": "group", "name": g} for g in p.groups], "size": len(p.groups)}}}}
        return d

    # -- v2 ----------------------------------------------------------------------------------------
    def v2_spaces(self, q):
        keys = q.get("keys", "").split(",") if q.get("keys") else list(self.fake.spaces)
        items = [{"id": self.fake.spaces[k], "key": k, "name": k, "type": "global", "status": "current"}
                 for k in keys if k in self.fake.spaces]
        chunk, links = self._page_of(items, q, "/api/v2/spaces", cursor=True)
        self._send(200, {"results": chunk, "_links": links})

    def v2_space_pages(self, q, space_id):
        key = next(k for k, v in self.fake.spaces.items() if v == space_id)
        items = [self._v2(p, q.get("body-format") == "storage") for p in self._current(key)]
        chunk, links = self._page_of(items, q, f"/api/v2/spaces/{space_id}/pages", cursor=True)
        self._send(200, {"results": chunk, "_links": links})

    def v2_page(self, q, page_id):
        p = self.fake.pages.get(page_id)
        if p is None or p.status != "current":
            return self._send(404, {"errors": [{"status": 404, "code": "NOT_FOUND", "title": "Not Found"}]})
        self._send(200, self._v2(p, q.get("body-format") == "storage"))

    def v2_attachments(self, q, page_id):
        p = self.fake.pages[page_id]
        items = [{"id": a["id"], "status": "current", "title": a["title"], "mediaType": a["mediaType"],
                  "fileSize": a["fileSize"], "pageId": p.id,
                  "downloadLink": f"/download/attachments/{p.id}/{a['id']}?version=1&api=v2",
                  "webuiLink": f"/pages/viewpageattachments.action?pageId={p.id}"} for a in p.attachments]
        chunk, links = self._page_of(items, q, f"/api/v2/pages/{page_id}/attachments", cursor=True)
        self._send(200, {"results": chunk, "_links": links})

    # -- v1 ----------------------------------------------------------------------------------------
    def v1_content(self, q):
        items = [self._v1(p, q.get("expand", "")) for p in self._current(q.get("spaceKey"))]
        chunk, links = self._page_of(items, q, "/rest/api/content", cursor=False)
        self._send(200, {"results": chunk, "start": int(q.get("start", 0)), "limit": len(chunk),
                         "size": len(chunk), "_links": links})

    def v1_page(self, q, page_id):
        p = self.fake.pages.get(page_id)
        if p is None or p.status != "current":
            return self._send(404, {"statusCode": 404, "message": f"No content found with id: {page_id}"})
        self._send(200, self._v1(p, q.get("expand", "")))

    def v1_attachments(self, q, page_id):
        p = self.fake.pages[page_id]
        items = [{"id": a["id"], "type": "attachment", "status": "current", "title": a["title"],
                  "metadata": {"mediaType": a["mediaType"]},
                  "extensions": {"mediaType": a["mediaType"], "fileSize": a["fileSize"]},
                  "_links": {"download": f"/download/attachments/{p.id}/{a['id']}?version=1&api=v2"}}
                 for a in p.attachments]
        chunk, links = self._page_of(items, q, f"/rest/api/content/{page_id}/child/attachment", cursor=False)
        self._send(200, {"results": chunk, "start": int(q.get("start", 0)), "limit": len(chunk),
                         "size": len(chunk), "_links": links})

    def v1_search(self, q):
        cql = q.get("cql", "")
        m = re.search(r'lastmodified >= now\("-(\d+)m"\)', cql)
        if not m:
            return self._send(400, {"statusCode": 400, "message": f"Could not parse cql : {cql}"})
        since = datetime.now(UTC) - timedelta(minutes=int(m.group(1)))
        spaces = re.findall(r'"(\w+)"', cql.split("space in", 1)[1]) if "space in" in cql else None
        hits = []
        for p in sorted(self.fake.pages.values(), key=lambda p: int(p.id)):
            if p.status != "current" or (spaces and p.space not in spaces):
                continue
            if p.modified >= since:
                hits.append(self._v1(p, "space,version"))
            for a in p.attachments:
                if a["modified"] >= since and "attachment" in cql:
                    hits.append({"id": a["id"], "type": "attachment", "title": a["title"],
                                 "container": {"id": p.id, "type": "page", "title": p.title}})
        chunk, links = self._page_of(hits, q, "/rest/api/content/search", cursor=False)
        self._send(200, {"results": chunk, "start": int(q.get("start", 0)), "limit": len(chunk),
                         "size": len(chunk), "_links": links})

    def download(self, q, page_id, att_id):
        self._send(200, self.fake.files[att_id])
