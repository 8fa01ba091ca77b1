"""A small Elasticsearch stand-in for tests: the REST calls orgbot's backend makes, over real HTTP.

Start it on port 0 and point the official client at `fake.url`. Request and response shapes follow
the Elasticsearch REST API reference; scoring is simplified (BM25 per field on a crude English
analyzer, exact kNN by cosine) but the semantics orgbot relies on are kept:

- near-real-time visibility: writes are searchable (and seen by delete_by_query, count, reindex)
  only after a refresh, as on a real cluster;
- aliases, and atomic `POST _aliases`; wildcard deletes refused (`destructive_requires_name`);
- `_bulk` per-item results (created / updated / errors), strict mappings, dense_vector dims;
- `knn` with `filter`, `multi_match` inside `bool` filters, `terms` / `cardinality` / `composite`
  aggregations, `_msearch`, async `_reindex` with `_tasks`;
- the `rrf` retriever refused (403) unless the licence is enterprise or trial;
- the client/server compatibility check: a 9.x client against an 8.x server gets the 400
  `media_type_header_exception` a real 8.x server sends.

Version and flavor (`FakeElasticsearch(version=..., flavor="default" | "serverless")`): what a
given server would refuse, it refuses with the status and error type Elasticsearch sends:
- `index_options.type` before its release (int8_hnsw 8.12, flat / int8_flat 8.13, int4 8.15, bbq 8.16);
- the rrf retriever's window: `window_size` on 8.14, `rank_window_size` from 8.15 (each refuses the other);
- `knn.rescore_vector` before 8.18, `_source.exclude_vectors` before 9.2;
- Serverless: `number_of_shards` / `number_of_replicas` (400), `_cluster/*` and `_tasks/*/_cancel` (410);
  its `version.number` is not a stack version.
Quantized vector types score kNN candidates on quantized copies of the vectors (int8: 127 levels,
int4: 7, bbq: the sign), as Lucene does, so `_score` is only near the cosine unless `rescore_vector` asks
for the float vectors. Tasks (`_reindex`, `_delete_by_query` with `wait_for_completion=false`) run
when polled to completion or when `run_pending_tasks()` says the cluster got to them; a copy into a
deleted index re-creates it with a dynamic mapping, one into a write-blocked index fails.

Every request is recorded in `fake.requests`; `fake.fail(...)`, `fake.hang(...)` and `fake.bulk_item_error`
inject faults.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import math
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

JSON = dict[str, Any]

# Lucene's English stop words (what the `english` analyzer removes).
_STOP = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there these "
    "they this to was will with".split()
)
_BUILTIN_ANALYZERS = {"standard", "simple", "whitespace", "stop", "keyword", "english", "french", "german"}
# index_options.type -> the first release that knows it
_VECTOR_INDEX_TYPES = {"hnsw": (8, 0), "int8_hnsw": (8, 12), "flat": (8, 13), "int8_flat": (8, 13),
                       "int4_hnsw": (8, 15), "int4_flat": (8, 15), "bbq_hnsw": (8, 16), "bbq_flat": (8, 16)}
_HNSW_TYPES = {"hnsw", "int8_hnsw", "int4_hnsw", "bbq_hnsw"}
_QUANTIZED = {"int8_hnsw": 127, "int8_flat": 127, "int4_hnsw": 7, "int4_flat": 7, "bbq_hnsw": 1, "bbq_flat": 1}
_SIMILARITIES = {"cosine", "dot_product", "l2_norm", "max_inner_product"}


class EsError(Exception):
    def __init__(self, status: int, type_: str, reason: str, **extra: Any):
        self.status, self.type, self.reason, self.extra = status, type_, reason, extra
        super().__init__(reason)

    def body(self) -> JSON:
        err = {"type": self.type, "reason": self.reason, **self.extra}
        caused = err.pop("caused_by", None)
        out = {"root_cause": [{"type": self.type, "reason": self.reason, **self.extra}], **err}
        if caused:
            out["caused_by"] = caused
            out["root_cause"][0].pop("caused_by", None)
        return {"error": out, "status": self.status}


def _not_found(name: str) -> EsError:
    return EsError(404, "index_not_found_exception", f"no such index [{name}]", index=name,
                   **{"resource.type": "index_or_alias", "resource.id": name, "index_uuid": "_na_"})


def analyze(text: str, analyzer: str = "english") -> list[str]:
    words = re.findall(r"\w+", str(text).lower())
    if analyzer in ("english", "stop"):
        words = [w for w in words if w not in _STOP]
    if analyzer == "english":
        words = [_stem(w) for w in words]
    return words


def _stem(w: str) -> str:
    for suffix in ("ing", "ed", "s"):
        if w.endswith(suffix) and not w.endswith("ss") and len(w) - len(suffix) >= 3:
            return w[: -len(suffix)]
    return w


def _as_list(x: Any) -> list:
    if x is None:
        return []
    return x if isinstance(x, list) else [x]


@dataclass
class Recorded:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: Any  # parsed JSON, a list for NDJSON, or None

    @property
    def endpoint(self) -> str:
        """The API, e.g. `_bulk`, `_search`, `_aliases`, or `index` for PUT/DELETE/HEAD /{index}."""
        parts = [p for p in self.path.split("/") if p]
        specials = [p for p in parts if p.startswith("_")]
        return specials[0] if specials else ("root" if not parts else "index")


@dataclass
class FakeIndex:
    name: str
    settings: JSON
    mappings: JSON
    docs: dict[str, tuple[int, JSON]] = field(default_factory=dict)  # id -> (seq_no, source): realtime
    visible: dict[str, tuple[int, JSON]] = field(default_factory=dict)  # what searches see (last refresh)
    created: float = field(default_factory=time.time)
    write_blocked: bool = False

    def refresh(self) -> None:
        self.visible = dict(self.docs)

    @property
    def properties(self) -> JSON:
        return self.mappings.get("properties") or {}

    def analyzer_of(self, fieldname: str) -> str:
        return (self.properties.get(fieldname) or {}).get("analyzer", "standard")


class FakeElasticsearch:
    def __init__(self, version: str = "9.1.0", licence: str | None = "basic", cluster_name: str = "fake-cluster",
                 flavor: str = "default"):
        self.version = version
        self.flavor = flavor  # "default" (self-managed, Elastic Cloud Hosted) or "serverless"
        self.licence = licence  # None: the licence API answers 403 (an API key without `monitor`)
        self.cluster_name = cluster_name
        self.can_cancel_tasks = True  # False: the API key lacks the cancel_task / manage cluster privilege
        self._hangs: list[tuple[str, re.Pattern, float, int]] = []
        self.indices: dict[str, FakeIndex] = {}
        self.aliases: dict[str, set[str]] = {}  # alias -> indices
        self.requests: list[Recorded] = []
        self.tasks: dict[str, JSON] = {}
        self.reindex_polls_before_done = 0  # how many _tasks GETs report a reindex "not completed" first
        self.delete_polls_before_done = 0  # ... and a delete_by_query
        self.hung: list[tuple[str, str]] = []  # (method, path) of every request `hang` held back
        self.product_header = True  # False: answer like a server that is not Elasticsearch
        # (index, doc id, source) -> None to accept, or (status, error type, reason) to fail that item;
        # asked for every document a _bulk or _reindex writes.
        self.bulk_item_error: Callable[[str, str, JSON], tuple[int, str, str] | None] | None = None
        self._failures: list[tuple[str, re.Pattern, EsError, int]] = []
        self._seq = itertools.count(1)
        self._task_ids = itertools.count(1)
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> FakeElasticsearch:
        fake = self

        class Handler(_Handler):
            es = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01},
                                        name="fake-es", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeElasticsearch:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def version_tuple(self) -> tuple[int, int]:
        major, minor = self.version.split(".")[:2]
        return int(major), int(minor)

    @property
    def serverless(self) -> bool:
        return self.flavor == "serverless"

    def at_least(self, major: int, minor: int) -> bool:
        """Serverless has every feature; its version number is not a release."""
        return self.serverless or self.version_tuple >= (major, minor)

    def _serverless_unavailable(self, method: str, path: str) -> EsError:
        return EsError(410, "api_not_available_exception",
                       f"Request for uri [{path}] with method [{method}] exists but is not available when running in "
                       "serverless mode")

    # -- test helpers ------------------------------------------------------------------------------
    def fail(self, method: str, path_regex: str, status: int = 500, type_: str = "fake_failure",
             reason: str = "injected by the test", times: int = 1) -> None:
        """The next `times` requests matching method and path answer this error instead."""
        self._failures.append((method.upper(), re.compile(path_regex), EsError(status, type_, reason), times))

    def hang(self, method: str, path_regex: str, seconds: float, times: int = 1000) -> None:
        """The next `times` requests matching method and path wait `seconds` before they are answered
        (a node stuck in GC, a saturated search thread pool)."""
        self._hangs.append((method.upper(), re.compile(path_regex), seconds, times))

    def _hang_for(self, method: str, path: str) -> float:
        with self._lock:
            for i, (m, pattern, seconds, times) in enumerate(self._hangs):
                if m == method and pattern.search(path):
                    if times <= 1:
                        self._hangs.pop(i)
                    else:
                        self._hangs[i] = (m, pattern, seconds, times - 1)
                    self.hung.append((method, path))
                    return seconds
        return 0.0

    def run_pending_tasks(self) -> None:
        """The cluster gets to every task nobody polled to completion (they run on regardless)."""
        with self._lock:
            for task in self.tasks.values():
                self._finish_task(task)

    def calls(self, endpoint: str | None = None, method: str | None = None) -> list[Recorded]:
        return [r for r in self.requests
                if (endpoint is None or r.endpoint == endpoint) and (method is None or r.method == method)]

    def alias_targets(self, alias: str) -> set[str]:
        return set(self.aliases.get(alias, set()))

    def doc_count(self, index: str) -> int:
        return len(self.indices[index].docs)

    # -- dispatch ----------------------------------------------------------------------------------
    def handle(self, method: str, path: str, params: dict[str, str], headers: dict[str, str], body: Any
               ) -> tuple[int, Any]:
        with self._lock:
            self.requests.append(Recorded(method, path, params, headers, body))
            try:
                self._check_compat(headers)
                for i, (m, pattern, err, times) in enumerate(self._failures):
                    if m == method and pattern.search(path):
                        if times <= 1:
                            self._failures.pop(i)
                        else:
                            self._failures[i] = (m, pattern, err, times - 1)
                        raise err
                return self._route(method, path, params, body)
            except EsError as e:
                return e.status, e.body()

    def _check_compat(self, headers: dict[str, str]) -> None:
        if self.serverless:  # serverless answers the 8.x and 9.x clients alike
            return
        for name in ("accept", "content-type"):
            m = re.search(r"compatible-with=(\d+)", headers.get(name, ""))
            if m and int(m.group(1)) not in (self.major, self.major - 1):
                accept = headers.get("accept", "")
                raise EsError(
                    400, "media_type_header_exception", "Invalid media-type value on headers [Accept, Content-Type]",
                    caused_by={"type": "status_exception",
                               "reason": f"Accept version must be either version {self.major} or {self.major - 1}, "
                                         f"but found {m.group(1)}. Accept={accept}"},
                )

    def _route(self, method: str, path: str, params: dict[str, str], body: Any) -> tuple[int, Any]:
        parts = [unquote(p) for p in path.split("/") if p]
        if not parts:
            return (200, None) if method == "HEAD" else (200, self._info())
        head = parts[0]
        if head == "_license" and method == "GET":
            return self._license()
        if head == "_cluster" and self.serverless:
            raise self._serverless_unavailable(method, path)
        if head == "_cluster" and parts[1:2] == ["health"]:
            return 200, self._cluster_health()
        if head == "_bulk":
            return 200, self._bulk(None, body, params)
        if head == "_msearch":
            return 200, self._msearch(None, body)
        if head == "_reindex" and method == "POST":
            return 200, self._reindex(body, params)
        if head == "_tasks" and len(parts) >= 2:
            if len(parts) == 3 and parts[2] == "_cancel":
                return self._cancel_task(parts[1], method, path)
            return self._task(parts[1])
        if head == "_aliases" and method == "POST":
            return 200, self._update_aliases(body)
        if head == "_alias" and len(parts) == 2:
            return self._get_alias_by_name(parts[1], method)
        if head.startswith("_"):
            raise EsError(400, "illegal_argument_exception", f"no handler found for uri [{path}] and method [{method}]")
        index = head
        if len(parts) == 1:
            if method == "PUT":
                return 200, self._create_index(index, body or {})
            if method == "DELETE":
                return 200, self._delete_index(index)
            if method == "HEAD":
                try:
                    self._resolve(index)
                    return 200, None
                except EsError:
                    return 404, None
        api = parts[1] if len(parts) > 1 else ""
        if api == "_bulk":
            return 200, self._bulk(index, body, params)
        if api == "_search":
            return 200, self._search(index, body or {}, params)
        if api == "_msearch":
            return 200, self._msearch(index, body)
        if api == "_count":
            return 200, self._count(index, body or {})
        if api == "_mget":
            return 200, self._mget(index, body or {}, params)
        if api == "_refresh":
            for name in self._resolve(index):
                self.indices[name].refresh()
            return 200, {"_shards": {"total": 1, "successful": 1, "failed": 0}}
        if api == "_delete_by_query" and method == "POST":
            return 200, self._delete_by_query(index, body or {}, params)
        if api == "_settings" and method == "PUT":
            return 200, self._put_settings(index, body or {})
        if api == "_mapping" and method == "GET":
            return 200, {n: {"mappings": self.indices[n].mappings} for n in self._resolve(index)}
        if api == "_mapping" and method in ("PUT", "POST"):
            return 200, self._put_mapping(index, body or {})
        if api in ("_alias", "_aliases") and method in ("GET", "HEAD"):
            return self._get_alias_by_index(index, parts[2] if len(parts) > 2 else None)
        raise EsError(400, "illegal_argument_exception", f"no handler found for uri [{path}] and method [{method}]")

    # -- cluster -----------------------------------------------------------------------------------
    def _info(self) -> JSON:
        return {
            "name": "fake-node-1", "cluster_name": self.cluster_name, "cluster_uuid": "fAkEcLuStErUuId0000000",
            "version": {
                "number": self.version, "build_flavor": self.flavor, "build_type": "docker",
                "build_hash": "0" * 40, "build_date": "2025-01-01T00:00:00.000000000Z", "build_snapshot": False,
                "lucene_version": "10.0.0", "minimum_wire_compatibility_version": "8.18.0",
                "minimum_index_compatibility_version": "8.0.0",
            },
            "tagline": "You Know, for Search",
        }

    def _license(self) -> tuple[int, Any]:
        if self.licence is None:
            raise EsError(403, "security_exception", "action [cluster:monitor/xpack/license/get] is unauthorized")
        return 200, {"license": {
            "status": "active", "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, self.cluster_name)), "type": self.licence,
            "issue_date": "2025-01-01T00:00:00.000Z", "issue_date_in_millis": 1735689600000,
            "max_nodes": 1000, "max_resource_units": None, "issued_to": self.cluster_name,
            "issuer": "elasticsearch", "start_date_in_millis": -1,
        }}

    def _cluster_health(self) -> JSON:
        shards = sum(int(_setting(i.settings, "number_of_shards", 1)) for i in self.indices.values())
        unassigned = sum(int(_setting(i.settings, "number_of_replicas", 1)) * int(_setting(i.settings,
                         "number_of_shards", 1)) for i in self.indices.values())
        return {
            "cluster_name": self.cluster_name, "status": "yellow" if unassigned else "green", "timed_out": False,
            "number_of_nodes": 1, "number_of_data_nodes": 1, "active_primary_shards": shards,
            "active_shards": shards, "relocating_shards": 0, "initializing_shards": 0,
            "unassigned_shards": unassigned, "unassigned_primary_shards": 0, "delayed_unassigned_shards": 0,
            "number_of_pending_tasks": 0, "number_of_in_flight_fetch": 0, "task_max_waiting_in_queue_millis": 0,
            "active_shards_percent_as_number": 100.0 if not unassigned else 100.0 * shards / (shards + unassigned),
        }

    # -- indices and aliases -----------------------------------------------------------------------
    def _resolve(self, expr: str, *, missing_ok: bool = False) -> list[str]:
        out: list[str] = []
        for part in expr.split(","):
            if "*" in part:
                names = [n for n in self.indices if fnmatch.fnmatchcase(n, part)]
                names += [i for a, idx in self.aliases.items() if fnmatch.fnmatchcase(a, part) for i in idx]
                out += names
            elif part in self.aliases:
                out += sorted(self.aliases[part])
            elif part in self.indices:
                out.append(part)
            elif not missing_ok:
                raise _not_found(part)
        return list(dict.fromkeys(out))

    def _put_settings(self, expr: str, body: JSON) -> JSON:
        flat = dict(body.get("index") or {})
        flat.update({k.removeprefix("index."): v for k, v in body.items() if k != "index"})
        for name in self._resolve(expr):
            idx = self.indices[name]
            for key, value in flat.items():
                if key == "blocks.write":
                    idx.write_blocked = value in (True, "true")
                else:
                    idx.settings.setdefault("index", {})[key] = value
        return {"acknowledged": True}

    def _check_writable(self, index: FakeIndex) -> None:
        if index.write_blocked:
            raise EsError(403, "cluster_block_exception",
                          f"index [{index.name}] blocked by: [FORBIDDEN/8/index write (api)];")

    def _write_index(self, expr: str) -> str:
        if expr in self.aliases:
            targets = self.aliases[expr]
            if len(targets) != 1:
                raise EsError(400, "illegal_argument_exception",
                              f"no write index is defined for alias [{expr}]. The write index may be explicitly "
                              "disabled using is_write_index=false or the alias points to multiple indices without "
                              "one being designated as a write index")
            return next(iter(targets))
        if expr in self.indices:
            return expr
        raise _not_found(expr)  # (a real cluster would auto-create it; orgbot never relies on that)

    def _create_index(self, name: str, body: JSON) -> JSON:
        if name in self.indices:
            raise EsError(400, "resource_already_exists_exception", f"index [{name}/{uuid.uuid4().hex[:22]}] already exists",
                          index=name)
        if name in self.aliases:
            raise EsError(400, "invalid_index_name_exception", f"Invalid index name [{name}], already exists as alias",
                          index=name)
        settings = body.get("settings") or {}
        mappings = body.get("mappings") or {}
        if self.serverless:
            for key in ("number_of_shards", "number_of_replicas"):
                if _setting(settings, key, None) is not None:
                    raise EsError(400, "illegal_argument_exception",
                                  f"Settings [index.{key}] are not available when running in serverless mode")
        self._validate_mappings(mappings, settings)
        for alias in body.get("aliases") or {}:
            if alias in self.indices:
                raise EsError(400, "invalid_alias_name_exception",
                              f"Invalid alias name [{alias}]: an index or data stream exists with the same name as the alias")
        self.indices[name] = FakeIndex(name, settings, mappings)
        for alias in body.get("aliases") or {}:
            self.aliases.setdefault(alias, set()).add(name)
        return {"acknowledged": True, "shards_acknowledged": True, "index": name}

    def _validate_mappings(self, mappings: JSON, settings: JSON) -> None:
        custom = set(((settings.get("analysis") or {}).get("analyzer")) or {})
        custom |= set(((settings.get("index") or {}).get("analysis") or {}).get("analyzer") or {})
        for fname, spec in (mappings.get("properties") or {}).items():
            ftype = spec.get("type")
            if ftype == "text":
                analyzer = spec.get("analyzer", "standard")
                if analyzer not in _BUILTIN_ANALYZERS and analyzer not in custom:
                    raise EsError(400, "mapper_parsing_exception",
                                  f"Failed to parse mapping: analyzer [{analyzer}] has not been configured in mappings")
            elif ftype == "dense_vector":
                dims = spec.get("dims")
                if not isinstance(dims, int) or not 1 <= dims <= 4096:
                    raise EsError(400, "mapper_parsing_exception",
                                  f"Failed to parse mapping: The number of dimensions should be in the range [1, 4096] "
                                  f"but was [{dims}]")
                if spec.get("similarity", "cosine") not in _SIMILARITIES:
                    raise EsError(400, "mapper_parsing_exception", f"Unknown similarity [{spec.get('similarity')}]")
                opts = spec.get("index_options") or {}
                since = _VECTOR_INDEX_TYPES.get(opts.get("type"))
                if opts and (since is None or not self.at_least(*since)):
                    raise EsError(400, "mapper_parsing_exception", f"Unknown vector index options type [{opts.get('type')}] "
                                  f"for field [{fname}]")
                if opts.get("type") not in _HNSW_TYPES and ({"m", "ef_construction"} & set(opts)):
                    raise EsError(400, "mapper_parsing_exception",
                                  f"Mapping definition for [{fname}] has unsupported parameters: "
                                  f"[m, ef_construction] for index_options type [{opts.get('type')}]")
            elif ftype not in {"keyword", "integer", "long", "date", "boolean", "float", None}:
                raise EsError(400, "mapper_parsing_exception", f"No handler for type [{ftype}] declared on field [{fname}]")

    def _put_mapping(self, expr: str, body: JSON) -> JSON:
        """New fields only, as Elasticsearch allows on a strict mapping; changing a field's type is refused."""
        names = self._resolve(expr)
        new = body.get("properties") or {}
        for name in names:
            props = self.indices[name].mappings.setdefault("properties", {})
            for fname, spec in new.items():
                if fname in props and props[fname].get("type") != spec.get("type"):
                    raise EsError(400, "illegal_argument_exception",
                                  f"mapper [{fname}] cannot be changed from type [{props[fname].get('type')}] "
                                  f"to [{spec.get('type')}]")
            self._validate_mappings({"properties": new}, self.indices[name].settings)
        for name in names:
            self.indices[name].mappings["properties"].update(new)
        return {"acknowledged": True}

    def _delete_index(self, expr: str) -> JSON:
        for part in expr.split(","):
            if "*" in part or part == "_all":
                raise EsError(400, "illegal_argument_exception",
                              "Wildcard expressions or all indices are not allowed")
            if part in self.aliases:
                raise EsError(400, "illegal_argument_exception",
                              f"The provided expression [{part}] matches an alias, specify the corresponding concrete "
                              "indices instead.")
            if part not in self.indices:
                raise _not_found(part)
        for part in expr.split(","):
            del self.indices[part]
            for alias in list(self.aliases):
                self.aliases[alias].discard(part)
                if not self.aliases[alias]:
                    del self.aliases[alias]
        return {"acknowledged": True}

    def _get_alias_by_name(self, name: str, method: str) -> tuple[int, Any]:
        found: dict[str, JSON] = {}
        for alias, targets in self.aliases.items():
            if fnmatch.fnmatchcase(alias, name):
                for idx in targets:
                    found.setdefault(idx, {"aliases": {}})["aliases"][alias] = {}
        if not found:
            return (404, None) if method == "HEAD" else (404, {"error": f"alias [{name}] missing", "status": 404})
        return (200, None) if method == "HEAD" else (200, found)

    def _get_alias_by_index(self, expr: str, name: str | None) -> tuple[int, Any]:
        out: dict[str, JSON] = {}
        for idx in self._resolve(expr, missing_ok="*" in expr):
            aliases = {a: {} for a, t in self.aliases.items() if idx in t and (name is None or fnmatch.fnmatchcase(a, name))}
            if name is None or aliases:
                out[idx] = {"aliases": aliases}
        return 200, out

    def _update_aliases(self, body: JSON) -> JSON:
        actions = (body or {}).get("actions") or []
        pending: list[tuple[str, str, str]] = []
        for action in actions:
            ((kind, spec),) = action.items()
            if kind not in ("add", "remove"):
                raise EsError(400, "illegal_argument_exception", f"unsupported action [{kind}] in the fake")
            index, alias = spec["index"], spec["alias"]
            if index not in self.indices:
                raise _not_found(index)
            if kind == "add" and alias in self.indices:
                raise EsError(400, "invalid_alias_name_exception",
                              f"Invalid alias name [{alias}]: an index or data stream exists with the same name as the alias")
            if kind == "remove" and index not in self.aliases.get(alias, set()):
                raise EsError(404, "aliases_not_found_exception", f"aliases [{alias}] missing",
                              **{"resource.type": "aliases", "resource.id": alias})
            pending.append((kind, index, alias))
        for kind, index, alias in pending:  # all or nothing, like the real thing
            if kind == "add":
                self.aliases.setdefault(alias, set()).add(index)
            else:
                self.aliases[alias].discard(index)
                if not self.aliases[alias]:
                    del self.aliases[alias]
        return {"acknowledged": True, "errors": False}

    # -- documents ---------------------------------------------------------------------------------
    def _check_document(self, index: FakeIndex, doc_id: str, source: JSON) -> None:
        props = index.properties
        if index.mappings.get("dynamic") in ("strict", "false", False):
            for key in source:
                if key not in props and index.mappings.get("dynamic") == "strict":
                    raise EsError(400, "strict_dynamic_mapping_exception",
                                  f"[1:2] mapping set to strict, dynamic introduction of [{key}] within [_doc] "
                                  "is not allowed")
        for key, spec in props.items():
            if spec.get("type") == "dense_vector" and source.get(key) is not None:
                vec = source[key]
                if len(vec) != spec["dims"]:
                    raise EsError(400, "document_parsing_exception",
                                  f"[1:{len(json.dumps(source))}] failed to parse: The [dense_vector] field [{key}] in doc "
                                  f"[document with id '{doc_id}'] has a different number of dimensions [{len(vec)}] than "
                                  f"defined in the mapping [{spec['dims']}]")
                if spec.get("similarity", "cosine") == "cosine" and not any(vec):
                    raise EsError(400, "document_parsing_exception",
                                  "The [cosine] similarity does not support vectors with zero magnitude. "
                                  f"Preview of invalid vector: {vec[:5]}")

    def _index_doc(self, index: FakeIndex, doc_id: str, source: JSON, op: str) -> JSON:
        self._check_writable(index)
        self._check_document(index, doc_id, source)
        existed = doc_id in index.docs
        if op == "create" and existed:
            raise EsError(409, "version_conflict_engine_exception",
                          f"[{doc_id}]: version conflict, document already exists")
        seq = next(self._seq)
        index.docs[doc_id] = (seq, source)
        return {"_index": index.name, "_id": doc_id, "_version": 1, "result": "updated" if existed else "created",
                "_shards": {"total": 1, "successful": 1, "failed": 0}, "_seq_no": seq, "_primary_term": 1,
                "status": 200 if existed else 201}

    def _bulk(self, path_index: str | None, lines: Any, params: dict[str, str]) -> JSON:
        lines = list(lines or [])
        items: list[JSON] = []
        touched: set[str] = set()
        i = 0
        while i < len(lines):
            action = lines[i]
            ((op, meta),) = action.items()
            i += 1
            source = None
            if op in ("index", "create", "update"):
                source = lines[i]
                i += 1
            name = meta.get("_index") or path_index
            doc_id = str(meta.get("_id") or uuid.uuid4().hex)
            try:
                target = self._write_index(name)
                index = self.indices[target]
                if op in ("index", "create"):
                    if self.bulk_item_error is not None:
                        injected = self.bulk_item_error(target, doc_id, source)
                        if injected is not None:
                            raise EsError(*injected)
                    result = self._index_doc(index, doc_id, source, op)
                elif op == "delete":
                    found = index.docs.pop(doc_id, None) is not None
                    result = {"_index": target, "_id": doc_id, "_version": 1,
                              "result": "deleted" if found else "not_found", "status": 200 if found else 404}
                else:
                    raise EsError(400, "illegal_argument_exception", f"the fake does not do bulk [{op}]")
                touched.add(target)
                items.append({op: result})
            except EsError as e:
                err = e.body()["error"]
                err.pop("root_cause", None)
                items.append({op: {"_index": name, "_id": doc_id, "status": e.status, "error": err}})
        if params.get("refresh") in ("true", "", "wait_for"):
            for name in touched:
                self.indices[name].refresh()
        return {"errors": any("error" in next(iter(it.values())) for it in items), "took": 1, "items": items}

    # -- queries -----------------------------------------------------------------------------------
    def _docs(self, expr: str) -> list[tuple[FakeIndex, str, int, JSON]]:
        out = []
        for name in self._resolve(expr):
            idx = self.indices[name]
            out += [(idx, doc_id, seq, src) for doc_id, (seq, src) in idx.visible.items()]
        return sorted(out, key=lambda d: d[2])  # index order, like Lucene's doc ids

    def _matches(self, q: JSON | None, idx: FakeIndex, doc_id: str, src: JSON, stats: _Bm25Stats) -> float | None:
        """The query's score for this document, or None if it does not match."""
        if not q:
            return 1.0
        ((kind, spec),) = q.items()
        if kind == "match_all":
            return 1.0
        if kind == "match_none":
            return None
        if kind == "term":
            ((fname, value),) = spec.items()
            value = value.get("value") if isinstance(value, dict) else value
            return 1.0 if value in _as_list(src.get(fname)) else None
        if kind == "terms":
            ((fname, values),) = ((k, v) for k, v in spec.items() if k != "boost")
            return 1.0 if set(map(str, _as_list(src.get(fname)))) & set(map(str, values)) else None
        if kind == "ids":
            return 1.0 if doc_id in set(spec.get("values") or []) else None
        if kind == "exists":
            value = src.get(spec["field"])
            return 1.0 if value not in (None, [], "") else None
        if kind in ("multi_match", "match"):
            if kind == "match":
                ((fname, mspec),) = spec.items()
                spec = {"query": mspec.get("query") if isinstance(mspec, dict) else mspec, "fields": [fname]}
            return stats.score(spec, idx, doc_id, src)
        if kind == "bool":
            must = [self._matches(c, idx, doc_id, src, stats) for c in _as_list(spec.get("must"))]
            filt = [self._matches(c, idx, doc_id, src, stats) for c in _as_list(spec.get("filter"))]
            must_not = [self._matches(c, idx, doc_id, src, stats) for c in _as_list(spec.get("must_not"))]
            should = [self._matches(c, idx, doc_id, src, stats) for c in _as_list(spec.get("should"))]
            if any(s is None for s in must + filt) or any(s is not None for s in must_not):
                return None
            default_msm = 0 if (must or filt) else (1 if should else 0)
            msm = int(spec.get("minimum_should_match", default_msm))
            if sum(s is not None for s in should) < msm:
                return None
            score = sum(s for s in must if s is not None) + sum(s for s in should if s is not None)
            return float(score) if (must or should) else 0.0
        raise EsError(400, "parsing_exception", f"unknown query [{kind}]", line=1, col=1)

    def _query_hits(self, docs, query: JSON | None) -> list[tuple[float, tuple]]:
        stats = _Bm25Stats(docs)
        out = []
        for d in docs:
            s = self._matches(query, d[0], d[1], d[3], stats)
            if s is not None:
                out.append((s, d))
        return out

    def _knn_hits(self, docs, knn: JSON) -> list[tuple[float, tuple]]:
        known = {"field", "query_vector", "k", "num_candidates", "filter", "similarity", "boost", "_name",
                 "inner_hits", "query_vector_builder"}
        if self.at_least(8, 18):
            known.add("rescore_vector")
        for key in knn:
            if key not in known:
                raise EsError(400, "x_content_parse_exception", f"[1:2] [knn] unknown field [{key}]")
        k, nc = int(knn.get("k", 10)), int(knn.get("num_candidates", max(int(knn.get("k", 10)) * 3 // 2, 100)))
        if nc < k:
            raise EsError(400, "illegal_argument_exception", "[num_candidates] cannot be less than [k]")
        if nc > 10_000 or k > 10_000:
            raise EsError(400, "illegal_argument_exception", "[num_candidates] cannot exceed [10000]")
        fname = knn["field"]
        qv = [float(x) for x in knn["query_vector"]]
        stats = _Bm25Stats(docs)
        scales: dict[str, float] = {}  # per index: the largest component, the int8/int4 quantization range
        for idx, _, _, src in docs:
            if src.get(fname):
                scales[idx.name] = max(scales.get(idx.name, 0.0), max(abs(x) for x in src[fname]))
        out = []
        for d in docs:
            idx, doc_id, _, src = d
            spec = idx.properties.get(fname) or {}
            if spec.get("type") != "dense_vector":
                raise EsError(400, "illegal_argument_exception", f"[knn] queries are only supported on [dense_vector] "
                              f"fields; field [{fname}] is not")
            if len(qv) != spec["dims"]:
                raise EsError(400, "illegal_argument_exception",
                              f"The query vector has a different number of dimensions [{len(qv)}] than the document "
                              f"vectors [{spec['dims']}].")
            if not any(qv):
                raise EsError(400, "illegal_argument_exception",
                              "The [cosine] similarity does not support vectors with zero magnitude. "
                              f"Preview of invalid vector: {qv[:5]}")
            vec = src.get(fname)
            if vec is None:
                continue
            if any(self._matches(f, idx, doc_id, src, stats) is None for f in _as_list(knn.get("filter"))):
                continue
            levels = _QUANTIZED.get((spec.get("index_options") or {}).get("type", "int8_hnsw" if self.at_least(8, 14)
                                                                             else "hnsw"))
            cos = _cosine(qv, _quantize(vec, levels, scales.get(idx.name, 1.0)) if levels else vec)
            out.append(((1.0 + cos) / 2.0, d))
        out.sort(key=lambda h: (-h[0], h[1][2]))
        rescore = knn.get("rescore_vector")
        if rescore and float(rescore.get("oversample", 0)) > 0:
            # the top k * oversample candidates are scored again on the float vectors
            window = out[: max(k, math.ceil(k * float(rescore["oversample"])))]
            out = [((1.0 + _cosine(qv, d[3][fname])) / 2.0, d) for _, d in window]
            out.sort(key=lambda h: (-h[0], h[1][2]))
        return out[:k]

    def _retriever_hits(self, docs, retriever: JSON, window: int) -> list[tuple[float, tuple]]:
        ((kind, spec),) = retriever.items()
        if kind == "standard":
            hits = self._query_hits(docs, spec.get("query"))
            hits.sort(key=lambda h: (-h[0], h[1][2]))
            return hits[:window]
        if kind == "knn":
            return self._knn_hits(docs, spec)
        if kind == "rrf":
            if not self.at_least(8, 14):
                raise EsError(400, "x_content_parse_exception", "[1:14] unknown field [retriever]")
            if not self.serverless and self.licence not in ("enterprise", "trial"):
                raise EsError(403, "security_exception",
                              "current license is non-compliant for [Reciprocal Rank Fusion (RRF)]",
                              **{"license.expired.feature": "Reciprocal Rank Fusion (RRF)"})
            window_key = "rank_window_size" if self.at_least(8, 15) else "window_size"
            for key in spec:
                if key not in ("retrievers", "rank_constant", window_key, "filter", "min_score", "_name"):
                    raise EsError(400, "x_content_parse_exception", f"[1:30] [rrf] unknown field [{key}]")
            rank_window = int(spec.get(window_key, window))
            constant = int(spec.get("rank_constant", 60))
            fused: dict[tuple[str, str], list] = {}
            for sub in spec["retrievers"]:
                ranked = self._retriever_hits(docs, sub, rank_window)
                for rank, (_, d) in enumerate(ranked[:rank_window], start=1):
                    entry = fused.setdefault((d[0].name, d[1]), [0.0, d])
                    entry[0] += 1.0 / (constant + rank)
            out = [(score, d) for score, d in fused.values()]
            out.sort(key=lambda h: (-h[0], h[1][2]))
            return out
        raise EsError(400, "x_content_parse_exception", f"unknown retriever [{kind}]")

    def _source_filter(self, spec: Any, idx: FakeIndex, src: JSON) -> JSON | None:
        vectors = [f for f, s in idx.properties.items() if s.get("type") == "dense_vector"]
        exclude_vectors = self.at_least(9, 2)
        includes: list[str] | None = None
        excludes: list[str] = []
        if spec is False:
            return None
        if isinstance(spec, str | list):
            includes = _as_list(spec)
        elif isinstance(spec, dict):
            if "exclude_vectors" in spec:
                if not self.at_least(9, 2):
                    raise EsError(400, "x_content_parse_exception", "[1:40] [_source] unknown field [exclude_vectors]")
                exclude_vectors = bool(spec["exclude_vectors"])
            includes = _as_list(spec.get("includes") or spec.get("include")) or None
            excludes = _as_list(spec.get("excludes") or spec.get("exclude"))
        out = {}
        for key, value in src.items():
            if includes is not None and not any(fnmatch.fnmatchcase(key, p) for p in includes):
                continue
            if any(fnmatch.fnmatchcase(key, p) for p in excludes):
                continue
            if exclude_vectors and key in vectors:
                continue
            out[key] = value
        return out

    def _search(self, expr: str, body: JSON, params: dict[str, str] | None = None) -> JSON:
        docs = self._docs(expr)
        size = int(body.get("size", 10))
        start = int(body.get("from", 0))
        if "retriever" in body:
            hits = self._retriever_hits(docs, body["retriever"], size)
        elif body.get("knn"):
            by_key = {(d[0].name, d[1]): d for d in docs}
            scores: dict[tuple[str, str], float] = {}
            for clause in _as_list(body["knn"]):
                for s, d in self._knn_hits(docs, clause):
                    scores[(d[0].name, d[1])] = scores.get((d[0].name, d[1]), 0.0) + s
            if "query" in body:  # a query and knn together: the union, scores summed
                for s, d in self._query_hits(docs, body["query"]):
                    scores[(d[0].name, d[1])] = scores.get((d[0].name, d[1]), 0.0) + s
            hits = [(s, by_key[key]) for key, s in scores.items()]
        else:
            hits = self._query_hits(docs, body.get("query"))
        hits.sort(key=lambda h: (-h[0], h[1][2]))
        matched_docs = [d for _, d in hits]
        page = hits[start: start + size]
        out: JSON = {
            "took": 1, "timed_out": False,
            "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
            "hits": {
                "max_score": page[0][0] if page else None,
                "hits": [
                    {"_index": d[0].name, "_id": d[1], "_score": s,
                     **({"_source": fs} if (fs := self._source_filter(body.get("_source", True), d[0], d[3])) is not None
                        else {})}
                    for s, d in page
                ],
            },
        }
        if body.get("track_total_hits", True) is not False:
            out["hits"]["total"] = {"value": len(hits), "relation": "eq"}
        if body.get("aggs") or body.get("aggregations"):
            agg_docs = matched_docs if ("query" in body or "knn" in body) else [d for d in docs]
            out["aggregations"] = _aggregate(body.get("aggs") or body.get("aggregations"), [d[3] for d in agg_docs])
        return out

    def _msearch(self, path_index: str | None, lines: Any) -> JSON:
        lines = list(lines or [])
        responses = []
        for header, body in zip(lines[0::2], lines[1::2], strict=True):
            index = header.get("index") or path_index
            if isinstance(index, list):
                index = ",".join(index)
            try:
                responses.append({**self._search(index, body), "status": 200})
            except EsError as e:
                responses.append(e.body())
        return {"took": 1, "responses": responses}

    def _mget(self, expr: str, body: JSON, params: dict[str, str]) -> JSON:
        """Documents by id, realtime (what was written, refreshed or not), from one index: an alias over
        several indices is refused, as a real cluster refuses any single-index operation on it."""
        names = self._resolve(expr)
        if len(names) != 1:
            raise EsError(400, "illegal_argument_exception", f"alias [{expr}] has more than one index associated "
                          f"with it {names}, can't execute a single index op")
        idx = self.indices[names[0]]
        spec = params.get("_source", body.get("_source", True))
        if isinstance(spec, str):  # a query parameter: "true", "false" or the fields, comma-separated
            spec = spec == "true" if spec in ("true", "false") else spec.split(",")
        out = []
        for doc_id in body.get("ids", []):
            found = idx.docs.get(doc_id)
            doc: JSON = {"_index": idx.name, "_id": doc_id, "found": found is not None}
            if found is not None:
                source = self._source_filter(spec, idx, found[1])
                doc |= {"_seq_no": found[0], **({} if source is None else {"_source": source})}
            out.append(doc)
        return {"docs": out}

    def _count(self, expr: str, body: JSON) -> JSON:
        docs = self._docs(expr)
        return {"count": len(self._query_hits(docs, body.get("query"))),
                "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0}}

    def _delete_by_query(self, expr: str, body: JSON, params: dict[str, str]) -> JSON:
        docs = self._docs(expr)
        hits = self._query_hits(docs, body.get("query"))  # the snapshot the delete works through
        started = time.time()

        def run() -> JSON:
            deleted = conflicts = 0
            failures = []
            for _, (idx, doc_id, seq, _src) in hits:
                current = idx.docs.get(doc_id)
                if current is None or current[0] != seq:  # changed since the snapshot the search saw
                    conflicts += 1
                    if params.get("conflicts") != "proceed":
                        failures.append({"index": idx.name, "id": doc_id, "status": 409, "cause": {
                            "type": "version_conflict_engine_exception",
                            "reason": f"[{doc_id}]: version conflict, required seqNo [{seq}]"}})
                        break
                    continue
                del idx.docs[doc_id]
                deleted += 1
            if params.get("refresh") in ("true", ""):
                for name in self._resolve(expr, missing_ok=True):
                    self.indices[name].refresh()
            return {"took": int((time.time() - started) * 1000), "timed_out": False, "total": len(hits),
                    "deleted": deleted, "batches": 1, "version_conflicts": conflicts, "noops": 0,
                    "retries": {"bulk": 0, "search": 0}, "throttled_millis": 0, "requests_per_second": -1.0,
                    "throttled_until_millis": 0, "failures": failures}

        if params.get("wait_for_completion") == "false":
            return self._start_task("indices:data/write/delete/byquery", f"delete-by-query [{expr}]", run, len(hits))
        result = run()
        if result["failures"]:
            raise EsError(409, "version_conflict_engine_exception", result["failures"][0]["cause"]["reason"])
        return result

    def _reindex(self, body: JSON, params: dict[str, str]) -> JSON:
        src_spec, dest_spec = body["source"], body["dest"]
        src_expr = ",".join(_as_list(src_spec["index"]))
        dest_name = dest_spec["index"]
        self._write_index(dest_name)
        started = time.time()
        hits = self._query_hits(self._docs(src_expr), src_spec.get("query"))

        def run() -> JSON:
            if dest_name not in self.indices and dest_name not in self.aliases:
                # deleted meanwhile: the copy's bulk writes create it again, with a dynamic mapping
                self.indices[dest_name] = FakeIndex(dest_name, {}, {})
            dest = self._write_index(dest_name)
            created = updated = 0
            failures = []
            for _, (_idx, doc_id, _seq, src) in hits:
                try:
                    if self.bulk_item_error is not None and (injected := self.bulk_item_error(dest, doc_id, src)):
                        raise EsError(*injected)
                    r = self._index_doc(self.indices[dest], doc_id, dict(src), dest_spec.get("op_type", "index"))
                    created += r["result"] == "created"
                    updated += r["result"] == "updated"
                except EsError as e:
                    failures.append({"index": dest, "id": doc_id, "status": e.status,
                                     "cause": {"type": e.type, "reason": e.reason}})
                    if e.type == "cluster_block_exception":
                        break  # a bulk failure aborts the reindex
            if params.get("refresh") in ("true", ""):
                self.indices[dest].refresh()
            return {"took": int((time.time() - started) * 1000), "timed_out": False, "total": len(hits),
                    "updated": updated, "created": created, "deleted": 0, "batches": 1, "version_conflicts": 0,
                    "noops": 0, "retries": {"bulk": 0, "search": 0}, "throttled_millis": 0,
                    "requests_per_second": -1.0, "throttled_until_millis": 0, "failures": failures}

        if params.get("wait_for_completion") == "false":
            return self._start_task("indices:data/write/reindex", f"reindex from [{src_expr}] to [{dest_name}]", run,
                                    len(hits))
        return run()

    # -- tasks -------------------------------------------------------------------------------------
    def _start_task(self, action: str, description: str, run: Callable[[], JSON], total: int) -> JSON:
        task_id = f"fakenode:{next(self._task_ids)}"
        self.tasks[task_id] = {"id": task_id, "action": action, "run": run, "result": None, "total": total,
                               "polls_left": (self.reindex_polls_before_done if action.endswith("reindex")
                                              else self.delete_polls_before_done),
                               "cancelled": False, "description": description, "start": time.time()}
        return {"task": task_id}

    def _finish_task(self, task: JSON) -> None:
        if task["result"] is not None:
            return
        if task["cancelled"]:
            task["result"] = {"total": task["total"], "created": 0, "deleted": 0, "failures": [],
                              "canceled": "by user request", "timed_out": False}
        else:
            task["result"] = task["run"]()

    def _task(self, task_id: str) -> tuple[int, Any]:
        task = self.tasks.get(task_id)
        if task is None:
            raise EsError(404, "resource_not_found_exception", f"task [{task_id}] isn't running and hasn't stored its results")
        node, num = task_id.split(":")
        info = {"node": node, "id": int(num), "type": "transport", "action": task["action"],
                "status": {"total": task["total"]},
                "description": task["description"], "start_time_in_millis": int(task["start"] * 1000),
                "running_time_in_nanos": 1000, "cancellable": True, "cancelled": task["cancelled"], "headers": {}}
        if task["result"] is None and task["polls_left"] > 0 and not task["cancelled"] and not self._blocked(task):
            task["polls_left"] -= 1
            return 200, {"completed": False, "task": info}
        self._finish_task(task)
        return 200, {"completed": True, "task": info, "response": task["result"]}

    def _blocked(self, task: JSON) -> bool:
        """A copy into a write-blocked index fails at its next batch."""
        m = re.search(r"to \[(.+)\]$", task["description"])
        dest = self.indices.get(m.group(1)) if m else None
        return bool(dest and dest.write_blocked)

    def _cancel_task(self, task_id: str, method: str, path: str) -> tuple[int, Any]:
        if self.serverless:
            raise self._serverless_unavailable(method, path)
        if not self.can_cancel_tasks:
            raise EsError(403, "security_exception",
                          "action [cluster:admin/tasks/cancel] is unauthorized for API key id [orgbot] of user "
                          "[orgbot], this action is granted by the cluster privileges [cancel_task,manage,all]")
        task = self.tasks.get(task_id)
        if task is None:
            raise EsError(404, "resource_not_found_exception", f"task [{task_id}] is not found")
        if task["result"] is None:
            task["cancelled"] = True
        return 200, {"nodes": {}, "node_failures": []}


def _setting(settings: JSON, key: str, default: Any) -> Any:
    return (settings.get("index") or {}).get(key, settings.get(key, settings.get(f"index.{key}", default)))


def _quantize(vec: list[float], levels: int, scale: float) -> list[float]:
    """What a quantized index scores with: each component on `levels` steps of the index's range
    (int8, int4), or only its sign (bbq, levels = 1)."""
    if levels == 1:
        return [1.0 if x >= 0 else -1.0 for x in vec]
    scale = scale or 1.0
    return [round(x / scale * levels) * scale / levels for x in vec]


def _cosine(a: list[float], b: list[float]) -> float:
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(x * x for x in b))
    if not na or not nb:
        return 0.0
    return sum(x * y for x, y in zip(a, b, strict=True)) / (na * nb)


class _Bm25Stats:
    """Per-field BM25 over the documents a search sees (k1=1.2, b=0.75, like Lucene)."""

    def __init__(self, docs):
        self.docs = docs
        self._cache: dict[tuple[str, str], tuple[dict[str, list[str]], dict[str, int], float]] = {}

    def _field(self, idx: FakeIndex, fname: str):
        key = (idx.name, fname)
        if key not in self._cache:
            analyzer = idx.analyzer_of(fname)
            tokens = {d[1]: analyze(d[3].get(fname) or "", analyzer) for d in self.docs if d[0] is idx}
            df: dict[str, int] = {}
            for toks in tokens.values():
                for t in set(toks):
                    df[t] = df.get(t, 0) + 1
            avgdl = (sum(len(t) for t in tokens.values()) / len(tokens)) if tokens else 1.0
            self._cache[key] = (tokens, df, avgdl or 1.0)
        return self._cache[key]

    def score(self, spec: JSON, idx: FakeIndex, doc_id: str, src: JSON) -> float | None:
        fields = []
        for f in spec.get("fields") or ["*"]:
            name, _, boost = f.partition("^")
            fields.append((name, float(boost or 1.0)))
        per_field = []
        for fname, boost in fields:
            if (idx.properties.get(fname) or {}).get("type") != "text":
                continue
            tokens, df, avgdl = self._field(idx, fname)
            terms = analyze(spec.get("query", ""), idx.analyzer_of(fname))
            doc_tokens = tokens.get(doc_id, [])
            n = len(tokens)
            s = 0.0
            for t in terms:
                tf = doc_tokens.count(t)
                if not tf:
                    continue
                idf = math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
                s += idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * len(doc_tokens) / avgdl))
            if s > 0:
                per_field.append(s * boost)
        if not per_field:
            return None
        if spec.get("type", "best_fields") == "most_fields":
            return sum(per_field)
        best = max(per_field)
        return best + float(spec.get("tie_breaker", 0.0)) * (sum(per_field) - best)


def _aggregate(aggs: JSON, docs: list[JSON]) -> JSON:
    out: JSON = {}
    for name, spec in aggs.items():
        sub = spec.get("aggs") or spec.get("aggregations")
        kind = next(k for k in spec if k not in ("aggs", "aggregations", "meta"))
        body = spec[kind]
        if kind == "terms":
            groups: dict[Any, list[JSON]] = {}
            for d in docs:
                for v in _as_list(d.get(body["field"])):
                    groups.setdefault(v, []).append(d)
            ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), str(kv[0])))
            size = int(body.get("size", 10))
            buckets = [{"key": k, "doc_count": len(ds), **(_aggregate(sub, ds) if sub else {})}
                       for k, ds in ordered[:size]]
            out[name] = {"doc_count_error_upper_bound": 0,
                         "sum_other_doc_count": sum(len(ds) for _, ds in ordered[size:]), "buckets": buckets}
        elif kind == "cardinality":
            out[name] = {"value": len({json.dumps(v) for d in docs for v in _as_list(d.get(body["field"]))})}
        elif kind == "composite":
            sources = [next(iter(s.items())) for s in body["sources"]]  # (name, {"terms": {"field"}})
            combos: dict[tuple, int] = {}
            for d in docs:
                values = [_as_list(d.get(spec_["terms"]["field"])) for _, spec_ in sources]
                for combo in itertools.product(*values):
                    combos[combo] = combos.get(combo, 0) + 1
            keys = sorted(combos)
            after = body.get("after")
            if after:
                after_t = tuple(after[n] for n, _ in sources)
                keys = [k for k in keys if k > after_t]
            page = keys[: int(body.get("size", 10))]
            buckets = [{"key": dict(zip([n for n, _ in sources], k, strict=True)), "doc_count": combos[k]} for k in page]
            out[name] = {"buckets": buckets}
            if buckets:
                out[name]["after_key"] = buckets[-1]["key"]
        else:
            raise EsError(400, "parsing_exception", f"the fake does not do [{kind}] aggregations")
    return out


class _Handler(BaseHTTPRequestHandler):
    es: FakeElasticsearch
    protocol_version = "HTTP/1.1"  # keep-alive, like a real node
    disable_nagle_algorithm = True  # headers and body go out as separate writes

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        url = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        body: Any = None
        if raw:
            text = raw.decode("utf-8")
            if "ndjson" in headers.get("content-type", ""):
                body = [json.loads(line) for line in text.splitlines() if line.strip()]
            else:
                body = json.loads(text)
        delay = self.es._hang_for(self.command, url.path)
        if delay:
            time.sleep(delay)
        status, payload = self.es.handle(self.command, url.path, params, headers, body)
        data = b"" if payload is None or self.command == "HEAD" else json.dumps(payload).encode()
        try:
            self.send_response(status)
            if self.es.product_header:
                self.send_header("X-Elastic-Product", "Elasticsearch")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if data:
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting (a timeout)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve
