"""LoRA tone fine-tuning with TRL's SFTTrainer: chat-format data in, a peft adapter + card out.

The loss is on the assistant turns only (the chat template marks them with {% generation %}), the
prompt is rendered exactly as the answerer renders it (`bot.answering.prompt`), eval loss is measured
each epoch with early stopping, and checkpoints let a stopped run resume. CPU by default, CUDA with
bf16 when present.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import resource
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.answering.generator import ignore_peft_deprecation, load_adapter, model_fingerprint, resolve_model
from bot.answering.prompt import ensure_chat_template, render
from retrieval.embedding import cpu_has_bf16
from training.config import TrainingSettings
from training.data import PrepareReport, load_chat_jsonl, prepare

log = logging.getLogger(__name__)

CARD = "adapter_card.json"


class TrainingError(Exception):
    """Training cannot start or did not finish; the message says what to change."""


@dataclass
class TrainReport:
    out_dir: str
    base_model: str
    data_hash: str
    train_examples: int
    eval_examples: int
    steps: int
    epochs_run: float
    seconds: float
    peak_rss_mb: float
    peak_gpu_mb: float | None
    device: str
    train_losses: list[dict[str, float]] = field(default_factory=list)
    eval_losses: list[dict[str, float]] = field(default_factory=list)
    first_eval_loss: float | None = None
    best_eval_loss: float | None = None
    trainable_params: int = 0
    total_params: int = 0
    model: Any = field(default=None, repr=False)  # the trained PeftModel, when train(keep_model=True)


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024) if platform.system() == "Darwin" else peak / 1024, 1)


def check_out_dir(out: Path, *, overwrite: bool, resume: bool) -> None:
    if not out.exists() or not any(out.iterdir()):
        return
    if resume:
        return
    if not overwrite:
        raise TrainingError(f"{out} already exists. Pass --overwrite to replace it, --resume to continue its "
                            "checkpoints, or choose another --out.")
    shutil.rmtree(out)


def _oom_advice(cfg: TrainingSettings) -> str:
    return (f"Training ran out of memory. Try a smaller LoRA rank (training.lora.r={cfg.lora.r} → "
            f"{max(1, cfg.lora.r // 2)}), a smaller batch (training.batch_size={cfg.batch_size} → "
            f"{max(1, cfg.batch_size // 2)}, raise grad_accumulation to keep the effective batch), or a "
            f"shorter training.max_length={cfg.max_length}.")


def _progress_callback(console=None):
    """A rich progress bar for the Trainer (steps, loss, eval loss)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from transformers import TrainerCallback

    class RichProgress(TrainerCallback):
        def __init__(self):
            self.progress = None
            self.task = None
            self.last: dict[str, Any] = {}

        def on_train_begin(self, args, state, control, **kw):
            self.progress = Progress(TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                     console=console, transient=False)
            self.progress.start()
            self.task = self.progress.add_task("train", total=state.max_steps, info="",
                                               completed=state.global_step)

        def on_step_end(self, args, state, control, **kw):
            if self.progress is not None:
                self.progress.update(self.task, completed=state.global_step)

        def on_log(self, args, state, control, logs=None, **kw):
            if self.progress is None or not logs:
                return
            for key in ("loss", "eval_loss"):
                if key in logs:
                    self.last[key] = logs[key]
            if "loss" in logs or "eval_loss" in logs:  # also in the log, for runs without a terminal
                log.info("training progress", extra={"step": state.global_step, "max_steps": state.max_steps,
                                                     "epoch": round(state.epoch or 0, 3), **self.last})
            info = "  ".join(f"{k} {v:.3f}" for k, v in self.last.items())
            self.progress.update(self.task, info=info)

        def on_train_end(self, args, state, control, **kw):
            if self.progress is not None:
                self.progress.stop()

    return RichProgress()


def _answer_only_trainer():
    """SFTTrainer whose loss projects only the answer positions onto the vocabulary.

    Gemma's vocabulary has 262k entries: projecting every prompt position onto it costs more than the
    rest of the model. The loss only needs the positions with labels (the assistant turn), so the
    hidden states of those positions alone go through the output head. Measured on this CPU, batch
    4 x 600 tokens: 29-36 s per step with every position's logits, 12-14 s with the answer's only.
    """
    import torch
    import torch.nn.functional as F
    from trl import SFTTrainer

    class AnswerOnlyLogitsTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            base = model.get_base_model() if hasattr(model, "get_base_model") else model
            kwargs = {k: inputs[k] for k in ("attention_mask", "position_ids") if inputs.get(k) is not None}
            hidden = base.model(input_ids=inputs["input_ids"], use_cache=False, **kwargs).last_hidden_state
            targets = inputs["labels"][:, 1:]
            wanted = targets != -100
            logits = base.lm_head(hidden[:, :-1][wanted]).float()
            cap = getattr(base.config, "final_logit_softcapping", None)
            if cap:
                logits = torch.tanh(logits / cap) * cap
            total = F.cross_entropy(logits, targets[wanted], reduction="sum")
            loss = total / wanted.sum().clamp(min=1)
            if num_items_in_batch is not None and self.args.gradient_accumulation_steps > 1:
                loss = total / num_items_in_batch  # mean over the whole accumulated batch
            return (loss, {"logits": logits}) if return_outputs else loss

    return AnswerOnlyLogitsTrainer


def load_base(base_model: str, cache_dir: str, device: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model(base_model, cache_dir, setting="training.base_model")
    if Path(path).exists():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tok = AutoTokenizer.from_pretrained(path)
    ensure_chat_template(tok)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    return path, tok, model


def prepare_data(cfg: TrainingSettings, work: Path, tok, *, bot_name: str, organisation: str) -> PrepareReport:
    def count_tokens(messages):
        return len(tok(render(messages, tok, add_generation_prompt=False), add_special_tokens=False)["input_ids"])

    return prepare(cfg.data, work, holdout=cfg.holdout, eval_fraction=cfg.eval_fraction, seed=cfg.seed,
                   max_passages=cfg.max_passages, count_tokens=count_tokens, max_length=cfg.max_length,
                   bot_name=bot_name, organisation=organisation, vary_identities=cfg.vary_identity)


def use_bf16(setting: bool | str, device: str) -> bool:
    """bf16 autocast where the hardware runs it natively (CUDA, or a CPU with AVX-512 BF16 / AMX)."""
    if setting in (True, False):
        return bool(setting)
    return device == "cuda" or cpu_has_bf16()


def train(
    cfg: TrainingSettings, *, base_model: str, out: str | Path, cache_dir: str = "~/.cache/orgbot/models",
    overwrite: bool = False, resume: bool = False, max_steps: int | None = None, console=None,
    keep_model: bool = False, bot_name: str = "orgbot", organisation: str = "your organisation",
) -> TrainReport:
    """Prepare the data, fine-tune a LoRA adapter, save it with its card in `out`."""
    import datasets
    import torch
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import EarlyStoppingCallback
    from transformers.utils import logging as hf_logging
    from trl import SFTConfig

    hf_logging.disable_progress_bar()
    ignore_peft_deprecation()
    datasets.disable_progress_bars()
    out = Path(out)
    check_out_dir(out, overwrite=overwrite, resume=resume)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    started = time.perf_counter()

    path, tok, model = load_base(base_model, cache_dir, device)
    if cfg.base_adapter:  # an organisation's tone on top of the general adapter: fold that one in first
        model = load_adapter(model, cfg.base_adapter, path).merge_and_unload()
    fingerprint = model_fingerprint(model)
    bf16 = use_bf16(cfg.bf16, device)
    report = prepare_data(cfg, out / "data", tok, bot_name=bot_name, organisation=organisation)
    files = {"train": str(out / "data" / "train.jsonl"), "eval": str(out / "data" / "eval.jsonl")}
    ds = load_dataset("json", data_files=files).select_columns(["messages"])

    lora = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                      target_modules=cfg.lora.target_modules, task_type="CAUSAL_LM")
    early = cfg.early_stopping_patience > 0
    args = SFTConfig(
        output_dir=str(out / "checkpoints"),
        num_train_epochs=cfg.epochs,
        max_steps=max_steps if max_steps else -1,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accumulation,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        logging_steps=1 if max_steps else 5,
        eval_strategy="steps" if max_steps else "epoch",
        eval_steps=max_steps if max_steps else None,
        save_strategy="steps" if max_steps else "epoch",
        save_steps=max_steps if max_steps else None,
        save_total_limit=2,
        load_best_model_at_end=early,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        assistant_only_loss=True,
        max_length=cfg.max_length,
        bf16=bf16,
        use_cpu=device == "cpu",
        seed=cfg.seed,
        data_seed=cfg.seed,
        report_to=[],
        disable_tqdm=True,
        dataloader_num_workers=0,
        prediction_loss_only=True,
        activation_checkpointing=device == "cuda",  # on CPU memory is ample and recomputation costs ~30 %
    )
    callbacks = [_progress_callback(console)]
    if early:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
    trainer = _answer_only_trainer()(model=model, args=args, train_dataset=ds["train"], eval_dataset=ds["eval"],
                         processing_class=tok, peft_config=lora, callbacks=callbacks)
    trainable, total = trainer.model.get_nb_trainable_parameters()
    first_eval = None
    try:
        if not resume:
            first_eval = trainer.evaluate().get("eval_loss")  # the base model's loss, to compare against
        checkpoint = resume and any((out / "checkpoints").glob("checkpoint-*"))
        result = trainer.train(resume_from_checkpoint=True if checkpoint else None)
    except (torch.OutOfMemoryError, MemoryError) as e:
        raise TrainingError(_oom_advice(cfg)) from e
    except RuntimeError as e:
        if "out of memory" in str(e).lower() or "can't allocate memory" in str(e).lower():
            raise TrainingError(_oom_advice(cfg)) from e
        raise
    trainer.save_model(str(out))
    # The adapter only: the base model's tokenizer is loaded with the base (trl saves a 33 MB copy), and the
    # prepared data is rebuilt by `orgbot train prepare`.
    for extra in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json"):
        (out / extra).unlink(missing_ok=True)

    history = trainer.state.log_history
    train_losses = [{"step": h["step"], "epoch": round(h.get("epoch", 0), 3), "loss": round(h["loss"], 4)}
                    for h in history if "loss" in h]
    eval_losses = [{"step": h["step"], "epoch": round(h.get("epoch", 0), 3), "eval_loss": round(h["eval_loss"], 4)}
                   for h in history if "eval_loss" in h and h["step"] > 0]
    best = min((e["eval_loss"] for e in eval_losses), default=None)
    tr = TrainReport(
        out_dir=str(out), base_model=base_model, data_hash=report.data_hash, train_examples=report.train,
        eval_examples=report.eval, steps=result.global_step, epochs_run=round(trainer.state.epoch or 0, 3),
        seconds=round(time.perf_counter() - started, 1), peak_rss_mb=peak_rss_mb(),
        peak_gpu_mb=round(torch.cuda.max_memory_allocated() / 2**20, 1) if device == "cuda" else None,
        device=device, train_losses=train_losses, eval_losses=eval_losses,
        first_eval_loss=round(first_eval, 4) if first_eval is not None else None, best_eval_loss=best,
        trainable_params=int(trainable), total_params=int(total),
    )
    write_card(out, tr, cfg, report, fingerprint, bf16=bf16)
    write_output_ids(out, tok, [out / "data" / "train.jsonl", out / "data" / "eval.jsonl"])
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    shutil.rmtree(out / "data", ignore_errors=True)
    if keep_model:
        tr.model = trainer.model
    return tr


def write_output_ids(out: Path, tok, files) -> int:
    """The token ids of every training answer, next to the adapter: the generator's trimmed output
    vocabulary keeps them (generation.output_vocabulary), so what the adapter learnt to write stays writable."""
    from bot.answering.generator import OUTPUT_IDS

    ids: set[int] = set()
    for f in files:
        for row in load_chat_jsonl(f):
            for m in row["messages"]:
                if m["role"] == "assistant":
                    ids.update(tok(m["content"], add_special_tokens=False)["input_ids"])
    (out / OUTPUT_IDS).write_text(json.dumps({"tokenizer_size": len(tok), "ids": sorted(ids)}) + "\n",
                                  encoding="utf-8")
    return len(ids)


def write_card(out: Path, tr: TrainReport, cfg: TrainingSettings, report: PrepareReport,
               fingerprint: str | None = None, bf16: bool = False) -> dict:
    card = {
        "base_model": tr.base_model,
        "base_adapter": cfg.base_adapter,  # the adapter this one was trained on top of (load it first)
        "base_fingerprint": fingerprint,
        "data": {"sources": cfg.data, "provenance": provenance(cfg.data), "hash": tr.data_hash, "train": tr.train_examples, "eval": tr.eval_examples,
                 "kinds": dict(report.counts), "dropped": report.dropped, "holdout": cfg.holdout},
        "hyperparameters": {"lora": cfg.lora.model_dump(), "epochs": cfg.epochs, "learning_rate": cfg.learning_rate,
                            "batch_size": cfg.batch_size, "grad_accumulation": cfg.grad_accumulation,
                            "max_length": cfg.max_length, "max_passages": cfg.max_passages, "seed": cfg.seed,
                            "vary_identity": cfg.vary_identity, "bf16": bf16},
        "training": {k: getattr(tr, k) for k in tr.__dataclass_fields__
                     if k not in ("out_dir", "base_model", "data_hash", "model")},
        "scores": None,  # filled in by `orgbot eval tone --card`
    }
    (out / CARD).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return card


def provenance(folders) -> dict:
    """What each data folder was built from (its SOURCES.json, written by the tool that built it)."""
    out = {}
    for f in folders:
        manifest = Path(f) / "SOURCES.json"
        if manifest.exists():
            out[str(f)] = json.loads(manifest.read_text(encoding="utf-8"))
    return out


def update_card_scores(adapter: str | Path, scores: dict) -> None:
    path = Path(adapter) / CARD
    card = json.loads(path.read_text()) if path.exists() else {}
    card["scores"] = scores
    path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")


def merge(adapter: str | Path, out: str | Path, *, base_model: str | None = None,
          cache_dir: str = "~/.cache/orgbot/models", overwrite: bool = False) -> Path:
    """Fold the adapter into the base weights and save a plain transformers model (for servers
    that prefer merged weights)."""
    from bot.answering.generator import load_adapter

    adapter, out = Path(adapter), Path(out)
    card = json.loads((adapter / CARD).read_text()) if (adapter / CARD).exists() else {}
    base = base_model or card.get("base_model")
    if not base:
        raise TrainingError(f"{adapter}/{CARD} names no base model; pass --base-model.")
    check_out_dir(out, overwrite=overwrite, resume=False)
    path, tok, model = load_base(base, cache_dir, "cpu")
    merged = load_adapter(model, str(adapter), path).merge_and_unload()
    merged.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return out
