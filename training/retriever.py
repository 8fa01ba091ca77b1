"""Fine-tune the embedder for retrieval on the organisation's own documents (`orgbot train retriever`).

The other half of "RAG versus fine-tuning": instead of (or beside) teaching the generator, teach the
retriever what a question about these documents looks like. Pairs of (question, passage) train a
sentence-transformers model with in-batch negatives (MultipleNegativesRankingLoss): every other
passage in the batch is a negative, so no labelled negatives are needed.

Where the pairs come from:
- real FAQ pairs from Debian's git-doc, sqlite3-doc and zsh-doc (question -> the answer's text);
- synthetic pairs from the organisation's own pages: a section's heading is the query, the section's
  text (with its page title, without the heading) the passage.
The Python FAQ is never used: it is the held-out test (`orgbot eval retrieval --set python-faq`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import shutil
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

CARD = "retriever_card.json"
ADAPTER_CONFIG = "adapter_config.json"
DEFAULT_LEARNING_RATE = 3e-5
# A LoRA adapter on every attention and feed-forward projection (MPNet's and BERT's names); it learns at a
# higher rate than the whole model does.
LORA = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "target_modules": ["q", "k", "v", "o", "query", "key",
                                                                          "value", "dense"]}
LORA_LEARNING_RATE = 2e-4
# Headings that say nothing about their section: not usable as queries.
_GENERIC = re.compile(r"^(entry \d+|notes?|examples?|see also|overview|introduction|summary|contents|footnotes|"
                      r"description|details|synopsis|options|references?|bugs|authors?|history|[\d.\s]+)$", re.I)


class RetrieverTrainingError(Exception):
    """Training cannot start; the message says how to fix it."""


@dataclass
class RetrieverReport:
    out_dir: str
    base_model: str
    pairs: int
    pairs_by_kind: dict[str, int]
    steps: int
    seconds: float
    data_hash: str
    sources: list[str] = field(default_factory=list)


def faq_pairs(doc_root: str | Path = "/usr/share/doc") -> list[tuple[str, str, str]]:
    """(kind, question, passage) from the Git, SQLite and zsh FAQs; [] when the packages are missing."""
    from bot.evaluation.datasets import debian_faqs

    out = []
    for kind, path, parse in debian_faqs(doc_root):
        if not path.exists():
            continue
        title, entries = parse(path)
        for question, heading_path, answer in entries:
            head = " › ".join([title, *heading_path])
            out.append((f"faq-{kind}", question, f"{head}\n{answer}"))
    return out


def heading_pairs(documents: Iterable, max_pairs: int | None = None, seed: int = 7) -> list[tuple[str, str, str]]:
    """(kind, heading, passage) from `SourceDocument`s: the heading (last part of its path) is the query;
    the passage is the page title and the section's first ~200 words, without the heading."""
    out = []
    for doc in documents:
        for s in getattr(doc, "sections", ()):
            heading = (s.heading or "").split(" › ")[-1].strip().rstrip("¶").strip()
            text = " ".join(s.text.split()[:200])
            if len(heading.split()) < 2 or _GENERIC.match(heading) or len(text.split()) < 12:
                continue
            if heading == doc.title:
                continue
            out.append(("heading", heading, f"{doc.title}\n{text}"))
    random.Random(seed).shuffle(out)
    return out[:max_pairs] if max_pairs else out


def mine_hard_negatives(model, queries: list[str], passages: list[str], skip: int = 2, depth: int = 10,
                        seed: int = 7) -> list[str]:
    """For each query, a passage the current model ranks high that is not its own: one of ranks
    `skip`+1…`depth` among the others (the very top ones are too often a second right answer: another
    section of the same page). The loss then has to tell the right passage from a near miss, which in-batch
    negatives (random passages) rarely ask."""
    import numpy as np

    rng = random.Random(seed)
    q = model.encode(queries, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    p = model.encode(passages, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    out = []
    for i in range(0, len(q), 512):
        sims = q[i : i + 512] @ p.T
        for j, row in enumerate(sims):
            row[i + j] = -np.inf  # its own passage
            top = np.argpartition(-row, depth)[:depth]
            top = top[np.argsort(-row[top])]
            out.append(passages[int(rng.choice(top[skip:]))])
    return out


def train_retriever(pairs: list[tuple[str, str, str]], base_model: str, out: str | Path, *, epochs: float = 1.0,
                    batch_size: int = 32, learning_rate: float | None = None, max_seq_length: int = 128,
                    max_steps: int | None = None, overwrite: bool = False, seed: int = 7,
                    sources: list[str] | None = None, hard_negatives: bool = False, lora: bool = False,
                    bf16: bool = False) -> RetrieverReport:
    """Fine-tune `base_model` on (query, passage) pairs with MultipleNegativesRankingLoss; save it to `out`
    (a sentence-transformers folder: set `retrieval.embedding_model: <out>` and re-index).
    `lora`: train a LoRA adapter (`LORA`) instead of every weight; `out` then holds the adapter alone (a few MB,
    loaded on top of `base_model`, which must stay where it is). `learning_rate`: by default 3e-5 for the whole
    model, 2e-4 for an adapter. `bf16`: train in bfloat16 autocast (on a CPU with native bf16)."""
    import os

    out_dir = Path(out)
    if out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise RetrieverTrainingError(f"{out_dir} is not empty. Pass --overwrite, or choose another --out.")
        shutil.rmtree(out_dir)
    if len(pairs) < batch_size:
        raise RetrieverTrainingError(f"only {len(pairs)} training pairs (need at least {batch_size}): add sources "
                                     "with headed pages, or install git-doc sqlite3-doc zsh-doc for the FAQ pairs.")
    from retrieval.embedding import resolve_embedder_path

    path = resolve_embedder_path(base_model)
    if Path(path).exists():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    # One pair per distinct query and passage: a duplicate in a batch would be a false negative.
    seen_q, seen_p, rows = set(), set(), []
    for kind, query, passage in pairs:
        if query.lower() in seen_q or passage in seen_p:
            continue
        seen_q.add(query.lower())
        seen_p.add(passage)
        rows.append((kind, query, passage))
    data_hash = hashlib.sha256("\n".join(f"{q}\t{p}" for _, q, p in rows).encode()).hexdigest()[:16]
    kinds: dict[str, int] = {}
    for kind, _, _ in rows:
        kinds[kind] = kinds.get(kind, 0) + 1
    model = SentenceTransformer(path, device="cpu")
    if lora:
        from peft import LoraConfig, get_peft_model

        from retrieval.embedding import ignore_peft_deprecation

        ignore_peft_deprecation()
        model[0].model = get_peft_model(model[0].model, LoraConfig(**LORA))
    if learning_rate is None:
        learning_rate = LORA_LEARNING_RATE if lora else DEFAULT_LEARNING_RATE
    base_length = model.max_seq_length
    model.max_seq_length = min(max_seq_length, base_length)  # training only; the saved model keeps the base limit
    columns = {"anchor": [q for _, q, _ in rows], "positive": [p for _, _, p in rows]}
    if hard_negatives:
        t = time.perf_counter()
        columns["negative"] = mine_hard_negatives(model, columns["anchor"], columns["positive"], seed=seed)
        log.info("hard negatives mined", extra={"pairs": len(rows), "seconds": round(time.perf_counter() - t, 1)})
    dataset = Dataset.from_dict(columns)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out_dir / "checkpoints"), num_train_epochs=epochs, per_device_train_batch_size=batch_size,
        learning_rate=learning_rate, warmup_steps=0.1, batch_sampler="no_duplicates", seed=seed,
        save_strategy="no", logging_steps=10, report_to=[], max_steps=max_steps or -1,
        dataloader_drop_last=True, use_cpu=True, bf16=bf16,
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset,
                                         loss=MultipleNegativesRankingLoss(model))
    t0 = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - t0
    model.max_seq_length = base_length
    shutil.rmtree(out_dir / "checkpoints", ignore_errors=True)
    if lora:  # the adapter alone; `retrieval.embedding.Embedder` puts it back on `base_model` (`adapter_base`)
        model[0].model.save_pretrained(str(out_dir))
        config = json.loads((out_dir / ADAPTER_CONFIG).read_text())
        (out_dir / ADAPTER_CONFIG).write_text(json.dumps({**config, "base_model_name_or_path": base_model}, indent=2))
    else:
        model.save(str(out_dir))
    report = RetrieverReport(str(out_dir), base_model, len(rows), kinds, int(result.global_step), round(seconds, 1),
                             data_hash, sources or [])
    (out_dir / CARD).write_text(json.dumps({**asdict(report), "loss": "MultipleNegativesRankingLoss",
                                            "hard_negatives": hard_negatives, "lora": LORA if lora else None,
                                            "bf16": bf16,
                                            "epochs": epochs, "batch_size": batch_size,
                                            "learning_rate": learning_rate, "max_seq_length_training": max_seq_length,
                                            "train_loss": round(float(result.training_loss), 4)}, indent=2) + "\n")
    log.info("retriever trained", extra={"out": str(out_dir), "pairs": len(rows), "seconds": round(seconds, 1)})
    return report
