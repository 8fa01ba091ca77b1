"""Training data: chat-format JSONL (`{"messages": [...]}`) built from three kinds of source.

- grounded Q&A (`{"question", "passages": [{title, heading, text}], "answer", "asker"?, "id"?}`): the
  question plus its passages, 1–3 distractor passages drawn from other examples, shuffled, and the
  answer's [n] renumbered to the new order. Rendered with `bot.answering.prompt.build_messages`
  (zero-shot), the exact prompt the answerer sends, so the tuned model sees at inference what it
  saw in training and learns to ground and cite;
- 👍 answers exported from the bot (`orgbot feedback export`: `{"question", "answer", "vote",
  "passages", ...}`): the passages the bot really retrieved, in their order; 👎 ones are skipped;
- hand-written chat examples (`{"messages": [...]}`), taken as they are (the system prompt is added
  when missing).

`prepare` validates every line (an error names file:line), drops held-out evaluation questions,
de-duplicates, refuses examples longer than the context, and splits train/eval by a hash of each
example, so the split is the same on every run and an example never moves when data is added.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.answering.citations import CITATION_MARKER, cited_numbers, marker_numbers
from bot.answering.prompt import PromptPassage, build_messages, system_prompt
from retrieval.chunking import as_read

ROLES = ("system", "user", "assistant")
_QUESTION_LINE = re.compile(r"(?:^|\n)Question: (.*)\s*$", re.S)


class DataError(Exception):
    """The dataset cannot be built; the message lists each problem as file:line: what is wrong."""

    def __init__(self, problems: Sequence[str], hint: str = ""):
        self.problems = list(problems)
        shown = "\n".join(f"  {p}" for p in self.problems[:20])
        more = f"\n  … and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        super().__init__(f"{len(self.problems)} problem(s) in the training data:\n{shown}{more}"
                         + (f"\n{hint}" if hint else ""))


@dataclass
class Example:
    messages: list[dict[str, str]]
    origin: str  # "file:line"
    kind: str  # grounded | feedback | chat
    key: str  # de-duplication key: the question and the answer, normalised
    meta: dict[str, Any] = field(default_factory=dict)
    # question, passages, answer, asker of a RAG-shaped example, to re-render it with fewer passages
    rag: tuple[str, list[PromptPassage], str, str | None] | None = field(default=None, repr=False)

    def to_json(self) -> dict:
        return {"messages": self.messages, "meta": {"origin": self.origin, "kind": self.kind, **self.meta}}


@dataclass
class PrepareReport:
    out_dir: Path
    sources: list[str]
    counts: Counter
    train: int
    eval: int
    data_hash: str
    dropped: dict[str, int]
    warnings: list[str]

    def to_dict(self) -> dict:
        return {"out_dir": str(self.out_dir), "sources": self.sources, "kinds": dict(self.counts),
                "train": self.train, "eval": self.eval, "data_hash": self.data_hash, "dropped": self.dropped,
                "warnings": self.warnings}


# -- small helpers -------------------------------------------------------------------------------

def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", (text or "").strip().lower())


def example_key(question: str, answer: str) -> str:
    return hashlib.sha256(f"{normalise(question)}\x00{normalise(answer)}".encode()).hexdigest()


def renumber_citations(answer: str, mapping: dict[int, int]) -> str:
    """Rewrite every marker with `mapping` (old passage number → new). [1-2] becomes [3, 1] etc."""

    def fix(m: re.Match) -> str:
        numbers = [mapping[n] for n in marker_numbers(m.group(1))]
        return "[" + ", ".join(str(n) for n in dict.fromkeys(numbers)) + "]"

    return CITATION_MARKER.sub(fix, answer)


def question_of(user_content: str) -> str:
    """The question in a rendered user message ('…\\nQuestion: how do I…'), else the whole message."""
    m = _QUESTION_LINE.search(user_content)
    return m.group(1).strip() if m else user_content.strip()


def read_jsonl(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """(line number, parsed object or None, error or None) for every non-blank line."""
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line), None
            except json.JSONDecodeError as e:
                yield lineno, None, f"not valid JSON ({e.msg} at column {e.colno})"


def load_holdout_questions(path: str | Path | None) -> set[str]:
    if not path or not Path(path).exists():
        return set()
    return {normalise(obj["question"]) for _, obj, err in read_jsonl(Path(path))
            if err is None and isinstance(obj, dict) and obj.get("question")}


# -- line schemas ----------------------------------------------------------------------------------

def detect_kind(obj: dict) -> str | None:
    if "messages" in obj:
        return "chat"
    if "vote" in obj:
        return "feedback"
    if "question" in obj and "answer" in obj:
        return "grounded"
    return None


def _passages(obj: dict, where: str, problems: list[str]) -> list[PromptPassage] | None:
    raw = obj.get("passages")
    if not isinstance(raw, list):
        problems.append(f"{where}: 'passages' must be a list of {{title, heading, text}}")
        return None
    out = []
    for i, p in enumerate(raw, start=1):
        if not isinstance(p, dict) or not isinstance(p.get("text"), str) or not p["text"].strip():
            problems.append(f"{where}: passage {i} needs a non-empty 'text'")
            return None
        if not isinstance(p.get("title", ""), str) or not isinstance(p.get("heading", ""), str):
            problems.append(f"{where}: passage {i}: 'title' and 'heading' must be strings")
            return None
        # as the answerer shows a passage to the model (`as_read`: no code block's fences, no table's header rule)
        out.append(PromptPassage(p.get("title") or "", p.get("heading") or "", as_read(p["text"]), p.get("updated")))
    return out


def _question_answer(obj: dict, where: str, problems: list[str]) -> tuple[str, str] | None:
    q, a = obj.get("question"), obj.get("answer")
    if not isinstance(q, str) or not q.strip():
        problems.append(f"{where}: 'question' must be a non-empty string")
        return None
    if not isinstance(a, str) or not a.strip():
        problems.append(f"{where}: 'answer' must be a non-empty string")
        return None
    return q.strip(), a.strip()


def _check_citations(answer: str, n: int, where: str, problems: list[str]) -> bool:
    bad = sorted({c for c in cited_numbers(answer) if not 1 <= c <= n})
    if bad:
        problems.append(f"{where}: the answer cites {', '.join(f'[{c}]' for c in bad)} but there "
                        f"{'is' if n == 1 else 'are'} only {n} passage(s)")
        return False
    return True


def check_chat(obj: dict, where: str, problems: list[str]) -> list[dict[str, str]] | None:
    msgs = obj.get("messages")
    if not isinstance(msgs, list) or not msgs:
        problems.append(f"{where}: 'messages' must be a non-empty list of {{role, content}}")
        return None
    for i, m in enumerate(msgs, start=1):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            problems.append(f"{where}: message {i} must be {{\"role\": system|user|assistant, \"content\": str}}")
            return None
        if not m["content"].strip():
            problems.append(f"{where}: message {i} ({m['role']}) is empty")
            return None
        if m["role"] == "system" and i != 1:
            problems.append(f"{where}: message {i}: a system message may only come first")
            return None
    if msgs[-1]["role"] != "assistant":
        problems.append(f"{where}: the last message must be the assistant's answer")
        return None
    if not any(m["role"] == "user" for m in msgs):
        problems.append(f"{where}: there is no user message")
        return None
    return [{"role": m["role"], "content": m["content"]} for m in msgs]


# -- conversion ----------------------------------------------------------------------------------

@dataclass
class _Grounded:
    row: dict
    where: str
    question: str
    answer: str
    passages: list[PromptPassage]


def with_distractors(
    g: _Grounded, pool: Sequence[tuple[str, PromptPassage]], *, seed: int, max_passages: int,
    min_distractors: int = 1, max_distractors: int = 3,
) -> tuple[list[PromptPassage], str]:
    """Add distractors from other examples, shuffle deterministically, renumber the answer's [n].

    A row marked `"ranked": true` already holds its passages in retrieval order (best first): its order
    is kept and any distractors go last, as low-scoring hits would."""
    rng = random.Random(f"{seed}:{g.row.get('id') or g.question}")
    own_titles = {p.title for p in g.passages}
    topic = g.row.get("topic")
    candidates = [p for t, p in pool if p.title not in own_titles and p not in g.passages]
    other_topic = [p for t, p in pool if t != topic and p in candidates] if topic else []
    room = max(0, max_passages - len(g.passages))
    want = min(rng.randint(min_distractors, max_distractors), room)
    source = other_topic if len(other_topic) >= want else candidates
    distractors: list[PromptPassage] = []
    for p in rng.sample(source, k=min(len(source), want * 3)):
        if len(distractors) == want:
            break
        if p.title not in {d.title for d in distractors}:
            distractors.append(p)
    passages = list(g.passages) + distractors
    order = list(range(len(passages)))
    if not g.row.get("ranked"):
        rng.shuffle(order)  # order[new_position] = old index
    mapping = {old + 1: new + 1 for new, old in enumerate(order)}
    return [passages[i] for i in order], renumber_citations(g.answer, mapping)


def grounded_messages(question: str, passages: Sequence[PromptPassage], answer: str, asker: str | None,
                      *, bot_name: str, organisation: str) -> list[dict[str, str]]:
    messages = build_messages(question, passages, asker=asker, few_shot=False, bot_name=bot_name,
                              organisation=organisation)
    messages.append({"role": "assistant", "content": answer})
    return messages


def source_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files to read: a file as given, a folder's *.jsonl (top level, sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.glob("*.jsonl") if f.is_file()))
        elif p.exists():
            out.append(p)
        else:
            raise DataError([f"{p}: no such file or folder"], "Pass --source with an existing JSONL file or folder.")
    return out


def load_examples(
    files: Sequence[Path], *, seed: int = 13, max_passages: int = 6, bot_name: str = "orgbot",
    organisation: str = "your organisation", skip_invalid: bool = False, warnings: list[str] | None = None,
) -> tuple[list[Example], Counter]:
    """Read and validate every line of `files`; convert each to chat messages."""
    problems: list[str] = []
    skipped: Counter = Counter()
    grounded: list[_Grounded] = []
    examples: list[Example] = []
    if not files:
        raise DataError(["no JSONL files found"], "Pass --source with a .jsonl file or a folder of them.")
    for path in files:
        lines = 0
        for lineno, obj, error in read_jsonl(path):
            lines += 1
            where = f"{path}:{lineno}"
            if error:
                problems.append(f"{where}: {error}")
                continue
            if not isinstance(obj, dict):
                problems.append(f"{where}: expected a JSON object, got {type(obj).__name__}")
                continue
            kind = detect_kind(obj)
            if kind is None:
                problems.append(f"{where}: unknown format: need 'messages' (chat), or 'question' + 'passages' + "
                                "'answer' (grounded), or 'question' + 'answer' + 'vote' (feedback export)")
            elif kind == "chat":
                msgs = check_chat(obj, where, problems)
                if msgs is None:
                    continue
                if msgs[0]["role"] != "system":
                    msgs.insert(0, {"role": "system", "content": system_prompt(bot_name, organisation)})
                user = [m for m in msgs if m["role"] == "user"][-1]["content"]
                examples.append(Example(msgs, where, "chat", example_key(question_of(user), msgs[-1]["content"])))
            else:
                if kind == "feedback" and obj.get("vote") != "up":
                    if obj.get("vote") not in ("up", "down"):
                        problems.append(f"{where}: 'vote' must be \"up\" or \"down\"")
                    skipped["feedback_not_up"] += 1
                    continue
                qa = _question_answer(obj, where, problems)
                passages = _passages(obj, where, problems)
                if qa is None or passages is None:
                    continue
                if not _check_citations(qa[1], len(passages), where, problems):
                    continue
                if kind == "feedback":
                    msgs = grounded_messages(qa[0], passages, qa[1], obj.get("asker") or obj.get("user"),
                                             bot_name=bot_name, organisation=organisation)
                    examples.append(Example(msgs, where, "feedback", example_key(*qa),
                                            {"refusal": not cited_numbers(qa[1]), "passages": len(passages)},
                                            (qa[0], passages, qa[1], obj.get("asker") or obj.get("user"))))
                else:
                    grounded.append(_Grounded(obj, where, qa[0], qa[1], passages))
        if lines == 0:
            problems.append(f"{path}: the file is empty")
    if problems and not skip_invalid:
        raise DataError(problems, "Fix those lines, or pass --skip-invalid to leave them out.")
    if problems and warnings is not None:
        warnings.append(f"{len(problems)} invalid line(s) left out (--skip-invalid); first: {problems[0]}")
    skipped["invalid"] = len(problems)

    pool: list[tuple[str, PromptPassage]] = []
    seen: set[PromptPassage] = set()
    for g in grounded:
        for p in g.passages:
            if p not in seen:
                seen.add(p)
                pool.append((g.row.get("topic") or "", p))
    for g in grounded:
        passages, answer = with_distractors(g, pool, seed=seed, max_passages=max_passages)
        msgs = grounded_messages(g.question, passages, answer, g.row.get("asker"), bot_name=bot_name,
                                 organisation=organisation)
        examples.append(Example(msgs, g.where, "grounded", example_key(g.question, g.answer),
                                {"id": g.row.get("id"), "topic": g.row.get("topic"),
                                 "refusal": not cited_numbers(g.answer), "passages": len(passages)},
                                (g.question, passages, answer, g.row.get("asker"))))
    return examples, skipped


def drop_distractor(ex: Example, *, bot_name: str, organisation: str) -> Example | None:
    """The same example with its last uncited passage removed (to fit the context), or None if every
    passage is cited."""
    if ex.rag is None:
        return None
    question, passages, answer, asker = ex.rag
    cited = set(cited_numbers(answer))
    uncited = [i for i in range(1, len(passages) + 1) if i not in cited]
    if not uncited:
        return None
    kept = [i for i in range(1, len(passages) + 1) if i != uncited[-1]]
    mapping = {old: new for new, old in enumerate(kept, start=1)}
    new_passages = [passages[i - 1] for i in kept]
    new_answer = renumber_citations(answer, mapping)
    msgs = grounded_messages(question, new_passages, new_answer, asker, bot_name=bot_name,
                             organisation=organisation)
    return Example(msgs, ex.origin, ex.kind, ex.key, {**ex.meta, "passages": len(new_passages)},
                   (question, new_passages, new_answer, asker))


# Made-up assistants and organisations: the system prompt names a different pair in each example, so
# the adapter learns to take who it is from the prompt (answering.bot_name / .organisation in config)
# and keeps no organisation's name in its weights.
IDENTITIES = tuple((b, o) for b in ("Atlas", "Sage", "Pip", "Nova", "Scout", "Echo", "Wiki", "Beacon", "Oracle",
                                    "Helper", "Index", "Compass")
                   for o in ("Northwind Traders", "the Example Foundation", "Globex", "Initech", "the platform team",
                             "Umbrella Health", "the city library", "Contoso", "the research lab", "Hooli"))


def vary_identity(ex: Example, *, bot_name: str, organisation: str, seed: int) -> Example:
    """The example with its default system prompt naming another (made-up) assistant and organisation."""
    msgs = ex.messages
    if not msgs or msgs[0]["role"] != "system" or msgs[0]["content"] != system_prompt(bot_name, organisation):
        return ex  # a hand-written system prompt stays as written
    rng = random.Random(f"{seed}:identity:{ex.key}")
    name, org = rng.choice(IDENTITIES)
    return Example([{"role": "system", "content": system_prompt(name, org)}, *msgs[1:]], ex.origin, ex.kind,
                   ex.key, ex.meta, ex.rag)


def split_of(key: str, eval_fraction: float, seed: int) -> str:
    h = int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "eval" if h < eval_fraction else "train"


def prepare(
    sources: Sequence[str | Path], out_dir: str | Path, *, holdout: str | Path | None = None,
    eval_fraction: float = 0.1, seed: int = 13, max_passages: int = 6, skip_invalid: bool = False,
    count_tokens: Callable[[list[dict[str, str]]], int] | None = None, max_length: int | None = None,
    bot_name: str = "orgbot", organisation: str = "your organisation", vary_identities: bool = False,
) -> PrepareReport:
    """Build `out_dir/train.jsonl`, `out_dir/eval.jsonl` and `out_dir/manifest.json`."""
    if not 0 < eval_fraction < 0.5:
        raise DataError([f"eval fraction {eval_fraction} must be between 0 and 0.5"])
    files = source_files(sources)
    out = Path(out_dir)
    files = [f for f in files if out.resolve() not in f.resolve().parents]  # never read our own output
    warnings: list[str] = []
    examples, skipped = load_examples(files, seed=seed, max_passages=max_passages, bot_name=bot_name,
                                      organisation=organisation, skip_invalid=skip_invalid, warnings=warnings)
    dropped: Counter = Counter({k: v for k, v in skipped.items() if v})

    held_out = load_holdout_questions(holdout)
    kept: list[Example] = []
    seen: set[str] = set()
    for ex in examples:
        user = [m for m in ex.messages if m["role"] == "user"][-1]["content"]
        if normalise(question_of(user)) in held_out:
            dropped["held_out_question"] += 1
            continue
        if ex.key in seen:
            dropped["duplicate"] += 1
            continue
        seen.add(ex.key)
        kept.append(ex)

    if count_tokens and max_length:
        fitted = []
        for ex in kept:
            while ex is not None and count_tokens(ex.messages) > max_length:
                ex = drop_distractor(ex, bot_name=bot_name, organisation=organisation)
            if ex is None:
                dropped["too_long"] += 1
            else:
                fitted.append(ex)
        if dropped["too_long"]:
            warnings.append(f"{dropped['too_long']} example(s) longer than max_length={max_length} tokens were "
                            "left out; shorten their passages or raise --max-length")
        kept = fitted

    if not kept:
        raise DataError(["no usable examples left after validation, held-out filtering and de-duplication"])
    if vary_identities:
        kept = [vary_identity(ex, bot_name=bot_name, organisation=organisation, seed=seed) for ex in kept]
    splits: dict[str, list[Example]] = {"train": [], "eval": []}
    for ex in kept:
        splits[split_of(ex.key, eval_fraction, seed)].append(ex)
    if not splits["eval"] and len(splits["train"]) > 1:  # tiny data sets: still evaluate on something
        first = min(splits["train"], key=lambda e: hashlib.sha256(f"{seed}:{e.key}".encode()).hexdigest())
        splits["train"].remove(first)
        splits["eval"].append(first)
    if not splits["train"]:
        raise DataError(["every example fell in the eval split; add examples or lower --eval-fraction"])

    out.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    for name in ("train", "eval"):
        body = "".join(json.dumps(ex.to_json(), ensure_ascii=False, sort_keys=True) + "\n"
                       for ex in sorted(splits[name], key=lambda e: e.key))
        (out / f"{name}.jsonl").write_text(body, encoding="utf-8")
        digest.update(body.encode())
    report = PrepareReport(
        out, [str(f) for f in files], Counter(ex.kind for ex in kept), len(splits["train"]), len(splits["eval"]),
        digest.hexdigest()[:16], dict(dropped), warnings,
    )
    refusals = sum(bool(ex.meta.get("refusal")) for ex in kept)
    manifest = {**report.to_dict(), "refusals": refusals, "seed": seed, "eval_fraction": eval_fraction,
                "max_passages": max_passages, "max_length": max_length, "holdout": str(holdout) if holdout else None}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return report


def load_chat_jsonl(path: str | Path) -> list[dict]:
    """The `messages` of each line of a prepared (or any chat-format) JSONL file, validated."""
    problems: list[str] = []
    rows = []
    p = Path(path)
    for lineno, obj, error in read_jsonl(p):
        where = f"{p}:{lineno}"
        if error or not isinstance(obj, dict):
            problems.append(f"{where}: {error or 'expected a JSON object'}")
            continue
        msgs = check_chat(obj, where, problems)
        if msgs is not None:
            rows.append({"messages": msgs})
    if problems:
        raise DataError(problems, "Rebuild the data with: orgbot train prepare")
    if not rows:
        raise DataError([f"{p}: no examples"], "Rebuild the data with: orgbot train prepare")
    return rows


def data_hash(*paths: str | Path) -> str:
    digest = hashlib.sha256()
    for p in paths:
        digest.update(Path(p).read_bytes())
    return digest.hexdigest()[:16]
