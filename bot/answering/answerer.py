"""Question in, cited answer out. No Slack here: the CLI, the bot and the evals all call this."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from bot.answering.citations import cited_numbers, validate_citations
from bot.answering.generator import Generator
from bot.answering.language import detect as detect_language
from bot.answering.language import name as language_name
from bot.answering.prompt import PromptPassage, Turn, build_messages
from retrieval.index import DocumentIndex
from retrieval.types import Query, ScoredChunk

log = logging.getLogger(__name__)


class QuestionError(ValueError):
    """The question cannot be answered as asked (empty); the message says what to do."""


@dataclass(frozen=True)
class Citation:
    number: int
    title: str
    url: str
    document_id: str
    heading: str


@dataclass
class Answer:
    question: str
    text: str
    citations: list[Citation]
    passages: list[ScoredChunk]
    found: bool = True  # False: nothing relevant was retrieved, `text` says so
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    generator: str | None = None
    invalid_citations: list[int] = field(default_factory=list)  # markers the model invented, dropped

    @property
    def nearest(self) -> list[ScoredChunk]:
        """Distinct documents among the passages, best first (shown when nothing was found)."""
        seen, out = set(), []
        for p in self.passages:
            if p.chunk.document_id not in seen:
                seen.add(p.chunk.document_id)
                out.append(p)
        return out

    def to_dict(self) -> dict:
        return {
            "answer": self.text,
            "found": self.found,
            "citations": [
                {"number": c.number, "title": c.title, "url": c.url, "document_id": c.document_id,
                 "heading": c.heading}
                for c in self.citations
            ],
            "passages": passages_to_dicts(self.passages),
            "notes": self.notes,
            "timings": self.timings,
            "generator": self.generator,
        }


def passages_to_dicts(passages: Sequence[ScoredChunk]) -> list[dict]:
    return [
        {"document_id": p.chunk.document_id, "title": p.chunk.title, "score": round(p.score, 6),
         "heading": p.chunk.heading, "text": p.chunk.text, "url": p.chunk.url,
         "similarity": None if p.vector_score is None else round(p.vector_score, 4)}
        for p in passages
    ]


@dataclass(frozen=True)
class Delta:
    """Answer text generated so far (streaming); citations are not validated yet."""

    text: str


_STOP_AT = re.compile(r"<start_of_turn>|<end_of_turn>|\n\s*(?:Question|Asker|Passages):|\n\[\d+\] \S", re.S)


REFUSAL = re.compile(r"\b(?:couldn'?t|could not|can'?t|cannot) find\b|won'?t guess", re.I)
_SIGN_OFF = re.compile(r"^— \S.*$", re.M)  # the house style ends with a "— Anvil" line


def clean_generation(text: str) -> str:
    """Cut what a base model adds after its answer (a new 'Question:', a passage list, a new turn,
    anything after the sign-off line)."""
    m = _STOP_AT.search(text)
    if m:
        text = text[: m.start()]
    m = _SIGN_OFF.search(text)
    if m:
        sign_off = re.match(r"— [^\W\d_]+(?: [^\w\s])?", m.group(0))
        text = text[: m.start()] + (sign_off.group(0) if sign_off else m.group(0))
    lines, out = text.strip().splitlines(), []
    for line in lines:  # small models loop: drop a line repeated verbatim
        if line.strip() and line in out:
            break
        out.append(line)
    return "\n".join(out).strip()


class Answerer:
    def __init__(
        self, index: DocumentIndex, embedder, generator: Generator, *, top_k: int = 4, candidates: int = 50,
        min_similarity: float = 0.3, few_shot: bool = True, history_turns: int = 3,
        max_question_chars: int = 2000, bot_name: str = "Anvil", organisation: str = "Acme Robotics",
        language: str | None = "en",
    ):
        self.index = index
        self.embedder = embedder
        self.generator = generator
        self.top_k = top_k
        self.candidates = candidates
        self.min_similarity = min_similarity
        self.few_shot = few_shot
        self.history_turns = history_turns
        self.max_question_chars = max_question_chars
        self.bot_name = bot_name
        self.organisation = organisation
        self.language = language

    # -- retrieval -------------------------------------------------------------------------------
    def _prepare(self, question: str) -> tuple[str, list[str]]:
        notes = []
        question = (question or "").strip()
        if not question:
            raise QuestionError("The question is empty. Ask something, e.g. orgbot ask \"How do I set up the VPN?\"")
        if len(question) > self.max_question_chars:
            question = question[: self.max_question_chars]
            notes.append(f"Only the first {self.max_question_chars} characters of the question were used.")
        return question, notes

    def foreign_language(self, question: str) -> str | None:
        """The question's language when it is confidently not the one the models handle (`language`)."""
        return detect_language(question, self.language) if self.language else None

    def search_query(self, question: str, history: Sequence[Turn]) -> str:
        """A follow-up ("and in Toronto?") is searched together with the thread's earlier questions."""
        earlier = [t.content for t in history if t.role == "user"][-self.history_turns:] if history else []
        return " ".join([*earlier[-2:], question])

    def retrieve(self, question: str, *, k: int | None = None, sources: Sequence[str] | None = None,
                 principals: Sequence[str] | None = None, history: Sequence[Turn] = ()) -> list[ScoredChunk]:
        text = self.search_query(question, history)
        vector = self.embedder.embed_query(text)
        query = Query(text=text, vector=vector, sources=sources, principals=principals,
                      candidates=max(self.candidates, (k or self.top_k) * 4))
        return self.index.search(query, k or self.top_k)

    def is_relevant(self, passages: Sequence[ScoredChunk]) -> bool:
        best = max((p.vector_score for p in passages if p.vector_score is not None), default=None)
        return best is not None and best >= self.min_similarity

    # -- answering -------------------------------------------------------------------------------
    def stream(self, question: str, *, asker: str | None = None, history: Sequence[Turn] = (),
               sources: Sequence[str] | None = None, principals: Sequence[str] | None = None,
               k: int | None = None) -> Iterator[Delta | Answer]:
        """Yield `Delta`s while generating, then the final `Answer`."""
        question, notes = self._prepare(question)
        history = list(history)[-2 * self.history_turns:] if self.history_turns else []
        t0 = time.perf_counter()
        passages = self.retrieve(question, k=k, sources=sources, principals=principals, history=history)
        timings = {"retrieve_s": round(time.perf_counter() - t0, 3)}
        foreign = self.foreign_language(question)
        if foreign:
            log.info("question in another language", extra={"language": foreign, "expected": self.language})
            notes.append(f"The question looks like {language_name(foreign)}; the search and answer models are set up "
                         f"for {language_name(self.language)} (answering.language). For other languages, set "
                         "retrieval.embedding_model to a multilingual model and reindex.")
        if not self.is_relevant(passages):
            answer = Answer(question, self.not_found_text(foreign), [], passages, found=False, notes=notes,
                            timings=timings, generator=None)
            yield answer
            return
        messages = build_messages(
            question,
            [PromptPassage(p.chunk.title, p.chunk.heading, p.chunk.text,
                           p.chunk.updated_at.date().isoformat() if p.chunk.updated_at else None)
             for p in passages],
            asker=asker, history=history, few_shot=self.few_shot, bot_name=self.bot_name,
            organisation=self.organisation,
        )
        t1 = time.perf_counter()
        raw = ""
        for piece in self.generator.stream(messages):
            if not raw:
                timings["first_token_s"] = round(time.perf_counter() - t1, 3)
            raw += piece
            yield Delta(clean_generation(raw))
            if _STOP_AT.search(raw) or _SIGN_OFF.search(raw.rstrip("\n")) and raw.endswith("\n"):
                break
        timings["generate_s"] = round(time.perf_counter() - t1, 3)
        yield self._finish(question, raw, passages, notes, timings)

    def answer(self, question: str, **kw) -> Answer:
        final = None
        for event in self.stream(question, **kw):
            final = event
        assert isinstance(final, Answer)
        return final

    def not_found_text(self, foreign: str | None = None) -> str:
        if foreign:
            return (f"I couldn't find this in the knowledge base. Your question looks like {language_name(foreign)}, "
                    f"and I search best in {language_name(self.language)}: please try asking in "
                    f"{language_name(self.language)}. The nearest pages are listed below.")
        return "I couldn't find this in the knowledge base, so I won't guess. The nearest pages are listed below."

    def _finish(self, question, raw, passages, notes, timings) -> Answer:
        cleaned = clean_generation(raw)
        text, cited = validate_citations(cleaned, len(passages))
        invalid = sorted({n for n in cited_numbers(cleaned) if not 1 <= n <= len(passages)})
        if invalid:
            notes = [*notes, f"dropped citation(s) to passages that were not given: {invalid}"]
        if not text:
            text = "I couldn't write an answer from the passages I found; the nearest pages are listed below."
            return Answer(question, text, [], passages, found=False, notes=notes, timings=timings,
                          generator=self.generator.name)
        citations = [
            Citation(n, passages[n - 1].chunk.title, passages[n - 1].chunk.url, passages[n - 1].chunk.document_id,
                     passages[n - 1].chunk.heading)
            for n in cited
        ]
        # A tuned model says so when the passages do not answer (and may cite the closest pages):
        # that is a "not found", whatever it cites.
        found = not REFUSAL.search(text.split("\n", 1)[0])
        return Answer(question, text, citations, passages, found=found, notes=notes, timings=timings,
                      generator=self.generator.name, invalid_citations=invalid)
