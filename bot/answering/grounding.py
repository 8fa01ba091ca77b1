"""The grounding check: every sentence of an answer must be supported by the passage it cites.

A sentence is supported when
- every *specific* in it (a number, a name, a command, a path, a quoted or code-like token) appears in
  the passages given or in the question: a specific found nowhere is invented, whatever it cites;
- and it is close to the passage it cites: enough of its content words are in that passage (word
  stems, so "configure"/"configuring" match), or, when an embedder is given, its meaning is close to
  one of the passage's sentences.

Unsupported sentences are removed. A sentence without a citation is kept only if one passage supports
it, and then cites that passage; a sentence that another passage supports clearly better than the one it
cites (or that only another passage supports), or that is copied from another passage word for word
(`copied_from`), cites that passage instead. When nothing supported is left,
`extractive_answer` quotes the opening of the passage most likely to answer (`focus_scores`), with its
citation: the reply never states a specific no passage holds.
"""

from __future__ import annotations

import collections
import itertools
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from functools import cache, cached_property, lru_cache
from typing import NamedTuple

import numpy as np

from bot.answering.citations import CITATION_MARKER, cited_numbers, marker_numbers
from retrieval.chunking import FENCE, TABLE_ROW, TABLE_RULE, as_read, next_fence

Embed = Callable[[Sequence[str]], np.ndarray]  # texts -> unit vectors, one row each

STOP = frozenset("""a an the and or but of to in on for at by with from is are was were be been being it its this
that these those you your yours we our us i my me he she they them their his her do does did done can could should
would will shall may might must have has had not no nor yes if so as than then there here what when where which
who whom whose why how get gets got per each any all about into over under up out also just only more most very
much many some such own same other both either neither one ones use used using make made like via e.g i.e etc
let lets see way want need needs new""".split())
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*|\d+(?:[.,:]\d+)*")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,:/]\d+)*%?")
_CODE = re.compile(r"`([^`]+)`")
_VERDICT = re.compile(r"(yes|no)\W*", re.I)  # a bare "Yes." or "No."
# A question (or a sentence of one) that a yes or no answers: it opens with an auxiliary verb.
_YES_NO_QUESTION = re.compile(r"(?:^|[.?!;]\s+)(?:is|are|am|was|were|do|does|did|can|could|will|would|should|shall|"
                              r"may|might|must|has|have|had)(?:n['’]t)?\b", re.I)
# A passage's sentence opening with that verdict ("No. …", "Yes, …"; not "No new …").
_SAYS_VERDICT = {v: re.compile(rf"(?:^|(?<=[.!?:])\s+){v}\s*[.,!;:–—-]", re.I | re.M) for v in ("yes", "no")}
# A written sentence opening with a verdict ("No – the office is closed …", "Yes, you can …"), and a negation in
# what follows it ("no dedicated parking", "is not", "don't").
_OPENING_VERDICT = re.compile(r"(?P<verdict>yes|no)\s*[,–—:-]\s*(?P<rest>\w.*)", re.I | re.S)
_NEGATION = re.compile(r"\b(?:no|not|never|none|nothing|nobody|neither|nor|cannot)\b|\w+n['’]t\b", re.I)
_TEX_QUOTE = re.compile(r"`([^`'\n]+)'(?!\w)")  # `quoted words': older Unix docs' quotes, not code
# Tokens only code, commands, paths, versions and addresses have: user.name, ~/.bashrc, --force,
# sys.path, foo(), C:\temp, #it-help, @alice, snake_case.
_CODEISH = re.compile(r"^(?:[#@~/$][\w/.~]|--?\w).*|.*\w[._/\\:]\w.*|.*\w\(\)$|.*_.*")
# A command-line flag or a file path: --force-confold, -lfoo, /etc/apt/preferences, ~/.bashrc, C:\temp.
_FLAG_OR_PATH = re.compile(r"--?[A-Za-z]|~?/[\w.~-]|[A-Za-z]:\\")
# Words aimed at the assistant, not the reader: a page that says them is trying to steer the bot. An
# answer sentence that repeats one is removed, even though the passage "supports" it.
_INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget)\b.{0,40}\b(?:instructions?|passages?|question|rules|prompt)\b"
    r"|\bsystem prompt\b|\b(?:reply|answer|respond)\b.{0,30}\bonly\b.{0,30}\b(?:with|in)\b"
    r"|\bfrom now on\b|\b(?:AI|language model|chat ?bot|the assistant)\b.{0,40}\b(?:must|should|tell|say|reply)\b"
    r"|\bsystem override\b|\bdeveloper mode\b|\bnew instructions\b|\b(?:reveal|print|show) your (?:full )?(?:system )?(?:prompt|instructions)\b", re.I)
# A chat turn written into a page ("Assistant: Sure! …", a turn marker): the page is playing the bot.
_ROLE = re.compile(r"(?im)^\W*(?:assistant|system|user|model|ai)\s*:|<start_of_turn>|<end_of_turn>")
_ABBREVIATIONS = frozenset({"e.g", "i.e", "etc", "vs", "cf"})
_CONTRACTION = re.compile(r"\w+['’](?:t|ve|re|ll|d|m)|(?:what|that|it|there|here|who|where|how|let)['’]s", re.I)
_POSSESSIVE = re.compile(r"['’]s?$")
_YES_OR_NO = re.compile(r"(?:(?:sorry|well),?\s+)?(?:yes|no|nope)[.!]", re.I)  # a FAQ answer's first word
HEADING_NUMBER = re.compile(r"^\d+(?:\.\d+)*\.?\s+")  # "1.1. " before a heading's words (DocBook)
_LOWER_WORD = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")  # a word or words typed in lower case ("long-tenured")
# A site's name: labels joined by dots, the last a top-level domain a file's extension seldom is ("help.acme.example",
# "www.python.org"; not "math.py", "apt.conf").
_HOST = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:com|net|org|io|dev|app|edu|gov|info|biz|cloud|ai|co|us|"
                   r"uk|de|eu|example|internal|local|corp|lan)", re.IGNORECASE)
# Words joined by slashes: alternatives, not a path ("stdout/stderr", "GNU/Linux", "Red Hat/Slackware/...").
_WORD_LIST = re.compile(r"[A-Za-z]+(?:/[A-Za-z]+)+/?")
# A sentence ends at . ! or ? before a capital, a digit or an opening mark; not at an initial ("J.H.M. Dassen") or
# an abbreviation a sentence goes on after ("e.g. Python", "ie. "grinned"", "Python 2 vs. Python 3").
_SENTENCE_END = re.compile(r"(?<=[.!?])(?<![\s.(][A-Z]\.)(?<!^[A-Z]\.)(?<!\b[Ee]\.g\.)(?<!\b[Ii]\.e\.)(?<!\b[Ee]g\.)"
                           r"(?<!\b[Ii]e\.)(?<!\bvs\.)(?<!\b[Cc]f\.)\s+(?=[A-Z0-9\"'`(•*-])")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_PLAIN_WORD = re.compile(r"[(‘“\"']?[A-Za-z0-9][\w'’-]*[”’\"',.;:!?)]*")  # a word of running text
_WHOLE_SENTENCE = re.compile(r"[.!?][\"'”’)]*$")  # a sentence's end, after any closing quote or bracket
_URL_LINE = re.compile(r"\s*<?https?://\S+>?\s*")
ELISION = "…"  # a line of its own between a section's opening and a passage from further down it
_ELIDED = re.compile(rf"(?m)^{ELISION}$")
_CODE_MARK = re.compile(r"[(){}\[\];=$<>|]")
# An API reference's signature on a line over its description (Sphinx, pydoc, Javadoc-like pages): a Python
# callable or dotted name ("msvcrt.kbhit()", "class threading.Thread(group=None, …)", "msvcrt.LK_LOCK") or a C
# function ("PyThreadState *PyEval_SaveThread()"), nothing after it on the line.
_SIGNATURE = re.compile(
    r"(?:(?:class|exception|async|await|classmethod|staticmethod|abstractmethod|property|coroutine)\s+)*"
    r"(?:(?:(?:const|unsigned|signed|long|short|struct|static|inline|extern)\s+)*"
    r"(?:void|int|char|double|float|[A-Za-z]\w*_t|[A-Z]\w*)\s*\**\s*)?"
    r"(?:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*(?:\[[^\]]*\])?\([^;]*\)(?:\s*(?:->|→)\s*[^;{}:]+)?"
    r"|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)")
_PARAMETER = re.compile(r"(?!(?:True|False|None)$)(?:\*{0,2}[A-Za-z_]\w*(?:\s*:\s*[^=(]+?)?(?:\s*=\s*[^()<>]+)?|[*/…]|"
                        r"\.\.\.|(?:const\s+)?[A-Za-z_]\w*(?:\s+\**|\s*\*+)\s*[A-Za-z_]\w*)")  # C: "PyObject *args"
_API_BADGE = re.compile(r"Part of the (?:Stable ABI|Limited API)\b.*|Return value: .*")  # CPython's C API, under a signature
_TRACEBACK = re.compile(r"Traceback \(most recent call last\):")
# code's signs on a line that is no sentence: brackets, operators, a call ("print(x)"; "Wi-Fi: AcmeGuest (password on
# the badge)" is words)
_CODE_SIGN = re.compile(r"[{}\[\];=$<>|]|\w\(")
_NAME_WORD = r"[A-Z][\w'’]*(?:-[A-Z][\w'’]*)*"  # "Python", "Wi-Fi", "Jean-Luc"
_WHOLE_NUMBER = re.compile(r"\d+(?:[.,:/]\d+)*")  # 12, 3.11, 1,000, 12:00, 1/2 (a number specific, "%" taken off)
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")  # the comma of 1,000
_NUMERIC = re.compile(r"[\d.,:/%-]+")  # a token of nothing but digits and their punctuation
_ACRONYM = re.compile(r"[A-Z]{2,6}s?")  # PTO, RPO, ROMs
# An acronym in mixed case: two capitals or more among three to six letters (VoIP, PyPI, WiFi; not "Python").
_MIXED_ACRONYM = re.compile(r"(?=[A-Za-z]*[a-z])(?=(?:[a-z]*[A-Z]){2})[A-Z][A-Za-z]{2,5}")
_QUESTION_PARTS = re.compile(r"(?<=[.!?])\s+")  # a question's sentences, whatever case the next one starts in
# Between the words an acronym spells (in normalised text): a space or hyphen, perhaps a small word it leaves out.
_SPELLED_JOIN = r"[ -]+(?:(?:of|and|for|the|&)[ -]+)?"
_STOP_WORD = "|".join(re.escape(w) for w in sorted(STOP))  # a function word ("the", "it", "are"), as a pattern
# Numbers worked on in the question ("0.1 + 0.2", "10/3", "x == 0.3"; not a date, a range or a version list).
_ARITHMETIC = re.compile(r"(?<![\w./])(?:\d+(?:\.\d+)?\s*(?:[+*%]|\*\*|//|==|!=|<=|>=)\s*-?\d+(?:\.\d+)?"
                         r"|\d+\s*/\s*\d+)(?![\w./])")
_NUMBERS_WORKED = re.compile(r"[-+*/%=!<>.,\d]+")  # a token of such numbers: "0.3", "1/3", "0.1+0.2"
# A capitalised word, not a function word, just before a number: "RTX 40", "Windows 10" (not "Are 3 …").
_NAME_BEFORE = re.compile(r"(?<![\w'’])(?!(?i:" + _STOP_WORD + r")\s)[A-Z][\w'’-]*\s+$")


@dataclass
class SentenceCheck:
    text: str
    cited: list[int]
    supported: bool
    reason: str = ""  # why it was removed
    support: float = 0.0  # share of its content words in the passage it cites
    unsupported_specifics: list[str] = field(default_factory=list)
    added_citation: int | None = None
    source: int | None = None  # the passage it was read against: the one it cites, or the one whose words it has


@dataclass
class Grounding:
    text: str  # the answer with unsupported sentences removed ("" when none is left)
    checks: list[SentenceCheck]

    @property
    def removed(self) -> list[SentenceCheck]:
        return [c for c in self.checks if not c.supported]

    @property
    def kept(self) -> list[SentenceCheck]:
        return [c for c in self.checks if c.supported]

    def text_before(self, stop: SentenceCheck | None) -> str:
        """The answer's kept sentences before `stop` (all of them when None)."""
        kept = self.kept
        return _join([c.text for c in kept[:kept.index(stop) if stop in kept else len(kept)]])

    def remove(self, checks: Sequence[SentenceCheck], reason: str) -> None:
        """Remove these kept sentences too, for `reason` (a judgement the check itself cannot make)."""
        for c in checks:
            c.supported, c.reason = False, reason
        self.text = _join([c.text for c in self.checks if c.supported])


_STAMP = re.compile(r"^[*_\s]*(?:last\s+(review|updat|modifi|edit|chang)\w*\b|(?:policy\s+|page\s+|document\s+)?(own)ers?:"
                    r"|(maintain|approv)ed\s+by\b)", re.I)


def page_stamp(sentence: str, question: str) -> bool:
    """Whether a sentence is a page's review stamp or owner line ("*Last reviewed 2025-10-06 by the Pit Crew and
    Security Team.*", "Policy owner: Marta Figueiredo, Head of People", "Approved by the Leadership Team on
    2026-03-18") to a question that asks nothing of when the page was reviewed, who owns or who approved it: a
    wiki puts one at the end of every page, and in an answer it answers nothing ("lost my phone with the
    authenticator on it, how do I log in now?" answered with the stamp)."""
    found = _STAMP.match(_BULLET.sub("", CITATION_MARKER.sub("", sentence)))
    if found is None:
        return False
    verb = next(g for g in found.groups() if g)
    return re.search(rf"(?i)\b{verb}", question) is None


def steering(passage: str) -> bool:
    """A passage that speaks to the bot (an instruction, a chat turn): never a citation moved to, never quoted."""
    return bool(_INSTRUCTION.search(passage) or _ROLE.search(passage))


def is_question(text: str) -> bool:
    """A question is not an answer (nor worth quoting as one). "…Windows? [2]." leaves "…Windows? ." once
    its citation is taken out."""
    return text.rstrip(" .\"'”)*_").endswith("?")


def normalise(text: str) -> str:
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"').replace("–", "-")
    return re.sub(r"\s+", " ", text).strip().lower()


def stem(word: str, cut: int | None = 6) -> str:
    """A word's stem for comparing words: without its suffix ("-ation", "-ing", "-ed", "-s"…), its first `cut`
    letters ("configure" and "configuration" are one word); `cut=None` keeps the whole stem, less a final "e" (a
    name's word: "Microsoft" is not "microscope")."""
    w = word.lower().strip("'-")
    for suffix in ("ations", "ation", "ingly", "ings", "ing", "edly", "ed", "es", "s", "ly"):
        if len(w) > len(suffix) + 3 and w.endswith(suffix):
            w = w[: -len(suffix)]
            break
    return w[:cut] if cut is not None else w.removesuffix("e") if len(w) > 4 else w


def _is_number(token: str) -> bool:
    """12, 3.11, 26.04, 12:00, 1/2, 50%."""
    return bool(_NUMERIC.fullmatch(token))


# A contraction as its words ("you're" is "you are", "can't" is "can not"): a run of words reads on through it.
_SPELT_OUT = [(re.compile(r"\bcan't\b"), "can not"), (re.compile(r"\bwon't\b"), "will not"),
              (re.compile(r"n't\b"), " not"), (re.compile(r"'re\b"), " are"), (re.compile(r"'ve\b"), " have"),
              (re.compile(r"'ll\b"), " will"), (re.compile(r"\bi'm\b"), "i am"),
              (re.compile(r"\b(it|that|there|here|what|who|where|how|he|she)'s\b"), r"\1 is")]


def running_words(text: str) -> list[str]:
    """A text's words in order, lower case, without punctuation, its contractions spelt out: what `copied_from`
    and `spliced` compare."""
    text = normalise(text)
    for pattern, words in _SPELT_OUT:
        text = pattern.sub(words, text)
    return re.findall(r"\w+", text)


# A sentence is copied from a passage when a run of at least this many of its words (all of them in a shorter
# sentence of four words or more), and at least half of them, stands there word for word.
COPY_MIN_WORDS = 6


def copied_from(sentence: Sequence[str], passages: Sequence[Sequence[str]], cited: Sequence[int],
                skip: Sequence[bool] = ()) -> int | None:
    """The number of the passage a sentence (its `running_words`) was copied from, when it is not one it cites:
    the longest run of the sentence's words standing word for word in that passage is at least
    `COPY_MIN_WORDS` long (or the whole sentence, of four words or more) and half the sentence, and at least
    twice as long as in any passage it cites (a small model copies a sentence from [2] and cites [1] or
    nothing; "My Drive is deleted 30 days after your last day, so it's gone [2]" was copied from the
    offboarding page, not from [2], the Bin's files "gone for good" after 90 days). None when the sentence holds no such
    run, or a cited passage holds it too. `skip[n - 1]`: passage n is never moved to (a steering passage)."""
    def run(words: Sequence[str]) -> int:
        return SequenceMatcher(None, sentence, words, autojunk=False).find_longest_match(
            0, len(sentence), 0, len(words)).size

    runs = [run(words) for words in passages]
    others = [n for n in range(1, len(passages) + 1) if n not in cited and not (skip and skip[n - 1])]
    source = max(others, key=lambda n: runs[n - 1], default=None)
    if source is None or len(sentence) < 4 or runs[source - 1] < max(min(COPY_MIN_WORDS, len(sentence)),
                                                                       len(sentence) / 2):
        return None
    return source if all(2 * runs[c - 1] <= runs[source - 1] for c in cited) else None


# `spliced`: how many words may stand between two runs whose first left its verb behind, and what such a verb is.
SPLICE_GAP = 6
_LEFT_VERB = frozenset("is are was were has have had can could will would must should may might does do".split())


def spliced(sentence: Sequence[str], sources: Sequence[Sequence[str]], min_run: int = 4, held: float = 0.8) -> bool:
    """Whether a written sentence (its `running_words`) splices two sentences of the passages into a claim neither
    makes: it is two runs of `min_run` words or more, each standing word for word in a different source sentence
    (`sources`: the passages' sentences and table rows, each as its `running_words`), the first cut before its
    sentence ends, the second taken up after its sentence begins, and no one source sentence holds `held` of its
    words. Seen on the Python FAQ: "The arg argument must be a tuple object containing an argument list passed
    from Python to a C" (its sentence goes on "function") + "variable (of type PyObject*) into which the object
    pointer is stored" (another passage's "the address of the C variable …"): each word is the passages', the
    claim is in neither. A sentence shortened from one source ("the Pit Stop desk [in Lisbon] is staffed …") or
    joining two whole ones is no splice.
    The two runs may stand up to `SPLICE_GAP` words apart when the source sentence of the first goes on with its
    verb ("… you are currently running is the same as …") and the words between give the run another ("and it's
    the one"): a subject taken from one sentence and said to do what another says."""
    if len(sentence) < 2 * min_run or not sources:
        return False
    if max(sum(w in words for w in sentence) for words in map(set, sources)) >= held * len(sentence):
        return False
    at: dict[str, list[tuple[int, int]]] = collections.defaultdict(list)
    for k, s in enumerate(sources):
        for j, w in enumerate(s):
            at[w].append((k, j))
    runs, i = [], 0  # (start in the sentence, length, source, start in it), left to right, each the longest there
    while i < len(sentence):
        best = (0, -1, 0)
        for k, j in at.get(sentence[i], ()):
            s, n = sources[k], 0
            while i + n < len(sentence) and j + n < len(s) and sentence[i + n] == s[j + n]:
                n += 1
            best = max(best, (n, k, j), key=lambda r: r[0])
        if best[0] >= min_run:
            runs.append((i, *best))
        i += best[0] if best[0] >= min_run else 1

    def joined(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
        (at_a, n_a, k_a, j_a), (at_b, _, k_b, j_b) = a, b
        if k_a == k_b or j_a + n_a == len(sources[k_a]) or j_b == 0:
            return False  # one sentence, the first run ends its sentence, or the second begins one
        between = sentence[at_a + n_a:at_b]
        return not between or len(between) <= SPLICE_GAP and sources[k_a][j_a + n_a] in _LEFT_VERB and any(
            w in _LEFT_VERB for w in between)

    return any(joined(a, b) for a, b in itertools.pairwise(runs))


def _numbers(text: str) -> set[str]:
    """A text's numbers as `specifics` reads them, thousands commas taken out (1,000 is 1000); a bullet's or
    item's own number ("1. Open a ticket") is none."""
    return {_THOUSANDS.sub("", n.rstrip("%")) for n in _NUMBER.findall(_CODE.sub(" ", _BULLET.sub("", text)))}


@dataclass(frozen=True)
class _Numbered:
    """A sentence (or a table row, as `_record` reads it) of the passages: its numbers and its other content
    words' stems, what `moved_number` compares."""
    numbers: frozenset[str]
    words: frozenset[str]

    @classmethod
    def of(cls, text: str) -> _Numbered:
        return cls(frozenset(_numbers(text)), frozenset(w for w in content_stems(text) if not _is_number(w)))


def moved_number(sentence: str, sources: Sequence[_Numbered], given: Iterable[str] = (), held: float = 0.8,
                 gap: float = 0.3) -> str | None:
    """A number a written sentence took from another sentence of the passages than the one it says again: the
    sentence's other words stand in one source sentence (`held` of them or more), which gives a number of its own
    and none of the sentence's, and every source sentence holding the sentence's number holds `gap` less of its
    words. "Report it within 48 hours of noticing, day or night" from "Report a lost or stolen device within 1 hour
    of noticing, day or night" and, two sections on, "file a police report within 48 hours": every word is the
    page's, the deadline is the police report's. None where the sentence holds no number but those `given` (the
    question's, `_numbers`), or fewer than four other words, or no such sentence."""
    mine = _numbers(CITATION_MARKER.sub(" ", sentence)) - set(given)
    words = {w for w in content_stems(CITATION_MARKER.sub(" ", sentence)) if not _is_number(w)}
    if not mine or len(words) < 4 or not sources:
        return None
    share = [len(words & s.words) / len(words) for s in sources]
    best = max(range(len(sources)), key=share.__getitem__)
    said = sources[best]
    if share[best] < held or not said.numbers or said.numbers & mine:
        return None
    holding = [share[k] for k, s in enumerate(sources) if s.numbers & mine]
    if holding and max(holding) > share[best] - gap:
        return None
    return min(mine - said.numbers)


def content_stems(text: str) -> set[str]:
    """The stems of a text's content words: not stop words, contractions ("it's", "don't") or words of two
    letters; a possessive counts as its owner ("Acme's", "users'")."""
    words = (_POSSESSIVE.sub("", w) for w in _WORD.findall(text) if not _CONTRACTION.fullmatch(w))
    return {stem(w) for w in words if w.lower() not in STOP and (len(w) > 2 or w.isdigit())}


def specifics(sentence: str) -> set[str]:
    """Numbers, code-like tokens, quoted code and names (capitalised words not opening the sentence)."""
    text = _TEX_QUOTE.sub(r"‘\1’", CITATION_MARKER.sub(" ", sentence))
    found: set[str] = set()
    for m in _CODE.finditer(text):
        found.add(m.group(1).strip())
    text_wo_code = _CODE.sub(" ", text)
    for m in _NUMBER.finditer(text_wo_code):
        found.add(m.group(0).rstrip("%"))
    for raw in text_wo_code.split():
        token = raw.strip(".,;:!?\"'“”‘’")
        if not token.endswith("()"):  # "chomp()?" is chomp(); "(RS232)" is RS232
            token = token.removeprefix("(").removesuffix(")").strip(".,;:!?\"'“”‘’")
        if len(token) > 1 and _CODEISH.match(token) and not _is_number(token) \
                and token.lower() not in _ABBREVIATIONS:
            found.add(token)
    # a name's words, one of them perhaps capitalised parts joined by hyphens ("Wi-Fi", "Jean-Luc Picard")
    words = re.findall(rf"(?<![\w@#]){_NAME_WORD}(?:\s+{_NAME_WORD})*", _BULLET.sub("", text_wo_code))
    first = re.match(r"\W*([\w'’]+(?:-[A-Z][\w'’]*)*)", _BULLET.sub("", text_wo_code))
    for w in words:
        parts = w.split()
        if first and parts[0] == first.group(1):  # a sentence's first word is capitalised anyway
            parts = parts[1:]
        # "I’ve", "What’s", "Can’t" name nothing; a possessive ends a name: "Xt’s XtAddInput" names Xt and XtAddInput
        names: list[list[str]] = [[]]
        for p in parts:
            if _CONTRACTION.fullmatch(p):
                names.append([])
                continue
            names[-1].append(_POSSESSIVE.sub("", p))
            if _POSSESSIVE.search(p):
                names.append([])
        for group in names:
            name = " ".join(p for p in group if p.lower() not in STOP and len(p) > 1)
            if name and name.upper() != "I":
                found.add(name)
    return {f for f in found if f}


@dataclass(frozen=True)
class Mentions:
    """What some texts mention, to ask whether a specific (a name, number, command, path) is among it: their
    normalised text, and their words' stems (a name matches reordered, possessive or plural)."""

    text: str
    stems: set[str]

    @classmethod
    def of(cls, texts: Sequence[str]) -> Mentions:
        return cls(" ".join(normalise(t) for t in texts), set().union(*(content_stems(t) for t in texts)))

    def has(self, specific: str) -> bool:
        s = normalise(specific)
        if _WHOLE_NUMBER.fullmatch(s):
            return self._has_number(s)
        before, after = "(?<![a-z0-9])" if s[:1].isalnum() else "", "(?![a-z0-9])" if s[-1:].isalnum() else ""
        # as words of the text: "Sam" is not in "same", "Ann" not in "annual", `git` not in "digit"; "Wi-Fi" as
        # "WiFi" or "Wi Fi" too
        if any(re.search(before + re.escape(form) + after, self.text)
               for form in {s, s.replace("-", ""), s.replace("-", " ")} if form):
            return True
        if _ACRONYM.fullmatch(specific) and self._spells_out(specific):
            return True
        if _MIXED_ACRONYM.fullmatch(specific) and self._spells_out_in_parts(specific):
            return True
        words = _WORD.findall(s)
        # A multi-word name matches when each of its words does (reordered, possessive, plural); a word of two
        # letters, which has no stem ("IP" of "Voice Over IP"), as a word of the text.
        return bool(words) and all(self._has_word(w) if len(w) > 2 else re.search(rf"\b{re.escape(w)}\b", self.text)
                                   for w in words) and not any(c in s for c in "./\\_()$~")

    def _has_word(self, word: str) -> bool:
        """A name's word among these texts' words, as itself or another form of it ("Teams" for "team", "Acme's"
        for "Acme"): its whole stem, not only the first letters `stems` keeps ("Microsoft" is not "microscope",
        "Internet" not "interns")."""
        key = stem(word)
        if key not in self.stems:
            return False
        whole = stem(_POSSESSIVE.sub("", word), cut=None)
        return any(stem(_POSSESSIVE.sub("", w), cut=None) == whole
                   for w in re.findall(rf"(?<![a-z0-9]){re.escape(key)}[a-z0-9']*", self.text))

    def _has_number(self, number: str) -> bool:
        """A number these texts hold as a whole number, not as digits of another: "12" is not in "2012", "120" or
        "3.12", "3.1" not in "3.11", "20" not in "20.5"; "1,000" is "1000"; a version holds its release ("3.11" is in
        "3.11.2"), a whole number holds none of its decimals ("3" is not in "3.11")."""
        plain = _THOUSANDS.sub("", number)
        after = r"(?![.,:/]?\d)" if "." not in plain else r"(?![,:/]?\d)"
        return bool(re.search(rf"(?<!\d)(?<!\d[.,:/]){re.escape(plain)}{after}", self._plain_numbers))

    @cached_property
    def _plain_numbers(self) -> str:
        """The text with its thousands written without commas ("1,000" as "1000"), made once for every number asked."""
        return _THOUSANDS.sub("", self.text)

    def _spells_out(self, acronym: str) -> bool:
        """An acronym these texts hold in its singular ("CD-ROM" for "CD-ROMs") or spelled out: content words in a
        row, with no punctuation between them but a hyphen, whose initials are its letters ("Paid Time Off" for
        PTO, "recovery point objective" for RPO; "of", "and", "for" or "the" may come between them). Two letters
        are too easily spelled by chance to count."""
        letters = acronym.removesuffix("s").lower()
        if letters != acronym.lower() and re.search(rf"(?<![a-z0-9]){letters}(?![a-z0-9])", self.text):
            return True
        if len(letters) < 3:
            return False
        words = [rf"(?!(?:{_STOP_WORD})\b){c}[a-z0-9'’]*" for c in letters]  # a function word spells no letter
        return self._in_a_row(words, _SPELLED_JOIN)

    def _spells_out_in_parts(self, acronym: str) -> bool:
        """A mixed-case acronym spelled out by words in a row, each opening with one part of it: "Voice over IP"
        for VoIP (v-o-ip), "Python Package Index" for PyPI (py-p-i), "Wi-Fi" for WiFi (wi-fi). Its letters are
        cut into two parts or more every way they can be (at most 31 ways for six letters)."""
        letters = acronym.lower()
        for n in range(1, len(letters)):
            for cuts in itertools.combinations(range(1, len(letters)), n):
                parts = [letters[a:b] for a, b in itertools.pairwise((0, *cuts, len(letters)))]
                if self._in_a_row([rf"{re.escape(p)}[a-z0-9'’]*" for p in parts], r"[ -]+"):
                    return True
        return False

    def _in_a_row(self, words: Sequence[str], join: str) -> bool:
        """Whether the text has whole words matching these patterns one after another, `join` between them."""
        return bool(re.search(r"(?<![a-z0-9])" + join.join(words) + r"(?![a-z0-9])", self.text))

    def missing(self, found: Iterable[str]) -> list[str]:
        """The specifics of `found` these texts do not mention, sorted."""
        return sorted({f for f in found if not self.has(f)})


def unmatched_names(question: str, passages: Sequence[str], english: bool = True) -> list[str]:
    """What the question names (a name or a number) that no passage mentions: asked about Heroku, given
    pages that never say "Heroku", the passages cannot hold the answer. What it names in code (a function,
    file, path or flag: "chomp()", "math.py", "--strict"), and the digits inside such a name, do not count:
    the page that answers often names something else instead ("Is there a scanf()?" is answered by
    split(); Perl's chomp() by rstrip()). One thing under several names (`question_names`) is missing only
    when none of them is found, and is told by all of them ("curses/termcap"). A question of several sentences
    misses nothing while one of them asks something without naming what is missing (`_asks_without`). `english`:
    the question is in English, so a name typed in lower case is one too (`unfamiliar_words`)."""
    mentions = Mentions.of(passages)
    missing = sorted("/".join(names) for names in question_names(question, english)
                     if not any(map(mentions.has, names)))
    return [] if missing and any(_asks_without(missing, part, english)
                                 for part in _QUESTION_PARTS.split(question)) else missing


def unmatched_code(question: str, passages: Sequence[str]) -> list[str]:
    """What the question names in code, when it names a flag or a path ("--force-confold",
    "/etc/apt/preferences") and no passage mentions any of what it names in code; else []. No reason to refuse
    an answer the model writes (`unmatched_names`), but a quote of passages that name none of it does not answer
    what was asked. A function or file the question names is often an example the answering page does not
    repeat ("Where is the math.py (socket.py, regex.py, etc.) source file?": "… a built-in or dynamically
    loaded module implemented in C …"), so those alone do not count; and one name found is enough ("ld: cannot
    find -lfoo … no libfoo.so files?" is answered by a page on libfoo.so.x.y.z)."""
    code = _code(_question_specifics(question))
    if not any(_FLAG_OR_PATH.match(c) for c in code):
        return []
    mentions = Mentions.of(passages)
    return [] if any(map(mentions.has, code)) else sorted(code)


def _question_specifics(question: str) -> set[str]:
    """A question's specifics, each of its sentences read as one: "Hi team. Quick question: …" names no "Quick"."""
    return set().union(*(specifics(part) for part in _QUESTION_PARTS.split(question)))


def _code(found: Iterable[str]) -> set[str]:
    """The specifics that are code (a function, file, path or flag), not words joined by slashes or a site's
    name ("mentors.debian.net": the page about that site names it)."""
    return {s for s in found if _CODEISH.match(s) and not _is_number(s) and not _WORD_LIST.fullmatch(s)
            and not _HOST.fullmatch(s)}


def _asks_without(missing: Sequence[str], sentence: str, english: bool = True) -> bool:
    """A sentence of the question that asks something of its own (three content words or more) and names none
    of what is missing: "can I work from Spain for a few weeks? how many days abroad are allowed" asks, in its
    second sentence, what a page that never names Spain answers."""
    names = {"/".join(n) for n in question_names(sentence, english)}
    return not names & set(missing) and len(content_stems(sentence)) >= 3


@cache
def _speller():
    """An English dictionary with each word's frequency (pyspellchecker's: 160,000 words)."""
    from spellchecker import SpellChecker

    return SpellChecker(language="en", distance=1)


@lru_cache(maxsize=4096)
def _is_english(word: str) -> bool:
    """In the dictionary (a plural too), one edit from a word of it (a typo, a British spelling: "pasword",
    "colour", "organisation"), or two of its common words run together ("workflow", "timesheet", "inbox").
    Cached: a question's words are read again for each of its sentences (`_asks_without`) and at each check."""
    speller = _speller()
    words = speller.word_frequency.dictionary
    if any(w in words for w in (word, word.removesuffix("s"), word.removesuffix("es"))) \
            or speller.known(speller.edit_distance_1(word)):
        return True

    def common(w: str) -> bool:
        return words.get(w, 0) > 50 or w.endswith("s") and words.get(w[:-1], 0) > 50

    return any(common(word[:i]) and common(word[i:]) for i in range(2, len(word) - 1))


@cache
def _countries() -> frozenset[str]:
    """The one-word names of the world's countries, in lower case ("brazil", "canada"; pycountry's ISO 3166 list)."""
    import pycountry

    names = (getattr(c, key, "") for c in pycountry.countries for key in ("name", "common_name"))
    return frozenset(n.lower() for n in names if n.isalpha())


def unfamiliar_words(question: str) -> set[str]:
    """What an English question names in lower case: a word of four letters or more that is no English word
    (`_is_english`): "does django have graphql support?", "how do I deploy my app to heroku?"; or a country's
    name, a dictionary word or not ("what's the dental plan for contractors in brazil?": a brazil is a nut too). A
    capital is the only sign of a name `specifics` reads, and askers in chat seldom type one; a product's or a
    country's name found in no passage is as much a reason to refuse as "Heroku" is."""
    found = set()
    for raw in question.split():
        token = raw.strip(".,;:!?\"'“”‘’")
        if token.endswith("()"):  # code ("scanf()"): the page that answers often names something else
            continue
        token = _POSSESSIVE.sub("", token.strip("()[]"))
        if not _LOWER_WORD.fullmatch(token):
            continue
        found |= {w for w in token.split("-") if len(w) >= 4 and w not in STOP and (w in _countries() or not _is_english(w))}
    return found


def question_names(question: str, english: bool = True) -> list[tuple[str, ...]]:
    """What a question names, code left out, each thing with its other names: words joined by slashes are
    alternatives, not a path ("stdout/stderr", "if/while/def/class", "detected/working"), and so is a name
    with another in brackets after it ("Flash (SWF)"), and so are the names of a list of three or more
    (`_enumerations`). A name the question only compares with is none (`_compared_with`). `english`: names typed
    in lower case too (`unfamiliar_words`)."""
    found = _question_specifics(question) | (unfamiliar_words(question) if english else set())
    code = _code(found)

    def named(n: str) -> bool:
        return n.lower() not in STOP and n not in code and not (_is_number(n) and any(n in c for c in code)) \
            and not _askers_quantity(n, question) and not _example_number(n, question) \
            and not _compared_with(n, question)

    groups = [tuple(p for p in s.split("/") if p and named(p)) for s in found if _WORD_LIST.fullmatch(s)]
    listed = {p for g in groups for p in g}
    single = [s for s in found if not _WORD_LIST.fullmatch(s) and s not in listed and named(s)]
    aliases = [(a, b) for a in single for b in single
               if a != b and re.search(rf"(?<!\w){re.escape(a)}\s*\(\s*{re.escape(b)}\s*\)", question)]
    for a, b in aliases:
        if a in single and b in single:
            single.remove(a)
            single.remove(b)
            groups.append((a, b))
    for items in _enumerations(question):
        enumerated = [s for s in single if s in items]
        if len(enumerated) > 1:
            single = [s for s in single if s not in enumerated]
            groups.append(tuple(sorted(enumerated, key=question.find)))
    return sorted([g for g in groups if g] + [(s,) for s in single])


_ITEM = r"[\w][\w.+-]*"
_ENUMERATION = re.compile(rf"{_ITEM}(?:\s*,\s*(?:(?:and|or)\s+)?{_ITEM})+(?:\s+(?:and|or)\s+{_ITEM})?")


def _enumerations(question: str) -> list[set[str]]:
    """The words of each list of three or more in the question ("a Debian preinst, postinst, prerm, and postrm
    script", "Depends, Recommends, Suggests, … Breaks or Provides"): one question about several things, answered
    by a page that names some of them. Its names are found when one of them is, as a name's alternatives are."""
    found = []
    for m in _ENUMERATION.finditer(question):
        items = {w for w in re.findall(_ITEM, m.group()) if w not in ("and", "or")}
        if len(items) >= 3:
            found.append(items)
    return found


# What a name is compared with: "an equivalent to Perl's chomp()", "a CMS like drupal", "similar to Java's
# interfaces"; "like" as a verb ("I'd like Docker") is none.
_COMPARED_WITH = (r"(?:equivalents?\s+(?:to|of|for)|(?<!would\s)(?<!['’]d\s)(?<!\bto\s)(?<!\bI\s)(?<!\bwe\s)"
                  r"(?<!\byou\s)(?<!\bthey\s)\blike|similar\s+to|analogous\s+to|counterparts?\s+(?:to|of)|as\s+in)"
                  r"\s+(?:the\s+|an?\s+)?")


def _compared_with(name: str, question: str) -> bool:
    """A name the asker only compares with ("Is there an equivalent to Perl's chomp()?", "is django a CMS like
    drupal?"): what they know from elsewhere, which the page that answers seldom names (Python's FAQ answers
    with rstrip() and never says "Perl"). The thing compared still counts ("is Flask like Drupal?": "Flask")."""
    return bool(re.search(rf"\b{_COMPARED_WITH}{re.escape(name)}(?!\w)", question, re.IGNORECASE))


def _askers_quantity(token: str, question: str) -> bool:
    """A whole number the asker gives ("a 7 hour flight", "about 60 euros", "a 40k purchase"): a page states its
    limits, not the asker's figure. A version, a year or a number after a name ("RTX 40", "Windows 10") names
    something."""
    if not token.isdigit() or 1900 <= int(token) <= 2099:
        return False
    places = list(re.finditer(rf"(?<![\w.]){token}(?![.,:/]?\d)", question))
    return bool(places) and not _after_a_name(question, places)


def _example_number(token: str, question: str) -> bool:
    """A number in a question that works on numbers ("Why does 0.1 + 0.2 not print exactly 0.3?"): the asker's
    example, as code is (the page that answers explains floating point with figures of its own). A number after a
    name ("in Python 2.7") still names something."""
    if not _NUMBERS_WORKED.fullmatch(token) or not _ARITHMETIC.search(question):
        return False
    return not _after_a_name(question, re.finditer(rf"(?<![\w.]){re.escape(token)}(?!\w|\.\d)", question))


def _after_a_name(question: str, places: Iterable[re.Match]) -> bool:
    """Whether a capitalised name stands just before one of a number's places in the question ("RTX 40",
    "Windows 10", "Python 2.7"): the number is part of what it names."""
    return any(_NAME_BEFORE.search(question[: m.start()]) for m in places)


def split_units(text: str) -> list[str]:
    """Sentences and bullets, in order (a bullet is one unit even with several sentences)."""
    units = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if _BULLET.match(line):
            units.append(line.rstrip())
            continue
        units.extend(s.strip() for s in _SENTENCE_END.split(line.strip()) if s.strip())
    return units


def _sentences(text: str, rows: bool = False) -> list[str]:
    """A text's sentences, line by line; with `rows`, a table's row is one, whatever sentences its cells hold
    ("Portugal | State pension. Optional PPR plan: Acme adds 2%." is quoted whole, with its header: `_record`)."""
    out = []
    for line in text.splitlines():
        if rows and TABLE_ROW.fullmatch(line) and not TABLE_RULE.fullmatch(line):
            out.extend([line.strip()] if len(line.strip()) > 3 else [])
        else:
            out.extend(s.strip() for s in _SENTENCE_END.split(line) if len(s.strip()) > 3 or _YES_OR_NO.fullmatch(s.strip()))
    return out


class GroundingChecker:
    def __init__(self, *, min_support: float = 0.6, min_similarity: float = 0.6, embed: Embed | None = None,
                 recite_margin: float = 0.25):
        self.min_support = min_support
        self.recite_margin = recite_margin
        self.min_similarity = min_similarity
        self.embed = embed

    def check(self, answer: str, passages: Sequence[str], question: str = "",
              refusal: re.Pattern | None = None, *, asked: str = "", english: bool = True) -> Grounding:
        """Each unit of `answer` checked against the passages: `question` is what an answer may name besides
        them (the question, the asker, the house format); `asked`, the question alone, whose table row a
        sentence must speak of (`another_row`); `english`: names typed in lower case count."""
        n = len(passages)
        norm = [normalise(p) for p in passages]
        stems = [content_stems(p) for p in passages]
        steers = [steering(p) for p in passages]
        running = [running_words(p) for p in passages]
        said_there = [x for p in passages for x in [*_sentences(p), *filter(None, (_record(p, line) for line in p.splitlines()))]]
        sources = [running_words(x) for x in said_there]
        numbered, given = [_Numbered.of(x) for x in said_there], _numbers(question)
        headers = {_header_cells(h) for p in passages for h in _table_headers(p)}
        mentions = Mentions(" ".join(norm) + " " + normalise(question),
                            set().union(*stems, content_stems(question)) if stems else content_stems(question))
        checks: list[SentenceCheck] = []
        said = _Said()
        for unit in split_units(answer):
            unit = _mend_emphasis(unit, passages)
            cited = [c for m in CITATION_MARKER.finditer(unit) for c in marker_numbers(m.group(1)) if 1 <= c <= n]
            body = CITATION_MARKER.sub("", unit).strip()
            if not re.search(r"\w", body):
                continue  # a bare marker or punctuation
            if refusal is not None and refusal.search(body):
                checks.append(SentenceCheck(unit, cited, True, support=1.0))
                continue
            if _INSTRUCTION.search(body):
                checks.append(SentenceCheck(unit, cited, False, "an instruction quoted from a passage"))
                continue
            if is_question(body):  # a small model often echoes the FAQ heading it read
                checks.append(SentenceCheck(unit, cited, False, "a question, not an answer"))
                continue
            if page_stamp(body, asked or question):
                checks.append(SentenceCheck(unit, cited, False, "the page's review stamp or owner, not asked about"))
                continue
            if _header_cells(_BULLET.sub("", body)) in headers:  # "• Category | Use it for | First response [1]"
                checks.append(SentenceCheck(unit, cited, False, "a table's header alone, no answer"))
                continue
            repeat = said.repeats(body)
            if repeat:  # a small model loops within a line too ("X because X", a sentence said again)
                checks.append(SentenceCheck(unit, cited, False, repeat))
                continue
            missing = mentions.missing(specifics(body))
            if missing:
                checks.append(SentenceCheck(unit, cited, False, "specifics found in no passage", 0.0, missing))
                continue
            words = content_stems(body)
            if not words:  # "Sure!", "Hi there!": nothing to support, nothing to cite; "Yes." below
                checks.append(SentenceCheck(unit, cited, True, support=1.0))
                continue
            share = [len(words & s) / len(words) for s in stems]  # of its content words, in each passage
            candidates = cited or list(range(1, n + 1))
            support, best = max((share[c - 1], c) for c in candidates) if candidates else (0.0, None)
            # Another passage that holds clearly more of the sentence is its real source: the citation is
            # corrected to it (a small model often cites [1] for what [2] says).
            other = max(((share[c - 1], c) for c in range(1, n + 1) if c not in cited and not steers[c - 1]),
                        default=(0.0, None)) if cited else (0.0, None)
            recite = other[1] is not None and other[0] >= self.min_support and other[0] >= support + self.recite_margin
            if recite:
                support, best = other
            elif (source := copied_from(running_words(body), running, cited, steers)) not in (None, best):
                # Its words stand in [source], not in what it cites: a citation moved, or added there.
                recite, best, support = bool(cited), source, share[source - 1]
            ok = support >= self.min_support
            if not ok and self.embed is not None and best is not None:
                ok = self._similar(body, passages[best - 1])
            reason = "" if ok else "not supported by the passage it cites"
            if ok and asked and best is not None and another_row(body, passages[best - 1], asked, english):
                ok, reason = False, ANOTHER_ROW
            elif ok and spliced(running_words(body), sources):
                ok, reason = False, "two sentences of the passages spliced into a claim neither makes"
            elif ok and (moved := moved_number(body, numbered, given)) is not None:
                ok, reason = False, f"its number {moved} is another sentence's than the one it says again"
            if ok and asked and (agreeing := contradicted_verdict(unit, asked)) is not None:
                unit, reason = agreeing, "its yes or no said the opposite of the sentence: left out"
            elif ok and asked and best is not None and (plain := unaffirmed_verdict(unit, asked, passages[best - 1])):
                unit, reason = plain, "its yes or no answered more than the passage says: left out"
            check = SentenceCheck(unit, cited, ok, reason, round(support, 3), source=best)
            if ok and best is not None and (recite or not cited):
                check.added_citation = best
                check.text = _add_marker(_strip_markers(unit) if recite else unit, best)
            checks.append(check)
            if ok:
                said.add(body)
        _check_verdicts(checks, passages, question)
        _without_announcer(checks)
        text = _join([c.text for c in checks if c.supported])
        return Grounding(text, checks)

    def _similar(self, sentence: str, passage: str) -> bool:
        candidates = _sentences(passage)[:40] or [passage]
        vecs = self.embed([sentence, *candidates])
        return float(np.max(vecs[1:] @ vecs[0])) >= self.min_similarity


def contradicted_verdict(sentence: str, question: str) -> str | None:
    """The sentence without its opening verdict, where the sentence says the opposite: "No – the office is closed
    between Christmas and New Year" to "is the office closed between christmas and new year?" (what follows the
    "No" says the question's words back, with no negation), "Yes – the office has no dedicated parking" (a
    negation in the first clause after the "Yes"). None where the verdict and the sentence agree, or it cannot be
    told: "No – your badge is replaced for free" to "will I be charged?" says otherwise in other words, and "Yes –
    the package tool is free software; the packages may or may not be free software" negates another clause."""
    m = _OPENING_VERDICT.fullmatch(sentence.strip())
    if m is None:
        return None
    rest = m.group("rest")
    negated = bool(_NEGATION.search(CITATION_MARKER.sub("", rest)))
    if m.group("verdict").lower() == "yes":  # its first clause ("…; the packages may or may not be free" is another)
        contradicts = bool(_NEGATION.search(re.split(r"[;,:–—(]|\bbut\b", CITATION_MARKER.sub("", rest))[0]))
    else:
        asked = content_stems(question)
        contradicts = not negated and bool(asked) and len(asked & content_stems(rest)) >= 0.8 * len(asked)
    return rest[:1].upper() + rest[1:] if contradicts else None


def unaffirmed_verdict(sentence: str, question: str, passage: str) -> str | None:
    """The sentence without its opening verdict ("Yes – …", "No, …"), where the passage it draws on neither opens a
    sentence with that verdict nor holds every content word of the question: a yes or a no answers all that the
    question asks, and the passage speaks to part of it. "can I deploy to prod on a friday afternoon?" / "Yes – deploy
    windows are … Friday 09:00–13:00" (no passage says "afternoon": the window ends at 13:00), "do I need a doctor's
    note for 2 sick days?" / "Yes – you need a doctor's certificate from the 4th consecutive day", "I deleted a file a
    few weeks ago, can I still get it back?" / "No – the file … can be restored for 90 days": the sentence stays, its
    verdict goes. None where the verdict stands (a FAQ's own "Yes, …"), or there is none."""
    m = _OPENING_VERDICT.fullmatch(sentence.strip())
    if m is None or _SAYS_VERDICT[m.group("verdict").lower()].search(passage):
        return None
    if all(len(w) <= 3 for w in content_stems(question) - content_stems(passage)):  # not "off", "put", "get"
        return None
    rest = m.group("rest")
    return rest[:1].upper() + rest[1:]


def _check_verdicts(checks: list[SentenceCheck], passages: Sequence[str], question: str) -> None:
    """A bare "Yes." or "No." stays only where the passage it cites, or the one the sentence after it cites,
    opens a sentence with it: it is the answer's main claim, and has no words for the check to find. To a
    question no yes or no answers ("How can I …?") it is removed whatever the passage says."""
    asks_yes_no = not question or bool(_YES_NO_QUESTION.search(question))
    for i, check in enumerate(checks):
        verdict = _VERDICT.fullmatch(_strip_markers(check.text).strip())
        if not check.supported or verdict is None:
            continue
        after = next((c for c in checks[i + 1:] if c.supported and (c.cited or c.added_citation)), None)
        sources = check.cited or ([] if after is None else after.cited or [after.added_citation])
        says = _SAYS_VERDICT[verdict.group(1).lower()]
        if not asks_yes_no or not any(says.search(passages[n - 1]) for n in sources):
            check.supported, check.support = False, 0.0
            check.reason = "a yes or no the passage it introduces does not say"


# A unit that opens in lower case or with a backtick is no sentence: a command ("dpkg --purge linux-image-NNN").
_COMMAND_START = frozenset("abcdefghijklmnopqrstuvwxyz`")


def _without_announcer(checks: list[SentenceCheck]) -> None:
    """The list items right after a removed sentence that announced them (it ends in a colon) go with it: they
    are the steps or points of what that sentence claimed ("Yes – report it within 48 hours of noticing, day or
    night:" then "1. Open a ticket …", where the page's 48 hours are the police report's and its steps the lost
    device's), and without it they answer nothing the reader asked; so does the command it introduced ("… you can
    remove unwanted kernel image packages using this command:" then "dpkg --purge linux-image-NNN"). The answer's
    other sentences stay, and an answer left with nothing is quoted from the best passage as any other."""
    announced = False
    for check in checks:
        if _BULLET.match(check.text):
            if announced and check.supported:
                check.supported, check.reason = False, "a list item its removed introduction announced"
            continue
        if announced and check.supported and _strip_markers(check.text).lstrip()[:1] in _COMMAND_START:
            check.supported, check.reason = False, "a command its removed introduction announced"
            continue
        announced = not check.supported and _strip_markers(check.text).rstrip(" .").endswith(":")


class _Said:
    """What an answer has said so far, to find a sentence that says it again: every content word already
    said and at least half of its runs of four words too ("It is open 07:00-22:00 …" after "The office is
    open 07:00-22:00 …"; "Toronto is open …" after "Lisbon is open …" says something new). A sentence with
    a run of six words twice in itself ("X because X") repeats itself."""

    def __init__(self) -> None:
        self.words: set[str] = set()
        self.grams: set[tuple[str, ...]] = set()

    @staticmethod
    def _grams(sentence: str, n: int) -> list[tuple[str, ...]]:
        """Its runs of `n` words (the whole sentence when it is shorter)."""
        tokens = [t.lower() for t in _WORD.findall(normalise(sentence))]
        return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)] or [tuple(tokens)]

    def repeats(self, sentence: str) -> str:
        """Why the sentence is a repeat ("" when it is not)."""
        six = self._grams(sentence, 6)
        if len(six) >= 7 and len(set(six)) < len(six):  # twelve words at least
            return "repeats itself"
        grams = self._grams(sentence, 4)
        old = sum(g in self.grams for g in grams)
        if grams != [()] and content_stems(sentence) <= self.words and 2 * old >= len(grams):
            return "repeats an earlier sentence"
        return ""

    def add(self, sentence: str) -> None:
        self.words |= content_stems(sentence)
        self.grams.update(self._grams(sentence, 4))


def _strip_markers(unit: str) -> str:
    return re.sub(r"\s+([.!?,;:])", r"\1", re.sub(r"[ \t]*" + CITATION_MARKER.pattern, "", unit)).rstrip()


def _add_marker(unit: str, n: int) -> str:
    stripped = re.sub(r"(?<=[^.])\.\.$", ".", unit.rstrip())  # "… POSIX.1-2017.." (a footnote between its stops)
    if stripped and stripped[-1] in ".!?:":
        return f"{stripped[:-1]} [{n}]{stripped[-1]}"
    return f"{stripped} [{n}]"


def starts_a_block(text: str) -> bool:
    """Whether a text opens with a list item or a code block (Markdown shows neither after words on its line)."""
    return bool(_BULLET.match(text) or FENCE.match(text.lstrip()))


def _join(units: Sequence[str]) -> str:
    """Sentences back into text: bullets on their own lines, sentences of a paragraph joined by spaces."""
    out: list[str] = []
    for u in units:
        if _BULLET.match(u):
            out.append(("\n" if out and not _BULLET.match(out[-1]) else "") + u.strip())
        elif out and not _BULLET.match(out[-1]):
            out[-1] = f"{out[-1]} {u.strip()}"
        else:
            out.append(("\n" if out else "") + u.strip())
    return "\n".join(out).strip()


def _quotable(passage: str) -> list[tuple[int, str]]:
    """(position, sentence) of a passage that could be quoted as an answer: four words or more, or a FAQ answer's
    "Yes." or "No." (a quote of "No. Only single-column primary keys are supported." that left out the "No." left
    out the answer); a table's header row and the rule under it are none: its rows are quoted with the header,
    `_record`; nor is a line of a code block (`_fenced`: a command's output, "No LSB modules are available.", reads
    as a sentence)."""
    headers = _table_headers(passage)
    fenced, plain = _fenced(passage)
    return [(i, s) for i, s in enumerate(_sentences(passage, rows=True))
            if (len(s.split()) >= 4 or _YES_OR_NO.fullmatch(s)) and not CITATION_MARKER.search(s) and not _INSTRUCTION.search(s)
            and not is_question(s) and not _after_code(passage, s) and s not in headers and not TABLE_RULE.fullmatch(s)
            and not (s in fenced and s not in plain)]


def _fenced(passage: str) -> tuple[str, str]:
    """A passage's lines inside code blocks (between fences: a Markdown page's, and an HTML page's <pre> as the
    files connector writes it) and its other lines, each as one text."""
    fence, fenced, plain = None, [], []
    for line in passage.splitlines():
        after = next_fence(fence, line)
        if after == fence:  # (not a block's own fence; "```bash" shown inside a "````" block is code)
            (fenced if fence else plain).append(line)
        fence = after
    return "\n".join(fenced), "\n".join(plain)


def _cells(row: str, outer: bool) -> list[str]:
    """A row's cells: with `outer`, a Markdown row's, between pipes ("| Canada | CAD 1,500 |"); else an HTML or
    Word row's as the files connector joins them, its first or last cell perhaps empty ("| __name__ | …",
    "0, 1, …, 6 |")."""
    row = row.strip()
    if outer:
        row = row.removeprefix("|").removesuffix("|")
    return [cell.strip() for cell in row.split("|")]


def _record(passage: str, row: str, names: Sequence[str] = ()) -> str | None:
    """A table's row as it reads on its own, with its table's header (Slack shows no tables, and
    "| Canada | CAD 1,500 |" says nothing of what the numbers are): "Canada — Annual learning budget: CAD 1,500",
    "Year-end — Starts: Fri 18 December 2026 · Ends: Tue 5 January 2027 · Scope: …". The header is the row above
    a rule: Markdown's "|---|---|", or the "--- | ---" an HTML or Word table's header row is read with. None for a
    line that is no row of a table with a header. Blank lines between rows do not end the table (a section too
    long for one chunk has its lines a paragraph each, `retrieval.chunking`). With `names` (what a question names,
    `question_names`), the columns whose header names one of them, where some do and others not: "Status page —
    SEV1: Yes, update every 30 minutes" to "how often do we update the status page in a sev1?"."""
    if not TABLE_ROW.fullmatch(row) or TABLE_RULE.fullmatch(row):
        return None
    lines = [line.strip() for line in passage.splitlines() if line.strip()]
    at = next((k for k, line in enumerate(lines) if line == row.strip()), None)
    if at is None:
        return None
    rule = at - 1
    while rule > 0 and TABLE_ROW.fullmatch(lines[rule]) and not TABLE_RULE.fullmatch(lines[rule]):
        rule -= 1
    if rule < 1 or not TABLE_RULE.fullmatch(lines[rule]) or not TABLE_ROW.fullmatch(lines[rule - 1]):
        return None
    outer = lines[rule - 1].startswith("|")  # a Markdown table's header opens with a pipe, an HTML one's with a cell
    header, cells = _cells(lines[rule - 1], outer), _cells(row, outer)
    if len(header) != len(cells) or len(cells) < 2:
        return None
    pairs = [(name, cell) for name, cell in zip(header[1:], cells[1:], strict=True) if cell]
    named = [(name, cell) for name, cell in pairs if any(map(Mentions.of([name]).has, names))]
    rest = " · ".join(f"{name}: {cell}" for name, cell in (named if 0 < len(named) < len(pairs) else pairs))
    return f"{cells[0]} — {rest}" if cells[0] else rest


def _row_keys(row: str) -> set[str]:
    """What names a table's row in a sentence: each cell's text, bold and a bracketed note after it left out
    ("Diwali (Lakshmi Puja observed)" is "Diwali"), and that note on its own ("Acme Robotics Lda (Portugal)" is
    named by "Portugal" too), each at least three characters long."""
    keys = []
    for cell in _cells(row, row.lstrip().startswith("|")):
        cell = cell.replace("**", "").replace("`", "")
        note = re.search(r"\s*\(([^)]*)\)\s*$", cell)
        keys += [cell[:note.start()].strip(), note.group(1).strip()] if note else [cell.strip()]
    return {k.lower() for k in keys if len(k) >= 3 and re.search(r"\w", k)}


def _names(text: str, key: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(key)}(?!\w)", text, re.I) is not None


def _table_rows(passage: str) -> list[str]:
    """The rows of the passage's tables that have a header, each once, as their lines read (stripped)."""
    return list(dict.fromkeys(line.strip() for line in passage.splitlines() if _record(passage, line) is not None))


def _table_headers(passage: str) -> set[str]:
    """The header rows of the passage's tables (the line above a rule), stripped."""
    lines = [line for line in passage.splitlines() if line.strip()]
    return {line.strip() for line, after in itertools.pairwise(lines) if TABLE_RULE.fullmatch(after)}


def _header_cells(line: str) -> tuple[str, ...]:
    """A table row's non-empty cells, in lower case, whether it was written with its outer pipes or not."""
    return tuple(c.lower() for c in _cells(line, False) if c)


def asked_rows(rows: Sequence[str], names: Sequence[str]) -> set[str]:
    """Of a table's `rows`, those holding one of a question's `names`, as `Mentions` reads a name (what the refusal
    reads too: "sev2" names "| SEV1 / SEV2 | …"). Empty where the question names no row, or every row."""
    if len(rows) < 2 or not names:
        return set()
    asked = {r for r in rows if any(map(Mentions.of([r]).has, names))}
    return set() if len(asked) == len(rows) else asked


def worded_rows(passage: str, question: str, prose: bool = True) -> set[str]:
    """The rows of the passage's table holding a word of the question that no other row, nor a table's header,
    holds ("Temporary housing | Up to 30 nights | …" to "how many nights of temp housing do we get?": "nights" is
    the header's, "housing" that row's alone); with `prose=False`, nor a line of the passage outside its tables
    (what the question asks of the page, not of the table: "report" in "do I need a police report for a stolen
    laptop?" where the table has "Within 30 minutes of the report"). Empty where no row does, or every row."""
    rows = _table_rows(passage)
    words = content_stems(question)
    if len(rows) < 2 or not words:
        return set()
    headers = set().union(*map(content_stems, _table_headers(passage)))
    if not prose:
        headers |= content_stems("\n".join(line for line in passage.splitlines() if not TABLE_ROW.fullmatch(line)))
    held = {r: (content_stems(r) & words) - headers for r in rows}
    count = collections.Counter(w for r in rows for w in held[r])
    asked = {r for r in rows if any(count[w] == 1 for w in held[r])}
    return set() if len(asked) == len(rows) else asked


ANOTHER_ROW = "about another row of the table than the one asked about"  # the check's reason (`another_row`)


class _RowsNamed(NamedTuple):
    named: list[set[str]]  # for each sentence, the rows of the passage's table it names
    asked: set[str]  # the rows the question asks about
    rows: list[str]  # the table's rows, in order
    names: list[str]  # what the question names (`question_names`)


def _rows_named(sentences: Sequence[str], passage: str, question: str, english: bool = True) -> _RowsNamed:
    """The rows each of `sentences` names and the rows the question asks about, as `another_row` reads them, the
    table and the question read once; the rows named empty where the question picks no row, or every row."""
    rows = _table_rows(passage)
    names = [n for group in question_names(question, english) for n in group]
    asked = asked_rows(rows, names) or worded_rows(passage, question, prose=False)
    if not asked:
        return _RowsNamed([set() for _ in sentences], set(), rows, names)
    keys = {r: _row_keys(r) for r in rows}
    shared = collections.Counter(k for r in rows for k in keys[r])
    named = [{r for r in rows if any(shared[k] == 1 and _names(s, k) for k in keys[r])} for s in sentences]
    return _RowsNamed(named, asked, rows, names)


def quote_rows(question: str, passage: str, number: int, said: Sequence[str] = (), english: bool = True) -> str | None:
    """The rows of the passage's table the question asks about (`another_row` reads them), each as it reads with its
    header and with the columns the question names (`_record`), cited [number]: what replaces an answer that spoke
    of another row and of the asked one not at all. None where the question picks no row, or one of `said` (what
    the answer keeps) names an asked row already."""
    read = _rows_named(said, passage, question, english)
    if any(n & read.asked for n in read.named):
        return None
    out = [record + ("" if _WHOLE_SENTENCE.search(record) else ".")
           for row in read.rows if row in read.asked and (record := _record(passage, row, read.names))]
    return _add_marker(" ".join(out), number) if out else None


def another_row(sentence: str, passage: str, question: str, english: bool = True) -> bool:
    """Whether `sentence` speaks of a row of its passage's table other than the row(s) the question names:
    "do we get ganesh chaturthi off in pune?" answered "Yes – the day is a Gudi Padwa [1]" from a holiday table
    where Ganesh Chaturthi has a row of its own. Each word of the page is there, the claim is about the wrong
    row. The question names a row as `Mentions` reads a name (what the refusal reads too: "Teams" for "team"), or,
    naming none, by a word only that row holds, in the table and out of it (`worded_rows`: "canada" in "how long
    is probation in canada?"); a sentence names one by a cell no other row has ("Gudi Padwa", "19 March"). False where the
    question names no row, or every row, or the sentence names the asked row too."""
    read = _rows_named([sentence], passage, question, english)
    return bool(read.named[0]) and not read.named[0] & read.asked


def _after_code(passage: str, sentence: str) -> bool:
    """A line that goes on with a sentence a code block interrupted ("For example, this" / the code / "will in
    most computers print 0, not 1, because …"): it starts in lower case, right after a line of code, and its
    start is elsewhere; or the bracket the code was in closes first ("It logs the invocation (e.g." / the code /
    ") If you'd like to log …"). Quoted on its own it reads as a sentence cut in two."""
    closes = bool(re.match(r"\)\s*\S", sentence))
    if not (re.match(r"[a-z]+\s", sentence) or closes):
        return False
    at = passage.find(sentence)
    before = passage[:at].rstrip(" \t")
    if at <= 0 or not before.endswith("\n"):
        return False
    previous = before.rstrip().rsplit("\n", 1)[-1]
    # (a line of code has code's marks: a term the line defines, "module" / "the basic unit of …", has none; after a
    # code block's fence, any line in lower case goes on: "you could add" / the block / "to your dpkg.cfg.")
    return bool(FENCE.match(previous) or (closes or _is_prose(sentence)) and _command_line(previous)
                and _CODE_MARK.search(previous))


def _closeness(question: str, sentences: Sequence[str], embed: Embed | None) -> np.ndarray:
    if embed is not None:
        vecs = embed([question, *sentences])
        return vecs[1:] @ vecs[0]
    q = content_stems(question)
    return np.array([len(q & content_stems(s)) / (len(q) or 1) for s in sentences])


def _sentence_pool(passages: Sequence[str]) -> list[tuple[int, str]]:
    """(passage index, sentence) for every quotable sentence of the passages that do not steer the bot."""
    return [(n, s) for n, p in enumerate(passages) if not steering(p) for _, s in _quotable(p)]


def _asked_pool(passages: Sequence[str], asks: Sequence[str | None]) -> list[tuple[int, str]]:
    """(passage index, question) for each passage whose heading asks a question (`asks`, `asked_by`)."""
    return [(n, q) for n, (p, q) in enumerate(zip(passages, asks, strict=False)) if q and not steering(p) and _quotable(p)]


def asked_by(heading: str) -> str | None:
    """The question a section answers when its heading asks one, as a FAQ's entries do ("1.1. How do you pronounce
    "Valgrind"?", "Do Django models support multiple-column primary keys?"): the heading path's last part, its
    number left out. An asker's words are closer to the FAQ's question than to any sentence of its answer ("can a
    django model have a composite primary key?" against "No. Only single-column primary keys are supported.")."""
    last = HEADING_NUMBER.sub("", heading.rsplit(" › ", 1)[-1].strip())
    return last if last.endswith("?") else None


def _best_per_passage(pool: Sequence[tuple[int, str]], scores, count: int) -> list[float]:
    best = [0.0] * count
    for (n, _), score in zip(pool, scores, strict=True):
        best[n] = max(best[n], float(score))
    return best


def answer_closeness(question: str, answer: str, *, embed: Embed | None = None) -> float:
    """How close an answer's closest sentence (its citation markers left out) is to the question; 0 for none."""
    sentences = [t for t in (_strip_markers(u) for u in split_units(answer)) if t]
    return float(np.max(_closeness(question, sentences, embed))) if sentences else 0.0


def passage_closeness(question: str, passages: Sequence[str], *, embed: Embed | None = None) -> list[float]:
    """For each passage, how close its closest quotable sentence is to the question (0 when it has none)."""
    return _closest(question, passages, (), lambda texts: _closeness(question, texts, embed))[0]


def _closest(question: str, passages: Sequence[str], asks: Sequence[str | None], score) -> tuple[list[float], list[float]]:
    """Each passage's closest sentence's closeness to the question (`score`: the closeness of each of a list of
    texts), without and with the question its heading asks counted as one of its sentences."""
    pool, asked = _sentence_pool(passages), _asked_pool(passages, asks)
    if not pool and not asked:
        return [0.0] * len(passages), [0.0] * len(passages)
    scores = score([s for _, s in pool + asked])
    return (_best_per_passage(pool, scores[:len(pool)], len(passages)),
            _best_per_passage(pool + asked, scores, len(passages)))


def judged_closeness(question: str, passages: Sequence[str], judge: Embed, headed: Sequence[str] | None = None,
                     asks: Sequence[str | None] = ()) -> tuple[list[float], list[float], list[float]]:
    """A second embedder's view of the passages: each passage's closest sentence's closeness to the question
    (as `passage_closeness`; then with the question its heading asks as one of its sentences: `asks`), and the
    whole passage's similarity to it, read with its page title and heading when `headed` gives them
    (`Chunk.embedding_text`, as the retriever and the reranker read it: "Recharge Days (Paid Time Off) ›
    Allowance" says what a list of allowances is about). Sentences and passages are embedded apart: in one batch
    every sentence would be padded to a passage's length (about twice the time)."""
    vecs = judge([question, *(headed if headed is not None else passages)])
    whole = [float(v) for v in vecs[1:] @ vecs[0]]
    plain, asked = _closest(question, passages, asks, lambda texts: judge(texts) @ vecs[0])
    return plain, whole, asked


class Focus(NamedTuple):
    """`focus_assessment`'s view of the passages."""

    scores: list[float]  # how likely each passage answers, the question its heading asks counted
    plain: list[float]  # the same from its own sentences only (the answerability reads these)
    closeness: list[float]  # its closest sentence's closeness to the question (the judge's, else the retriever's)


def focus_assessment(question: str, passages: Sequence[str], *, similarities: Sequence[float | None] = (),
                     embed: Embed | None = None, rank_weight: float = 0.05, judge: Embed | None = None,
                     masked: bool = True, headed: Sequence[str] | None = None,
                     asks: Sequence[str | None] = ()) -> Focus:
    """How likely each passage is the one that answers the question: its closest sentence's closeness to the
    question, plus the retriever's similarity for the whole passage, less `rank_weight` × ln(rank) (the
    retriever's order breaks near-ties). With a `judge` (a second, larger embedder: `answering.focus_embedder`)
    the closeness is the judge's, and the judge's similarity for the whole passage (with its title and heading:
    `headed`) is added. A passage that steers the bot, or has nothing to quote, scores -inf when `masked`. These
    signals together pick the answering passage more often than the model does (README: "The passage most likely
    to answer").

    Two lists of scores (`Focus`): with the question each passage's heading asks (`asks`, `asked_by`) as close as
    its closest sentence, which tell which passage answers (a FAQ's entry by its question), and from its own
    sentences, which tell whether any does (the answerability): two questions of one form ("how much does the
    Django fellowship pay?", "How is Django licensed?") are close whatever they ask. And each passage's closest
    sentence's closeness, which an answer written from it can be held to (`Answerer._aside`)."""
    if judge is not None:
        plain, judged, asked = judged_closeness(question, passages, judge, headed, asks)
    else:
        plain, asked = _closest(question, passages, asks, lambda texts: _closeness(question, texts, embed))
        judged = [0.0] * len(passages)
    sims = list(similarities) + [None] * (len(passages) - len(similarities))

    def scores(closeness: Sequence[float]) -> list[float]:
        return [-math.inf if masked and not quotable(p, question) else c + j + (s or 0.0) - rank_weight * math.log(n)
                for n, (p, c, j, s) in enumerate(zip(passages, closeness, judged, sims, strict=True), start=1)]

    return Focus(scores(asked), scores(plain), list(plain))


def focus_scores(question: str, passages: Sequence[str], **kw) -> list[float]:
    """Each passage's focus score: how likely it is the one that answers (`focus_assessment`'s scores)."""
    return focus_assessment(question, passages, **kw).scores


# A passage that only sends the reader elsewhere: "See How can I create a stand-alone binary from a Python script?
# for a list of tools …", "See the Unicode HOWTO.", "For more information on testfile(), see section Basic API."
# ("See that the file is closed …", "see whether …" tell the reader to check, not where to look.) What it points
# to: its words after the "see", up to the name's end (a question mark) or what the reader will find there ("for …").
_POINTER = re.compile(r"(?:see|refer to|for more (?:information|details)\b[^.?!]*?\bsee)\s(?!(?:that|whether|if|to)\b)"
                      r"(?P<name>[^?]*\?|.*?(?=\sfor\s)|.*)", re.I | re.S)
POINTER_MAX_WORDS = 30
# The share of the question's content words the name a pointer gives must hold for it to name what is asked.
POINTER_NAMES_QUESTION = 0.8


def points_elsewhere(passage: str, question: str) -> bool:
    """Whether a passage (of `POINTER_MAX_WORDS` words at most) only sends the reader elsewhere for the very thing
    asked: each of its sentences points to another page or section (or goes on from one that does), and the name
    it points to holds the question's words (`POINTER_NAMES_QUESTION`). The Python FAQ's Windows entry answers
    "How do I make an executable from a Python script?" with "See How can I create a stand-alone binary from a
    Python script? for a list of tools …": for that question the pointer is the answer, but asked "How can I
    create a stand-alone binary from a Python script?" it only names the question; what it points to answers."""
    sentences = _sentences(passage)
    if not sentences or len(passage.split()) > POINTER_MAX_WORDS or not (first := _POINTER.match(sentences[0])):
        return False
    if not all(_POINTER.match(s) or s[:1].islower() for s in sentences):
        return False
    asked = content_stems(question)
    return bool(asked) and len(asked & content_stems(first["name"])) >= POINTER_NAMES_QUESTION * len(asked)


def quotable(passage: str, question: str) -> bool:
    """Whether a passage can be quoted as an answer (to `question`): it does not steer the bot, does not only point
    elsewhere for what is asked (`points_elsewhere`), and has a sentence to quote."""
    return not steering(passage) and not points_elsewhere(passage, question) and bool(_quotable(passage))


def likeliest(scores: Sequence[float]) -> int | None:
    """The number (1-based) of the passage with the best focus score; None when none can be quoted."""
    best = max(range(len(scores)), key=scores.__getitem__, default=None)
    return None if best is None or scores[best] == -math.inf else best + 1


def quote(question: str, passage: str, number: int, *, embed: Embed | None = None, max_sentences: int = 3,
          max_words: int = 70) -> str | None:
    """Quote a passage as the answer, with its citation: its opening sentences, up to `max_sentences` and
    `max_words` (a section states its point first), or, when the sentence closest to the question is not among
    them (or the words allowed run out before it), the opening one and that one.
    A quoted sentence that ends in a colon, or in a word with a command after it, brings the lines it introduces
    (`_introduced_lines`; a code block, or a list as it is), and ends the quote; one that would end the quote
    without them is left out, unless it is all there is. A sentence that a command interrupts is quoted whole, the
    command in backquotes (`_run_on`). A line of code is no sentence to quote (`_code_line`). None when the passage
    has no sentence worth quoting."""
    # not a prompt's input; a FAQ answer's "Yes." only to a question a yes or no answers ("How can I …?": no)
    asks_yes_no = bool(_YES_NO_QUESTION.search(question))
    code_lines = {x for x in (line.strip() for line in passage.splitlines()) if _code_line(x)} | _block_headers(passage) \
        | _traceback(passage)
    sentences = [(i, s) for i, s in _quotable(passage)
                 if not s.startswith((">>>", "...")) and (asks_yes_no or not _YES_OR_NO.fullmatch(s))
                 and s not in code_lines and not page_stamp(s, question)]
    if not sentences:
        return None
    records = {s: _record(passage, s) for _, s in sentences}  # a table's row as it reads, with its header
    closest = int(np.argmax(_closeness(question, [records[s] or s for _, s in sentences], embed)))
    through_closest = sum(len(s.split()) for _, s in sentences[:closest + 1])
    in_order = closest < max_sentences and (closest == 0 or through_closest <= max_words)
    asked_names = [n for group in question_names(question) for n in group]
    # a table's rows with the columns the question names
    shown = {s: _record(passage, s, asked_names) if r else None for s, r in records.items()}
    rows = (asked_rows(_table_rows(passage), asked_names) or worded_rows(passage, question)
            if records[sentences[closest][1]] else set())
    if asked := [k for k, (_, s) in enumerate(sentences) if s.strip() in rows]:
        # the question names a row of the table the closest sentence is a row of (or a word only that row holds):
        # that row answers, with its header; the rows after it answer what was not asked ("how fast do I have to
        # ack a sev2 page?": not SEV3's)
        picked = asked
    else:
        picked = range(len(sentences)) if in_order else _with_antecedent(passage, sentences, closest, max_words)
    out, words, code, used, named = [], 0, [], set(), set()  # (named: the signatures a quoted sentence was labelled with)
    for k in picked:
        text = sentences[k][1]
        if text in used:
            continue  # already quoted, within the sentence a command interrupted
        if len(out) == max_sentences or out and words + len(text.split()) > max_words:
            break
        run_on = _run_on(passage, text)
        code = _introduced_lines(passage, run_on[1][-1] if run_on else text)  # "… parameters:" + its code
        terms = _definitions(passage, text) if len(code) == 1 and not run_on else None
        if terms and terms[0].startswith(f"- {code[0]}:"):
            code = terms  # a definition list: each term with its definition, not the first term as code
        if run_on:
            text, taken = run_on
            text += "" if code or _WHOLE_SENTENCE.search(text) else "."  # the page ends it with the command
            used.update(taken)
        if not code and not run_on and len(sentences) > 1 and _leads_into_code(passage, text):
            continue  # "In C++ you'd write" before code it does not bring: cut off where the code would go
        record = shown.get(text)
        if record:
            text = record + ("" if _WHOLE_SENTENCE.search(record) else ".")  # a row of a table, with its header
        elif not run_on and (names := _signatures_over(passage, text)) and not named & set(names):
            named.update(names)
            text = ", ".join(f"`{name}`" for name in names) + f": {text}"  # what the description is of
        out.append(text if not code or text.endswith(":") else f"{text}:")  # "… to hold using" + a command
        words += len(text.split())
        if code:  # "…, use the reversed() function:" and its code; what follows it is another point
            break
    if len(out) > 1 and out[-1].endswith(":") and not code:
        out.pop()  # "The full list of modules is:" announcing what the quote leaves out ends nothing
    return _with_lines(_add_marker(_lines_of(passage, [_cut_emphasis(x) for x in out]), number), code)


_REFERS_BACK = re.compile(r"^(?:[-*•]\s+)?(?:(?:this|that|these|those|they|their|it|its|such|he|she|his|her|otherwise"
                          r"|however|instead)\b|(?:\S+\s+){1,4}?(?:this|these|those)\s+[a-z])", re.I)


def _code_line(line: str) -> bool:
    """A line of code, not words: quoted on its own, between sentences, it reads as neither ("The easiest way is
    to use the concurrent.futures module. t = threading.Thread(target=worker, …)"; a grammar's
    "assignment_expression ::= [identifier ":="] expression" before the sentence that explains it). A quote
    shows code only in the block a sentence introduces (`_introduced_lines`). A list's item ("- Use locals() to
    resolve the function name:") and a line introducing what follows are words."""
    line = line.strip()
    if _BULLET.match(line) or line.endswith(":"):
        return False
    return _command_line(line) and bool(_CODE_SIGN.search(line)) or "::=" in line and not _is_prose(line)


def _cut_emphasis(text: str) -> str:
    """A quoted sentence without the emphasis mark it took from a span that goes on beyond it ("*Policy owner: Marta
    Figueiredo, Head of People." of "*Policy owner: … People. Approved by … 2026-03-18.*"): Slack would show the mark
    as it is."""
    for mark in ("**", "*"):
        opens, closes = _emphasis_marks(text, mark)
        if (len(opens) + len(closes)) % 2 == 0:
            continue
        if opens[:1] == [len(mark)]:
            text = text[len(mark):]
        elif closes[-1:] == [len(text) - len(mark)]:
            text = text[:-len(mark)]
    return text


def _emphasis(mark: str) -> tuple[str, str]:
    """The patterns of an emphasis's opening and closing `mark`: "**" and "*" apart ("**up" opens no "*" span)."""
    m = re.escape(mark)
    return rf"(?<![*\w]){m}(?=\w)", rf"(?<=[\w.!?)]){m}(?![*\w])"


def _emphasis_marks(text: str, mark: str) -> tuple[list[int], list[int]]:
    """Where `text` opens an emphasis with `mark` (the end of each opening mark), and where it closes one (the start
    of each closing mark)."""
    opening, closing = _emphasis(mark)
    return [x.end() for x in re.finditer(opening, text)], [x.start() for x in re.finditer(closing, text)]


def _mend_emphasis(text: str, passages: Sequence[str]) -> str:
    """A written sentence with the one half of an emphasis the model copied from a passage ("… up to 5 unused
    Recharge Days** into …" of "**up to 5 unused Recharge Days**"; Slack shows the stray mark): the other half comes
    back where the passage has it. A mark no emphasis of the passages explains ("f(x, **kwargs)") is left as it is."""
    for mark in ("**", "*"):
        opens, closes = _emphasis_marks(text, mark)
        if len(opens) + len(closes) != 1:
            continue
        opening, closing = _emphasis(mark)  # the passages' spans: opening mark, words, closing mark, on one line
        spans = {x for passage in passages for x in re.findall(rf"{opening}(.+?){closing}", passage)}
        if closes:
            at = closes[0]
            span = max((x for x in spans if text[:at].endswith(x)), key=len, default="")
            if span:
                text = text[:at - len(span)] + mark + text[at - len(span):]
        else:
            at = opens[0]
            span = max((x for x in spans if text[at:].startswith(x)), key=len, default="")
            if span:
                text = text[:at + len(span)] + mark + text[at + len(span):]
    return text


def _signatures_over(passage: str, sentence: str, most: int = 3) -> list[str]:
    """The signatures (`_SIGNATURE`) on the lines right over the line a sentence opens, as an API reference lists
    them over their description ("msvcrt.kbhit()" / "Return True if a keypress is waiting to be read."; CPython's
    "Part of the Stable ABI." may come between): a quote of the description names what it describes. A long
    signature is shortened to its name ("class threading.Thread(…)"). None over a sentence within its line, and none
    that ends a block of code (under a line of code or an indented one: "f = locals()[fname]" / "f()" / "This calls
    …"), whose next line speaks of the block."""
    lines = passage.splitlines()
    at = next((k for k, line in enumerate(lines) if line.strip().startswith(sentence)), None)
    if at is None:
        return []
    k = at - 1
    while k >= 0 and (not lines[k].strip() or _API_BADGE.fullmatch(lines[k].strip())) and k > at - 3:
        k -= 1
    names: list[str] = []
    while k >= 0 and len(names) < most and lines[k] == lines[k].lstrip() and _is_signature(lines[k].strip()):
        names.insert(0, lines[k].strip())
        k -= 1
    if k >= 0 and lines[k].strip() and (_code_line(lines[k]) or lines[k] != lines[k].lstrip()):
        return []  # the end of a block of code
    return [re.sub(r"\(.*\)", "(…)", name) if len(name) > 60 else name for name in names]


def _is_signature(line: str) -> bool:
    """A signature (`_SIGNATURE`) whose arguments are parameters: names, with a type or a default (`name=None`,
    `*args`, `**kwargs`, `/`, `*`, `…`; `[, step]` optional), not a call's values (`register(models.Article)`,
    `serialize('json', qs)`, `detail(request=<HttpRequest object>)`: the last line of an example)."""
    if not _SIGNATURE.fullmatch(line):
        return False
    args = re.search(r"\((.*)\)", line)
    if args is None:
        return True
    inner = re.sub(r"=\s*(?:\(\)|\{\}|\[\])", "=x", args.group(1)).replace("[", " ").replace("]", " ")
    return all(_PARAMETER.fullmatch(arg.strip()) for arg in inner.split(",") if arg.strip())


def _traceback(passage: str) -> set[str]:
    """A traceback's lines in the passage, a program's output: "Traceback (most recent call last):", the indented
    lines under it and the error that ends it ("TypeError: 'tuple' object does not support item assignment")."""
    out: set[str] = set()
    inside = False
    for line in passage.splitlines():
        if _TRACEBACK.fullmatch(line.strip()):
            inside = True
        elif inside and line.strip() and line[:1] not in (" ", "\t"):
            inside = False
            out.add(line.strip())  # the error
        if inside:
            out.add(line.strip())
    return out


def _block_headers(passage: str) -> set[str]:
    """The passage's lines that open an indented block of code ("if i is None:" over its indented body): in lower
    case, ending in a colon, the next line further in. A sentence introducing code ("For example:") is capitalised."""
    rows = [line for line in passage.splitlines() if line.strip()]
    indent = [len(line) - len(line.lstrip()) for line in rows]
    return {rows[k].strip() for k in range(len(rows) - 1)
            if rows[k].rstrip().endswith(":") and rows[k].lstrip()[:1].islower() and indent[k + 1] > indent[k]}


def _leads_into_code(passage: str, sentence: str) -> bool:
    """A sentence that stops at a word ("In C++ you'd write"), or inside a bracket ("It logs the invocation (e.g."),
    with code after it: it goes on in the code."""
    after = _after(passage, sentence)
    following = next((line for line in after or [] if line.strip()), "")
    stops = sentence[:1].isupper() and _ends_in_lower_word(sentence) or sentence.count("(") > sentence.count(")")
    return stops and (_code_line(following) or bool(FENCE.match(following)))


def _with_antecedent(passage: str, sentences: Sequence[tuple[int, str]], closest: int, max_words: int) -> list[int]:
    """The sentences a quote takes when the closest one is not among the opening ones: the opening one and the
    closest, and between them the sentence just before the closest when the closest refers back to it ("…
    Phone – +351 21 000 4477, for urgent problems only. Outside desk hours this number forwards to …"; "This
    …", "It …", "However, …") in the same paragraph or list item, when the words allowed leave room for both; then
    the opening one only when they leave room for it too. A FAQ entry's opening "Yes." or "No." is no opening for a
    sentence from another part of the entry (the section's opening before a passage from further down,
    `Answerer.with_openings`): it answers the entry's own question ("No. When deciding between testing and
    unstable …" to "Can I change to testing or unstable?"). Nor is a table's first row for another row: each
    row reads on its own, with its header ("14 September — Holiday: Ganesh Chaturthi", without "26 January —
    Holiday: Republic Day" before it)."""
    position, text = sentences[closest]
    before = closest - 1
    start = passage.find(sentences[0][1])
    elided = _YES_OR_NO.fullmatch(sentences[0][1]) and _ELIDED.search(passage, start, max(passage.find(text, start), 0))
    rows = _record(passage, sentences[0][1]) is not None and _record(passage, text) is not None
    opening = [] if closest > 1 and elided or rows else [0]
    if before <= 0 or not _REFERS_BACK.match(text) or sentences[before][0] != position - 1 \
            or not _on_one_line(passage, sentences[before][1], text):
        return [*opening, closest]
    words = [len(sentences[k][1].split()) for k in (0, before, closest)]
    if sum(words[1:]) > max_words:
        return [*opening, closest]
    return [*opening, before, closest] if sum(words) <= max_words else [before, closest]


def _lines_of(passage: str, sentences: Sequence[str]) -> str:
    """Quoted sentences as the passage sets them: a list item on a line of its own, and a sentence after one on
    the next line unless the item goes on with it ("- Phone – +351 21 000 4477, for urgent problems only. Outside
    desk hours this number forwards to …"); sentences of a paragraph run on."""
    text = ""
    for k, sentence in enumerate(sentences):
        after = sentences[k - 1] if k else ""
        new_line = bool(_BULLET.match(sentence)) or _BULLET.match(after) and not _on_one_line(passage, after, sentence)
        text += ("\n" if new_line else " ") + sentence if text else sentence
    return text


def _on_one_line(passage: str, first: str, then: str) -> bool:
    """Whether sentence `then` follows sentence `first` on one line of the passage (a paragraph, a list item)."""
    return any(first in line and then in line.split(first, 1)[1] for line in passage.splitlines())


def _with_lines(text: str, lines: Sequence[str]) -> str:
    """A sentence and the lines it introduces: a code block, or a list or links as they are (readable, clickable).
    A Markdown page's own fences ("```bash") are left out: the lines become one code block, not an empty one each
    side of them (Slack shows no language tag, it would read as a line of the code)."""
    lines = [line for line in lines if not FENCE.match(line)]
    if not lines:
        return text
    table = "\n".join(lines)
    records = [_record(table, line) for line in lines[2:]]
    if len(lines) > 2 and TABLE_RULE.fullmatch(lines[1]) and all(records):  # a table: its rows, each with its header
        return "\n".join([text, *(f"- {record}" for record in records)])
    if all(_URL_LINE.fullmatch(line) or _BULLET.match(line) for line in lines):
        return "\n".join([text, *(line.strip() for line in lines)])
    return text + "\n```\n" + as_read("\n".join(lines)).rstrip("\n") + "\n```"  # (no "--- | ---" in a code block)


def introduce(answer: str, passages: Sequence[str]) -> tuple[str, list[str]]:
    """A written sentence that ends in a colon announces what follows it. When the passage it cites has that
    sentence and the lines it introduces (`_introduced_lines`: code, a command, a short list), and the answer
    has at most the start of them run into one line after it (a small model flattens code: "… by using * and
    **: def f(x, *args, **kwargs): [3]."), or all of them and a sentence after (`_announced`), the lines come from
    the passage as in a quote (a code block, or a list as it is), which ends the paragraph; that sentence opens
    the next. Where the answer goes on with a part of that list (a small model
    copies the first item and stops), the whole list replaces the part; a list of the answer's own is left as it
    is. One that introduces nothing is left out when the answer has another sentence. Returns the answer and the
    sentences left out."""
    units = split_units(answer)
    paragraphs: list[str] = []
    current: list[str] = []
    dropped: list[str] = []
    mended, k = False, 0
    while k < len(units):
        unit = units[k]
        bare = _strip_markers(unit)
        # the answer lists what it announces (a sentence that ends in its colon; one that goes on after it, "Check the
        # pods: kubectl …", has announced what it runs in, and a bullet after it is the answer's next point)
        own = list(itertools.takewhile(_BULLET.match, units[k + 1:])) if bare.rstrip(" .").endswith(":") else []
        cited = [n for n in cited_numbers(unit) if 1 <= n <= len(passages)]
        item = _BULLET.match(bare)  # an answer's point ("• If pods are healthy …, scale up: kubectl …") keeps its bullet
        found = next(((n, a) for n in cited if (a := _announced(bare[item.end():] if item else bare,
                                                                 passages[n - 1]))), None)
        if found and item:
            found = (found[0], (item.group(0) + found[1][0], *found[1][1:]))
        if found and own and not _part_of(own, found[1][1]):
            found = None  # the answer's own list, not a part of the passage's
        if found and not found[1][1]:  # a sentence a command interrupts, read whole: the paragraph goes on
            current.append(_add_marker(found[1][0], found[0]))
            mended, k = True, k + 1
            continue
        if found:
            n, (sentence, lines, rest) = found
            paragraphs.append(_with_lines(_join([*current, _add_marker(sentence, n)]), lines))
            current = [_add_marker(rest, n)] if rest else []
            k += 1 + len(own)  # a part of the passage's list gives way to the whole of it
            continue
        if bare.rstrip(".").endswith(":") and len(units) > 1 and not own:
            dropped.append(unit)
        else:
            current.append(unit)
        k += 1
    if not dropped and not paragraphs and not mended:
        return answer, []
    return "\n\n".join([*paragraphs, *([_join(current)] if current else [])]), dropped


def _part_of(items: Sequence[str], lines: Sequence[str]) -> bool:
    """Whether each of an answer's list items is one of a passage's list lines (its citation and closing
    full stop aside): the model copied part of the list."""
    def key(line: str) -> str:
        return " ".join(_BULLET.sub("", _strip_markers(line)).rstrip(".").split()).lower()

    whole = {key(line) for line in lines if _BULLET.match(line)}
    return all(key(item) in whole for item in items)


def _past(text: str, code: str) -> str | None:
    """What `text` has after `code` (written without spaces) when it opens with it, spaced as it may be; None
    when it does not open with it."""
    i = 0
    for char in code:
        while i < len(text) and text[i].isspace():
            i += 1
        if i == len(text) or text[i] != char:
            return None
        i += 1
    return text[i:].strip()


def _announced(text: str, passage: str) -> tuple[str, list[str], str] | None:
    """The sentence of `passage` that introduces lines (`_introduced_lines`: it ends in a colon, or in a word
    with a command after it) that `text` opens with, those lines, and the sentence `text` runs them into: when
    what `text` has after it is at most those lines run together, or all of them and then a sentence of running
    text (a small model copies an example line by line and writes on after its last line: "… 'time': '0.002'}]
    connection.queries is only available if DEBUG is True."); None otherwise. The sentence comes back ending in
    a colon, the one after the lines as the answer has it ("" when there is none). A sentence that a command
    interrupts (`_run_on`), where `text` stops at the command or is that sentence as the lines run, comes back
    whole, the command in backquotes, with no lines ("… use the." → "… use the `lsb_release -a` command.")."""
    flat = " ".join(text.split())
    for line in passage.splitlines():
        for sentence in (x.strip() for x in _SENTENCE_END.split(line.strip())):
            if not flat.startswith(" ".join(sentence.split())):
                continue
            run_on = _run_on(passage, sentence)
            if run_on and "".join(flat.rstrip(" .").split()) in (
                    "".join(sentence.split()), "".join(run_on[0].replace("`", "").rstrip(" .").split())):
                # the model stopped where the command interrupts the sentence ("… use the."), or wrote it all, each
                # line cited on its own ("… use the [1] lsb_release -a [2] command [1]."): the sentence as a quote
                # reads it ("… use the `lsb_release -a` command.")
                return run_on[0] + ("" if _WHOLE_SENTENCE.search(run_on[0]) else "."), [], ""
            lines = _introduced_lines(passage, sentence)
            tail = flat[len(" ".join(sentence.split())):].strip().removeprefix(":").strip()  # (a colon the answer put before it)
            code = "".join("".join(lines).split())  # (compared without spaces: "format,...);" is "format, ...);")
            rest = _past(tail, code) if lines else None
            rest = rest if rest and _is_prose(rest) else ""
            if lines and (code.startswith("".join(tail.strip(" .").split())) or rest):
                return sentence if sentence.endswith(":") else f"{sentence}:", lines, rest
    return None


def opening(text: str, max_words: int = 60) -> str | None:
    """A section's opening: its first sentences, up to `max_words` words, as long as each is a whole sentence
    of running text (it ends in . ! or ?). The first that is not stops it and is left out: a line of code, a
    signature, a "Source code: Lib/code.py" line, or "Consider the following code:", which introduces what is
    left out. A blank line (the paragraph's end) stops it too, and so does a later line that is not prose.
    None when the text does not open with a sentence, or its first sentence is longer than `max_words`."""
    out: list[str] = []
    words = 0
    lines = text.splitlines()
    for i, line in enumerate(lines):
        line = line.strip()
        if not line:
            if out:
                break
            continue
        if not (line[:1].isalpha() or line[:1] in "\"'‘“(") or out and not _is_prose(line):
            break
        for sentence in filter(None, (s.strip() for s in _SENTENCE_END.split(line))):
            n = len(sentence.split())
            if words + n <= max_words and line.endswith(sentence) and sentence.endswith(":") and (
                    items := _introduced_items(lines[i + 1:], max_words - words - n)):
                return "\n".join([" ".join([*out, sentence]), *items])
            if words + n > max_words or not _WHOLE_SENTENCE.search(sentence):
                return " ".join(out) or None
            out.append(sentence)
            words += n
    return " ".join(out) or None


def _introduced_items(lines: Sequence[str], max_words: int) -> list[str] | None:
    """The list a sentence ending in a colon introduces, when it is a list of whole sentences, all of it within
    `max_words` words (a section's opening is not cut mid-list): "Python versions are numbered “A.B.C” or “A.B”:"
    then "- A is the major version number – …", "- B is …", "- C is …". The list must be seen to end (a line
    after it, with no list item after that: the Debian FAQ's priorities go on after a paragraph under each).
    None when what follows is code, a table, or a list of names or fragments, which the introduction announces
    and the opening leaves out, or a list not seen whole."""
    items: list[str] = []
    rest = list(filter(None, (x.strip() for x in lines)))
    for k, line in enumerate(rest):
        if not _BULLET.match(line):
            seen_whole = bool(items) and not any(_BULLET.match(x) for x in rest[k:])
            return items if seen_whole and sum(len(x.split()) for x in items) <= max_words else None
        if not _WHOLE_SENTENCE.search(line) or not _is_prose(_BULLET.sub("", line)):
            return None
        items.append(line)
    return None


def _is_prose(line: str) -> bool:
    """A line of running text, not code, a prompt, a traceback or output: it starts with a letter, and it is
    a sentence of mostly plain words (ending in . ! or ?), or a long run of nothing but plain words."""
    words = line.split()
    if len(words) < 5 or not line[:1].isalpha():
        return False
    plain = _plain_share(words)
    return plain >= 0.7 and line.rstrip()[-1] in ".!?" or plain >= 0.9 and len(words) >= 10


def _plain_share(words: Sequence[str]) -> float:
    """The share of `words` that are words of running text (`_PLAIN_WORD`)."""
    return sum(bool(_PLAIN_WORD.fullmatch(w)) for w in words) / len(words)


def _reads_as_words(line: str) -> bool:
    """A line of at least four words that opens with a plain word, nearly all of them plain words: running
    text ("And finally build your package:"), not code ("dch -l local 'Blah blah blah'") nor an error line
    ("SyntaxError: invalid syntax")."""
    words = line.split()
    return len(words) >= 4 and words[0].isalpha() and _plain_share(words) >= 0.9


def _ends_in_lower_word(text: str) -> bool:
    """Whether the text stops at a lower-case word, no stop or bracket after it ("… hold using")."""
    last = text.split()[-1] if text.split() else ""
    return last.isalpha() and last.islower()


def _is_sentence(line: str) -> bool:
    """A line that opens with a capital and ends like a sentence ("That prints 0.")."""
    return line.strip()[:1].isupper() and bool(_WHOLE_SENTENCE.search(line.rstrip()))


def _stops_at_word(sentence: str) -> bool:
    """A sentence of running text that stops at a lowercase word, where a command follows in DocBook and man
    pages ("With apt, you can set a package to hold using")."""
    return (sentence[:1].isupper() and "|" not in sentence and _reads_as_words(sentence)
            and _ends_in_lower_word(sentence))  # (a table's row is no sentence)


def _after(passage: str, sentence: str) -> list[str] | None:
    """The passage's lines after `sentence`, when the sentence ends its line; None otherwise."""
    at = passage.find(sentence)
    if at < 0 or not sentence:
        return None
    first, *lines = passage[at + len(sentence):].split("\n")
    return None if first.strip() else lines  # the sentence's line goes on: not a block after it


def _command_line(line: str) -> bool:
    """A line that is code or a command, not words (nor words in brackets, nor a table's row)."""
    line = line.strip()
    return bool(line) and line[0] != "(" and " | " not in line and not (
        _is_prose(line) or _is_sentence(line) or _reads_as_words(line))


_ASSIGNMENT = re.compile(r"[\w.$@]+\s*(?:=|<-|:=)\s")  # "title = {…", "fp <- file.path(…)": a line of code


def _goes_on(line: str) -> bool:
    """A line that carries on a sentence: it starts in lower case, or with a bracket and lower case (and is not
    an assignment, a line of code in lower case)."""
    line = line.lstrip("(")
    return line[:1].islower() and not _ASSIGNMENT.match(line)


def _run_on(passage: str, sentence: str, max_commands: int = 3) -> tuple[str, list[str]] | None:
    """A sentence that a command on a line of its own interrupts, and that goes on after it in lower case:
    "… e.g. with" / "$ chmod +x script" / "and put a Shebang line at the top of the script." reads as one
    sentence with the command in backquotes. A part that again stops at a word takes the next command too
    ("… hold using `apt-mark hold pkg` and remove the hold with `apt-mark unhold pkg`"). (The sentence, the
    lines it took in) or None when no command interrupts it."""
    if not _stops_at_word(sentence):
        return None
    text, used, part = sentence, [], sentence
    while len(used) < 2 * max_commands:
        lines = _after(passage, part)
        rest = [line.strip() for line in lines or () if line.strip()]
        if rest and FENCE.match(rest[0]):  # a code block: one line is a command the sentence runs on after
            if len(rest) < 3 or not FENCE.match(rest[2]):
                break  # a block of several lines is introduced, not run into the sentence (`_introduced_lines`)
            rest = [rest[1], *rest[3:]]
        if not rest or not _command_line(rest[0]):
            break
        goes_on = len(rest) > 1 and _goes_on(rest[1])
        if not used and not goes_on:
            break  # a command after the sentence, not within it: the sentence introduces it (`_introduced_lines`)
        text += f" `{rest[0]}`"
        used.append(rest[0])
        if not goes_on:
            break
        part = _SENTENCE_END.split(rest[1])[0]
        text += f" {part}"
        used.append(part)
        if not _ends_in_lower_word(part):
            break
    return (text, used) if used else None


def _introduced_lines(passage: str, sentence: str, max_lines: int = 12) -> list[str]:
    """The lines that a sentence introduces, as the passage has them (code, a command, a short list): the lines
    right after it, up to the next line of prose, a capitalised line of words that ends its paragraph (DocBook
    puts "And finally build your package:" right after a command, a blank line before the next), one that
    introduces code of its own ("Sequences can be copied by slicing:") or a sentence that starts one ("That prints
    0."); at most `max_lines`, "…" after.
    A sentence ending in a colon introduces what follows. One that stops at a word (`_stops_at_word`: DocBook
    and man pages put no colon before a command) introduces a command and what goes with it up to a blank line,
    the end or a new sentence; where the sentence goes on after the command, it is a `_run_on`. Nothing for a
    sentence ending otherwise, unless it stops at a word in lower case and a list follows it, which it leads into
    as a colon would ("In addition, the packages in non-free" / "- must not be so buggy …"; a title over a list of
    contents does not)."""
    lines = _after(passage, sentence)
    listed = next((line for line in lines or [] if line.strip()), "")
    colon = sentence.endswith(":") or sentence[-1:].isalnum() and (sentence.split() or [""])[-1][:1].islower() \
        and bool(_BULLET.match(listed))
    if lines is None or not (colon or _stops_at_word(sentence)):
        return []
    block: list[str] = []
    spaced = False  # a blank line between two of the block's lines: every line may end a paragraph
    fence = None  # within a code block (its fence): every line of it is the block's, its closing fence ends it
    for k, line in enumerate(lines):
        if (after := next_fence(fence, line)) != fence:
            if fence and block and not _joins_blocks(lines[k + 1:]):
                break
            fence = after
            continue
        if fence and line.strip():
            if len(block) == max_lines:
                block.append("…")
                break
            block.append(line.rstrip())
            continue
        if not line.strip():
            if block and not colon:
                break
            spaced = spaced or bool(block)
            continue
        if line.strip() == ELISION:  # a section's opening ends there (`opening`): what follows is further down
            break
        if not colon and not _command_line(line):  # after no colon, commands only; where the sentence goes on
            return block if len(block) > 1 or block and not _goes_on(line) else []  # after one, it is a `_run_on`
        if _is_prose(line) or block and line[:1].isupper() and (
                not spaced and _reads_as_words(line) and not "".join(lines[k + 1:k + 2]).strip()
                or _reads_as_words(line) and line.rstrip().endswith(":") and not _TRACEBACK.fullmatch(line.strip())
                or _is_sentence(line) and not lines[k - 1].strip()):  # ("for x in y:" is not capitalised)
            break
        if len(block) == max_lines:
            block.append("…")
            break
        block.append(line.rstrip())
    return block


def _definitions(passage: str, sentence: str, max_items: int = 6) -> list[str] | None:
    """The definition list a sentence ending in a colon introduces, each term with its definition's first sentence
    ("- the `unstable' distribution: This is the version currently under development; …"), when the lines after it
    are one: a term on a line of its own (no sentence, code fence, list item, heading or table row), then the
    definition's line(s) of running text, at least twice (an HTML <dl>, as the files connector reads it: the Debian
    FAQ's "Currently there are three versions of Debian GNU/Linux:" / "release 11, a.k.a. the `stable' distribution
    or bullseye" / "This is stable and well tested software, …" / …). At most `max_items`, "…" after. None
    otherwise: the lines are code, a list, or one term (`_introduced_lines` reads them)."""
    if not sentence.endswith(":"):
        return None
    lines = [line.strip() for line in _after(passage, sentence) or [] if line.strip()]
    items, k = [], 0
    while k < len(lines) and len(items) <= max_items:
        term = lines[k]
        if FENCE.match(term) or _BULLET.match(term) or term.startswith("#") or TABLE_ROW.fullmatch(term) \
                or _is_prose(term) or _is_sentence(term) or term.endswith(":"):
            break
        said = list(itertools.takewhile(lambda line: _is_prose(line) or _is_sentence(line), lines[k + 1:]))
        if not said:
            break
        first = next((x.strip() for x in _SENTENCE_END.split(said[0]) if x.strip()), said[0])
        items.append(f"- {term}: {first}")
        k += 1 + len(said)
    if len(items) < 2:
        return None
    return items[:max_items] + (["- …"] if len(items) > max_items else [])


def _joins_blocks(lines: Sequence[str]) -> bool:
    """Whether the lines after a code block open with a word or two that joins it to another block ("versus",
    "not:", "or"; the Python FAQ's "Consider this:" / `if a == b` / "versus" / `if a == b:`), or with the sentence
    going on into it ("works, but this code:" / code / "results in an UnboundLocalError:" / the traceback)."""
    rest = [line.strip() for line in lines if line.strip()]
    joins = len(rest) > 1 and (len(rest[0].split()) <= 2 and not _is_sentence(rest[0])
                               or rest[0][:1].islower() and rest[0].endswith(":"))
    return joins and bool(FENCE.match(rest[1]))


def extractive_answer(question: str, passages: Sequence[str], *, embed: Embed | None = None,
                      similarities: Sequence[float | None] = (), rank_weight: float = 0.05,
                      only: int | None = None) -> tuple[str, int] | None:
    """Quote the passage most likely to answer (`focus_scores`; `only`: passage number `only`), with its
    citation. Returns (text, passage number) or None when no passage holds a usable sentence."""
    if only is None:
        only = likeliest(focus_scores(question, passages, similarities=similarities, embed=embed,
                                      rank_weight=rank_weight))
    if only is None or steering(passages[only - 1]):
        return None
    text = quote(question, passages[only - 1], only, embed=embed)
    return None if text is None else (text, only)
