"""Build the hand-written Acme tone data: authored rows + the sample wiki → grounded training rows.

`training/data/acme/authored/authored.jsonl` holds hand-written questions and house-style answers that
name the wiki sections they use (`sources`: page path + section heading; refusal rows name the
on-topic-but-not-answering `distractors` instead). This script parses every page with orgbot's own
files connector, looks up each section's exact text, trims it to at most ~900 characters (keeping the
part the answer uses) and writes `training/data/acme/grounded.jsonl` in the "grounded" format that
`training/data.py` reads: `{id, topic, asker, question, answer, passages: [{title, heading, text, updated}]}`.

It fails (exit 1) and lists `id: problem` when a page or heading does not exist, an answer cites a
passage it does not have or leaves a source uncited, the house style is broken (greeting, bullets,
"📘 Policy:" line naming the cited page's exact title, the sign-off), a number in an answer is not in
its passages, or a question copies a held-out evaluation question.

    .venv/bin/python training/tools/build_acme_tone.py
    .venv/bin/python training/tools/build_acme_tone.py --refusal-markers strip   # see --help
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bot.answering.citations import CITATION_MARKER, cited_numbers  # noqa: E402
from connectors.files import FilesConnector  # noqa: E402

SIGN_OFF = "— Anvil 🔨"
REFUSAL_LINE = "I couldn't find this on the Anvil, so I won't guess."
TOPICS = ("handbook", "hr", "it", "finance", "office", "oncall", "engineering", "security")
NUMBER = re.compile(r"\d+(?:[.,:/]\d+)*")
BULLET = "• "


# -- the wiki ----------------------------------------------------------------------------------------

class Wiki:
    """Pages of the sample wiki as the files connector parses them: path → (title, updated, {heading: text})."""

    def __init__(self, root: Path):
        self.pages: dict[str, tuple[str, str | None, dict[str, str]]] = {}
        self.failures: list[str] = []
        for batch in FilesConnector("acme-wiki", root).load():
            for doc in batch:
                if not hasattr(doc, "sections"):
                    self.failures.append(f"{doc.item}: {doc.reason}")
                    continue
                sections: dict[str, str] = {}
                for s in doc.sections:
                    heading = s.heading or doc.title
                    sections.setdefault(heading, s.text)  # a repeated heading keeps its first section
                updated = doc.updated_at.date().isoformat() if doc.updated_at else None
                self.pages[doc.metadata["path"]] = (doc.title, updated, sections)

    def section(self, page: str, heading: str) -> tuple[str, str | None, str] | str:
        """(title, updated, text), or a problem."""
        if page not in self.pages:
            close = difflib.get_close_matches(page, self.pages, n=1)
            return f"page {page!r} does not exist" + (f" (did you mean {close[0]!r}?)" if close else "")
        title, updated, sections = self.pages[page]
        if heading not in sections:
            close = difflib.get_close_matches(heading, sections, n=2, cutoff=0.4)
            return (f"{page} has no section {heading!r}"
                    + (f" (did you mean {' or '.join(map(repr, close))}?)" if close else
                       f"; its headings: {list(sections)}"))
        return title, updated, sections[heading]


# -- trimming ----------------------------------------------------------------------------------------

def _units(text: str) -> list[str]:
    """Lines, and long lines split into sentences: the pieces a trimmed passage is cut at."""
    out = []
    for line in text.split("\n"):
        if len(line) <= 300:
            out.append(line)
        else:
            out.extend(p for p in re.split(r"(?<=[.!?])\s+(?=[A-Z*(\"`])", line) if p)
    return out


def number_tokens(text: str) -> set[str]:
    """Numbers as written (1,000 / 09:00 / 2.08 / 24/7) and their parts (1 and 000, 09 and 00…)."""
    out: set[str] = set()
    for tok in NUMBER.findall(text):
        out.add(tok)
        out.update(p for p in re.split(r"[.,:/]", tok) if p)
    return out


def answer_numbers(answer: str) -> list[str]:
    return NUMBER.findall(CITATION_MARKER.sub(" ", answer))


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]{4,}", text.lower())}


def trim(text: str, answer: str, focus: str | None, limit: int) -> str:
    """`text` if it fits in `limit` characters; else the window of whole lines/sentences that holds
    `focus` (or the part sharing most numbers and words with `answer`), with a table's header rows."""
    text = text.strip()
    if len(text) <= limit:
        return text
    units = _units(text)
    nums, words = set(answer_numbers(answer)), _words(answer)

    def score(i: int) -> float:
        u = units[i]
        if focus:
            return 1.0 if focus in u else 0.0
        return 3 * len(number_tokens(u) & nums) + len(_words(u) & words)

    best = max(range(len(units)), key=score)
    lo = hi = best
    size = len(units[best])
    # a table row needs its header row(s) to make sense
    header: list[int] = []
    if units[best].lstrip().startswith("|") or " | " in units[best]:
        start = best
        while start > 0 and ("|" in units[start - 1]):
            start -= 1
        header = [i for i in range(start, min(start + 2, best)) if i < lo]
        size += sum(len(units[i]) + 1 for i in header)
    while True:  # grow the window one unit at a time, below then above, while it fits
        grew = False
        for cand in (hi + 1, lo - 1):
            if 0 <= cand < len(units) and cand not in header and size + len(units[cand]) + 1 <= limit:
                size += len(units[cand]) + 1
                hi, lo = max(hi, cand), min(lo, cand)
                grew = True
        if not grew:
            break
    keep = sorted(set(header) | set(range(lo, hi + 1)))
    parts, prev = [], None
    for i in keep:
        if prev is not None and i != prev + 1:
            parts.append("…")
        parts.append(units[i])
        prev = i
    if keep[0] > 0 and not header:
        parts.insert(0, "…")
    if keep[-1] < len(units) - 1:
        parts.append("…")
    return "\n".join(parts).strip()


# -- checks ------------------------------------------------------------------------------------------

def check_style(row: dict, titles: list[str], refusal: bool) -> list[str]:
    """House-style problems of one answer; `titles` are its passages' page titles, in order."""
    a, name = row["answer"], row["asker"]
    problems = []
    if not a.startswith(f"Hi {name}! "):
        problems.append(f"answer must start with 'Hi {name}! '")
    if not a.endswith("\n" + SIGN_OFF):
        problems.append(f"answer must end with a line '{SIGN_OFF}'")
    if "\n\n\n" in a or a != a.strip():
        problems.append("stray blank lines or whitespace")
    lines = a.split("\n")
    first = lines[0]
    bullets = [ln for ln in lines if ln.startswith(BULLET)]
    if any(ln.startswith(("- ", "* ", "•")) and not ln.startswith(BULLET) for ln in lines):
        problems.append("bullets must start with '• '")
    if refusal:
        if REFUSAL_LINE not in first:
            problems.append(f"a refusal's first line must say {REFUSAL_LINE!r}")
        closest = next((ln for ln in bullets if ln.startswith("• Closest pages: ")), None)
        if closest is None:
            problems.append("a refusal needs a '• Closest pages: …' bullet")
        else:
            want = ", ".join(f"{t} [{i}]" for i, t in enumerate(titles, start=1))
            if closest != f"• Closest pages: {want}":
                problems.append(f"closest pages line should be '• Closest pages: {want}'")
        if "📘 Policy:" in a:
            problems.append("a refusal has no '📘 Policy:' line")
        return problems
    if not cited_numbers(first):
        problems.append("the one-line answer (first line) must cite")
    if len(bullets) > 3:
        problems.append(f"{len(bullets)} bullets; at most 3")
    for b in bullets:
        if not cited_numbers(b):
            problems.append(f"bullet without a citation: {b[:60]!r}")
    policy = [ln for ln in lines if ln.startswith("📘 Policy: ")]
    if len(policy) != 1:
        problems.append("needs exactly one '📘 Policy: <page title> [n]' line")
    else:
        m = re.fullmatch(r"📘 Policy: (.+) \[(\d+)\]", policy[0])
        if not m:
            problems.append(f"policy line must be '📘 Policy: <page title> [n]', got {policy[0]!r}")
        else:
            n = int(m.group(2))
            if 1 <= n <= len(titles) and m.group(1) != titles[n - 1]:
                problems.append(f"policy line names {m.group(1)!r} but passage [{n}] is {titles[n - 1]!r}")
        if lines[-2] != policy[0]:
            problems.append("the policy line must come right before the sign-off")
    if bullets and (len(lines) < 2 or lines[1] != ""):
        problems.append("a blank line must follow the one-line answer")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--authored", default=str(ROOT / "training/data/acme/authored/authored.jsonl"))
    ap.add_argument("--wiki", default=str(ROOT / "examples/acme-wiki"))
    ap.add_argument("--out", default=str(ROOT / "training/data/acme/grounded.jsonl"))
    ap.add_argument("--holdout", default=str(ROOT / "examples/acme-wiki/questions.jsonl"),
                    help="held-out evaluation questions that must not be reused")
    ap.add_argument("--max-chars", type=int, default=900, help="longest passage text")
    ap.add_argument("--refusal-markers", choices=("keep", "strip"), default="keep",
                    help="'strip' writes refusals that name the closest pages without [n] markers "
                         "(the answerer and training/evaluate.py treat any cited answer as found, not refused)")
    args = ap.parse_args(argv)

    wiki = Wiki(Path(args.wiki))
    holdout = []
    if Path(args.holdout).exists():
        holdout = [json.loads(x)["question"] for x in Path(args.holdout).read_text(encoding="utf-8").splitlines()
                   if x.strip()]
    norm = lambda s: re.sub(r"[^a-z0-9 ]", "", re.sub(r"\s+", " ", s.lower())).strip()  # noqa: E731
    holdout_norm = {norm(q): q for q in holdout}

    problems: list[str] = []
    numbers: list[str] = []
    out_rows: list[dict] = []
    seen_ids: set[str] = set()
    seen_q: dict[str, str] = {}
    path = Path(args.authored)
    if not path.exists():
        print(f"error: {path} does not exist", file=sys.stderr)
        return 1
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(f"line {lineno}: not valid JSON ({e.msg} at column {e.colno})")
            continue
        rid = row.get("id") or f"line {lineno}"
        bad = lambda msg, rid=rid: problems.append(f"{rid}: {msg}")  # noqa: E731
        missing = [k for k in ("id", "topic", "asker", "question", "answer", "sources") if k not in row]
        if missing:
            bad(f"missing {', '.join(missing)}")
            continue
        if rid in seen_ids:
            bad("duplicate id")
        seen_ids.add(rid)
        if row["topic"] not in TOPICS:
            bad(f"topic {row['topic']!r} is not one of {TOPICS}")
        q = row["question"].strip()
        nq = norm(q)
        if nq in seen_q:
            bad(f"same question as {seen_q[nq]}")
        seen_q[nq] = rid
        if nq in holdout_norm:
            bad(f"copies the held-out evaluation question {holdout_norm[nq]!r}")
        else:
            close = difflib.get_close_matches(nq, holdout_norm, n=1, cutoff=0.85)
            if close:
                bad(f"too close to the held-out evaluation question {holdout_norm[close[0]]!r}")

        refusal = not row["sources"]
        refs = row.get("distractors", []) if refusal else row["sources"]
        if refusal and not 2 <= len(refs) <= 3:
            bad("a refusal (no sources) needs 2–3 distractors")
        if not refusal and row.get("distractors"):
            bad("distractors are only for refusal rows (prepare adds distractors to the others)")
        passages = []
        for ref in refs:
            found = wiki.section(ref.get("page", ""), ref.get("heading", ""))
            if isinstance(found, str):
                bad(found)
                continue
            title, updated, text = found
            ptext = trim(text, row["answer"], ref.get("focus"), args.max_chars)
            if ref.get("focus") and ref["focus"] not in ptext:
                bad(f"focus {ref['focus']!r} is not in {ref['page']} › {ref['heading']}")
            passages.append({"title": title, "heading": ref["heading"], "text": ptext, "updated": updated})
        if len(passages) != len(refs):
            continue

        answer = row["answer"]
        cited = set(cited_numbers(answer))
        outside = sorted(c for c in cited if not 1 <= c <= len(passages))
        if outside:
            bad(f"cites {outside} but has {len(passages)} passage(s)")
        if not refusal and (uncited := [i for i in range(1, len(passages) + 1) if i not in cited]):
            bad(f"source(s) {uncited} are never cited")
        for p in check_style(row, [p["title"] for p in passages], refusal):
            bad(p)
        if not refusal:
            allowed = number_tokens(" ".join(f"{p['title']} {p['heading']} {p['text']}" for p in passages)
                                    + " " + q)
            missing_nums = sorted({n for n in answer_numbers(answer) if n not in allowed})
            if missing_nums:
                numbers.append(f"{rid}: {', '.join(missing_nums)} not in its passages")
        if refusal and args.refusal_markers == "strip":
            answer = re.sub(r" ?" + CITATION_MARKER.pattern, "", answer)
        out_rows.append({"id": rid, "topic": row["topic"], "asker": row["asker"], "question": q,
                         "answer": answer, "passages": passages})

    problems += numbers
    if problems:
        print(f"{len(problems)} problem(s) in {path}:", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 1

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out_rows), encoding="utf-8")

    refusals = [r for r in out_rows if not cited_numbers(r["answer"]) or REFUSAL_LINE in r["answer"]]
    used_pages = Counter(ref["page"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
                         for ref in json.loads(line)["sources"])
    n_pass = Counter(len(r["passages"]) for r in out_rows if r not in refusals)
    kinds = Counter(Path(p).suffix for p in used_pages)
    print(f"wrote {len(out_rows)} rows → {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    print(f"  refusals: {len(refusals)} ({len(refusals) / max(1, len(out_rows)):.0%})")
    print(f"  topics: {dict(sorted(Counter(r['topic'] for r in out_rows).items()))}")
    print(f"  askers: {len({r['asker'] for r in out_rows})} distinct")
    print(f"  sources per answered row: {dict(sorted(n_pass.items()))}")
    print(f"  pages used as sources: {len(used_pages)} of {len(wiki.pages)} "
          f"(by type {dict(sorted(kinds.items()))}); unused: {sorted(set(wiki.pages) - set(used_pages))}")
    trimmed = sum("…" in p["text"] for r in out_rows for p in r["passages"])
    print(f"  passages trimmed to ≤{args.max_chars} characters: {trimmed}")
    if wiki.failures:
        print(f"  wiki pages the connector could not read: {wiki.failures}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
