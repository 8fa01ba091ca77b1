"""Builds the parts from settings: index, embedder, generator, answerer, connectors, syncs.

The CLI, the Slack app and the benchmarks all assemble orgbot here, so they cannot drift.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from bot.answering import Answerer
from bot.answering.answerer import Style
from bot.answering.generator import (
    Generator,
    GeneratorError,
    OpenAICompatibleGenerator,
    TransformersGenerator,
)
from bot.settings import SOURCE_TYPES, ConfigError, Settings
from connectors.base import LoadConnector
from retrieval.acl import AclPolicy, AclRule
from retrieval.embedding import Embedder, ModelNotFound, same_embedder
from retrieval.index import DocumentIndex, IndexUnavailable
from retrieval.indexer import Indexer, Progress, SyncReport
from retrieval.state import SyncState

log = logging.getLogger(__name__)


def open_index(settings: Settings, *, create: bool = False, embedding_dim: int | None = None) -> DocumentIndex:
    if settings.retrieval.backend == "elasticsearch":
        from retrieval.elasticsearch import open_elasticsearch_index

        # The mapping's dense_vector dims must be the embedder's real size.
        dim = embedding_dim or make_embedder(settings).dim
        h = settings.retrieval.hybrid
        return open_elasticsearch_index(settings.retrieval.elasticsearch, dim, fusion=h.params(),
                                        section_penalty=h.section_penalty)
    from retrieval.sqlite_index import EmbeddedIndex

    path = settings.index_path
    if not create and not path.exists():
        raise IndexUnavailable(f"No index at {path}. Run: orgbot index")
    h = settings.retrieval.hybrid
    index = EmbeddedIndex(path, **h.engine_options())
    built_by, model = index.embedder_name(), settings.retrieval.embedding_model
    if not create and built_by and not same_embedder(built_by, model):
        raise IndexUnavailable(
            f"The index at {path} was built with embedder {built_by!r} but retrieval.embedding_model is {model!r}: "
            f"its vectors cannot be searched with this model. Rebuild it: orgbot index --full "
            f"(or set retrieval.embedding_model back to {built_by!r})")
    # An index from before the Tantivy copy, or one whose catch-up was cut short: bring the copy up to date
    # (once; FTS5 serves keyword search whenever it is behind, so a failure here loses nothing).
    index.catch_up_keywords()
    return index


def make_embedder(settings: Settings) -> Embedder:
    r = settings.retrieval
    return Embedder(r.embedding_model, batch_size=r.embedding_batch_size, dtype=r.embedding_dtype)


def make_focus_embedder(settings: Settings) -> Embedder | None:
    """The second embedder that judges which passage answers (`answering.focus_embedder`); it only ranks
    the passages, so it runs in bf16 where the CPU has it natively. Loaded here: a model that is not there is
    told before a question is answered, not after the answer is generated."""
    model = settings.answering.focus_embedder
    if not model:
        return None
    judge = Embedder(model, batch_size=settings.retrieval.embedding_batch_size, dtype="auto",
                     setting="answering.focus_embedder")
    try:
        judge.warm_up()
    except ModelNotFound as e:
        raise ModelNotFound(f"{e} Or set answering.focus_embedder: null to answer without it.") from e
    return judge


def make_generator(settings: Settings, adapter: str | None = "config") -> Generator:
    """`adapter="config"` uses generation.adapter; None or "none" runs the base model."""
    g = settings.generation
    chosen = g.adapter if adapter == "config" else adapter
    if chosen in ("none", ""):
        chosen = None
    if chosen and not Path(chosen).expanduser().exists():
        raise GeneratorError(
            f"generation.adapter = {chosen!r}: no such folder. Train one with `orgbot train`, "
            "or pass --adapter none."
        )
    if g.backend == "openai_compatible":
        tokenizer = None
        if g.openai.mode == "completions":
            from transformers import AutoTokenizer

            from bot.answering.generator import resolve_model

            tokenizer = AutoTokenizer.from_pretrained(resolve_model(g.model, g.cache_dir))
        key = g.openai.api_key.get_secret_value() if g.openai.api_key else None
        return OpenAICompatibleGenerator(g.openai.url, g.openai.model, api_key=key, mode=g.openai.mode,
                                         max_new_tokens=g.max_new_tokens, timeout_s=g.openai.timeout_s,
                                         tokenizer=tokenizer)
    return TransformersGenerator(g.model, adapter=chosen, cache_dir=g.cache_dir, max_new_tokens=g.max_new_tokens,
                                 repetition_penalty=g.repetition_penalty, threads=g.threads, dtype=g.dtype,
                                 output_vocabulary=g.output_vocabulary, decode_weights=g.decode_weights)


_FROM_SETTINGS = object()


def make_answerer(settings: Settings, *, generator: Generator | None = None, embedder=None,
                  index: DocumentIndex | None = None, adapter: str | None = "config",
                  focus_embedder=_FROM_SETTINGS) -> Answerer:
    """`focus_embedder`: a judge already loaded by `make_focus_embedder`, shared by several answerers
    (the eval's arms); by default the one `answering.focus_embedder` names is loaded."""
    judge = make_focus_embedder(settings) if focus_embedder is _FROM_SETTINGS else focus_embedder
    generator = generator or make_generator(settings, adapter)
    has_adapter = bool(getattr(generator, "adapter", None))
    few_shot = {"always": True, "never": False}.get(settings.generation.few_shot, not has_adapter)
    r, a = settings.retrieval, settings.answering
    embedder = embedder or make_embedder(settings)
    if index is None:
        dim = embedder.dim if r.backend == "elasticsearch" else None
        index = open_index(settings, embedding_dim=dim)
    return Answerer(
        index, embedder, generator,
        top_k=r.top_k, candidates=r.candidates, min_similarity=r.min_similarity, few_shot=few_shot,
        history_turns=a.history_turns, max_question_chars=a.max_question_chars, bot_name=a.bot_name,
        organisation=a.organisation, language=a.language, escalation=a.escalation, grounding=a.grounding,
        min_support=a.min_support, answer_similarity=a.answer_similarity, extract_similarity=a.extract_similarity,
        refusal_confidence=a.refusal_confidence, focus_margin=a.focus_margin, focus_rank_weight=a.focus_rank_weight,
        refocus_closeness=a.refocus_closeness, focus_headings=a.focus_headings, sentence_margin=a.sentence_margin,
        unmatched_similarity=a.unmatched_similarity, passages_per_section=r.passages_per_section,
        section_opening=r.section_opening,
        focus_embedder=judge, reranker=r.reranker(judge.embed) if judge is not None else None,
        style=Style(a.style.greeting, a.style.source_line, a.style.sign_off),
    )


def _env(name: str) -> str | None:
    """A variable from the environment, or from `.env` (secrets never live in config.yaml)."""
    value = os.environ.get(name)
    if value is None and Path(".env").exists():
        from dotenv import dotenv_values

        value = dotenv_values(".env").get(name)
    return value or None


def make_connector(name: str, settings: Settings) -> LoadConnector:
    src = settings.sources.get(name)
    if src is None:
        known = ", ".join(sorted(settings.sources)) or "none"
        raise ConfigError(f"no source named {name!r} in the config (known: {known}); add it under sources:")
    overlap = timedelta(minutes=src.overlap_minutes)
    if src.type in ("mediawiki", "confluence") and src.url and not src.url.startswith(("http://", "https://")):
        raise ConfigError(f"sources.{name}.url must start with http:// or https:// (got {src.url!r}), "
                          "e.g. https://wiki.acme.example")
    max_page = int(src.max_page_mb * 1e6)
    if src.type == "files":
        from connectors.files import FilesConnector
        from connectors.files.connector import DEFAULT_EXCLUDE

        if not src.path:
            raise ConfigError(f"sources.{name}.path is missing: set it to the folder to index")
        # sources.<name>.acl and acl_rules are applied by the indexer (`acl_policy`), for every connector
        return FilesConnector(name, src.path, base_url=src.base_url, max_file_bytes=int(src.max_file_mb * 1e6),
                              exclude=(*DEFAULT_EXCLUDE, *src.exclude))
    if src.type == "mediawiki":
        from connectors.mediawiki import MediaWikiConnector

        if not src.url:
            raise ConfigError(f"sources.{name}.url is missing: set it to the wiki's base URL (or its api.php)")
        return MediaWikiConnector(
            name, src.url, namespaces=src.namespaces, namespace_acl=src.namespace_acl,
            username=_env(src.username_env), password=_env(src.password_env),
            credentials_hint=f"{src.username_env} and {src.password_env}", timeout_s=src.timeout_s,
            max_page_bytes=max_page, overlap=overlap, request_interval_s=src.request_interval_s)
    if src.type == "confluence":
        from connectors.confluence import ConfluenceConnector

        if not src.url:
            raise ConfigError(f"sources.{name}.url is missing: set it to the site, e.g. https://acme.atlassian.net")
        user_env = src.username_env if src.username_env != "MEDIAWIKI_USER" else "CONFLUENCE_USER"
        return ConfluenceConnector(
            name, src.url, spaces=src.spaces, token=_env(src.token_env), user=_env(user_env), api=src.api,
            credentials_hint=f"{src.token_env} (and {user_env} on Cloud)",
            attachments=src.attachments, timeout_s=src.timeout_s, max_page_bytes=max_page,
            max_file_bytes=int(src.max_file_mb * 1e6), overlap=overlap, request_interval_s=src.request_interval_s)
    if src.type == "git":
        from connectors.files.connector import DEFAULT_EXCLUDE
        from connectors.git import GitConnector

        repo = src.url or src.path
        if not repo:
            raise ConfigError(f"sources.{name}.url is missing: set it to the repository (URL or local path)")
        return GitConnector(name, repo, workdir=settings.data_path / "git" / name, branch=src.branch,
                            folder=src.folder, url_pattern=src.url_pattern,
                            exclude=(*DEFAULT_EXCLUDE, *src.exclude), max_file_bytes=max_page,
                            timeout_s=max(src.timeout_s, 120))
    raise ConfigError(f"sources.{name}.type = {src.type!r} is not supported; use one of: {', '.join(SOURCE_TYPES)}")


class SourceBusy(Exception):
    """The source is syncing in this process or another one."""


@contextmanager
def source_lock(settings: Settings, name: str) -> Iterator[None]:
    """Held while a source syncs, across processes (`orgbot scheduler` beside `orgbot serve`, two
    replicas on one data dir): `flock` is released by the OS if the process dies."""
    folder = settings.data_path / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    with open(folder / f"sync-{safe}.lock", "a+") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SourceBusy(name) from None
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def acl_policy(name: str, settings: Settings) -> AclPolicy:
    """`sources.<name>.acl_rules` and `.acl`, applied by the indexer to each document of that source."""
    src = settings.sources.get(name)
    if src is None:
        return AclPolicy()
    return AclPolicy([AclRule(r.match, tuple(r.principals)) for r in src.acl_rules], default=tuple(src.acl))


class SyncRunner:
    """Runs syncs, one at a time per source (in this process and across processes sharing the data
    dir), and records their reports and checkpoints.

    A second sync of a source that is already syncing is refused (returns None), not queued.
    """

    def __init__(self, settings: Settings, embedder: Embedder | None = None, index: DocumentIndex | None = None):
        self.settings = settings
        self.embedder = embedder or make_embedder(settings)
        self._index = index
        self.state = SyncState(settings.data_path / "state.db")
        self._running: set[str] = set()
        self._lock = threading.Lock()

    @property
    def index(self) -> DocumentIndex:
        if self._index is None:
            dim = self.embedder.dim if self.settings.retrieval.backend == "elasticsearch" else None
            self._index = open_index(self.settings, create=True, embedding_dim=dim)
        return self._index

    def running(self) -> set[str]:
        with self._lock:
            return set(self._running)

    def sync(self, connector: LoadConnector, *, full: bool = False, progress: Progress | None = None
             ) -> SyncReport | None:
        name = connector.name
        with self._lock:
            if name in self._running:
                return None
            self._running.add(name)
        try:
            with source_lock(self.settings, name):
                saved = self.state.source_state(name)
                report = Indexer(self.index, self.embedder,
                                 target_tokens=self.settings.retrieval.chunk_target_tokens,
                                 acl=acl_policy(connector.name, self.settings)).sync(
                    connector, full=full, checkpoint=saved.checkpoint, retry_ids=saved.retry_ids,
                    progress=progress)
                self.state.record(report)  # the checkpoint moves only now that the index has committed
                return report
        except SourceBusy:
            log.info("sync refused: already running", extra={"source": name})
            return None
        finally:
            close = getattr(connector, "close", None)
            if callable(close):
                close()
            with self._lock:
                self._running.discard(name)

    def sync_sources(self, names: Sequence[str] | None = None, *, full: bool = False,
                     progress_for: Callable[[str], Progress | None] | None = None) -> list[SyncReport | None]:
        names = list(names or self.settings.sources)
        return [self.sync(make_connector(n, self.settings), full=full,
                          progress=progress_for(n) if progress_for else None) for n in names]
