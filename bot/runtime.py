"""Builds the parts from settings: index, embedder, generator, answerer, connectors, syncs.

The CLI, the Slack app and the benchmarks all assemble orgbot here, so they cannot drift.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from bot.answering import Answerer
from bot.answering.generator import (
    Generator,
    GeneratorError,
    OpenAICompatibleGenerator,
    TransformersGenerator,
)
from bot.settings import ConfigError, Settings
from connectors.base import LoadConnector
from retrieval.embedding import Embedder
from retrieval.index import DocumentIndex, IndexUnavailable
from retrieval.indexer import Indexer, Progress, SyncReport
from retrieval.state import SyncState

log = logging.getLogger(__name__)


def open_index(settings: Settings, *, create: bool = False, embedding_dim: int | None = None) -> DocumentIndex:
    if settings.retrieval.backend == "elasticsearch":
        from retrieval.elasticsearch import open_elasticsearch_index

        # The mapping's dense_vector dims must be the embedder's real size.
        dim = embedding_dim or make_embedder(settings).dim
        return open_elasticsearch_index(settings.retrieval.elasticsearch, dim, fusion=settings.retrieval.hybrid.params())
    from retrieval.sqlite_index import EmbeddedIndex

    path = settings.index_path
    if not create and not path.exists():
        raise IndexUnavailable(f"No index at {path}. Run: orgbot index")
    h = settings.retrieval.hybrid
    index = EmbeddedIndex(path, fusion=h.params(), field_weights=(h.title_weight, h.heading_weight, 1.0))
    built_by, model = index.embedder_name(), settings.retrieval.embedding_model
    if not create and built_by and built_by != model:
        raise IndexUnavailable(
            f"The index at {path} was built with embedder {built_by!r} but retrieval.embedding_model is {model!r}: "
            f"its vectors cannot be searched with this model. Rebuild it: orgbot index --full "
            f"(or set retrieval.embedding_model back to {built_by!r})")
    return index


def make_embedder(settings: Settings) -> Embedder:
    return Embedder(settings.retrieval.embedding_model, batch_size=settings.retrieval.embedding_batch_size)


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
                                 repetition_penalty=g.repetition_penalty, threads=g.threads)


def make_answerer(settings: Settings, *, generator: Generator | None = None, embedder=None,
                  index: DocumentIndex | None = None, adapter: str | None = "config") -> Answerer:
    generator = generator or make_generator(settings, adapter)
    has_adapter = bool(getattr(generator, "adapter", None))
    few_shot = {"always": True, "never": False}.get(settings.generation.few_shot, not has_adapter)
    r, a = settings.retrieval, settings.answering
    embedder = embedder or make_embedder(settings)
    if index is None:
        dim = embedder.dim if r.backend == "elasticsearch" else None
        index = open_index(settings, embedding_dim=dim)
    return Answerer(
        index, embedder or make_embedder(settings), generator,
        top_k=r.top_k, candidates=r.candidates, min_similarity=r.min_similarity, few_shot=few_shot,
        history_turns=a.history_turns, max_question_chars=a.max_question_chars, bot_name=a.bot_name,
        organisation=a.organisation, language=a.language,
    )


def make_connector(name: str, settings: Settings) -> LoadConnector:
    src = settings.sources.get(name)
    if src is None:
        known = ", ".join(sorted(settings.sources)) or "none"
        raise ConfigError(f"no source named {name!r} in the config (known: {known}); add it under sources:")
    if src.type == "files":
        from connectors.files import FilesConnector
        from connectors.files.connector import DEFAULT_EXCLUDE

        if not src.path:
            raise ConfigError(f"sources.{name}.path is missing: set it to the folder to index")
        return FilesConnector(name, src.path, base_url=src.base_url, max_file_bytes=int(src.max_file_mb * 1e6),
                              acl=tuple(src.acl), exclude=(*DEFAULT_EXCLUDE, *src.exclude))
    if src.type == "mediawiki":
        try:
            from connectors.mediawiki import MediaWikiConnector
        except ImportError as e:
            raise ConfigError(f"sources.{name}.type = mediawiki is not available in this build") from e
        return MediaWikiConnector(name, src.url, timeout_s=src.timeout_s, acl=tuple(src.acl))
    raise ConfigError(f"sources.{name}.type = {src.type!r} is not supported")


class SyncRunner:
    """Runs syncs, one at a time per source, and records their reports.

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
        with self._lock:
            if connector.name in self._running:
                return None
            self._running.add(connector.name)
        try:
            report = Indexer(self.index, self.embedder,
                             target_tokens=self.settings.retrieval.chunk_target_tokens).sync(
                connector, full=full, progress=progress)
            self.state.record(report)
            return report
        finally:
            with self._lock:
                self._running.discard(connector.name)

    def sync_sources(self, names: Sequence[str] | None = None, *, full: bool = False,
                     progress_for: Callable[[str], Progress | None] | None = None) -> list[SyncReport | None]:
        names = list(names or self.settings.sources)
        return [self.sync(make_connector(n, self.settings), full=full,
                          progress=progress_for(n) if progress_for else None) for n in names]
