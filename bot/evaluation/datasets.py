"""Question sets for the evals: the Python FAQ (real documentation no one here wrote), the sample
wiki's questions, or a JSONL file of the user's own.

A question set is a list of `EvalQuestion`s plus, for the Python FAQ, a folder of documents to index
with the product's own files connector. Every question names the sections that answer it
(`relevant`: a document id and, optionally, the end of its heading path), a reference answer, and
whether it is answerable at all.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bot.answering.grounding import HEADING_NUMBER  # "3.1.1. " before a DocBook heading

PYTHON_DOCS = Path("/usr/share/doc/python3.11/html")
PYTHON_FAQ_SOURCE = "python-docs"  # the source name the Python docs are indexed under
DATA = Path(__file__).parent / "data"
SAMPLE_QUESTIONS = Path("examples/acme-wiki/questions.jsonl")
SAMPLE_SOURCE = "acme-wiki"
_QUESTION_START = re.compile(r"^(how|what|why|is|are|can|could|where|when|which|who|do|does|should|will|would)\b",
                             re.I)
# Pages that are lists of every name in the docs, not prose: they would swamp any search.
_SKIP_PAGES = ("genindex", "py-modindex", "search.html", "_static", "_images", "_sources", "_downloads")


class DatasetError(Exception):
    """A question set cannot be built or read; the message says how to fix it."""


@dataclass(frozen=True)
class Relevant:
    document_id: str
    heading_suffix: str | None = None  # the chunk's heading path must end with this (None = any section)

    def matches(self, document_id: str, heading: str) -> bool:
        if document_id != self.document_id:
            return False
        return self.heading_suffix is None or heading.rstrip().endswith(self.heading_suffix)


@dataclass
class EvalQuestion:
    id: str
    question: str
    reference: str = ""  # a reference answer (for the fact-recall score); "" for unanswerables
    relevant: list[Relevant] = field(default_factory=list)
    unanswerable: bool = False
    kind: str = ""

    def is_relevant(self, document_id: str, heading: str) -> bool:
        return any(r.matches(document_id, heading) for r in self.relevant)

    def to_json(self) -> dict:
        return asdict(self)


def _heading_text(tag) -> str:
    return tag.get_text(" ", strip=True).replace("¶", "").strip()


def is_question_heading(text: str) -> bool:
    return "?" in text or bool(_QUESTION_START.match(text))


def _dated_as(dest: Path, source: Path) -> None:
    """Give a page copied or rewritten into a question set its source's modification time. The files connector
    dates a page by it, and the date is in every passage the model reads ("… › Entry 14 (updated 2026-12-06)"): a
    set built on another day gave other dates, and the 270M model answered 2 of the Python FAQ's 132 retrieved
    questions otherwise. Dated as its source, a set reads the same whatever day it is built."""
    st = source.stat()
    os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns))


def build_python_faq(out_dir: str | Path, docs: str | Path = PYTHON_DOCS) -> tuple[Path, list[EvalQuestion]]:
    """Copy the Python documentation's HTML pages to `out_dir/docs`, with every FAQ question heading
    replaced by a neutral "Entry N" (so a question cannot match itself), and write the questions to
    `out_dir/questions.jsonl`. Returns the docs folder and the questions.

    The answer section stays a section of its own (its heading path ends in "Entry N"), so a chunk of
    it is attributed to exactly one question; the reference answer is the section's first paragraph.
    """
    from connectors.files.parsers import html_soup

    docs, out = Path(docs), Path(out_dir)
    if not (docs / "faq").is_dir():
        raise DatasetError(f"the Python documentation is not at {docs}. Install it: apt-get install python3.11-doc "
                           "(Debian/Ubuntu), or pass the folder of its HTML pages.")
    target = out / "docs"
    if target.exists():
        shutil.rmtree(target)
    questions: list[EvalQuestion] = []
    for page in sorted(docs.rglob("*.html")):
        rel = page.relative_to(docs).as_posix()
        if any(part in rel for part in _SKIP_PAGES):
            continue
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not rel.startswith("faq/") or rel == "faq/index.html":
            shutil.copy2(page, dest)
            continue
        soup = html_soup(page.read_text(encoding="utf-8"))
        body = soup.find("div", attrs={"role": "main"}) or soup.body
        n = 0
        for h in body.find_all(["h2", "h3", "h4"]):
            section = h.find_parent("section")
            text = _heading_text(h)
            if section is None or not is_question_heading(text):
                continue
            n += 1
            first = section.find("p")
            reference = first.get_text(" ", strip=True) if first and first.find_parent("section") is section else ""
            label = f"Entry {n}"
            h.clear()
            h.string = label
            questions.append(EvalQuestion(
                id=f"{rel.removesuffix('.html').replace('/', '-')}-{n}", question=re.sub(r"\s+", " ", text),
                reference=re.sub(r"\s+", " ", reference),
                relevant=[Relevant(f"{PYTHON_FAQ_SOURCE}:{rel}", label)], kind="faq"))
        dest.write_text(str(soup), encoding="utf-8")
        _dated_as(dest, page)
    unanswerable = load_jsonl(DATA / "python_faq_unanswerable.jsonl")
    questions.extend(unanswerable)
    with (out / "questions.jsonl").open("w", encoding="utf-8") as f:
        for q in questions:
            f.write(json.dumps(q.to_json(), ensure_ascii=False) + "\n")
    return target, questions


DEBIAN_FAQ = Path("/usr/share/doc/debian/FAQ")
DEBIAN_FAQ_SOURCE = "debian-faq"


def build_debian_faq(out_dir: str | Path, faq: str | Path = DEBIAN_FAQ,
                     min_words: int = 8) -> tuple[Path, list[EvalQuestion]]:
    """A second held-out set, from documentation no one here wrote and nothing was trained on: the Debian FAQ
    (`apt-get install debian-faq`; DocBook HTML, one page per chapter). Built as the Python FAQ is: the
    chapter pages copied to `out_dir/docs` with each question heading replaced by "Entry N" (per page), the
    reference the first paragraph under it (entries whose first paragraph has fewer than `min_words` words,
    "Yes.", are left out), and on-topic questions the FAQ does not answer added. Two more things would let a
    question match itself, and go: each chapter's table of contents, and the question a cross-reference
    spells out ("Section 4.4, “How source code compatible is Debian …?”" keeps "Section 4.4")."""
    from connectors.files.parsers import html_soup

    faq, out = Path(faq), Path(out_dir)
    pages = sorted(p for p in faq.glob("*.en.html") if p.name != "index.en.html")  # index: the contents only
    if not pages:
        raise DatasetError(f"the Debian FAQ is not at {faq}. Install it: apt-get install debian-faq (Debian/Ubuntu).")
    target = out / "docs"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)

    def section_of(tag):
        return tag.find_parent("div", class_="section")

    def clean(text: str) -> str:
        return re.sub(r"\s+([?,.!;:)])", r"\1", re.sub(r"\s+", " ", text).strip())

    questions: list[EvalQuestion] = []
    for page in pages:
        rel = page.name.replace(".en.html", ".html")
        soup = html_soup(page.read_text(encoding="utf-8"))
        for toc in soup.select("div.toc"):
            toc.decompose()
        for a in soup.select("a.xref"):
            title = clean(a.get("title", ""))
            if is_question_heading(HEADING_NUMBER.sub("", title)):
                number = HEADING_NUMBER.match(title)
                a.string = f"Section {number.group(0).strip().rstrip('.')}" if number else "this FAQ"
                del a["title"]
        body = soup.find("div", class_="chapter") or soup.body
        n = 0
        for h in body.find_all(["h2", "h3", "h4"]):
            section = section_of(h)
            text = HEADING_NUMBER.sub("", clean(_heading_text(h)))
            if section is None or not is_question_heading(text):
                continue
            n += 1
            first = section.find("p")
            reference = clean(first.get_text(" ", strip=True)) if first and section_of(first) is section else ""
            label = f"Entry {n}"
            h.clear()
            h.string = label
            if len(reference.split()) >= min_words:
                questions.append(EvalQuestion(
                    id=f"{rel.removesuffix('.html')}-{n}", question=text, reference=reference,
                    relevant=[Relevant(f"{DEBIAN_FAQ_SOURCE}:{rel}", label)], kind="faq"))
        (target / rel).write_text(str(soup), encoding="utf-8")
        _dated_as(target / rel, page)
    questions.extend(load_jsonl(DATA / "debian_faq_unanswerable.jsonl"))
    with (out / "questions.jsonl").open("w", encoding="utf-8") as f:
        for q in questions:
            f.write(json.dumps(q.to_json(), ensure_ascii=False) + "\n")
    return target, questions


# The held-out sets of documentation no one here wrote: name → (source name, whose documents, builder).
HELD_OUT_SETS: dict[str, tuple[str, str, Callable[..., tuple[Path, list[EvalQuestion]]]]] = {
    "python-faq": (PYTHON_FAQ_SOURCE, "the Python documentation", build_python_faq),
    "debian-faq": (DEBIAN_FAQ_SOURCE, "the Debian FAQ", build_debian_faq),
}


def _question(obj: dict, where: str, source: str | None) -> EvalQuestion:
    if not isinstance(obj, dict) or not isinstance(obj.get("question"), str) or not obj["question"].strip():
        raise DatasetError(f"{where}: each line needs a non-empty \"question\"")
    relevant = []
    for r in obj.get("relevant") or []:
        if isinstance(r, str):  # a bare document id or a path inside the source
            doc = r if ":" in r or source is None else f"{source}:{r}"
            relevant.append(Relevant(doc))
        elif isinstance(r, dict) and r.get("document_id"):
            relevant.append(Relevant(r["document_id"], r.get("heading_suffix")))
        else:
            raise DatasetError(f"{where}: \"relevant\" entries are document ids or {{document_id, heading_suffix}}")
    for page in obj.get("pages") or []:  # the sample wiki's format: paths inside the source
        relevant.append(Relevant(page if ":" in page or source is None else f"{source}:{page}"))
    unanswerable = bool(obj.get("unanswerable")) or obj.get("kind") == "unanswerable"
    return EvalQuestion(id=str(obj.get("id") or where), question=obj["question"].strip(),
                        reference=str(obj.get("reference") or obj.get("answer") or obj.get("reference_answer") or ""),
                        relevant=relevant, unanswerable=unanswerable, kind=str(obj.get("kind") or ""))


def load_jsonl(path: str | Path, source: str | None = None) -> list[EvalQuestion]:
    """Questions from a JSONL file: `question`, `reference` (or `answer`), `relevant` (document ids, or
    paths inside `source`), `unanswerable`."""
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"{p}: no such file. Pass --set python-faq, --set debian-faq, --set sample, or a JSONL file of "
                           "questions ({\"question\", \"reference\", \"relevant\", \"unanswerable\"}).")
    out = []
    for lineno, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DatasetError(f"{p}:{lineno}: not valid JSON ({e.msg})") from None
        out.append(_question(obj, f"{p}:{lineno}", source))
    if not out:
        raise DatasetError(f"{p}: no questions in the file")
    return out


def sample_questions(path: str | Path = SAMPLE_QUESTIONS) -> list[EvalQuestion]:
    """The sample wiki's questions; off-topic ones are left out (the retrieval threshold refuses them
    before any model runs, so they say nothing about the answerer)."""
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    return [_question(r, f"{path}:{i}", SAMPLE_SOURCE) for i, r in enumerate(rows, 1) if not r.get("off_topic")]


# -- the development set: other projects' FAQs (never the Python FAQ) ------------------------------------
# Fusion weights are fitted on these, so the Python FAQ stays a test of whether they generalise.
# Parsers adapted from training/tools/build_grounded.py (git_faq, sqlite_faq, zsh_faq).

DEBIAN_DOC = Path("/usr/share/doc")
DEV_FAQ_SOURCE = "dev-faq"
_DEV_DISTRACTOR_BYTES = 600_000  # HTML per manual copied beside its FAQ, so the FAQ is not the whole corpus


def _clean(text: str) -> str:
    import html

    return re.sub(r"[ \t]+", " ", html.unescape(text)).strip()


def git_faq_entries(path: Path) -> tuple[str, list[tuple[str, list[str], str]]]:
    """(title, [(question, heading path, answer)]) from gitfaq.txt (AsciiDoc)."""
    text = path.read_text(encoding="utf-8")
    out, category = [], ""
    for block in re.split(r"\n(?=\[\[[\w-]+\]\]\n)|\n(?=[A-Z][\w ]+\n-{3,}\n)", text):
        m = re.match(r"([A-Z][\w ]+)\n-{3,}\n", block)
        if m:
            category = m.group(1).strip()
            continue
        m = re.match(r"\[\[[\w-]+\]\]\n(.+?)::\n(.*)", block, re.S)
        if not m:
            continue
        body = re.sub(r"^\+\n", "\n", m.group(2), flags=re.M).replace("\n----\n", "\n")
        body = re.sub(r"linkgit:([\w-]+)\[\d\]", r"\1", body)
        answer = "\n\n".join(p for p in (_clean(" ".join(x.strip() for x in p.splitlines()))
                                         for p in re.split(r"\n\s*\n", body)) if p)
        out.append((_clean(m.group(1).replace("`", "")), [category] if category else [], answer))
    return "gitfaq(7) — Frequently asked questions about using Git", out


def sqlite_faq_entries(path: Path) -> tuple[str, list[tuple[str, list[str], str]]]:
    from connectors.files.parsers import html_soup

    soup = html_soup(path.read_text(encoding="utf-8", errors="replace"))
    out = []
    for b in soup.find_all("b"):
        m = re.match(r"\((\d+)\)\s*(.+)", b.get_text(" ", strip=True), re.S)
        quote = b.find_parent("p").find_next_sibling("blockquote") if b.find_parent("p") else None
        if not m or quote is None:
            continue
        parts = []
        for el in quote.find_all(["p", "pre", "li"]):
            t = el.get_text("\n" if el.name == "pre" else " ", strip=True)
            if t:
                parts.append(t if el.name == "pre" else " ".join(_clean(t).split()))
        answer = "\n\n".join(dict.fromkeys(parts)) or _clean(quote.get_text(" ", strip=True))
        out.append((_clean(re.sub(r"\s+", " ", m.group(2))), [], answer))
    return "SQLite Frequently Asked Questions", out


def zsh_faq_entries(path: Path) -> tuple[str, list[tuple[str, list[str], str]]]:
    from connectors.files.parsers import parse

    parsed = parse(path.suffix, path.read_bytes())
    out = []
    for s in parsed.sections:
        parts = s.heading.split(" › ")
        m = re.match(r"(\d+\.\d+):\s*(.+)", parts[-1])
        if not m or len(s.text) < 80:
            continue
        title = m.group(2).strip()
        if is_question_heading(title):
            question = re.sub(r"\bit\b", "zsh", title, count=1) if "zsh" not in title.lower() else title
        else:
            question = f"zsh: {title[0].lower() + title[1:]}"
        out.append((question, parts[:-1], s.text))
    return _clean(parsed.title or path.stem), out


def _faq_page(title: str, entries: list[tuple[str, list[str], str]]) -> str:
    """An HTML page of the FAQ with each question heading replaced by "Entry N"."""
    import html

    lines = [f"<html><head><title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>"]
    current: list[str] = []
    for n, (_question, path, answer) in enumerate(entries, start=1):
        for level, part in enumerate(path):
            if level >= len(current) or current[level] != part:
                lines.append(f"<h{level + 2}>{html.escape(part)}</h{level + 2}>")
        current = path
        lines.append(f"<h{len(path) + 2}>Entry {n}</h{len(path) + 2}>")
        for para in answer.split("\n\n"):
            tag = "pre" if "\n" in para.strip() else "p"
            lines.append(f"<{tag}>{html.escape(para.strip())}</{tag}>")
    lines.append("</body></html>")
    return "\n".join(lines)


def debian_faqs(root: str | Path = DEBIAN_DOC) -> list[tuple[str, Path, Callable]]:
    """(corpus, path, parser) of the Git, SQLite and zsh FAQs under `root` (the paths may not exist); a
    parser returns (title, [(question, heading path, answer)])."""
    root = Path(root)
    return [("git", root / "git-doc/gitfaq.txt", git_faq_entries),
            ("sqlite", root / "sqlite3/faq.html", sqlite_faq_entries),
            *[("zsh", p, zsh_faq_entries) for p in sorted((root / "zsh-common/html").glob("FAQ0*.html"))]]


def build_dev_faq(out_dir: str | Path, doc_root: str | Path = DEBIAN_DOC) -> tuple[Path, list[EvalQuestion]]:
    """The development set for fitting retrieval settings: the Git, SQLite and zsh FAQs (Debian's
    git-doc, sqlite3-doc, zsh-doc) with question headings replaced by "Entry N", plus pages of each
    manual as distractors, written to `out_dir/docs`; questions to `out_dir/questions.jsonl`."""
    root, out = Path(doc_root), Path(out_dir)
    faqs = debian_faqs(root)
    missing = [str(p) for _, p, _ in faqs[:2] if not p.exists()]
    if missing or len(faqs) < 3:
        raise DatasetError(f"the FAQs of the development set are missing ({', '.join(missing) or 'zsh FAQ'}). "
                           "Install them: apt-get install git-doc sqlite3-doc zsh-doc")
    target = out / "docs"
    if target.exists():
        shutil.rmtree(target)
    questions: list[EvalQuestion] = []
    for corpus, path, parse_faq in faqs:
        title, entries = parse_faq(path)
        rel = f"{corpus}/{path.stem}-faq.html" if corpus != "zsh" else f"zsh/{path.stem}.html"
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        (target / rel).write_text(_faq_page(title, entries), encoding="utf-8")
        _dated_as(target / rel, path)
        for n, (question, _path, answer) in enumerate(entries, start=1):
            questions.append(EvalQuestion(
                id=f"{rel.removesuffix('.html').replace('/', '-')}-{n}", question=question,
                reference=answer.split("\n\n")[0], relevant=[Relevant(f"{DEV_FAQ_SOURCE}:{rel}", f"Entry {n}")],
                kind=corpus))
    # Distractors: manual pages of each project (not the FAQ itself, nor tables of contents and
    # indexes, which list the questions), smallest first, up to a budget per manual.
    for corpus, folder in (("git", root / "git-doc"), ("sqlite", root / "sqlite3"), ("zsh", root / "zsh-common/html")):
        budget = _DEV_DISTRACTOR_BYTES
        pages = [p for p in folder.glob("*.html") if not re.search(r"faq|index|toc|contents", p.name, re.I)]
        for page in sorted(pages, key=lambda p: (p.stat().st_size, p.name)):
            size = page.stat().st_size
            if size < 2_000:
                continue
            if size > budget:
                break
            budget -= size
            dest = target / corpus / "manual" / page.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(page, dest)
    with (out / "questions.jsonl").open("w", encoding="utf-8") as f:
        for q in questions:
            f.write(json.dumps(q.to_json(), ensure_ascii=False) + "\n")
    return target, questions
