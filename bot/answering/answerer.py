"""Question in, cited answer out. No Slack here: the CLI, the bot and the evals all call this."""

from __future__ import annotations

import logging
import math
import re
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

from bot.answering.citations import CITATION_MARKER, cited_numbers, validate_citations
from bot.answering.generator import Generator, RefusalGate
from bot.answering.grounding import (
    ANOTHER_ROW,
    ELISION,
    Focus,
    Grounding,
    GroundingChecker,
    SentenceCheck,
    answer_closeness,
    asked_by,
    extractive_answer,
    focus_assessment,
    introduce,
    likeliest,
    opening,
    passage_closeness,
    quotable,
    quote_rows,
    split_units,
    starts_a_block,
    unmatched_code,
    unmatched_names,
)
from bot.answering.language import detect as detect_language
from bot.answering.language import name as language_name
from bot.answering.prompt import REFUSAL_TEXT, PromptPassage, Turn, build_messages
from retrieval.chunking import as_read
from retrieval.index import ChunkLookup, DocumentIndex, IndexUnavailable, chunk_id
from retrieval.rerank import SectionReranker
from retrieval.types import Chunk, Query, ScoredChunk

log = logging.getLogger(__name__)
# How far back (in chunks) a passage's section start is looked for; past it, the passage goes as it is.
SECTION_LOOKBACK = 8


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
    removed: list[str] = field(default_factory=list)  # generated sentences the grounding check removed
    refusal_probability: float | None = None  # the model's probability of starting its refusal (local models)
    # generated | extractive (nothing generated was supported, or it drew on a passage far from the question:
    # the closest passage quoted) | overruled (the model refused, the question was answerable enough to quote) |
    # refused (the model's refusal) | not_found (nothing close enough was retrieved, or nothing usable was left)
    mode: str = "generated"
    unmatched: list[str] = field(default_factory=list)  # what the question names that no passage mentions
    answerability: float | None = None  # how likely the best passage answers (`Answerer.assess`); the cuts read it

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
            "mode": self.mode,
            "removed": self.removed,
            "refusal_probability": self.refusal_probability,
            "unmatched": self.unmatched,
            "answerability": None if self.answerability is None else round(self.answerability, 4),
        }


def shown_title(chunk) -> str:
    """A passage's page title as a reader sees it: a page that says it was replaced is named so."""
    return chunk.title if chunk.superseded_by is None else f"{chunk.title} (superseded)"


def passages_to_dicts(passages: Sequence[ScoredChunk]) -> list[dict]:
    return [
        {"document_id": p.chunk.document_id, "title": p.chunk.title, "score": round(p.score, 6),
         "heading": p.chunk.heading, "text": p.chunk.text, "url": p.chunk.url,
         "similarity": None if p.vector_score is None else round(p.vector_score, 4),
         **({} if p.chunk.superseded_by is None else {"superseded_by": p.chunk.superseded_by})}
        for p in passages
    ]


@dataclass(frozen=True)
class Style:
    """An organisation's house format (answering.style): added around the grounded answer."""

    greeting: str | None = None  # "Hi {asker}!"
    source_line: str | None = None  # "📘 Policy: {title} [{n}]"
    sign_off: str | None = None  # "— Anvil 🔨"

    def apply(self, text: str, *, asker: str | None, citations: Sequence[Citation]) -> str:
        parts = []
        if self.greeting and (asker or "{asker}" not in self.greeting):
            # (an answer that opens with a list or code goes under the greeting: after it on one line, it is none)
            after = "\n" if starts_a_block(text.strip()) else " "
            parts.append(self.greeting.format(asker=asker or "").strip() + after + text.strip())
        else:
            parts.append(text.strip())
        if self.source_line and citations:  # a line per page cited, under its first number
            pages: dict[str, Citation] = {}
            for c in citations:
                pages.setdefault(c.document_id, c)
            parts.append("\n".join(self.source_line.format(title=c.title, n=c.number, url=c.url)
                                   for c in pages.values()))
        out = "\n\n".join(parts)
        return f"{out}\n{self.sign_off}" if self.sign_off else out


@dataclass(frozen=True)
class Delta:
    """Answer text generated so far (streaming); citations are not validated yet."""

    text: str


_STOP_AT = re.compile(r"<start_of_turn>|<end_of_turn>|\n\s*(?:Question|Asker|Passages):|\n\[\d+\] \S|<passage \d|</passage",
                      re.S)


REFUSAL = re.compile(r"\b(?:couldn'?t|could not|can'?t|cannot) find\b|won'?t guess", re.I)
# A list of the closest pages instead of an answer is a refusal too (the tuned model learnt it from
# the sample's refusals), wherever it stands.
CLOSEST = re.compile(r"\b(?:closest|nearest) pages?\b", re.I)
_SIGN_OFF = re.compile(r"^— \S.*$", re.M)  # the house style ends with a "— Anvil" line
# A label of the prompt's a small model writes before a point of its answer ("• Asker: You need the `deployer`
# role …"); on a line of its own it starts a new turn (`_STOP_AT`).
_LABEL = re.compile(r"^(\s*[-*•]\s+)(?:Asker|Question|Passages):\s*", re.M)
# A slash standing alone between a sentence's end and its citation ("… python -m django. / [2].", seen on Django's
# docs): no part of the answer.
_STRAY_SLASH = re.compile(r"(?<=[.!?])[ \t]+/[ \t]*(?=\[\d)")


def _judged(check: SentenceCheck, scores: Sequence[float]) -> list[int]:
    """The passages a kept sentence's model-written citations name that the focus score judged (not -inf, which
    cannot be quoted): what `_asides` reads. [] for a line the model left uncited (a citation the check gave it)."""
    return [n for n in cited_numbers(check.text) if 1 <= n <= len(scores) and scores[n - 1] != -math.inf] \
        if check.cited else []


def _tie_note(cited: Sequence[int]) -> list[str]:
    """The note on a quoted answer that quotes a second page (`Answerer._runner_up`)."""
    if len(cited) < 2:
        return []
    return [f"quoted [{cited[1]}] too: another page about as likely to answer as [{cited[0]}] "
            "(within answering.focus_margin)"]


def clean_generation(text: str) -> str:
    """Cut what a base model adds after its answer (a new 'Question:', a passage list, a new turn,
    anything after the sign-off line), a prompt's label before a point, a slash standing alone before a citation;
    a numbered list run into its sentence goes on lines of its own."""
    m = _STOP_AT.search(text)
    if m:
        text = text[: m.start()]
    m = _SIGN_OFF.search(text)
    if m:
        sign_off = re.match(r"— [^\W\d_]+(?: [^\w\s])?", m.group(0))
        text = text[: m.start()] + (sign_off.group(0) if sign_off else m.group(0))
    text = _unflattened(_STRAY_SLASH.sub(" ", _LABEL.sub(r"\1", text)))
    lines, out = text.strip().splitlines(), []
    for line in lines:  # small models loop: drop a line repeated verbatim
        if line.strip() and line in out:
            break
        out.append(line)
    return "\n".join(out).strip()


_LIST_START = re.compile(r"(?<=[^\d\s]):[ \t]+1\.[ \t]+(?=[A-Z`*])")  # not a ratio's "3: 1. …"


def _unflattened(text: str) -> str:
    """A numbered list a small model ran into the sentence that introduces it ("Report it within 1 hour of
    noticing, day or night: 1. Open a ticket … 2. Say what was lost …"), on lines of its own as the page has it:
    read as sentences, "… day or night: 1." would be one, its "1" a claim."""
    out = []
    for line in text.split("\n"):
        m = _LIST_START.search(line)
        if m is None:
            out.append(line)
            continue
        items, rest, n = [], line[m.start() + 1:].strip(), 2
        while (nxt := re.search(rf"(?<=[.!?\]])[ \t]+({n}\.[ \t]+)(?=[A-Z`*])", rest)) is not None:
            items.append(rest[:nxt.start()])
            rest, n = rest[nxt.start(1):], n + 1
        out.extend([line[:m.start() + 1], *items, rest])
    return "\n".join(out)


def current(hits: Sequence[ScoredChunk]) -> list[ScoredChunk]:
    """`hits` without the passages of a page that was replaced when the page that replaced it is among them:
    an answer comes from the current policy, not the one it superseded. A replaced page whose successor was
    not found (or is not named) stays: it may be all there is, and its citation says it was superseded."""
    found = {h.chunk.document_id for h in hits}
    return [h for h in hits if not (h.chunk.superseded_by and h.chunk.superseded_by in found)]


def section_start(chunk: Chunk, earlier: Sequence[Chunk | None]) -> Chunk | None:
    """The first chunk of `chunk`'s section, given the chunks just before it (`earlier`: at position - 1,
    position - 2, …; None where the index has none). None when `chunk` opens its section, or where the start
    is not known: a chunk missing, of another version or ACL, or the section longer than `earlier` reaches."""
    start = None
    for c in earlier:
        if c is None or (c.document_id, c.content_hash, c.acl) != (chunk.document_id, chunk.content_hash, chunk.acl):
            return None
        if c.heading != chunk.heading:
            return start
        start = c
    return start if start is not None and start.position == 0 else None


class Answerer:
    def __init__(
        self, index: DocumentIndex, embedder, generator: Generator, *, top_k: int = 4, candidates: int = 50,
        min_similarity: float = 0.3, few_shot: bool = True, history_turns: int = 3,
        max_question_chars: int = 2000, bot_name: str = "orgbot", organisation: str = "your organisation",
        language: str | None = "en", escalation: str | None = None, grounding: bool = True,
        min_support: float = 0.6, answer_similarity: float | None = None, extract_similarity: float = 0.0,
        refusal_confidence: float | None = None, style: Style | None = None, focus_margin: float | None = 0.05,
        focus_rank_weight: float = 0.05,
        refocus_closeness: float | None = None, unmatched_similarity: float | None = None,
        passages_per_section: int | None = 1, focus_embedder=None, reranker: SectionReranker | None = None,
        section_opening: int = 0, focus_headings: bool = False, sentence_margin: float | None = None,
    ):
        self.index = index
        self.embedder = embedder
        self.generator = generator
        self.top_k = top_k
        self.candidates = candidates
        # At most this many of the passages come from one section (None: no cap): two chunks of one long
        # section leave room for one other page fewer.
        self.passages_per_section = passages_per_section
        # A passage from further down a section comes with the section's opening, up to this many words (0: off;
        # `with_openings`).
        self.section_opening = section_opening
        self.min_similarity = min_similarity
        self.few_shot = few_shot
        self.history_turns = history_turns
        self.max_question_chars = max_question_chars
        self.bot_name = bot_name
        self.organisation = organisation
        self.language = language
        self.escalation = escalation
        self.grounding = grounding
        # Every cut below, and `min_similarity`, reads the question's answerability (`assess`).
        # A model's refusal is overruled (the best passage is quoted) when the answerability is at least this:
        # set on a development set (`orgbot eval answers`). None = never.
        self.answer_similarity = answer_similarity
        self.extract_similarity = extract_similarity
        # The model may start its refusal only when at least this sure of it (a local model's first-token
        # probability); below, it answers and the grounding check decides. None = its own greedy choice.
        self.refusal_confidence = refusal_confidence
        # The question names something no passage mentions ("Heroku", "4.0", "--strict"): it is answered only
        # when the answerability is at least this (None: the check is off).
        self.unmatched_similarity = unmatched_similarity
        self.style = style or Style()
        # An answer citing only passages whose focus score (closeness + similarity - focus_rank_weight x
        # ln(rank)) is this much below the best passage's is replaced by a quote of that one (None: never).
        self.focus_margin = focus_margin
        self.focus_rank_weight = focus_rank_weight
        # A second, larger embedder that judges which passage answers (`focus_scores`); None: the retriever's.
        self.focus_embedder = focus_embedder
        # The judge reads each whole passage with its page title and heading (`Chunk.embedding_text`); False: its text.
        self.focus_headings = focus_headings
        # Reorders hybrid search's first sections (`retrieval.rerank_depth`: the judge's `SectionReranker`);
        # None: off.
        self.reranker = reranker
        # Off target, and the closer passage's closest sentence is at least this similar to the question: the
        # answer is written again from that passage alone before it is quoted (None: never).
        self.refocus_closeness = refocus_closeness
        # A generated answer whose closest sentence is this much further from the question than the closest
        # sentence of a passage it cites answers something else that passage says: the passage is quoted
        # (`_aside`; None: never).
        self.sentence_margin = sentence_margin
        self.checker = GroundingChecker(min_support=min_support, embed=getattr(embedder, "embed", None))

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
        k = k or self.top_k
        query = Query(text=text, vector=vector, sources=sources, principals=principals,
                      candidates=max(self.candidates, k * 4))
        hits = current(self.index.search(query, max(k, self.reranker.depth if self.reranker else 0) * 4))
        if self.reranker:
            hits = self.reranker(text, hits)
        if not self.passages_per_section:
            return self.with_openings(hits[:k])
        kept, per_section = [], Counter()
        for hit in hits:
            section = (hit.chunk.document_id, hit.chunk.heading)
            if per_section[section] < self.passages_per_section:
                per_section[section] += 1
                kept.append(hit)
                if len(kept) == k:
                    break
        return self.with_openings(kept)

    def with_openings(self, passages: list[ScoredChunk]) -> list[ScoredChunk]:
        """Each passage from further down a section, with the section's opening before it ("<opening>\\n\\n…\\n\\n
        <passage>"): a section states its point first ("Use the standard library module smtplib."), and the
        chunk the search found may be only its code or its caveats. Everything after retrieval reads the passage
        so: the prompt, the grounding check, the quote, the focus score. The opening comes from the same
        version of the same page (same ACL), looked up by id in one request (`ChunkLookup`); a lookup that
        fails leaves the passages as they are."""
        if not self.section_opening or not isinstance(self.index, ChunkLookup):
            return passages
        wanted = {p.chunk.id: [chunk_id(p.chunk.document_id, p.chunk.position - i)
                               for i in range(1, min(SECTION_LOOKBACK, p.chunk.position) + 1)]
                  for p in passages if p.chunk.position > 0}
        if not wanted:
            return passages
        try:
            found = {c.id: c for c in self.index.chunks([i for ids in wanted.values() for i in ids])}
        except IndexUnavailable as e:
            log.warning("section openings not read; passages go as found", extra={"error": str(e)})
            return passages
        out = []
        for p in passages:
            start = section_start(p.chunk, [found.get(i) for i in wanted.get(p.chunk.id, [])])
            lead = opening(start.text, self.section_opening) if start is not None else None
            out.append(replace(p, chunk=replace(p.chunk, text=f"{lead}\n\n{ELISION}\n\n{p.chunk.text}")) if lead else p)
        return out

    def _citation(self, n: int, passages: Sequence[ScoredChunk]) -> Citation:
        """Passage [n] as a source; one whose page says it was replaced is named so ("… (superseded)")."""
        c = passages[n - 1].chunk
        return Citation(n, shown_title(c), c.url, c.document_id, c.heading)

    def assess(self, question: str, passages: Sequence[ScoredChunk]) -> tuple[list[float], float, list[float]]:
        """Each passage's focus score (`focus_scores`: how likely it is the one that answers), and the question's
        answerability: the best passage's focus score per similarity it adds up (three with the judge: its
        closest sentence's and its whole text's judged similarity, and the retriever's; two without), so on a
        cosine's scale. Every refusal cut reads it (`min_similarity`, `unmatched_similarity`, `answer_similarity`,
        `extract_similarity`): it reads the passage an answer would come from, which separates answerable
        questions from unanswerable ones better than the retriever's best cosine (README, "Which questions are
        refused"). A passage that cannot be quoted counts only when none can. Third, each passage's closest
        sentence's closeness to the question (`Focus.closeness`), which an answer from it is held to (`_aside`)."""
        if not passages:
            return [], 0.0, []
        focus = self._assessment(question, passages)
        can_quote = [quotable(p.chunk.text, question) for p in passages]  # read once: both lists below use it
        scores = [r if ok else -math.inf for ok, r in zip(can_quote, focus.scores, strict=True)]
        # how likely any passage answers, from what the passages say (not the questions their headings ask)
        usable = [x for ok, x in zip(can_quote, focus.plain, strict=True) if ok] or focus.plain
        return scores, max(usable) / (3 if self.focus_embedder is not None else 2), focus.closeness

    def unmatched(self, question: str, passages: Sequence[ScoredChunk]) -> list[str]:
        """What the question names (a name, number, command, path) that no passage mentions; the bot's and
        the organisation's own names do not count (a wiki seldom names its company). A name typed in lower
        case counts when the models read English (`unfamiliar_words`)."""
        known = [self.bot_name, self.organisation]
        return unmatched_names(question, [*(p.chunk.embedding_text for p in passages), *known],
                               english=self.language == "en")

    def unanswered_names(self, question: str, passages: Sequence[ScoredChunk], answerability: float) -> list[str]:
        """The unmatched names, when they are reason enough to refuse: the answerability is below
        `unmatched_similarity`."""
        if self.unmatched_similarity is None or answerability >= self.unmatched_similarity:
            return []
        return self.unmatched(question, passages)

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
        scores, answerability, closeness = self.assess(question, passages)
        missing = self.unanswered_names(question, passages, answerability) if passages else []
        if not passages or answerability < self.min_similarity or missing:
            answer = Answer(question, self.style.apply(self.not_found_text(foreign, missing), asker=asker, citations=()),
                            [], passages, found=False, notes=notes, timings=timings, generator=None,
                            mode="not_found", unmatched=missing, answerability=answerability)
            yield answer
            return
        messages = self._messages(question, passages, asker, history)
        t1 = time.perf_counter()
        raw, shown, complete = "", "", 0
        texts = [p.chunk.embedding_text for p in passages]
        gate = RefusalGate(REFUSAL_TEXT, self.refusal_confidence) if getattr(self.generator, "accepts_gate", False) \
            else None
        for piece in self.generator.stream(messages, gate=gate) if gate else self.generator.stream(messages):
            if not raw:
                timings["first_token_s"] = round(time.perf_counter() - t1, 3)
            raw += piece
            if self.grounding:
                # Show a sentence once it is complete and checked: a reader never sees one that is removed.
                units = split_units(clean_generation(raw))
                if len(units) - 1 > complete:
                    complete = len(units) - 1
                    checked = self._check("\n".join(units[:complete]), texts, question, asker, scores)
                    text = checked.text_before(self._pending(checked, scores))
                    if text and text != shown:
                        shown = text
                        timings.setdefault("first_text_s", round(time.perf_counter() - t1, 3))
                        yield Delta(text)
            else:
                yield Delta(clean_generation(raw))
            if _STOP_AT.search(raw) or _SIGN_OFF.search(raw.rstrip("\n")) and raw.endswith("\n"):
                break
        timings["generate_s"] = round(time.perf_counter() - t1, 3)
        final = self._finish(question, raw, passages, notes, timings, asker, history, scores, answerability,
                             closeness, held_back=gate is not None and gate.blocked)
        if gate is not None:
            final.refusal_probability = None if gate.probability is None else round(gate.probability, 4)
            if gate.blocked:
                final.notes.append("the model leaned towards not finding it, below answering.refusal_confidence: "
                                   "it answered from the passages")
        yield final

    def answer(self, question: str, **kw) -> Answer:
        final = None
        for event in self.stream(question, **kw):
            final = event
        assert isinstance(final, Answer)
        return final

    def not_found_text(self, foreign: str | None = None, missing: Sequence[str] = ()) -> str:
        escalate = f" {self.escalation.strip()}" if self.escalation else ""
        if foreign:
            return (f"{REFUSAL_TEXT} Your question looks like {language_name(foreign)}, and I search best in "
                    f"{language_name(self.language)}: please try asking in {language_name(self.language)}."
                    f"{escalate} The nearest pages are listed below.")
        if missing:
            names = " or ".join(f"“{m}”" for m in missing[:3])
            return f"{REFUSAL_TEXT} None of the pages I found mention {names}.{escalate} The nearest pages are listed below."
        return f"{REFUSAL_TEXT}{escalate} The nearest pages are listed below."

    def context(self, question: str, asker: str | None = None) -> str:
        """What an answer may name besides the passages: the question, the asker, the bot, the organisation
        and the words of the configured house format."""
        style = " ".join(t for t in (self.style.greeting, self.style.source_line, self.style.sign_off) if t)
        return f"{question} {asker or ''} {self.bot_name} {self.organisation} {self.escalation or ''} {style}"

    def _check(self, text: str, passages: Sequence[str], question: str, asker: str | None,
               scores: Sequence[float] = ()) -> Grounding:
        """The grounding check of a written answer (`GroundingChecker.check`): what it may name besides the
        passages is the `context`; the table row it must speak of is the one the question alone names. With the
        passages' focus `scores`, its asides are removed too (`_asides`)."""
        result = self.checker.check(text, passages, self.context(question, asker), REFUSAL, asked=question,
                                    english=self.language == "en")
        if asides := self._asides(result, scores):
            result.remove(asides, "from a passage much less likely to answer than the one the answer draws on")
        return result

    def _asides(self, result: Grounding, scores: Sequence[float]) -> list[SentenceCheck]:
        """The kept sentences that cite only passages whose focus score is at least `focus_margin` below that of
        the likeliest passage the answer cites: what the model added from a passage less likely to answer, after
        or before the answer ("The April cycle takes effect on 1 July [2]. • Access Hub sends each reviewer a list
        on the first Monday of the quarter [3]" to "when do raises from the april review kick in?"). A passage that
        cannot be quoted (score -inf) is no reason either way, nor is a citation the check gave a line the model left
        uncited (a command the model ran into its sentence: "use the / lsb_release -a / command [1]", which another
        passage names too). [] when the answer cites one passage."""
        if self.focus_margin is None or not scores:
            return []
        cites = [(c, _judged(c, scores)) for c in result.kept]
        cited = {n for _, ns in cites for n in ns}
        if len(cited) < 2:
            return []
        top = max(scores[n - 1] for n in cited)
        return [c for c, ns in cites if self._far_below(ns, scores, top)]

    def _far_below(self, cited: Sequence[int], scores: Sequence[float], top: float) -> bool:
        """Whether passages `cited` (some) all score at least `focus_margin` below `top`."""
        return bool(cited) and all(scores[n - 1] <= top - self.focus_margin for n in cited)

    def _pending(self, result: Grounding, scores: Sequence[float]) -> SentenceCheck | None:
        """While an answer streams, the first kept sentence a later one could still make an aside (`_asides`): it
        cites only passages at least `focus_margin` below the likeliest passage given. It and what follows it wait
        for the final answer, so a reader never sees a sentence shown, then taken away. None when there is none."""
        quotable = [s for s in scores if s != -math.inf]
        if self.focus_margin is None or not quotable:
            return None
        top = max(quotable)
        return next((c for c in result.kept if self._far_below(_judged(c, scores), scores, top)), None)

    def _messages(self, question: str, passages: Sequence[ScoredChunk], asker: str | None,
                  history: Sequence[Turn]) -> list[dict[str, str]]:
        return build_messages(
            question,
            [PromptPassage(p.chunk.title, p.chunk.heading, as_read(p.chunk.text),
                           p.chunk.updated_at.date().isoformat() if p.chunk.updated_at else None)
             for p in passages],
            asker=asker, history=history, few_shot=self.few_shot, bot_name=self.bot_name,
            organisation=self.organisation,
        )

    def _assessment(self, question: str, passages: Sequence[ScoredChunk]) -> Focus:
        """The passages' focus scores with and without the questions their headings ask, and their closest
        sentences' closeness (`focus_assessment`; unmasked: `assess` masks what cannot be quoted)."""
        return focus_assessment(question, [as_read(p.chunk.text) for p in passages], similarities=[p.vector_score for p in passages],
                            embed=getattr(self.embedder, "embed", None), rank_weight=self.focus_rank_weight,
                            judge=getattr(self.focus_embedder, "embed", None), masked=False,
                            headed=[as_read(p.chunk.embedding_text) for p in passages] if self.focus_headings else None,
                            asks=[asked_by(p.chunk.heading) for p in passages])

    def _off_target(self, scores: Sequence[float], cited: Sequence[int]) -> int | None:
        """The number of the passage most likely to answer when the answer cites none within `focus_margin`
        of it (a small model often writes from a neighbouring passage); None when the answer is on target."""
        best = likeliest(scores)
        if best is None or scores[best - 1] < max(scores[c - 1] for c in cited) + self.focus_margin:
            return None
        return best

    def _quote(self, question: str, passages: Sequence[ScoredChunk], scores: Sequence[float],
               best: int) -> tuple[str, list[int]] | None:
        """Quote passage [best] as the answer (`extractive_answer`), and after it the runner-up (`_runner_up`)
        when another page is about as likely to answer: the reader sees both, each cited, rather than the one
        the focus score favours by a hair. (text, the passage numbers cited) or None when [best] has nothing
        to quote."""
        texts = [p.chunk.text for p in passages]
        embed = getattr(self.embedder, "embed", None)
        quoted = extractive_answer(question, texts, embed=embed, only=best)
        if quoted is None:
            return None
        second = self._runner_up(passages, scores, best)
        more = None if second is None else extractive_answer(question, texts, embed=embed, only=second)
        if more is None:
            return quoted[0], [best]
        return f"{quoted[0]}\n\n{more[0]}", [best, second]

    def _runner_up(self, passages: Sequence[ScoredChunk], scores: Sequence[float], best: int) -> int | None:
        """The passage of another page whose focus score is within `focus_margin` of passage [best]'s: the
        margin within which an answer from a passage counts as on target counts as a tie here too (README,
        "Two pages about as likely to answer"). None when there is none, or `focus_margin` is None."""
        if self.focus_margin is None:
            return None
        page = passages[best - 1].chunk.document_id
        others = [n for n in range(1, len(scores) + 1)
                  if passages[n - 1].chunk.document_id != page and scores[n - 1] != -math.inf]
        second = max(others, key=lambda n: scores[n - 1], default=None)
        return second if second is not None and scores[best - 1] - scores[second - 1] < self.focus_margin else None

    def _aside(self, question: str, text: str, cited: Sequence[int], closeness: Sequence[float]) -> int | None:
        """The passage an answer cites whose closest sentence is at least `sentence_margin` closer to the question
        (`closeness`, from `assess`: by the judge, else the retriever's embedder) than the answer's closest
        sentence: the model wrote from the passage's other sentences ("The rules in this section are guidelines
        for general use [1]" for "what file permissions should installed files have?", where [1] says "… that is
        mode 644 or 755"). None when the answer is as close as that, or `sentence_margin` is None."""
        embed = getattr(self.focus_embedder, "embed", None) or getattr(self.embedder, "embed", None)
        if self.sentence_margin is None or embed is None:
            return None
        best = max(cited, key=lambda n: closeness[n - 1])
        said = answer_closeness(question, text, embed=embed)
        return best if closeness[best - 1] >= said + self.sentence_margin else None

    def _row_quote(self, question: str, passages: Sequence[ScoredChunk], result: Grounding) -> tuple[str, int] | None:
        """The quote of the table rows the question asks about (`quote_rows`) and its passage's number, when the
        check removed a sentence about another of the rows (`another_row`) and no kept sentence names an asked one:
        "how long until the pit crew answers a hardware ticket?" answered with the outage row, removed, and a
        definition of response time left. The table is read from the passage the check read the sentence against
        (a sentence citing [1] in the words of [2] is about [2]'s rows). None otherwise (the ganesh answer, nothing
        left, is quoted anyway)."""
        kept = [k.text for k in result.kept]
        for c in result.removed:  # (the check reads a sentence's row against a passage it names: `source`)
            n = c.source
            if c.reason == ANOTHER_ROW and n is not None and (
                    quoted := quote_rows(question, passages[n - 1].chunk.text, n, kept, self.language == "en")):
                return quoted, n
        return None

    def _refocused(self, question: str, passages: Sequence[ScoredChunk], n: int, asker: str | None,
                   history: Sequence[Turn]) -> str | None:
        """The answer written again from passage [n] alone (it keeps its number), when that answer is
        supported by it and cites it; None otherwise (a refusal, nothing supported)."""
        messages = self._messages(question, [passages[n - 1]], asker, history)
        p = passages[n - 1].chunk
        # No refusal gate: with one passage, the model's own choice to refuse is the signal wanted here.
        raw = "".join(self.generator.stream(messages))
        text, _ = validate_citations(clean_generation(raw), 1)
        if not text or REFUSAL.search(text.split("\n", 1)[0]) or CLOSEST.search(text):
            return None
        text = self._check(text, [p.embedding_text], question, asker).text
        text, cited = validate_citations(text, 1)
        if not cited:
            return None
        return CITATION_MARKER.sub(f"[{n}]", text)

    def _finish(self, question, raw, passages, notes, timings, asker: str | None, history: Sequence[Turn],
                scores: Sequence[float], answerability: float, closeness: Sequence[float],
                held_back: bool = False) -> Answer:
        cleaned = clean_generation(raw)
        text, cited = validate_citations(cleaned, len(passages))
        invalid = sorted({n for n in cited_numbers(cleaned) if not 1 <= n <= len(passages)})
        if invalid:
            notes = [*notes, f"dropped citation(s) to passages that were not given: {invalid}"]
        gen = self.generator.name
        refused = bool(text) and bool(REFUSAL.search(text.split("\n", 1)[0]) or CLOSEST.search(text))
        removed: list[str] = []
        result: Grounding | None = None

        def not_found(mode: str, missing: Sequence[str] = ()) -> Answer:
            return Answer(question, self.style.apply(self.not_found_text(missing=missing), asker=asker, citations=()),
                          [], passages, found=False, notes=notes, timings=timings, generator=gen,
                          invalid_citations=invalid, removed=removed, mode=mode, unmatched=list(missing),
                          answerability=answerability)

        def unnamed_code() -> list[str]:
            """A question naming a flag or path is answered by a quote only of passages naming it (read where a
            quote is made, not for every answer)."""
            return unmatched_code(question, [p.chunk.embedding_text for p in passages])

        if refused and held_back:
            # The model was not sure enough to start its refusal (the gate held it back), and wrote one anyway
            # after an opening ("Office | Hours [2]. • Closest pages: …"): judged as an answer with nothing
            # supported, so the best passage is quoted when the question is answerable enough for a quote.
            refused, text = False, ""
            notes = [*notes, "the model wrote that it could not find it after its refusal was held back"]
        if refused:
            if self.answer_similarity is None or answerability < self.answer_similarity:
                return not_found("refused")
            notes = [*notes, "the model did not find the answer, but the best passage likely answers the question: "
                             "quoting it"]
            text = ""
        elif text and self.grounding:
            result = self._check(text, [p.chunk.embedding_text for p in passages], question, asker, scores)
            removed = [c.text for c in result.removed]
            if removed:
                log.info("grounding removed sentences", extra={"removed": len(removed), "kept": len(result.kept)})
            text = result.text
        text, cited = validate_citations(text, len(passages))
        texts = [p.chunk.text for p in passages]
        if text and self.grounding:  # after the markers are checked: a code block keeps its spacing
            text, dangling = introduce(text, texts)
            if dangling:
                removed += dangling
                prose = re.sub(r"```.*?```", "", text, flags=re.S)
                cited = [n for n in cited if f"[{n}]" in prose]
        mode = "generated"
        embed = getattr(self.embedder, "embed", None)
        if cited and result is not None and (rows := self._row_quote(question, passages, result)) is not None:
            text, row = rows
            cited, mode = [row], "extractive"
            notes = [*notes, f"the answer spoke of another row of passage [{row}]'s table than the one asked "
                             "about, and of that row nothing: quoted it instead"]
        if cited and self.grounding and self.focus_margin is not None:
            off = self._off_target(scores, cited)
            again = self._refocused(question, passages, off, asker, history) if (
                off and self.refocus_closeness is not None
                and passage_closeness(question, [texts[off - 1]], embed=embed)[0] >= self.refocus_closeness) else None
            drew = f"the answer drew on passage(s) {cited}, less likely to answer than"
            if again is not None:
                notes = [*notes, f"{drew} [{off}]: answered again from [{off}] alone"]
                text, cited, mode = again, [off], "refocused"
            elif off is not None:
                if answerability < self.extract_similarity:
                    return not_found("not_found")  # off target, and no passage close enough to quote
                # Quoted only now, when it is needed (not when the second try answered).
                quoted = self._quote(question, passages, scores, off)
                if quoted is not None and (code := unnamed_code()):
                    return not_found("not_found", code)  # a quote that never names what was asked
                if quoted is not None:
                    text, cited, mode = *quoted, "extractive"
                    notes = [*notes, f"{drew} [{off}]: quoted [{off}] instead", *_tie_note(cited)]
        if mode == "generated" and cited and self.grounding and (aside := self._aside(question, text, cited, closeness)):
            quoted = extractive_answer(question, texts, embed=embed, only=aside)
            if quoted is not None and not unnamed_code():
                text, cited, mode = quoted[0], [aside], "extractive"
                notes = [*notes, f"the answer said less about the question than a sentence of passage [{aside}] it "
                                 f"cites: quoted [{aside}] instead"]
        if not cited and self.grounding:
            # Nothing supported (or cited) is left: quote the passage most likely to answer rather than say
            # nothing, when the question is answerable enough for a quote to be worth it.
            best = likeliest(scores)
            quoted = None if best is None or answerability < self.extract_similarity and not refused else self._quote(
                question, passages, scores, best)
            if quoted is None:
                return not_found("not_found")
            if code := unnamed_code():
                return not_found("not_found", code)
            text, cited = quoted
            mode = "overruled" if refused else "extractive"
            notes = [*notes, "quoted from the best passage: the generated answer was not supported by the passages"
                     if removed or not (refused or held_back) else "quoted from the best passage", *_tie_note(cited)]
        if not text:
            return not_found("not_found")
        citations = [self._citation(n, passages) for n in cited]
        text = self.style.apply(text, asker=asker, citations=citations)
        return Answer(question, text, citations, passages, found=True, notes=notes, timings=timings,
                      generator=gen, invalid_citations=invalid, removed=removed, mode=mode, answerability=answerability)
