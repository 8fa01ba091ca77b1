"""`orgbot eval answers`: what retrieval (RAG) and fine-tuning each bring, on the same questions.

Four arms answer every question:
- **base**: the base model, no retrieval (closed book);
- **tuned**: the tuned model (generation.adapter), no retrieval;
- **base+RAG**: the base model through the product's answer path (retrieval, few-shot prompt,
  grounding check, refusal);
- **tuned+RAG**: the product as configured.

Scores per arm (answerable questions unless said):
- `cited_relevant`: the answer cites a passage of a section that answers the question;
- `fact_recall`: the share of the reference answer's content words (stems) found in the answer;
- `unsupported`: answers (not refusals) holding a specific — a number, name, command, path — that is in
  no passage given (without retrieval: not in the section that answers it); over all questions;
- `unanswerable_refused`: on-topic questions the documents do not answer, refused;
- `wrongly_refused`: answerable questions refused;
- `seconds`: per answer; `words`: the median length of the answers given to answerable questions.
Each rate is given over all answerable questions and over those whose answering section was among the
passages given (`_retrieved`): generation can only cite what retrieval found.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean, median

import numpy as np

from bot.answering import Answerer
from bot.answering.answerer import REFUSAL, clean_generation
from bot.answering.citations import CITATION_MARKER
from bot.answering.generator import Generator, generate
from bot.answering.grounding import Mentions, content_stems, specifics, split_units
from bot.evaluation.datasets import EvalQuestion

ARMS = ("base", "tuned", "base+RAG", "tuned+RAG")
FIT_ARMS = ("tuned+RAG", "base+RAG")  # the refusal cuts are fitted on the product arm, else on base+RAG


def fit_arm(arms) -> str | None:
    """Which of `arms` the refusal cuts are fitted on (None when no arm answers through retrieval)."""
    return next((a for a in FIT_ARMS if a in arms), None)


CLOSED_BOOK_SYSTEM = ("You are {bot}, the knowledge assistant of {org}. Answer the question briefly and "
                      "accurately. If you do not know, say you could not find it.")


@dataclass
class ArmResult:
    question_id: str
    answer: str
    refused: bool
    cited_relevant: bool | None  # None without retrieval
    retrieved_relevant: bool | None
    fact_recall: float | None
    unsupported: list[str]
    seconds: float
    raw_unsupported: list[str] = field(default_factory=list)  # before the grounding check
    similarity: float | None = None  # the retriever's best cosine (for the record; no cut reads it)
    answerability: float | None = None  # what the refusal cuts read (`Answerer.assess`)
    mode: str = ""
    refusal_probability: float | None = None
    unmatched: list[str] = field(default_factory=list)  # what the question names that no passage given mentions

    def to_json(self) -> dict:
        return self.__dict__


def fact_recall(reference: str, answer: str) -> float | None:
    ref = content_stems(reference)
    if not ref:
        return None
    return round(len(ref & content_stems(answer)) / len(ref), 4)


def unsupported_specifics(answer: str, sources: Sequence[str], question: str) -> list[str]:
    """Specifics of `answer` (sentence by sentence, as a reader meets them) found in no source."""
    return Mentions.of([*sources, question]).missing(s for unit in split_units(answer) for s in specifics(unit))


def closed_book(generator: Generator, question: str, bot: str, org: str) -> str:
    messages = [{"role": "system", "content": CLOSED_BOOK_SYSTEM.format(bot=bot, org=org)},
                {"role": "user", "content": f"Question: {question}"}]
    return clean_generation(generate(generator, messages, max_new_tokens=100))


def run_closed_book(generator: Generator, q: EvalQuestion, relevant_text: str, bot: str, org: str) -> ArmResult:
    t = time.perf_counter()
    text = closed_book(generator, q.question, bot, org)
    seconds = time.perf_counter() - t
    refused = not text or bool(REFUSAL.search(text)) or "not know" in text.lower()
    return ArmResult(q.id, text, refused, None, None,
                     None if q.unanswerable or refused else fact_recall(q.reference, text),
                     [] if refused else unsupported_specifics(text, [relevant_text] if relevant_text else [],
                                                              q.question),
                     round(seconds, 3))


def run_rag(answerer: Answerer, q: EvalQuestion, asker: str | None = None) -> ArmResult:
    """One question through the product's answer path, asked by `asker` (a name, as Slack passes the asker's;
    None as `orgbot ask` does): the name goes into the prompt and the house greeting, and is no specific."""
    t = time.perf_counter()
    answer = answerer.answer(q.question, asker=asker)
    seconds = time.perf_counter() - t
    passages = answer.passages
    texts = [p.chunk.embedding_text for p in passages]
    retrieved = any(q.is_relevant(p.chunk.document_id, p.chunk.heading) for p in passages)
    cited = any(q.is_relevant(c.document_id, c.heading) for c in answer.citations)
    refused = not answer.found
    raw = "\n".join([answer.text, *answer.removed]) if not refused else ""
    best = max((p.vector_score for p in passages if p.vector_score is not None), default=None)  # for the record
    return ArmResult(
        q.id, answer.text, refused, cited, retrieved,
        None if q.unanswerable or refused else fact_recall(q.reference, answer.text),
        [] if refused else unsupported_specifics(answer.text, texts, answerer.context(q.question, asker)),
        round(seconds, 3),
        raw_unsupported=unsupported_specifics(raw, texts, answerer.context(q.question, asker)) if raw else [],
        similarity=None if best is None else round(best, 4),
        answerability=None if answer.answerability is None else round(answer.answerability, 4), mode=answer.mode,
        refusal_probability=answer.refusal_probability,
        unmatched=answerer.unmatched(q.question, passages),
    )


def _rate(values: Sequence[bool | float | None]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return round(mean(vals), 4) if vals else None


def _words_p50(results: Sequence[ArmResult]) -> float | None:
    """The median length of the answers given, in words, citation marks not counted (a longer answer says more
    of the reference, and asks more of the reader: fact recall is read beside it)."""
    return float(median(sum(any(c.isalnum() for c in w) for w in CITATION_MARKER.sub("", r.answer).split())
                        for r in results)) if results else None


def summarise(questions: Sequence[EvalQuestion], results: Sequence[ArmResult]) -> dict:
    by_id = {q.id: q for q in questions}
    answerable = [r for r in results if not by_id[r.question_id].unanswerable]
    unanswerable = [r for r in results if by_id[r.question_id].unanswerable]
    retrieved = [r for r in answerable if r.retrieved_relevant]
    out = {
        "questions": len(results), "answerable": len(answerable), "unanswerable": len(unanswerable),
        "cited_relevant": _rate([r.cited_relevant for r in answerable]),
        "fact_recall": _rate([r.fact_recall or 0.0 for r in answerable]),
        "unsupported": _rate([bool(r.unsupported) for r in results if not r.refused] or [False]),
        "raw_unsupported": _rate([bool(r.raw_unsupported) for r in results if not r.refused] or [False]),
        "unanswerable_refused": _rate([r.refused for r in unanswerable]),
        "wrongly_refused": _rate([r.refused for r in answerable]),
        "seconds_p50": round(median([r.seconds for r in results]), 3) if results else None,
        "words_p50": _words_p50([r for r in answerable if not r.refused]),
        "retrieved": len(retrieved),
        "cited_relevant_retrieved": _rate([r.cited_relevant for r in retrieved]),
        "fact_recall_retrieved": _rate([r.fact_recall or 0.0 for r in retrieved]),
        "wrongly_refused_retrieved": _rate([r.refused for r in retrieved]),
        "modes": {m: sum(r.mode == m for r in results) for m in sorted({r.mode for r in results}) if m},
    }
    return out


def _grid(values, step: float = 0.02) -> list[float]:
    """Distinct thresholds just above the observed values, at most one per `step`."""
    out: list[float] = []
    for v in sorted(v for v in values if v is not None):
        if not out or v - out[-1] >= step:
            out.append(v)
    return out


def stored_cut(tau: float, observed) -> float:
    """The threshold to store for a fitted cut `tau`, which is an observed similarity (the lowest the cut lets
    through): halfway down to the next lower observed one, rounded down to 4 places (more where the two are
    closer than that); `tau` rounded down when nothing lies below. At `tau` itself, the question observed there
    (its similarity rounded to 4 places in the report) can fall on the wrong side when it is asked again."""
    observed = np.asarray(observed, dtype=float)
    below = observed[observed < tau]
    if not below.size:
        return math.floor(tau * 1e4) / 1e4  # nothing observed below: round down, never past the question at tau
    low = float(below.max())
    mid = (tau + low) / 2
    short = math.floor(mid * 1e4) / 1e4
    return short if low < short <= tau else round(mid, 8)  # 4 places where they fall between the two


def fit_thresholds(questions: Sequence[EvalQuestion], results: Sequence[ArmResult],
                   min_refused: float = 0.8) -> dict:
    """The refusal thresholds that answer the most answerable questions while refusing at least
    `min_refused` of the unanswerable ones, from one arm's per-question results (run with
    `refusal_confidence`, `answer_similarity` and `unmatched_similarity` null, `extract_similarity` 0 and
    `min_similarity` low):
    - `min_similarity` (retrieval.min_similarity): a question less answerable than this (`Answerer.assess`: how
      likely the best passage answers it) is refused without generating;
    - `unmatched_similarity`: a question naming something no passage mentions is refused without generating
      when it is less answerable than this;
    - `refusal_confidence`: a refusal the model was less sure of than this is answered instead;
    - `answer_similarity`: a refused question at least this answerable is quoted instead;
    - `extract_similarity`: a quoted answer (nothing generated survived the check) less answerable is refused.
    A refusal turned into an answer counts as answered: what that answer says is measured by running
    the eval again with the fitted values. Ties go to the thresholds tried first (the checks off, the
    lower cuts)."""
    by_id = {q.id: q for q in questions}
    unans = np.array([by_id[r.question_id].unanswerable for r in results], bool)
    sim = np.array([r.answerability or 0.0 for r in results])
    was_refused = np.array([r.refused for r in results], bool)
    model_refused = np.array([r.mode == "refused" for r in results], bool)
    quoted = np.array([r.mode == "extractive" for r in results], bool)
    prob = np.array([np.nan if r.refusal_probability is None else r.refusal_probability for r in results])
    unmatched = np.array([bool(r.unmatched) for r in results], bool)
    sims = _grid(r.answerability for r in results)
    probs = _grid(round(r.refusal_probability, 2) + 0.005 for r in results
                  if r.mode == "refused" and r.refusal_probability is not None)
    n_u, n_a = int(unans.sum()), int((~unans).sum())
    best: dict | None = None
    best_key = (-1, -1)
    for tau_s in [0.0, *sims]:
        taus_a = np.array([*(x for x in sims if x >= tau_s), 1.01])  # answer_similarity (1.01: off)
        taus_e = np.array([0.0, *(x for x in sims if x >= tau_s)])  # extract_similarity
        for tau_m in [None, *(x for x in sims if x > tau_s and unmatched.any())]:
            before = sim < tau_s  # refused without generating
            if tau_m is not None:
                before = before | (unmatched & (sim < tau_m))
            for tau_p in [None, *probs]:
                unsure = np.zeros_like(model_refused) if tau_p is None else model_refused & (prob < tau_p)
                # refused[a, e, question], as the answerer would decide with these thresholds
                answered_over = model_refused & ((sim[None, :] >= taus_a[:, None]) | unsure)  # [a, q]
                refused = np.broadcast_to(was_refused, (len(taus_a), len(taus_e), len(results))).copy()
                refused &= ~answered_over[:, None, :]
                refused |= quoted[None, None, :] & (sim[None, None, :] < taus_e[None, :, None])
                refused |= before[None, None, :]
                refused_u = refused[:, :, unans].sum(axis=2)
                answered_a = (~refused[:, :, ~unans]).sum(axis=2)
                ok = refused_u >= min_refused * n_u - 1e-9 if n_u else np.ones_like(refused_u, bool)
                if not ok.any():
                    continue
                key = np.where(ok, answered_a * (n_u + 1) + refused_u, -1)
                a, e = np.unravel_index(int(np.argmax(key)), key.shape)
                if (int(answered_a[a, e]), int(refused_u[a, e])) > best_key:
                    best_key = (int(answered_a[a, e]), int(refused_u[a, e]))
                    best = {"min_similarity": None if not tau_s else stored_cut(tau_s, sim),
                            "unmatched_similarity": None if tau_m is None else stored_cut(tau_m, sim),
                            "refusal_confidence": None if tau_p is None else round(tau_p, 3),
                            "answer_similarity": None if taus_a[a] > 1 else stored_cut(float(taus_a[a]), sim),
                            "extract_similarity": stored_cut(float(taus_e[e]), sim) if taus_e[e] else 0.0,
                            "answered": best_key[0],
                            "answerable": n_a, "unanswerable_refused": round(best_key[1] / n_u, 4) if n_u else 1.0}
    return best or {"min_similarity": None, "unmatched_similarity": None, "refusal_confidence": None,
                    "answer_similarity": None, "extract_similarity": 0.0}


class FitError(ValueError):
    """Reports that cannot be fitted together (another question set, no RAG arm)."""


def fit_together(reports: Sequence[dict], questions: Sequence[EvalQuestion]) -> dict:
    """The thresholds fitted on several runs' answers at once: the same questions asked another way (with and
    without an asker's name, as Slack and the CLI ask), so one set of cuts serves both. Each report gives its
    tuned+RAG answers (base+RAG where it has none), as its own fit read them."""
    known = {q.id for q in questions}
    results: list[ArmResult] = []
    for report in reports:
        rows = report.get("per_question") or {}
        arm = fit_arm(rows)
        if arm is None:
            raise FitError("a report has no answers through retrieval (tuned+RAG or base+RAG) to fit on")
        missing = {row["question_id"] for row in rows[arm]} - known
        if missing:
            raise FitError(f"questions {sorted(missing)[:3]} are not in this set: fit reports of the same --set")
        try:
            results += [ArmResult(**row) for row in rows[arm]]
        except TypeError as e:
            raise FitError(f"a report this version of orgbot cannot read ({e}): run it again") from None
    return fit_thresholds(questions, results)


def evaluate(
    questions: Sequence[EvalQuestion], *, arms: Sequence[str], make_answerer: Callable[[str], Answerer],
    closed_generator: Callable[[str], Generator], relevant_text: Callable[[EvalQuestion], str],
    bot: str, org: str, progress: Callable[[str, int, int], None] | None = None, asker: str | None = None,
) -> dict:
    report: dict = {"arms": {}, "per_question": {}}
    for arm in arms:
        results = []
        if arm.endswith("+RAG"):
            answerer = make_answerer(arm.split("+")[0])
            for i, q in enumerate(questions, 1):
                results.append(run_rag(answerer, q, asker))
                if progress:
                    progress(arm, i, len(questions))
        else:
            gen = closed_generator(arm)
            for i, q in enumerate(questions, 1):
                results.append(run_closed_book(gen, q, relevant_text(q), bot, org))
                if progress:
                    progress(arm, i, len(questions))
        report["arms"][arm] = summarise(questions, results)
        report["per_question"][arm] = [r.to_json() for r in results]
        if arm == fit_arm(arms):
            report["fit"] = fit_thresholds(questions, results)
    return report


def pick(questions: Sequence[EvalQuestion], limit: int | None) -> list[EvalQuestion]:
    """Every unanswerable question and `limit` answerable ones spread evenly over the set (the same
    ones on every run)."""
    if not limit:
        return list(questions)
    answerable = [q for q in questions if not q.unanswerable]
    step = max(1, len(answerable) / limit)
    chosen = [answerable[int(i * step)] for i in range(min(limit, len(answerable)))]
    return chosen + [q for q in questions if q.unanswerable]


def chart(report: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [("cited_relevant", "relevant page cited"), ("fact_recall", "reference fact recall"),
               ("unsupported", "unsupported specifics"), ("unanswerable_refused", "unanswerables refused"),
               ("wrongly_refused", "answerables refused")]
    arms = list(report["arms"])
    fig, ax = plt.subplots(figsize=(10, 4.2))
    width = 0.8 / len(arms)
    for i, arm in enumerate(arms):
        vals = [report["arms"][arm].get(m) or 0 for m, _ in metrics]
        bars = ax.bar([x + i * width for x in range(len(metrics))], vals, width, label=arm)
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in vals], fontsize=7, padding=1)
    ax.set_xticks([x + width * (len(arms) - 1) / 2 for x in range(len(metrics))], [label for _, label in metrics])
    ax.set_ylim(0, 1.1)
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write(report: dict, out_dir: Path, name: str, title: str) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    js = out_dir / f"answers_{name}.json"
    js.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    png = out_dir / f"answers_{name}.png"
    chart(report, png, title)
    return js, png


def table(report: dict) -> str:
    """The four arms as a Markdown table (the README's)."""
    rows = ["| arm | relevant page cited | … when retrieved | fact recall | … when retrieved | unsupported "
            "specifics | unanswerables refused | answerables refused | s / answer | words / answer |",
            "|---|---|---|---|---|---|---|---|---|---|"]

    def f(v):
        return "–" if v is None else f"{v:.2f}"

    def words(v):
        return "–" if v is None else f"{v:.0f}"

    for arm, s in report["arms"].items():
        rows.append(f"| {arm} | {f(s['cited_relevant'])} | {f(s['cited_relevant_retrieved'])} | "
                    f"{f(s['fact_recall'])} | {f(s['fact_recall_retrieved'])} | {f(s['unsupported'])} | "
                    f"{f(s['unanswerable_refused'])} | {f(s['wrongly_refused'])} | {f(s['seconds_p50'])} | "
                    f"{words(s.get('words_p50'))} |")
    return "\n".join(rows)

