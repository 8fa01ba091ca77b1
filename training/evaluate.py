"""`orgbot eval tone`: does the adapter speak in the house style without losing facts or citations?

On held-out questions (never trained on), each condition (the base model as the product runs it —
few-shot prompt — and the base model + adapter) answers through the real answer path. Three scores:

- **tone**: a small classifier (TF-IDF character n-grams + logistic regression) trained on the
  house-style answers of the training data vs the base model's own answers to training questions;
  it scores the held-out answers, which neither side of its training saw;
- **citations**: answers that cite at least one passage and invent none; answers that cite the page
  holding the fact;
- **correctness**: the share of the reference answer's key terms (numbers, names, content words)
  found in the answer; refusing an unanswerable question counts as correct.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean

from bot.answering import Answerer
from bot.answering.answerer import REFUSAL
from training.data import load_examples, source_files

ASKERS = ("Sam", "Priya", "Jonas", "Ana", "Kenji", "Lea", "Omar", "Ruth")
STOP = set("""a an the and or of to in on for at by with from is are was were be been it its this that these
those you your we our i my me do does did can could should would will shall may might must have has had not no
yes if so as than then there their they them what when where which who whom why how get got per each any all
about into over under up out also just only more most very much many some such own same other""".split())


def key_terms(text: str) -> set[str]:
    """Numbers, and lower-cased content words of three letters or more."""
    words = re.findall(r"[A-Za-z][\w'-]+|\d+(?:[.,:]\d+)*", text)
    return {w.lower() for w in words if (w[0].isdigit() or len(w) >= 3) and w.lower() not in STOP}


def fact_recall(answer: str, reference: str) -> float:
    ref = key_terms(reference)
    if not ref:
        return 1.0
    got = key_terms(answer)
    return len(ref & got) / len(ref)


class ToneClassifier:
    """House style (1) vs the base model's style (0), on character n-grams."""

    def __init__(self, seed: int = 13):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        self.pipeline = make_pipeline(
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, min_df=2),
            LogisticRegression(max_iter=2000, C=4.0, class_weight="balanced", random_state=seed),
        )
        self.cv_accuracy: float | None = None

    def fit(self, house: Sequence[str], other: Sequence[str]) -> ToneClassifier:
        from sklearn.model_selection import cross_val_score

        texts, labels = list(house) + list(other), [1] * len(house) + [0] * len(other)
        folds = min(5, len(house), len(other))
        if folds >= 2:
            self.cv_accuracy = round(float(cross_val_score(self.pipeline, texts, labels, cv=folds).mean()), 3)
        self.pipeline.fit(texts, labels)
        return self

    def score(self, texts: Sequence[str]) -> list[float]:
        return [float(p) for p in self.pipeline.predict_proba(list(texts))[:, 1]]


@dataclass
class Row:
    id: str
    question: str
    kind: str
    expected_pages: list[str]
    reference: str
    answer: str = ""
    found: bool = False
    cited_pages: list[str] = field(default_factory=list)
    invalid_citations: list[int] = field(default_factory=list)
    tone: float = 0.0
    recall: float = 0.0
    seconds: float = 0.0

    @property
    def answerable(self) -> bool:
        return bool(self.expected_pages)

    @property
    def refused(self) -> bool:
        return not self.found or bool(REFUSAL.search(self.answer))

    @property
    def correct(self) -> bool:
        return self.recall >= 0.5 and not self.refused if self.answerable else self.refused


def pick_questions(path: str | Path, n: int) -> list[dict]:
    """A fixed spread of held-out questions: answerable ones, plus on-topic unanswerable ones
    (off-topic questions are refused before generation, so they say nothing about the model)."""
    rows = [json.loads(x) for x in Path(path).read_text(encoding="utf-8").splitlines() if x.strip()]
    answerable = [r for r in rows if r.get("pages")]
    unanswerable = [r for r in rows if not r.get("pages") and not r.get("off_topic")]
    n_un = min(len(unanswerable), max(1, n // 6))
    n_ans = n - n_un
    step = max(1, len(answerable) // max(1, n_ans))
    return answerable[1::step][:n_ans] + unanswerable[:n_un]


def base_style_answers(generator, data: Sequence[str | Path], n: int, *, max_new_tokens: int = 120,
                       seed: int = 13) -> tuple[list[str], list[str]]:
    """House-style answers from the training data and the base model's own answers (zero-shot)
    to the same training prompts: the tone classifier's two classes."""
    from bot.answering.answerer import clean_generation

    examples, _ = load_examples(source_files(data), seed=seed)
    house = [ex.messages[-1]["content"] for ex in examples]
    grounded = [ex for ex in examples if ex.kind == "grounded"]
    step = max(1, len(grounded) // max(1, n))
    other = []
    for ex in grounded[::step][:n]:
        raw = "".join(generator.stream(ex.messages[:-1], max_new_tokens=max_new_tokens))
        other.append(clean_generation(raw) or raw.strip() or "(empty)")
    return house, other


def answer_all(answerer: Answerer, questions: Sequence[dict], on_row: Callable[[Row], None] | None = None) -> list[Row]:
    rows = []
    for i, q in enumerate(questions):
        row = Row(q["id"], q["question"], q.get("kind", ""), list(q.get("pages") or []), q.get("answer", ""))
        t = time.perf_counter()
        ans = answerer.answer(q["question"], asker=ASKERS[i % len(ASKERS)])
        row.seconds = round(time.perf_counter() - t, 2)
        row.answer, row.found = ans.text, ans.found
        row.cited_pages = [c.document_id.split(":", 1)[-1] for c in ans.citations]
        row.invalid_citations = list(ans.invalid_citations)
        row.recall = round(fact_recall(ans.text, row.reference), 3) if row.answerable else 0.0
        rows.append(row)
        if on_row:
            on_row(row)
    return rows


def summarise(rows: Sequence[Row]) -> dict:
    answerable = [r for r in rows if r.answerable]
    found = [r for r in answerable if r.found]
    return {
        "questions": len(rows),
        "tone_score": round(mean(r.tone for r in rows), 3) if rows else 0.0,
        "house_style_rate": round(mean(r.tone >= 0.5 for r in rows), 3) if rows else 0.0,
        "cites_validly_rate": round(mean(bool(r.cited_pages) and not r.invalid_citations for r in found), 3)
        if found else 0.0,
        "invented_citation_rate": round(mean(bool(r.invalid_citations) for r in rows), 3) if rows else 0.0,
        "expected_page_cited_rate": round(mean(bool(set(r.cited_pages) & set(r.expected_pages))
                                               for r in answerable), 3) if answerable else 0.0,
        "fact_recall": round(mean(r.recall for r in answerable), 3) if answerable else 0.0,
        "correct_rate": round(mean(r.correct for r in rows), 3) if rows else 0.0,
        "unanswerable_refused_rate": round(mean(r.refused for r in rows if not r.answerable), 3)
        if any(not r.answerable for r in rows) else None,
        "seconds_per_answer": round(mean(r.seconds for r in rows), 2) if rows else 0.0,
    }


def run_tone_eval(
    make_answerer: Callable[[str | None], Answerer], *, adapter: str | None, questions_file: str | Path,
    data: Sequence[str | Path], n_questions: int = 24, n_style_examples: int = 30,
    on_progress: Callable[[str], None] | None = None,
) -> dict:
    """`make_answerer(adapter)` builds the answer path for one condition (None = base model)."""
    say = on_progress or (lambda _m: None)
    questions = pick_questions(questions_file, n_questions)
    conditions: dict[str, str | None] = {"base": None}
    if adapter:
        conditions["adapter"] = adapter
    answerers = {name: make_answerer(a) for name, a in conditions.items()}

    say(f"tone classifier: base-model answers to {n_style_examples} training prompts")
    t = time.perf_counter()
    house, other = base_style_answers(answerers["base"].generator, data, n_style_examples)
    clf = ToneClassifier().fit(house, other)
    say(f"  {len(house)} house-style vs {len(other)} base answers, cross-validated accuracy {clf.cv_accuracy} "
        f"({time.perf_counter() - t:.0f} s)")

    results: dict = {"questions_file": str(questions_file), "n_questions": len(questions),
                     "classifier": {"house_examples": len(house), "base_examples": len(other),
                                    "cv_accuracy": clf.cv_accuracy}, "conditions": {}}
    for name, answerer in answerers.items():
        say(f"answering {len(questions)} held-out questions: {name}")
        rows = answer_all(answerer, questions, on_row=lambda r, n=name: say(
            f"  [{n}] {r.id} found={r.found} cited={r.cited_pages} recall={r.recall} ({r.seconds} s)"))
        for row, p in zip(rows, clf.score([r.answer for r in rows]), strict=True):
            row.tone = round(p, 3)
        results["conditions"][name] = {"adapter": conditions[name], "generator": answerer.generator.name,
                                       "summary": summarise(rows), "answers": [r.__dict__ for r in rows]}
    return results
