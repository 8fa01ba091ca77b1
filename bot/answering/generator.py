"""Text generation behind a small protocol: a local transformers model (with an optional LoRA
adapter), or any OpenAI-compatible HTTP endpoint (vLLM, llama.cpp server, a hosted API)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import httpx

from bot.answering.prompt import END_OF_TURN, ensure_chat_template, render
from retrieval.embedding import choose_dtype, ignore_peft_deprecation, import_model_package

log = logging.getLogger(__name__)


class GeneratorError(Exception):
    """Generation cannot run; the message names the setting to fix."""


@runtime_checkable
class Generator(Protocol):
    name: str

    def stream(self, messages: Sequence[dict[str, str]], max_new_tokens: int | None = None) -> Iterator[str]:
        """Yield pieces of the reply as they are generated."""
        ...


def generate(generator: Generator, messages: Sequence[dict[str, str]], max_new_tokens: int | None = None) -> str:
    return "".join(generator.stream(messages, max_new_tokens))


# -- model resolution --------------------------------------------------------------------------

def resolve_model(name: str, cache_dir: str | Path, setting: str = "generation.model") -> str:
    """A folder transformers can load: `package:<module>` and `.gguf` files are converted once and cached.

    Converting a GGUF (dequantizing to fp32) takes about a minute; the cached folder reloads in
    under a second.
    """
    gguf: Path | None = None
    if name.startswith("package:"):
        mod = import_model_package(name, setting, GeneratorError)
        if not hasattr(mod, "assemble"):
            raise GeneratorError(f"{setting} = {name!r}: {mod.__name__} has no assemble() that returns a model file")
        gguf = Path(mod.assemble())
    elif name.endswith(".gguf"):
        gguf = Path(name).expanduser()
        if not gguf.exists():
            raise GeneratorError(f"{setting} = {name!r}: no such file. Point {setting} at an existing .gguf file.")
    else:
        p = Path(name).expanduser()
        if p.exists():
            return str(p)
        if name.startswith((".", "/", "~")):
            raise GeneratorError(f"{setting} = {name!r}: no such folder. Point {setting} at a model folder or hub id.")
        return name  # a hub id: transformers resolves it (needs network or a warm HF cache)
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{int(stat.st_mtime)}".encode()).hexdigest()[:12]
    out = Path(cache_dir).expanduser() / f"{gguf.stem}-{key}"
    if (out / "config.json").exists():
        return str(out)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting gguf once", extra={"gguf": str(gguf), "to": str(out)})
    t = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # Weights are already dequantized to fp32; drop the GGUF marker so the folder can be saved.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    ensure_chat_template(tok)
    tmp = out.with_name(out.name + ".tmp")
    tok.save_pretrained(tmp)
    model.save_pretrained(tmp)
    tmp.rename(out)
    log.info("gguf converted", extra={"seconds": round(time.perf_counter() - t, 1), "to": str(out)})
    return str(out)


# -- local transformers --------------------------------------------------------------------------

class LoopStop:
    """Stops generation when the tail of the output repeats itself ("#team-team-team-…", a line again
    and again): a small model's loop would otherwise run to max_new_tokens."""

    def __init__(self, prompt_len: int, min_period: int = 1, max_period: int = 24, repeats: int = 4,
                 min_span: int = 12):
        self.prompt_len = prompt_len
        self.min_period, self.max_period, self.repeats, self.min_span = min_period, max_period, repeats, min_span
        self.triggered = False

    def __call__(self, input_ids, scores, **kwargs) -> bool:
        return self.check(input_ids[0, self.prompt_len:].tolist())

    def check(self, out: list[int]) -> bool:
        """True when the generated ids `out` end in a loop."""
        for period in range(self.min_period, self.max_period + 1):
            span = period * self.repeats
            if len(out) < max(span, self.min_span):
                break
            if span < self.min_span:
                continue
            tail = out[-span:]
            if all(tail[i] == tail[i % period] for i in range(span)):
                self.triggered = True
                return True
        return False

class RefusalGate:
    """How sure the model is that it should refuse, read at its first generated token, and a floor under it.

    The probability that the reply starts with the refusal's first token is recorded in `probability`. When
    it is below `min_probability`, that start is forbidden, so a model that only leans towards "I couldn't
    find this" answers from the passages instead (and the grounding check decides what of it stays). The
    floor is `answering.refusal_confidence`, fitted by `orgbot eval answers`; None only records.
    """

    def __init__(self, text: str, min_probability: float | None = None):
        self.text = text
        self.min_probability = min_probability
        self.probability: float | None = None
        self.blocked = False

    def token_id(self, tok) -> int:
        return tok(self.text, add_special_tokens=False)["input_ids"][0]

    def apply(self, logits, index: int) -> None:
        """Read and, below the floor, forbid the refusal's first token at `index` of the first step's
        `logits` (one row, changed in place)."""
        import torch

        self.probability = float(torch.softmax(logits.float(), -1)[index])
        if self.min_probability is not None and self.probability < self.min_probability:
            self.blocked = True
            logits[index] = float("-inf")

    def processor(self, tok, prompt_len: int):
        """The gate as a transformers LogitsProcessor (for generate())."""
        from transformers import LogitsProcessor

        token_id, gate = self.token_id(tok), self

        class _Gate(LogitsProcessor):
            def __call__(self, input_ids, scores):
                if input_ids.shape[1] == prompt_len:  # only the first generated token
                    gate.apply(scores[0], token_id)
                return scores

        return _Gate()


def choose_decode_weights(setting: str, dtype: str, device: str) -> str:
    """auto = int8 where the model runs bf16 on a CPU (the kernel takes bf16 activations), else native."""
    if setting != "auto":
        return setting
    return "int8" if dtype == "bf16" and device == "cpu" else "native"


class TransformersGenerator:
    """A causal LM run with transformers on CPU (or CUDA when present), optionally with a LoRA adapter."""

    def __init__(
        self, model: str, *, adapter: str | None = None, cache_dir: str = "~/.cache/orgbot/models",
        max_new_tokens: int = 160, repetition_penalty: float = 1.0, threads: int | None = None,
        dtype: str = "auto", output_vocabulary: int | None = None, decoder: str = "loop",
        decode_weights: str = "auto",
    ):
        self.model_name = model
        self.decoder = decoder  # loop: our greedy loop (trimmed head); generate: transformers' generate()
        self.output_vocabulary = output_vocabulary
        self._head = None  # (kept ids, their output-head rows) when the output vocabulary is trimmed
        self._variants: dict[int, tuple] = {}
        self.adapter = adapter
        self.cache_dir = cache_dir
        self.max_new_tokens = max_new_tokens
        self.repetition_penalty = repetition_penalty
        self.threads = threads
        self.dtype_setting = dtype
        self.dtype: str | None = None  # what was chosen at load: bf16 or fp32
        self.decode_weights_setting = decode_weights
        self.decode_weights: str | None = None  # what was chosen at load: int8 or native
        self._lock = threading.Lock()
        self._loaded = None

    @property
    def name(self) -> str:
        return f"{self.model_name}+{Path(self.adapter).name}" if self.adapter else self.model_name

    def warm_up(self):
        with self._lock:
            if self._loaded is None:
                self._loaded = self._load()
        return self._loaded

    def _load(self):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        if self.threads:
            torch.set_num_threads(self.threads)
        path = resolve_model(self.model_name, self.cache_dir)
        if Path(path).exists():
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        tok = AutoTokenizer.from_pretrained(path)
        ensure_chat_template(tok)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.dtype = choose_dtype(self.dtype_setting, device)
        # Adapters are attached in fp32 and merged, then the whole model is cast: LoRA deltas are added
        # at full precision, and generation runs one plain model (no adapter indirection per layer).
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        if self.adapter:
            model = merge_adapters(model, self.adapter, path)
        model = model.to(device=device, dtype=torch.bfloat16 if self.dtype == "bf16" else torch.float32)
        model.eval()
        from bot.answering.decode import swap_linears

        self.decode_weights = choose_decode_weights(self.decode_weights_setting, self.dtype, device)
        try:
            swap_linears(model, self.decode_weights)
        except ValueError as e:
            raise GeneratorError(str(e)) from e
        end_ids = [tok.eos_token_id]
        eot = tok.convert_tokens_to_ids(END_OF_TURN)
        if isinstance(eot, int) and eot != tok.unk_token_id:
            end_ids.append(eot)
        vocab = model.get_output_embeddings().weight.shape[0]
        if self.output_vocabulary and self.output_vocabulary < vocab:
            ids, self._variants = output_vocabulary(tok, vocab, self.output_vocabulary, end_ids,
                                                    adapter_chain(self.adapter) if self.adapter else [])
            ids_t = torch.tensor(ids, device=device)
            self._head = (ids_t, model.get_output_embeddings().weight[ids_t].detach())
        log.info("generator loaded", extra={"model": path, "adapter": self.adapter, "dtype": self.dtype,
                                            "decode_weights": self.decode_weights, "device": device,
                                            "output_vocabulary": None if self._head is None
                                            else int(self._head[0].numel())})
        return tok, model, end_ids, device

    def count_tokens(self, text: str) -> int:
        tok = self.warm_up()[0]
        return len(tok(text, add_special_tokens=False)["input_ids"])

    accepts_gate = True  # stream(..., gate=RefusalGate): the answerer reads and steers the refusal

    def stream(self, messages, max_new_tokens: int | None = None, gate: RefusalGate | None = None) -> Iterator[str]:
        import torch
        from transformers import (
            LogitsProcessorList,
            StoppingCriteria,
            StoppingCriteriaList,
            TextIteratorStreamer,
        )

        tok, model, end_ids, device = self.warm_up()
        stop = threading.Event()

        class _Stop(StoppingCriteria):  # the consumer went away: stop generating
            def __call__(self, input_ids, scores, **kwargs):
                return stop.is_set()

        prompt = render(messages, tok)
        inputs = tok(prompt, return_tensors="pt", add_special_tokens=False).to(device)
        if self.repetition_penalty == 1.0 and self.decoder == "loop":
            yield from self._greedy(inputs["input_ids"], max_new_tokens or self.max_new_tokens, gate)
            return
        streamer = TextIteratorStreamer(tok, skip_prompt=True, skip_special_tokens=True)
        errors: list[BaseException] = []
        loop = LoopStop(inputs["input_ids"].shape[1])
        processors = LogitsProcessorList([gate.processor(tok, inputs["input_ids"].shape[1])] if gate else [])

        def run():
            try:
                with torch.inference_mode():
                    model.generate(
                        **inputs, max_new_tokens=max_new_tokens or self.max_new_tokens, do_sample=False,
                        repetition_penalty=self.repetition_penalty, eos_token_id=end_ids,
                        pad_token_id=tok.pad_token_id, streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([_Stop(), loop]), logits_processor=processors,
                    )
            except BaseException as e:  # noqa: BLE001 - re-raised in the consumer thread
                errors.append(e)
                streamer.end()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            yield from streamer
        finally:
            stop.set()
            thread.join()
        if loop.triggered:
            log.info("generation stopped: the output repeated itself")
        if errors:
            raise GeneratorError(f"generation failed: {errors[0]}") from errors[0]


    def _kept(self, prompt_ids, also=()):
        """The output ids scored for one request and their head rows: the trimmed vocabulary plus every
        token of the prompt (the passages an answer quotes, the question's words), so the answer can copy
        any of them. None: the whole vocabulary."""
        import torch

        if self._head is None:
            return None, None
        ids, rows = self._head
        own = set(prompt_ids.flatten().tolist()) | set(also)
        own |= {v for i in list(own) for v in self._variants.get(i, ())}  # "▁Usually" → "Usually", "usually"…
        extra = torch.tensor(sorted(own), dtype=ids.dtype, device=ids.device)
        extra = extra[~torch.isin(extra, ids)]
        if not extra.numel():
            return ids, rows
        _, model, _, _ = self.warm_up()
        return torch.cat([ids, extra]), torch.cat([rows, model.get_output_embeddings().weight[extra].detach()])

    def _greedy(self, prompt_ids, max_new_tokens: int, gate: RefusalGate | None) -> Iterator[str]:
        """Greedy decoding with a KV cache that scores only the kept output ids (the last position only),
        maps each choice back to its full id, and streams the text as it grows."""
        import torch

        tok, model, end_ids, device = self.warm_up()
        gate_id = gate.token_id(tok) if gate else None
        kept, rows = self._kept(prompt_ids, [gate_id] if gate_id is not None else [])
        softcap = getattr(model.config, "final_logit_softcapping", None)
        loop = LoopStop(0)
        out: list[int] = []
        shown = ""
        past, step_ids = None, prompt_ids
        try:
            with torch.inference_mode():
                for step in range(max_new_tokens):
                    if kept is None:
                        res = model(input_ids=step_ids, cache=past, use_cache=True, logits_to_keep=1)
                        logits = res.logits[0, -1].float()
                    else:
                        res = model.model(input_ids=step_ids, cache=past, use_cache=True)
                        logits = (rows @ res.last_hidden_state[0, -1]).float()
                        if softcap:
                            logits = torch.tanh(logits / softcap) * softcap
                    past = res.cache
                    if step == 0 and gate is not None:
                        gate.apply(logits, gate_id if kept is None else int((kept == gate_id).nonzero()[0, 0]))
                    choice = int(logits.argmax())
                    token = choice if kept is None else int(kept[choice])
                    if token in end_ids:
                        break
                    out.append(token)
                    text = tok.decode(out, skip_special_tokens=True)
                    if len(text) > len(shown) and not text.endswith("\ufffd"):  # not mid-way through a character
                        yield text[len(shown):]
                        shown = text
                    if loop.check(out):
                        log.info("generation stopped: the output repeated itself")
                        break
                    step_ids = torch.tensor([[token]], device=device)
        except (RuntimeError, ValueError, IndexError) as e:
            raise GeneratorError(f"generation failed: {e}") from e


OUTPUT_IDS = "output_ids.json"  # in an adapter folder: the token ids of its training answers


def output_vocabulary(tok, vocab: int, first: int, end_ids, adapters=()) -> tuple[list[int], dict[int, tuple]]:
    """The output ids always scored, and each piece's spelling variants.

    Always: the tokenizer's first `first` ids (its most frequent pieces), every short ASCII piece (Gemma
    keeps "I", "]", digits and most punctuation at high ids), the byte tokens (they spell anything else),
    the special and end tokens, the refusal's tokens, and the ids of the adapters' training answers
    (`output_ids.json`). Variants: the same piece with and without the word-start mark and with its first
    letter's case flipped, so an answer can start a sentence with a word the passages use mid-sentence."""
    from bot.answering.prompt import REFUSAL_TEXT

    pieces = tok.convert_ids_to_tokens(list(range(vocab)))
    keep = set(range(first))
    for i, t in enumerate(pieces):
        bare = (t or "").replace("\u2581", "")
        if t and (t.startswith("<0x") and t.endswith(">") or len(bare) <= 2 and bare.isascii()):
            keep.add(i)
    keep |= {i for i in (*tok.all_special_ids, *end_ids) if isinstance(i, int) and 0 <= i < vocab}
    keep |= set(tok(REFUSAL_TEXT, add_special_tokens=False)["input_ids"])
    for adapter in adapters:
        f = Path(adapter).expanduser() / OUTPUT_IDS
        if f.exists():
            keep |= {i for i in json.loads(f.read_text())["ids"] if 0 <= i < vocab}
    index = {t: i for i, t in enumerate(pieces) if t}
    variants: dict[int, tuple] = {}
    for i, t in enumerate(pieces):
        if not t:
            continue
        bare = t.removeprefix("\u2581")
        forms = {bare, "\u2581" + bare, bare[:1].swapcase() + bare[1:], "\u2581" + bare[:1].swapcase() + bare[1:]}
        found = tuple(index[f] for f in forms if f != t and f in index)
        if found:
            variants[i] = found
    return sorted(keep), variants


def model_fingerprint(model) -> str:
    """A short hash of a base model's architecture and input embeddings: equal for the same weights
    wherever they are loaded from, different for another model even when the shapes match."""
    import hashlib

    config = model.config.to_dict()
    keys = ("model_type", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
            "num_attention_heads", "num_key_value_heads", "head_dim")
    digest = hashlib.sha256(json.dumps({k: config.get(k) for k in keys}, sort_keys=True).encode())
    emb = model.get_input_embeddings().weight
    digest.update(emb[:8, :16].detach().float().cpu().numpy().round(4).tobytes())
    return digest.hexdigest()[:16]


def adapter_chain(adapter: str) -> list[str]:
    """The adapter and those it was trained on top of (its card's base_adapter), outermost last."""
    chain, current = [], adapter
    while current and current not in chain:
        chain.insert(0, current)
        card_file = Path(current).expanduser() / "adapter_card.json"
        current = json.loads(card_file.read_text()).get("base_adapter") if card_file.exists() else None
    return chain


def merge_adapters(model, adapter: str, base_path: str):
    """Attach and fold in an adapter and every adapter under it (an organisation's tone on the general one)."""
    for a in adapter_chain(adapter):
        model = load_adapter(model, a, base_path).merge_and_unload()
    return model


def load_adapter(model, adapter: str, base_path: str):
    """Attach a LoRA adapter; a missing folder or an adapter made for another base model is a clear error."""
    from peft import PeftModel

    folder = Path(adapter).expanduser()
    cfg_file = folder / "adapter_config.json"
    if not cfg_file.exists():
        raise GeneratorError(
            f"generation.adapter = {adapter!r}: no adapter_config.json there. Train one (orgbot train) "
            "or set generation.adapter to null (or --adapter none)."
        )
    cfg = json.loads(cfg_file.read_text())
    card_file = folder / "adapter_card.json"
    card = json.loads(card_file.read_text()) if card_file.exists() else {}
    expected = card.get("base_model")
    if card.get("base_fingerprint") and card["base_fingerprint"] != model_fingerprint(model):
        raise GeneratorError(
            f"the adapter {adapter} was trained for base model {expected!r}, not {base_path!r} (their weights "
            "differ). Use the matching generation.model or retrain the adapter for this model."
        )
    try:
        with warnings.catch_warnings():
            ignore_peft_deprecation()
            return PeftModel.from_pretrained(model, str(folder))
    except (RuntimeError, ValueError, KeyError) as e:
        made_for = expected or cfg.get("base_model_name_or_path")
        raise GeneratorError(
            f"the adapter {adapter} was trained for base model {made_for!r} and does not fit "
            f"{base_path!r} ({type(e).__name__}). Use the matching generation.model or retrain the adapter."
        ) from e


# -- OpenAI-compatible HTTP ----------------------------------------------------------------------

class OpenAICompatibleGenerator:
    """Any server with the OpenAI API: vLLM (also serving LoRA adapters by name), llama.cpp, hosted APIs.

    `completions` mode sends the rendered prompt (needs a tokenizer for the chat template: the
    same model name as generation.model); `chat` mode sends messages and lets the server template.
    """

    def __init__(self, url: str, model: str, *, api_key: str | None = None, mode: str = "completions",
                 max_new_tokens: int = 160, timeout_s: float = 120.0, tokenizer=None,
                 transport: httpx.BaseTransport | None = None):
        self.url = url.rstrip("/")
        self.model = model
        self.mode = mode
        self.max_new_tokens = max_new_tokens
        self.tokenizer = tokenizer
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout_s, headers=headers, transport=transport)

    @property
    def name(self) -> str:
        return f"{self.model}@{self.url}"

    def stream(self, messages, max_new_tokens: int | None = None) -> Iterator[str]:
        body: dict = {"model": self.model, "max_tokens": max_new_tokens or self.max_new_tokens,
                      "temperature": 0, "stream": True, "stop": [END_OF_TURN]}
        if self.mode == "chat":
            body["messages"] = list(messages)
            path = "/chat/completions"
        else:
            if self.tokenizer is None:
                raise GeneratorError("generation.openai.mode = completions needs a tokenizer; use mode: chat")
            body["prompt"] = render(messages, self.tokenizer)
            path = "/completions"
        try:
            with self._client.stream("POST", self.url + path, json=body) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise GeneratorError(
                        f"{self.url}{path} answered {resp.status_code}: {resp.text[:300]}. "
                        "Check generation.openai.url, .model and the API key."
                    )
                for line in resp.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    choice = (json.loads(data).get("choices") or [{}])[0]
                    piece = choice.get("text") if self.mode != "chat" else (choice.get("delta") or {}).get("content")
                    if piece:
                        yield piece
        except httpx.HTTPError as e:
            raise GeneratorError(
                f"cannot reach {self.url} ({type(e).__name__}); check generation.openai.url and that the server runs"
            ) from e
