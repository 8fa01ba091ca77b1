"""Question sets for the evals: the Python FAQ (real documentation no one here wrote), the sample
wiki's questions, or a JSONL file of the user's own.

A question set is a list of `EvalQuestion`s plus, for the Python FAQ, a folder of documents to index
with the product's own files connector. Every question names the sections that answer it
(`relevant`: a document id and, optionally, the end of its heading path), a reference answer, and
whether it is answerable at all.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

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


def build_python_faq(out_dir: str | Path, docs: str | Path = PYTHON_DOCS) -> tuple[Path, list[EvalQuestion]]:
    """Copy the Python documentation's HTML pages to `out_dir/docs`, with every FAQ question heading
    replaced by a neutral "Entry N" (so a question cannot match itself), and write the questions to
    `out_dir/questions.jsonl`. Returns the docs folder and the questions.

    The answer section stays a section of its own (its heading path ends in "Entry N"), so a chunk of
    it is attributed to exactly one question; the reference answer is the section's first paragraph.
    """
    from bs4 import BeautifulSoup

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
            shutil.copyfile(page, dest)
            continue
        soup = BeautifulSoup(page.read_text(encoding="utf-8"), "lxml")
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
    unanswerable = load_jsonl(DATA / "python_faq_unanswerable.jsonl")
    questions.extend(unanswerable)
    with (out / "questions.jsonl").open("w", encoding="utf-8") as f:
        for q in questions:
            f.write(json.dumps(q.to_json(), ensure_ascii=False) + "\n")
    return target, questions


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
        raise DatasetError(f"{p}: no such file. Pass --set python-faq, --set sample, or a JSONL file of "
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
