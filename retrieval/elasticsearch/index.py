"""`DocumentIndex` on Elasticsearch: hybrid BM25 + kNN behind an alias, zero-downtime rebuilds.

Readers always go through the alias (`orgbot-chunks`), which points at one versioned index
(`orgbot-chunks-v000003`). A plain `update()` writes through the alias. `update(replace_source=X)`
builds the next versioned index (every other source copied over with the reindex API, X written
by the block), checks its chunk count, and moves the alias in one `_aliases` call; until then the
old index serves, and if anything fails the half-built index is deleted and the alias stays put.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from elasticsearch import ApiError, AuthorizationException, Elasticsearch, NotFoundError, helpers

from retrieval.config import ElasticsearchSettings
from retrieval.elasticsearch import queries
from retrieval.elasticsearch.connection import (
    CLIENT_VERSION,
    ServerInfo,
    api_error_text,
    make_client,
    read_server,
    search_options,
    submit_options,
    translate_errors,
)
from retrieval.elasticsearch.mapping import (
    QUANTIZED_TYPES,
    SOURCE_FIELDS,
    VECTOR_FIELD,
    from_hit,
    index_body,
    mapping_dims,
    missing_fields,
    section_chunks,
    to_document,
    unit_vector,
    unsupported_vector_type,
)
from retrieval.fusion import PLAIN_RRF, FusionParams, fuse
from retrieval.index import IndexUnavailable, SearchMode, iter_batches
from retrieval.types import Chunk, IndexStats, Query, ScoredChunk

log = logging.getLogger(__name__)

TERMS_BATCH = 1000  # document ids per terms query / delete_by_query
CARDINALITY_PRECISION = 40_000  # the maximum; counts below it are exact in practice
STOP_GRACE = 60.0  # seconds to wait for a timed-out task to stop before leaving its index alone
SEARCH_UNAVAILABLE = "Search is unavailable: "


class IndexWriteError(RuntimeError):
    """Some chunks were not written. `failures` holds every one: (chunk id, HTTP status, reason)."""

    def __init__(self, failures: list[tuple[str, int | None, str]], attempted: int, target: str):
        self.failures = failures
        shown = "; ".join(f"{cid} ({status}: {reason})" for cid, status, reason in failures[:5])
        more = f"; and {len(failures) - 5} more" if len(failures) > 5 else ""
        super().__init__(f"{len(failures)} of {attempted} chunks were not written to {target}: {shown}{more}")


class ReindexError(RuntimeError):
    """A rebuild did not pass its checks; the alias still points at the previous index."""


@dataclass
class _Update:
    target: str  # the alias (plain update) or the versioned index being built (rebuild)
    dims: int  # vector dims the target holds
    rebuild_source: str | None = None
    previous: list[str] = field(default_factory=list)  # indices behind the alias when the rebuild began
    expected: int = 0  # chunks the rebuilt index must hold: copied + created - deleted
    written: set[str] = field(default_factory=set)  # documents written in this block
    unrefreshed: set[str] = field(default_factory=set)  # ... and not yet visible to searches
    dirty: bool = False


class ElasticsearchIndex:
    """`DocumentIndex` on an Elasticsearch 8.x / 9.x cluster. Cheap to construct: connects on first use.

    Safe to search from many threads while one writes (writes are serialised by a lock).
    """

    def __init__(self, settings: ElasticsearchSettings, embedding_dim: int, *, client: Elasticsearch | None = None,
                 fusion: FusionParams | None = None, section_penalty: float = 0.0):
        if client is None and not settings.url:
            raise IndexUnavailable(
                "retrieval.backend is elasticsearch but no URL is set. "
                "Set ELASTICSEARCH_URL (e.g. https://localhost:9200) or retrieval.elasticsearch.url."
            )
        self.settings = settings
        self.alias = settings.index_alias
        self.dim = int(embedding_dim)
        self._client = client
        self._owns_client = client is None
        self._server: ServerInfo | None = None
        self._connect_lock = threading.Lock()
        self._write_lock = threading.RLock()
        self._local = threading.local()
        self._native_failed = False
        self._fusion_warned = False
        self.fusion = fusion  # client-side fusion (retrieval.hybrid); None = plain RRF
        # The kNN list re-ranked by cosine − section_penalty × ln(chunks in the section), as the embedded
        # engine ranks it (client fusion only; the cosine stays `vector_score`).
        self.section_penalty = section_penalty
        self._exact_warned = False
        self._keep: set[str] = set()  # half-built indices a task that would not stop may still write to

    def __repr__(self) -> str:
        return f"ElasticsearchIndex(url={self.settings.url!r}, alias={self.alias!r})"

    # -- connection ------------------------------------------------------------------------------
    @property
    def client(self) -> Elasticsearch:
        """The indexing client (request_timeout, retries); the interactive one inside `_interactive()`."""
        override = getattr(self._local, "client", None)
        return override if override is not None else self._base_client()

    def _base_client(self) -> Elasticsearch:
        if self._client is None:
            with self._connect_lock:
                if self._client is None:
                    self._client = make_client(self.settings)
        return self._client

    @contextmanager
    def _interactive(self) -> Iterator[None]:
        """Requests in this block are ones a person waits on (a question, a status check): they use
        `search_timeout`, and one that timed out is not sent again."""
        if getattr(self._local, "client", None) is not None:
            yield
            return
        self._local.client = search_options(self._base_client(), self.settings)
        try:
            yield
        finally:
            self._local.client = None

    def _ready(self) -> ServerInfo:
        if self._server is None:
            client = self.client
            with self._connect_lock:
                if self._server is None:
                    self._server = read_server(client)
                    log.info("connected to elasticsearch", extra={
                        "url": self.settings.url, "version": self._server.version,
                        "licence": self._server.licence, "client": CLIENT_VERSION,
                    })
        return self._server

    def fusion_path(self) -> str:
        """"native" when configured and the licence allows the rrf retriever, else "client"."""
        if self.settings.fusion != "native":
            return "client"
        if self.fusion not in (None, PLAIN_RRF):  # the rrf retriever cannot weight its lists
            if not self._fusion_warned:
                self._fusion_warned = True
                log.warning("native rrf is plain RRF; fusing in orgbot with retrieval.hybrid", extra={
                    "method": self.fusion.method, "bm25_weight": self.fusion.bm25_weight})
            return "client"
        server = self._ready()
        if server.native_rrf_allowed and not self._native_failed:
            return "native"
        if not self._fusion_warned:
            self._fusion_warned = True
            log.warning("native rrf unavailable, fusing in orgbot", extra={
                "licence": server.licence, "version": server.version,
                "needs": "Elasticsearch 8.14+ with an enterprise or trial licence",
            })
        return "client"

    def close(self) -> None:
        if self._client is not None and self._owns_client:
            self._client.close()
            self._client = None
            self._server = None

    # -- the update block ------------------------------------------------------------------------
    def _state(self) -> _Update | None:
        return getattr(self._local, "update", None)

    @contextmanager
    def update(self, replace_source: str | None = None) -> Iterator[None]:
        st = self._state()
        if st is not None:  # nested: part of the enclosing block
            if replace_source:
                with translate_errors(self.settings):
                    self._delete_source(st, replace_source)
            yield
            return
        with self._write_lock:
            with translate_errors(self.settings):
                st = self._begin_rebuild(replace_source) if replace_source else self._begin_plain()
            self._local.update = st
            try:
                yield
            except BaseException:
                self._local.update = None
                if st.rebuild_source is not None:
                    self._discard(st.target)
                raise
            self._local.update = None
            with translate_errors(self.settings):
                if st.rebuild_source is None:
                    if st.dirty:  # read-after-write for the next caller
                        self.client.indices.refresh(index=st.target)
                else:
                    self._finish_rebuild(st)

    def _begin_plain(self) -> _Update:
        live = self._live_index(create=True)
        assert live is not None
        return _Update(target=self.alias, dims=live[1] or self.dim)

    def _begin_rebuild(self, source: str) -> _Update:
        live = self._live_index(create=False)
        previous = [live[0]] if live else []
        new = self._next_index_name()
        self._create_index(new)
        try:
            copied = 0
            if live:
                if live[1] is not None and live[1] != self.dim:
                    others = self._count(live[0], {"bool": {"must_not": [{"term": {"source": source}}]}})
                    if others:
                        raise ValueError(
                            f"{live[0]} holds {live[1]}-d vectors but the embedder makes {self.dim}-d ones, and "
                            f"{others} chunks of other sources cannot be copied across. Rebuild every source into a "
                            "new alias: set retrieval.elasticsearch.index_alias to a new name and run "
                            "orgbot index --full"
                        )
                copied = self._copy_other_sources(live[0], new, source)
            log.info("rebuild started", extra={"alias": self.alias, "index": new, "source": source,
                                                "previous": previous, "copied": copied})
            return _Update(target=new, dims=self.dim, rebuild_source=source, previous=previous, expected=copied)
        except BaseException:
            self._discard(new)
            raise

    def _finish_rebuild(self, st: _Update) -> None:
        new = st.target
        try:
            self.client.indices.refresh(index=new)
            actual = self._count(new)
            if actual != st.expected:
                raise ReindexError(
                    f"the rebuilt index {new} holds {actual} chunks but {st.expected} were written or copied; "
                    f"the alias {self.alias} still points at {', '.join(st.previous) or 'nothing'}"
                )
            actions: list[dict[str, Any]] = [{"remove": {"index": old, "alias": self.alias}} for old in st.previous]
            actions.append({"add": {"index": new, "alias": self.alias}})
            self.client.indices.update_aliases(actions=actions)  # one call: readers never see a gap
        except BaseException:
            self._discard(new)
            raise
        log.info("alias swapped", extra={"alias": self.alias, "index": new, "previous": st.previous,
                                         "chunks": st.expected, "source": st.rebuild_source})
        self._prune_old_indices(new)

    def _discard(self, index: str) -> None:
        """Delete a half-built index, unless the alias points at it (a swap that timed out but happened)
        or a copy into it would not stop (deleting it would let the copy re-create it)."""
        if index in self._keep:
            return
        try:
            if index in self._alias_holders():
                log.error("not deleting the index behind the alias", extra={"index": index, "alias": self.alias})
                return
            self.client.indices.delete(index=index)
            log.info("deleted half-built index", extra={"index": index})
        except Exception as e:  # noqa: BLE001 - the original error matters more; the next rebuild prunes it
            log.warning("could not delete half-built index", extra={"index": index, "error": str(e)})

    def _prune_old_indices(self, live: str) -> None:
        """Keep the `keep_old_indices` newest older versions (for rollback); delete the rest."""
        try:
            versions = self._versioned_indices()
            holders = self._alias_holders()
            live_seq = versions.get(live, 0)
            # Only older versions: a higher one may be another process's build in progress.
            older = sorted((seq, name) for name, seq in versions.items() if seq < live_seq and name not in holders)
            doomed = [name for _, name in older[: max(0, len(older) - self.settings.keep_old_indices)]]
            for name in doomed:
                self.client.indices.delete(index=name)  # by name: clusters refuse wildcard deletes
            if doomed:
                log.info("deleted old indices", extra={"alias": self.alias, "deleted": doomed})
        except Exception as e:  # noqa: BLE001 - the swap is done; pruning again next time is harmless
            log.warning("could not delete old indices", extra={"alias": self.alias, "error": str(e)})

    # -- indices and the alias -------------------------------------------------------------------
    def _live_index(self, *, create: bool) -> tuple[str, int | None] | None:
        """(index behind the alias, its vector dims), creating the first versioned index if asked."""
        try:
            mappings = dict(self.client.indices.get_mapping(index=self.alias))
        except NotFoundError:
            if not create:
                return None
            first = self._next_index_name()
            try:
                self._create_index(first, alias=True)
                log.info("created index", extra={"alias": self.alias, "index": first, "dims": self.dim})
                return first, self.dim
            except ApiError as e:  # another process may have created it first: read what it made
                err = e.body.get("error") if isinstance(e.body, dict) else None
                if not (isinstance(err, dict) and err.get("type") == "resource_already_exists_exception"):
                    raise
            mappings = dict(self.client.indices.get_mapping(index=self.alias))
        if list(mappings) == [self.alias]:
            raise IndexUnavailable(
                f"{self.settings.url} has an index named {self.alias!r}, the name orgbot uses for its alias. "
                "Delete or rename that index, or set retrieval.elasticsearch.index_alias to another name."
            )
        if len(mappings) != 1:
            raise IndexUnavailable(
                f"the alias {self.alias!r} points at {len(mappings)} indices ({', '.join(sorted(mappings))}); orgbot "
                "writes through it and needs exactly one. Remove the extra ones with POST _aliases."
            )
        name, mapping = next(iter(mappings.items()))
        missing = missing_fields(mapping) if create else {}
        if missing:
            # An index from before orgbot stored these fields: its strict mapping would refuse them.
            self.client.indices.put_mapping(index=name, properties=missing)
            log.info("added fields to the index mapping", extra={"index": name, "fields": sorted(missing)})
        return name, mapping_dims(mapping)

    def _alias_holders(self) -> set[str]:
        try:
            return set(self.client.indices.get_alias(name=self.alias))
        except NotFoundError:
            return set()

    def _versioned_indices(self) -> dict[str, int]:
        pattern = re.compile(rf"^{re.escape(self.alias)}-v(\d+)$")
        try:
            found = self.client.indices.get_alias(index=f"{self.alias}-v*")
        except NotFoundError:
            return {}
        return {name: int(m.group(1)) for name in found if (m := pattern.match(name))}

    def _next_index_name(self) -> str:
        return f"{self.alias}-v{max(self._versioned_indices().values(), default=0) + 1:06d}"

    def _create_index(self, name: str, *, alias: bool = False) -> None:
        server = self._ready()
        problem = unsupported_vector_type(self.settings.vector_index_type, server)
        if problem:
            raise IndexUnavailable(problem)
        body = index_body(self.settings, self.dim, serverless=server.serverless)
        kwargs: dict[str, Any] = {"index": name, "settings": body["settings"], "mappings": body["mappings"]}
        if alias:
            kwargs["aliases"] = {self.alias: {}}
        self.client.indices.create(**kwargs)

    def _copy_other_sources(self, old: str, new: str, source: str) -> int:
        """Copy every chunk not of `source` into `new` with the reindex API; returns how many."""
        resp = submit_options(self.client).reindex(
            source={"index": old, "query": {"bool": {"must_not": [{"term": {"source": source}}]}}},
            dest={"index": new},
            wait_for_completion=False,
            refresh=True,
        )
        task_id = resp["task"]
        task = self._wait_task(task_id, self.settings.reindex_timeout)
        if task is None:
            self._stop_task(task_id, new)
            raise ReindexError(
                f"copying the other sources from {old} took over {self.settings.reindex_timeout:.0f}s "
                "(retrieval.elasticsearch.reindex_timeout); the alias was not moved"
            )
        if task.get("error"):
            err = task["error"]
            raise ReindexError(f"copying the other sources from {old} failed: {err.get('type')}: {err.get('reason')}")
        result = task.get("response") or {}
        failures = result.get("failures") or []
        if failures or result.get("timed_out"):
            first = failures[0] if failures else {}
            cause = (first.get("cause") or {}).get("reason", "timed out")
            raise ReindexError(
                f"copying the other sources from {old} failed for {len(failures) or 'some'} chunks "
                f"(first: {first.get('id')}: {cause}); the alias was not moved"
            )
        total, created = int(result.get("total", 0)), int(result.get("created", 0))
        if created != total:
            raise ReindexError(f"copied {created} of {total} chunks from {old}; the alias was not moved")
        return created

    # -- writes ----------------------------------------------------------------------------------
    def upsert(self, chunks: Sequence[Chunk]) -> None:
        if not chunks:
            return
        with translate_errors(self.settings), self.update():
            st = self._state()
            assert st is not None
            # upsert gets every chunk of a document at once, so a section's chunks are all here
            sizes = Counter((c.document_id, c.heading) for c in chunks)
            docs = self._documents(chunks, st, sizes)
            by_doc: dict[str, list[Chunk]] = {}
            for c in chunks:
                by_doc.setdefault(c.document_id, []).append(c)
            # Old chunks can only be there for documents the target may already hold: a rebuilt
            # source starts empty (the copy left it out), so its first write of a document needs
            # no delete. Document ids are namespaced by source ("wiki:..."), so ids do not collide.
            maybe_present = [
                d for d, cs in by_doc.items()
                if not (cs[0].source == st.rebuild_source and d not in st.written)
            ]
            if st.unrefreshed.intersection(maybe_present):
                self._refresh(st)  # delete_by_query only sees refreshed chunks
            created = self._bulk(st.target, chunks, docs)
            deleted = 0
            for part in iter_batches(maybe_present, TERMS_BATCH):
                keep = [c.id for d in part for c in by_doc[d]]
                stale = {"bool": {"filter": [{"terms": {"document_id": list(part)}}],
                                  "must_not": [{"ids": {"values": keep}}]}}
                # A task (and its record in .tasks) only when there is something to delete: most
                # changed documents keep their chunk ids.
                if self._count(st.target, stale):
                    deleted += self._delete_by_query(st.target, stale)
            st.expected += created - deleted
            st.written.update(by_doc)
            st.unrefreshed.update(by_doc)
            st.dirty = True

    def delete_documents(self, doc_ids: Iterable[str]) -> int:
        ids = sorted(set(doc_ids))
        if not ids:
            return 0
        removed = 0
        with translate_errors(self.settings), self.update():
            st = self._state()
            assert st is not None
            if st.unrefreshed.intersection(ids):
                self._refresh(st)
            for part in iter_batches(ids, TERMS_BATCH):
                where = {"terms": {"document_id": list(part)}}
                present = self._count_documents(st.target, where)
                if present:
                    st.expected -= self._delete_by_query(st.target, where)
                    removed += present
            st.unrefreshed.update(ids)  # deletes are not visible to the next delete_by_query either
            st.dirty = True
        return removed

    def _delete_source(self, st: _Update, source: str) -> None:
        self._refresh(st)
        st.expected -= self._delete_by_query(st.target, {"term": {"source": source}})
        self._refresh(st)

    def _refresh(self, st: _Update) -> None:
        self.client.indices.refresh(index=st.target)
        st.unrefreshed.clear()
        st.dirty = False

    def _documents(self, chunks: Sequence[Chunk], st: _Update, sizes: Counter) -> list[dict[str, Any]]:
        docs = []
        for c in chunks:
            if c.embedding is None:
                raise ValueError(f"chunk {c.id} has no embedding; embed chunks before upserting")
            dims = int(np.asarray(c.embedding).reshape(-1).shape[0])
            if dims != st.dims:
                raise ValueError(
                    f"chunk {c.id} has a {dims}-d embedding but the Elasticsearch index holds {st.dims}-d vectors; "
                    "after changing the embedding model, rebuild with: orgbot index --full"
                )
            vector = unit_vector(c.embedding)
            if vector is None:
                raise ValueError(f"chunk {c.id} has an all-zero embedding, which cosine similarity cannot index")
            docs.append(to_document(c, vector, sizes[(c.document_id, c.heading)]))
        return docs

    def _bulk(self, target: str, chunks: Sequence[Chunk], docs: list[dict[str, Any]]) -> int:
        """Index `docs` with streaming_bulk; returns how many were new. Raises if any item failed."""
        s = self.settings
        actions = (
            {"_op_type": "index", "_index": target, "_id": c.id, "_source": d} for c, d in zip(chunks, docs, strict=True)
        )
        created = 0
        failures: list[tuple[str, int | None, str]] = []
        for ok, item in helpers.streaming_bulk(
            self.client, actions, chunk_size=s.bulk_chunk_size, max_retries=s.bulk_max_retries,
            initial_backoff=s.bulk_initial_backoff, max_backoff=s.bulk_max_backoff,
            raise_on_error=False, raise_on_exception=True, yield_ok=True,
        ):
            result = next(iter(item.values()), {}) if isinstance(item, dict) else {}
            if ok:
                created += result.get("result") == "created"
            else:
                failures.append((str(result.get("_id")), result.get("status"), _reason(result.get("error"))))
        if failures:
            for cid, status, reason in failures[:20]:
                log.error("chunk not indexed", extra={"index": target, "chunk": cid, "status": status, "reason": reason})
            raise IndexWriteError(failures, len(docs), target)
        return created

    def _delete_by_query(self, index: str, query: dict[str, Any]) -> int:
        """Run a delete_by_query as a task and follow it (like the reindex): a long delete cannot
        time out client-side, and it is never sent twice. Returns how many chunks it deleted."""
        resp = submit_options(self.client).delete_by_query(index=index, query=query, wait_for_completion=False)
        task_id = resp["task"]
        task = self._wait_task(task_id, self.settings.delete_timeout)
        if task is None:
            self._stop_task(task_id, None)
            raise RuntimeError(
                f"delete_by_query on {index} (task {task_id}) took over {self.settings.delete_timeout:.0f}s "
                "(retrieval.elasticsearch.delete_timeout); the sync stopped here and the next one finishes the job"
            )
        if task.get("error"):
            raise RuntimeError(f"delete_by_query on {index} failed: {_reason(task['error'])}")
        result = task.get("response") or {}
        if result.get("failures"):
            first = result["failures"][0]
            raise RuntimeError(f"delete_by_query on {index} failed: {_reason(first.get('cause'))}")
        if result.get("canceled") or result.get("timed_out"):
            raise RuntimeError(f"delete_by_query on {index} did not finish: {result.get('canceled') or 'timed out'}")
        return int(result.get("deleted", 0))

    # -- server-side tasks -----------------------------------------------------------------------
    def _tasks_api(self, call: str, **kwargs: Any) -> Any:
        with warnings.catch_warnings():
            # The client marks the tasks API "technical preview"; it has been stable for years.
            warnings.filterwarnings("ignore", message="This API is in technical preview")
            return getattr(self.client.tasks, call)(**kwargs)

    def _wait_task(self, task_id: str, timeout: float) -> dict[str, Any] | None:
        """The task's record once it completed, or None if it still runs after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            task = dict(self._tasks_api("get", task_id=task_id))
            if task.get("completed"):
                return task
            if time.monotonic() > deadline:
                return None
            time.sleep(min(delay, max(0.0, deadline - time.monotonic()) + 0.01))
            delay = min(delay * 2, 2.0)

    def _stop_task(self, task_id: str, writes_to: str | None) -> None:
        """Stop a task that ran too long. Cancelling needs the `cancel_task` (or `manage`) cluster
        privilege, which Serverless does not offer at all; so a copy into `writes_to` is also stopped
        by a write block on that index: its next batch fails and the task ends. Only then may the
        index be deleted, or the copy would re-create it with a dynamic mapping."""
        try:
            self._tasks_api("cancel", task_id=task_id)
        except ApiError as e:
            log.warning("could not cancel the task", extra={
                "task": task_id, "error": api_error_text(e),
                "hint": "the API key needs the cancel_task cluster privilege to cancel it"})
        if writes_to is None:
            return
        try:
            self.client.indices.put_settings(index=writes_to, settings={"index.blocks.write": True})
        except ApiError as e:
            log.warning("could not block writes to the half-built index", extra={"index": writes_to,
                                                                                  "error": api_error_text(e)})
        grace = min(STOP_GRACE, max(1.0, self.settings.reindex_timeout))
        try:
            stopped = self._wait_task(task_id, grace) is not None
        except Exception as e:  # noqa: BLE001 - not knowing means assuming it still runs
            log.warning("could not follow the task after stopping it", extra={"task": task_id, "error": str(e)})
            stopped = False
        if not stopped:
            self._keep.add(writes_to)
            log.error("a timed-out copy is still running; its index is left in place, write-blocked", extra={
                "task": task_id, "index": writes_to,
                "hint": f"when GET _tasks/{task_id} shows completed, delete the index {writes_to}"})

    # -- reads -----------------------------------------------------------------------------------
    def _read_target(self) -> str:
        """The alias; inside an update, this thread reads its own writes (like the embedded engine)."""
        st = self._state()
        if st is None:
            return self.alias
        if st.dirty:
            self._refresh(st)
        return st.target

    def _search_body(self, index: str, body: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return dict(self.client.search(index=index, body=body))
        except NotFoundError:  # no index yet: nothing indexed
            return None

    def _count(self, index: str, query: dict[str, Any] | None = None) -> int:
        try:
            resp = self.client.count(index=index, query=query)
        except NotFoundError:
            return 0
        return int(resp["count"])

    def _count_documents(self, index: str, query: dict[str, Any]) -> int:
        resp = self._search_body(index, {
            "size": 0, "track_total_hits": False, "query": query,
            "aggs": {"docs": {"cardinality": {"field": "document_id", "precision_threshold": CARDINALITY_PRECISION}}},
        })
        return int(resp["aggregations"]["docs"]["value"]) if resp else 0

    def _composite(self, source: str, fields: Sequence[str]) -> Iterator[dict[str, Any]]:
        target = self._read_target()
        after: dict[str, Any] | None = None
        while True:
            composite: dict[str, Any] = {"size": 1000, "sources": [{f: {"terms": {"field": f}}} for f in fields]}
            if after:
                composite["after"] = after
            resp = self._search_body(target, {
                "size": 0, "track_total_hits": False,
                "query": {"bool": {"filter": [{"term": {"source": source}}]}},
                "aggs": {"docs": {"composite": composite}},
            })
            if resp is None:
                return
            agg = resp["aggregations"]["docs"]
            for bucket in agg["buckets"]:
                yield bucket["key"]
            after = agg.get("after_key")
            if not agg["buckets"] or not after:
                return

    def document_ids(self, source: str) -> set[str]:
        with translate_errors(self.settings):
            return {key["document_id"] for key in self._composite(source, ["document_id"])}

    def document_hashes(self, source: str) -> dict[str, str]:
        with translate_errors(self.settings):
            return {key["document_id"]: key["content_hash"]
                    for key in self._composite(source, ["document_id", "content_hash"])}

    def stats(self) -> IndexStats:
        with translate_errors(self.settings):
            return self._stats(self._read_target())

    def _stats(self, index: str) -> IndexStats:
        resp = self._search_body(index, {
            "size": 0, "track_total_hits": False,
            "aggs": {"sources": {
                "terms": {"field": "source", "size": 10_000},
                "aggs": {"docs": {"cardinality": {"field": "document_id",
                                                  "precision_threshold": CARDINALITY_PRECISION}}},
            }},
        })
        buckets = resp["aggregations"]["sources"]["buckets"] if resp else []
        per = {b["key"]: (int(b["docs"]["value"]), int(b["doc_count"])) for b in buckets}
        return IndexStats(
            documents=sum(d for d, _ in per.values()), chunks=sum(c for _, c in per.values()), per_source=per
        )

    def chunks(self, ids: Sequence[str]) -> list[Chunk]:
        """`ChunkLookup`: the chunks with these ids, in one multi-get (chunks are written with their id as _id)."""
        ids = list(dict.fromkeys(ids))
        if not ids:
            return []
        with translate_errors(self.settings, SEARCH_UNAVAILABLE), self._interactive():
            try:
                resp = self.client.mget(index=self._read_target(), ids=ids, source=SOURCE_FIELDS)
            except NotFoundError:  # no index yet
                return []
            return [from_hit(d) for d in resp["docs"] if d.get("found")]

    def search(self, query: Query, k: int, mode: SearchMode = "hybrid") -> list[ScoredChunk]:
        """Bounded in time: every request uses `search_timeout` and a timed-out one is not sent again,
        so a cluster that hangs gives `IndexUnavailable("Search is unavailable: ...")` within seconds."""
        if k <= 0 or (query.sources is not None and not list(query.sources)):
            return []
        with translate_errors(self.settings, SEARCH_UNAVAILABLE), self._interactive():
            return self._search(query, k, mode)

    def _search(self, query: Query, k: int, mode: SearchMode) -> list[ScoredChunk]:
        target = self._read_target()
        n = max(query.candidates, k)
        flt = queries.filters(query)
        text = queries.query_words(query.text) if mode in ("hybrid", "bm25") else ""
        vector = None
        if mode in ("hybrid", "vector") and query.vector is not None:
            vector = unit_vector(query.vector)  # None for a zero vector: cosine is undefined
            if vector is not None and len(vector) != self.dim:
                raise ValueError(f"query vector has {len(vector)} dims but this index was opened for "
                                 f"{self.dim}-d embeddings (open_elasticsearch_index(settings, embedding_dim))")
        # Quantized vectors give an approximate cosine; the answerer's min_similarity needs the real
        # one: rescored by the server where it can (8.18+), recomputed from the float vectors otherwise.
        quantized = vector is not None and self.settings.vector_index_type in QUANTIZED_TYPES
        rescore = quantized and self._ready().vector_rescore_supported
        if mode == "hybrid" and text and vector is not None and self.fusion_path() == "native":
            native = self._search_native(target, text, vector, flt, k, n, rescore=rescore)
            if native is not None:
                return native
        named: list[tuple[str, dict[str, Any]]] = []
        if text:
            named.append(("bm25", queries.bm25_body(text, flt, n, self.settings)))
        if vector is not None:
            named.append(("vector", queries.knn_body(vector, flt, n, self.settings, rescore=rescore)))
        if not named:
            return []
        hits = dict(zip([name for name, _ in named], self._msearch(target, [b for _, b in named]), strict=True))
        bm25 = [ScoredChunk(from_hit(h), float(h["_score"])) for h in hits.get("bm25", [])]
        # kNN _score for cosine is (1 + cos) / 2; callers want the cosine itself.
        vec = [ScoredChunk(from_hit(h), cos, vector_score=cos)
               for h in hits.get("vector", []) for cos in [2.0 * float(h["_score"]) - 1.0]]
        if self.section_penalty and vec:
            vec = self._penalise_long_sections(vec, hits["vector"])
        if mode == "bm25":
            return [ScoredChunk(c.chunk, c.score, bm25_rank=i, bm25_score=c.score) for i, c in enumerate(bm25[:k], 1)]
        if mode == "vector":
            out = [ScoredChunk(c.chunk, c.score, vector_rank=i, vector_score=c.vector_score)
                   for i, c in enumerate(vec[:k], 1)]
        else:
            out = fuse(bm25, vec, k, self.fusion)
        if quantized and not rescore:
            out = self._exact_cosines(target, out, vector, mode)
        return out

    def _penalise_long_sections(self, vec: list[ScoredChunk], hits: list[dict[str, Any]]) -> list[ScoredChunk]:
        """The kNN candidates ranked by cosine − section_penalty × ln(section size), the cosine kept as
        `vector_score` (the embedded engine's ranking, applied to the candidates the cluster returned)."""
        ranked = [ScoredChunk(c.chunk, c.score - self.section_penalty * math.log(section_chunks(h)),
                              vector_score=c.vector_score) for c, h in zip(vec, hits, strict=True)]
        return sorted(ranked, key=lambda c: -c.score)

    def _exact_cosines(self, index: str, results: list[ScoredChunk], vector: list[float], mode: SearchMode
                       ) -> list[ScoredChunk]:
        """Replace the approximate cosines of the returned hits by the exact ones, computed from their
        stored float vectors (one small request for the k hits, on servers without `rescore_vector`)."""
        wanted = [r.chunk.id for r in results if r.vector_score is not None]
        if not wanted:
            return results
        source: dict[str, Any] = {"includes": [VECTOR_FIELD]}
        if self._ready().vectors_excluded_from_source:
            source["exclude_vectors"] = False
        resp = self._search_body(index, {"size": len(wanted), "query": {"ids": {"values": wanted}},
                                         "_source": source, "track_total_hits": False})
        q = np.asarray(vector, dtype=np.float64)
        exact: dict[str, float] = {}
        for hit in (resp or {}).get("hits", {}).get("hits", []):
            unit = unit_vector((hit.get("_source") or {}).get(VECTOR_FIELD) or [])
            if unit is not None:
                exact[str(hit["_id"])] = float(np.dot(q, unit))
        if len(exact) < len(wanted) and not self._exact_warned:
            self._exact_warned = True  # e.g. 9.2+ behind a key that cannot read the version: no vectors back
            log.warning("stored vectors not returned; similarity scores stay approximate", extra={
                "index": index, "asked": len(wanted), "got": len(exact),
                "hint": "give the API key `monitor` so orgbot can read the server version"})
        out = []
        for r in results:
            cos = exact.get(r.chunk.id) if r.vector_score is not None else None
            if cos is not None:  # in vector mode the score is the cosine less the long-section penalty
                r = dataclasses.replace(r, vector_score=cos,
                                        score=cos - (r.vector_score - r.score) if mode == "vector" else r.score)
            out.append(r)
        if mode == "vector":  # ranked by the exact cosine, like the embedded engine
            out.sort(key=lambda r: -r.score)
            out = [dataclasses.replace(r, vector_rank=i) for i, r in enumerate(out, 1)]
        return out

    def _msearch(self, index: str, bodies: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """Both retrievers in one round trip; a missing index reads as empty."""
        searches: list[dict[str, Any]] = []
        for body in bodies:
            searches += [{"index": index}, body]
        try:
            resp = self.client.msearch(searches=searches)
        except NotFoundError:
            return [[] for _ in bodies]
        out = []
        for r in resp["responses"]:
            if "error" in r:
                err = r["error"] if isinstance(r["error"], dict) else {"reason": r["error"]}
                if err.get("type") == "index_not_found_exception":
                    out.append([])
                    continue
                status = int(r.get("status") or 500)
                message = f"{status} {err.get('type')}: {_reason(err)}"
                if status in (502, 503, 504):
                    raise IndexUnavailable(f"Elasticsearch at {self.settings.url} could not search ({message}). "
                                           "Check `GET _cluster/health`.")
                raise RuntimeError(f"Elasticsearch rejected the search on {index}: {message}")
            out.append(r["hits"]["hits"])
        return out

    def _search_native(self, index: str, text: str, vector: list[float], flt: list[dict[str, Any]], k: int, n: int,
                       *, rescore: bool = False) -> list[ScoredChunk] | None:
        """The server's rrf retriever; None (and client fusion from then on) if the licence refuses it."""
        server = self._ready()
        body = queries.rrf_body(text, vector, flt, k, n, self.settings,
                                vectors_in_source=server.vectors_excluded_from_source,
                                window_param=server.rrf_window_param, rescore=rescore)
        try:
            resp = self._search_body(index, body)
        except AuthorizationException as e:
            if "licen" not in str(e.body).lower():
                raise
            self._native_failed = True
            log.warning("rrf retriever refused by the licence, fusing in orgbot",
                        extra={"reason": api_error_text(e)})
            return None
        if resp is None:
            return []
        q = np.asarray(vector, dtype=np.float64)
        out = []
        for hit in resp["hits"]["hits"]:
            emb = (hit.get("_source") or {}).get(VECTOR_FIELD)
            unit = unit_vector(emb) if emb else None
            cosine = float(np.dot(q, unit)) if unit is not None else None
            out.append(ScoredChunk(from_hit(hit), float(hit["_score"]), vector_score=cosine))
        return out

    # -- health ----------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """For `orgbot status`: the cluster, the index behind the alias, counts, licence, fusion path.

        Raises `IndexUnavailable` (with the URL and what to check) when the cluster cannot be used.
        """
        with translate_errors(self.settings), self._interactive():
            server = self._server = read_server(self.client)  # fresh: the licence may have changed
            # Serverless has no _cluster APIs (410): the service is its own health.
            cluster = {} if server.serverless else dict(self.client.cluster.health())
            live = self._live_index(create=False)
            stats = self._stats(self.alias) if live else IndexStats(0, 0, {})
            versions = self._versioned_indices()
            live_seq = versions.get(live[0], 0) if live else 0
            rollback = sorted((n for n, s in versions.items() if s < live_seq), reverse=True)
            return {
                "backend": "elasticsearch",
                "url": self.settings.url,
                "cluster_name": server.cluster_name,
                "cluster_status": cluster.get("status"),
                "server_version": "serverless" if server.serverless else server.version,
                "client_version": CLIENT_VERSION,
                "licence": server.licence,
                "fusion": self.fusion_path(),
                "fusion_configured": self.settings.fusion,
                "alias": self.alias,
                "index": live[0] if live else None,
                "embedding_dims": live[1] if live else None,
                "rollback_indices": rollback,
                "documents": stats.documents,
                "chunks": stats.chunks,
                "per_source": {s: {"documents": d, "chunks": c} for s, (d, c) in stats.per_source.items()},
            }


def _reason(error: Any) -> str:
    if isinstance(error, dict):
        caused = error.get("caused_by") or {}
        reason = error.get("reason") or error.get("type") or "unknown error"
        if caused.get("reason"):
            reason = f"{reason} ({caused['reason']})"
        return f"{error.get('type', 'error')}: {reason}" if error.get("type") else str(reason)
    return str(error)


def open_elasticsearch_index(settings: ElasticsearchSettings, embedding_dim: int,
                             fusion: FusionParams | None = None, section_penalty: float = 0.0) -> ElasticsearchIndex:
    """The Elasticsearch `DocumentIndex` for these settings; connects on first use, not here."""
    return ElasticsearchIndex(settings, embedding_dim, fusion=fusion, section_penalty=section_penalty)
