"""Generation speed and sameness, old path against new in one run, written to bench/results/generation.json.

The prompts are the product's own: each sample-wiki question, its passages retrieved from the wiki, the
default adapter merged. Variants, each loaded fresh and run on the same prompts:
- `fp32 · full head · generate()`: the path before issue 13 (transformers' generate, 262k-id output head);
- `bf16 · full head`: native bf16 (AVX-512 BF16 / AMX) through orgbot's decoding loop;
- `fp32 · trimmed head` and `bf16 · trimmed head`: the output head cut to the tokenizer's
  first `generation.output_vocabulary` ids plus the prompt's own tokens;
- `bf16 · trimmed head · int8 decode` (the default): decoding steps read int8 copies of the weights
  (`generation.decode_weights`); prefill keeps bf16.
Per variant: time to the first token (prefill), decode tokens/s, seconds per answer, and how many answers
are token-for-token the same as the same dtype's full-head answers (and bf16's as fp32's).

    python bench/bench_generation.py [--questions 8] [--max-new-tokens 80]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.answering.generator import TransformersGenerator  # noqa: E402
from bot.answering.prompt import PromptPassage, build_messages, render  # noqa: E402
from bot.runtime import SyncRunner  # noqa: E402
from bot.settings import load_settings  # noqa: E402

VARIANTS = {  # name: (dtype, output vocabulary or None, decoder, decode weights)
    "fp32 · full head · generate()": ("fp32", None, "generate", "native"),
    "bf16 · full head": ("bf16", None, "loop", "native"),
    "fp32 · trimmed head": ("fp32", "config", "loop", "native"),
    "bf16 · trimmed head": ("bf16", "config", "loop", "native"),
    "bf16 · trimmed head · int8 decode": ("bf16", "config", "loop", "int8"),
}


def prompts(settings, n: int) -> list[list[dict]]:
    runner = SyncRunner(settings)
    runner.sync_sources()
    from bot.runtime import make_answerer

    answerer = make_answerer(settings, generator=object(), embedder=runner.embedder, index=runner.index)
    rows = [json.loads(line) for line in Path("examples/acme-wiki/questions.jsonl").read_text().splitlines()]
    out = []
    for row in rows[:n]:
        passages = answerer.retrieve(row["question"])
        out.append(build_messages(row["question"], [PromptPassage(p.chunk.title, p.chunk.heading, p.chunk.text)
                                                    for p in passages], few_shot=False,
                                  bot_name=settings.answering.bot_name, organisation=settings.answering.organisation))
    return out


def run_variant(settings, dtype: str, vocab, decoder: str, decode_weights: str, msgs_list, max_new: int) -> dict:
    g = settings.generation
    gen = TransformersGenerator(g.model, adapter=g.adapter, cache_dir=g.cache_dir, dtype=dtype, decoder=decoder,
                                output_vocabulary=g.output_vocabulary if vocab == "config" else None,
                                decode_weights=decode_weights)
    t = time.perf_counter()
    tok = gen.warm_up()[0]
    load_s = time.perf_counter() - t
    runs, texts = [], []
    for msgs in msgs_list:
        t = time.perf_counter()
        first, text = None, ""
        for piece in gen.stream(msgs, max_new_tokens=max_new):
            first = first if first is not None else time.perf_counter() - t
            text += piece
        total = time.perf_counter() - t
        new = len(tok(text, add_special_tokens=False)["input_ids"])
        runs.append({"prompt_tokens": len(tok(render(msgs, tok), add_special_tokens=False)["input_ids"]),
                     "new_tokens": new, "first_token_s": round(first or total, 3), "total_s": round(total, 3),
                     "decode_tokens_per_s": round(max(new - 1, 1) / max(total - (first or 0), 1e-6), 2)})
        texts.append(text)
    kept = None if gen._head is None else int(gen._head[0].numel())
    return {"dtype": gen.dtype, "decoder": decoder, "decode_weights": gen.decode_weights, "output_ids": kept,
            "load_s": round(load_s, 1),
            "first_token_s_p50": round(statistics.median(r["first_token_s"] for r in runs), 3),
            "total_s_p50": round(statistics.median(r["total_s"] for r in runs), 3),
            "total_s_sum": round(sum(r["total_s"] for r in runs), 2),
            "decode_tokens_per_s_mean": round(statistics.fmean(r["decode_tokens_per_s"] for r in runs), 2),
            "runs": runs}, texts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--questions", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=80)
    ap.add_argument("--out", default="bench/results/generation.json")
    args = ap.parse_args()
    settings = load_settings()
    msgs_list = prompts(settings, args.questions)
    result: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                "threads": int(os.environ.get("OMP_NUM_THREADS", 0)) or None},
                    "adapter": settings.generation.adapter, "questions": len(msgs_list),
                    "max_new_tokens": args.max_new_tokens, "variants": {}}
    texts: dict[str, list[str]] = {}
    for name, (dtype, vocab, decoder, weights) in VARIANTS.items():
        print(f"{name}…", flush=True)
        result["variants"][name], texts[name] = run_variant(settings, dtype, vocab, decoder, weights, msgs_list,
                                                             args.max_new_tokens)
        v = result["variants"][name]
        print(f"  first token p50 {v['first_token_s_p50']} s, {v['decode_tokens_per_s_mean']} tok/s, "
              f"answer p50 {v['total_s_p50']} s", flush=True)
    base = result["variants"]["fp32 · full head · generate()"]["total_s_sum"]
    for v in result["variants"].values():
        v["speedup_vs_fp32_generate"] = round(base / v["total_s_sum"], 2)

    def same(a: str, b: str) -> int:
        return sum(x == y for x, y in zip(texts[a], texts[b], strict=True))

    result["same_answers"] = {
        "bf16 trimmed = bf16 full": same("bf16 · trimmed head", "bf16 · full head"),
        "fp32 trimmed = fp32 full (generate)": same("fp32 · trimmed head", "fp32 · full head · generate()"),
        "bf16 full = fp32 full (generate)": same("bf16 · full head", "fp32 · full head · generate()"),
        "int8 decode = bf16 trimmed": same("bf16 · trimmed head · int8 decode", "bf16 · trimmed head"),
        "int8 decode = fp32 full (generate)": same("bf16 · trimmed head · int8 decode",
                                                   "fp32 · full head · generate()"),
        "of": len(msgs_list),
    }
    result["answers"] = texts
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result["same_answers"]), f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
