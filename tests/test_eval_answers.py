"""`orgbot eval answers`: four arms on the same questions, scored the way a reader would judge them."""

import json

from bot.answering import Answerer
from bot.evaluation import answers as ev
from bot.evaluation.datasets import EvalQuestion, Relevant, load_jsonl
from retrieval.sqlite_index import EmbeddedIndex
from tests.contract.index_contract import make_chunks
from tests.fakes.embedder import HashingEmbedder
from tests.fakes.generator import ScriptedGenerator

QUESTIONS = [
    EvalQuestion("q1", "where do staff park for free?", "Staff park for free in lot B.",
                 [Relevant("wiki:parking", "Section 0")]),
    EvalQuestion("q2", "how do I set up the vpn profile?", "Import the vpn profile and sign in.",
                 [Relevant("wiki:vpn")]),
    EvalQuestion("u1", "what is the canteen's wifi password?", unanswerable=True),
]


def index(tmp_path):
    idx = EmbeddedIndex(tmp_path / "i.db")
    idx.upsert(make_chunks("wiki:parking", ["Staff park for free in lot B behind the office."], title="Parking"))
    idx.upsert(make_chunks("wiki:vpn", ["Import the vpn profile, then sign in with your account."], title="VPN"))
    idx.upsert(make_chunks("wiki:canteen", ["The canteen serves lunch from noon; wifi is for guests."],
                           title="Canteen"))
    return idx


def grounded_reply(messages):
    """A model that answers from the first passage it is given, and refuses the wifi question."""
    user = messages[-1]["content"]
    if "wifi" in user.split("Question:")[-1]:
        return "I couldn't find this in the documents I searched."
    first = user.split("<passage 1>")[1].split("\n", 2)[1]
    return f"{first} [1]"


def run(tmp_path, arms=ev.ARMS):
    idx, emb = index(tmp_path), HashingEmbedder()

    def make_answerer(kind):
        gen = ScriptedGenerator(grounded_reply if kind == "tuned" else "Parking costs 40 euros at Gate 7 [1].")
        return Answerer(idx, emb, gen, top_k=2, min_similarity=0.05)

    def closed(kind):
        return ScriptedGenerator("You can park at the Vienna office for 12 euros a day.")

    return ev.evaluate(QUESTIONS, arms=arms, make_answerer=make_answerer, closed_generator=closed,
                       relevant_text=lambda q: q.reference, bot="orgbot", org="Example")


def test_four_arms_show_what_retrieval_and_tuning_each_bring(tmp_path):
    report = run(tmp_path)
    arms = report["arms"]
    assert list(arms) == ["base", "tuned", "base+RAG", "tuned+RAG"]
    # closed book: nothing to cite, an invented place and price
    assert arms["base"]["cited_relevant"] is None and arms["base"]["unsupported"] == 1.0
    # the product path: the tuned model cites the answering page and refuses what the pages do not say
    tuned = arms["tuned+RAG"]
    assert tuned["cited_relevant"] == 1.0 and tuned["unanswerable_refused"] == 1.0
    assert tuned["wrongly_refused"] == 0.0 and tuned["unsupported"] == 0.0 and tuned["fact_recall"] > 0.5
    # answers are as long as what they say: "Staff park for free in lot B behind the office. [1]": 10 words
    assert tuned["words_p50"] == 10.0
    # the untuned model's invented price and gate are removed by the grounding check, never shown
    base_rag = report["per_question"]["base+RAG"]
    assert all("Gate 7" not in r["answer"] for r in base_rag)
    assert any({"40", "Gate"} <= set(r["raw_unsupported"]) for r in base_rag)
    assert arms["base+RAG"]["raw_unsupported"] > 0 and arms["base+RAG"]["unsupported"] == 0.0


def test_results_are_written_as_json_a_chart_and_a_table(tmp_path):
    report = run(tmp_path, arms=("base", "tuned+RAG"))
    js, png = ev.write(report, tmp_path / "out", "unit", "unit test")
    assert json.loads(js.read_text())["arms"]["tuned+RAG"]["questions"] == 3
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = ev.table(report)
    assert table.count("\n") == 3 and "| tuned+RAG |" in table
    assert table.splitlines()[0].endswith("| words / answer |") and table.splitlines()[-1].endswith(" |")


def _row(qid, sim, mode="generated", unmatched=(), answerability=None):
    """One question's result as the fit reads it: refused when the model refused; the retriever's best
    similarity, and the answerability (the same unless given)."""
    return ev.ArmResult(qid, "", mode == "refused", True, True, None, [], 1.0, similarity=sim,
                        answerability=sim if answerability is None else answerability, mode=mode,
                        unmatched=list(unmatched))


def test_a_refusal_is_overruled_by_how_likely_the_best_passage_answers_not_by_the_retrievers_similarity():
    # The model refused both. The unanswerable u's passages look close to the retriever (0.7) but do not answer
    # it (answerability 0.3); the answerable a's passage answers (0.6) though it scores lower (0.5). On the
    # retriever's similarity no cut could quote a without quoting u.
    results = [_row("a", 0.5, "refused", answerability=0.6), _row("u", 0.7, "refused", answerability=0.3)]
    qs = [EvalQuestion("a", "?"), EvalQuestion("u", "?", unanswerable=True)]
    fit = ev.fit_thresholds(qs, results, min_refused=1.0)
    assert fit["answered"] == 1 and fit["unanswerable_refused"] == 1.0
    assert 0.3 < fit["answer_similarity"] <= 0.6 and fit["min_similarity"] is None


def test_refusal_thresholds_are_fitted_to_keep_unanswerables_refused():
    results = [
        ev.ArmResult("a", "", True, False, True, None, [], 1.0, answerability=0.7, mode="refused"),
        ev.ArmResult("b", "", True, False, True, None, [], 1.0, answerability=0.5, mode="refused"),
        ev.ArmResult("u", "", True, None, False, None, [], 1.0, answerability=0.6, mode="refused"),
        ev.ArmResult("c", "x", False, True, True, 0.5, [], 1.0, answerability=0.45, mode="extractive"),
        ev.ArmResult("v", "x", False, None, False, None, [], 1.0, answerability=0.3, mode="extractive"),
    ]
    qs = [EvalQuestion("a", "?"), EvalQuestion("b", "?"), EvalQuestion("c", "?"),
          EvalQuestion("u", "?", unanswerable=True), EvalQuestion("v", "?", unanswerable=True)]
    fit = ev.fit_thresholds(qs, results, min_refused=1.0)
    # 0.6 would answer the unanswerable u; quoting below 0.45 would answer the unanswerable v
    assert 0.6 < fit["answer_similarity"] < 0.7 and 0.3 < fit["extract_similarity"] < 0.45 and fit["answered"] == 2


def test_a_refusal_the_model_was_unsure_of_is_answered_when_unanswerables_stay_refused():
    def refused(qid, p, sim=0.5):
        return ev.ArmResult(qid, "", True, False, True, None, [], 1.0, answerability=sim, mode="refused",
                            refusal_probability=p)

    # b is answerable and its refusal was hesitant (0.30); the unanswerable u's refusal was sure (0.80);
    # the similarities cannot tell them apart
    results = [refused("a", 0.9), refused("b", 0.3), refused("u", 0.8), refused("w", 0.55)]
    qs = [EvalQuestion("a", "?"), EvalQuestion("b", "?"),
          EvalQuestion("u", "?", unanswerable=True), EvalQuestion("w", "?", unanswerable=True)]
    fit = ev.fit_thresholds(qs, results, min_refused=1.0)
    assert fit["answered"] == 1 and fit["unanswerable_refused"] == 1.0
    assert 0.3 < fit["refusal_confidence"] <= 0.55 and fit["answer_similarity"] is None


def test_questions_too_far_from_every_passage_are_refused_when_that_separates_them():
    # The model answered the unanswerable u and w; their best passages are further than the answerable ones'.
    results = [_row("a", 0.71), _row("b", 0.62), _row("c", 0.35, "refused"), _row("u", 0.48), _row("w", 0.3)]
    qs = [EvalQuestion("a", "?"), EvalQuestion("b", "?"), EvalQuestion("c", "?"),
          EvalQuestion("u", "?", unanswerable=True), EvalQuestion("w", "?", unanswerable=True)]
    fit = ev.fit_thresholds(qs, results, min_refused=1.0)
    assert 0.48 < fit["min_similarity"] <= 0.62 and fit["answered"] == 2 and fit["unanswerable_refused"] == 1.0


def test_a_fitted_cut_keeps_the_question_it_was_fitted_to_keep_when_it_is_asked_again():
    # The report rounds similarities to 4 places: b was observed at 0.4518 and, asked again, its best passage
    # scores 0.45176. A cut stored at 0.4518 refused it; the cut now lies between b and the unanswerable u.
    results = [_row("a", 0.62), _row("b", 0.4518), _row("u", 0.41)]
    qs = [EvalQuestion("a", "?"), EvalQuestion("b", "?"), EvalQuestion("u", "?", unanswerable=True)]
    fit = ev.fit_thresholds(qs, results, min_refused=1.0)
    assert fit["answered"] == 2 and fit["unanswerable_refused"] == 1.0
    assert 0.41 < fit["min_similarity"] < 0.45176


def test_a_stored_cut_never_lands_above_the_question_it_lets_through():
    # The lowest question observed: rounding 0.45176 to 4 places (0.4518) would refuse it when asked again.
    assert ev.stored_cut(0.45176, [0.45176, 0.6]) <= 0.45176
    # Two cosines closer than 4 places: the cut still falls between them.
    assert 0.45171 < ev.stored_cut(0.45176, [0.45171, 0.45176]) <= 0.45176


def test_a_question_file_names_the_fix_when_it_is_wrong(tmp_path):
    import pytest

    from bot.evaluation.datasets import DatasetError

    bad = tmp_path / "q.jsonl"
    bad.write_text('{"question": "ok?", "relevant": ["a.md"]}\n{"nope": 1}\n')
    with pytest.raises(DatasetError, match=r"q.jsonl:2: each line needs a non-empty \"question\""):
        load_jsonl(bad)
    with pytest.raises(DatasetError, match="--set python-faq"):
        load_jsonl(tmp_path / "missing.jsonl")
    good = tmp_path / "g.jsonl"
    good.write_text('{"question": "ok?", "relevant": ["a.md"], "reference": "yes"}\n')
    assert load_jsonl(good, "wiki")[0].relevant[0].document_id == "wiki:a.md"


def test_applying_a_fit_from_a_file_that_has_none_is_one_clear_error(tmp_path):
    from typer.testing import CliRunner

    from bot.cli import app

    report = tmp_path / "answers_x.json"
    report.write_text('{"arms": {}}')
    res = CliRunner().invoke(app, ["eval", "answers", "--fitted", str(report)])
    assert res.exit_code == 1 and "--fitted" in res.output and "with a fit" in res.output
    assert "Traceback" not in res.output


def test_a_question_naming_what_no_passage_mentions_is_refused_when_that_separates_them():
    # The model answered everything. u asks about Heroku, which no passage mentions; its best passage is as
    # close as the answerable ones', so only the missing name tells it apart. b names something missing too,
    # but its passage is much closer.
    results = [_row("a", 0.6), _row("b", 0.8, unmatched=["Linux"]), _row("c", 0.5), _row("u", 0.55, unmatched=["Heroku"])]
    qs = [EvalQuestion("a", "?"), EvalQuestion("b", "?"), EvalQuestion("c", "?"),
          EvalQuestion("u", "?", unanswerable=True)]
    fit = ev.fit_thresholds(qs, results, min_refused=1.0)
    assert fit["answered"] == 3 and fit["unanswerable_refused"] == 1.0
    assert fit["min_similarity"] is None and 0.55 < fit["unmatched_similarity"] <= 0.8


def test_asked_as_a_slack_user_the_askers_name_reaches_the_model_and_is_no_unsupported_specific(tmp_path):
    from bot.answering.answerer import Style

    idx, prompts = index(tmp_path), []

    def make_answerer(kind):
        gen = ScriptedGenerator(lambda m: prompts.append(m[-1]["content"]) or grounded_reply(m))
        return Answerer(idx, HashingEmbedder(), gen, top_k=2, min_similarity=0.05, style=Style("Hi {asker}!"))

    report = ev.evaluate(QUESTIONS[:1], arms=["tuned+RAG"], make_answerer=make_answerer, closed_generator=None,
                         relevant_text=lambda q: q.reference, bot="orgbot", org="Example", asker="Priya")
    (row,) = report["per_question"]["tuned+RAG"]
    assert "Asker: Priya" in prompts[0] and row["answer"].startswith("Hi Priya! ")
    assert row["unsupported"] == [] and row["cited_relevant"]


def test_cuts_fitted_on_two_ways_of_asking_together_refuse_enough_unanswerables_in_both():
    # Asked without a name the model refuses the unanswerable u itself; asked by name it answers u. Fitted on
    # the nameless run alone, nothing is cut, and by name u is answered; fitted on both, u is refused both ways.
    qs = [EvalQuestion("a", "?"), EvalQuestion("b", "?"), EvalQuestion("u", "?", unanswerable=True)]
    nameless = [_row("a", 0.7), _row("b", 0.5), _row("u", 0.4, "refused")]
    named = [_row("a", 0.7), _row("b", 0.5), _row("u", 0.4)]
    alone = ev.fit_thresholds(qs, nameless, min_refused=1.0)
    assert alone["min_similarity"] is None
    report = lambda rows: {"per_question": {"tuned+RAG": [r.to_json() for r in rows]}}  # noqa: E731
    both = ev.fit_together([report(nameless), report(named)], qs)
    assert 0.4 < both["min_similarity"] <= 0.5 and both["answered"] == 4  # a and b, in both runs
    import pytest

    with pytest.raises(ev.FitError, match="same --set"):
        ev.fit_together([report([_row("zz", 0.5)])], qs)
