"""Check the sample wiki in examples/acme-wiki/ and its questions.jsonl.

Reads every page with orgbot's own files connector (so it sees exactly the text the indexer
sees: front matter parsed, HTML boilerplate dropped, PDF/DOCX text extracted) and checks:

- every page parses, has a title (HTML/PDF/DOCX: in the document metadata), an owner and an updated date, and has 150-900 words;
- Markdown pages start with YAML front matter (title, owner, updated) and a "# Title" line;
- questions.jsonl is well formed: unique ids, known kinds, pages that exist,
  `unanswerable` questions with no pages and an empty answer;
- for every `fact`/`fresh` question, each key phrase in NEEDLES below occurs on the listed
  page(s) and on NO other page (so a citation can be checked), and for `fresh` questions the
  superseded page carries the old, different value (OLD_NEEDLES).

Matching is case-insensitive on text with whitespace collapsed and Markdown `*`/`` ` `` removed.
Run from the repository root with the project's environment:

    .venv/bin/python examples/tools/check_acme_wiki.py

Exit status 1 if anything fails; prints page counts per folder and format and question counts.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WIKI = ROOT / "examples" / "acme-wiki"
sys.path.insert(0, str(ROOT))

from connectors.base import ConnectorFailure  # noqa: E402
from connectors.files.connector import FilesConnector, _title_from_name  # noqa: E402

# question id -> key phrases that must appear on the question's page(s) and nowhere else.
NEEDLES: dict[str, list[str]] = {}
# fresh question id -> phrases that must appear on the superseded page (the old value).
OLD_NEEDLES: dict[str, list[str]] = {}
SUPERSEDED = {
    "handbook/recharge-days.md": "handbook/recharge-days-2023.md",
    "it/laptop-refresh-policy.md": "it/laptop-refresh-policy-2024.md",
    "hr/parental-leave.md": "hr/parental-leave-2022.md",
    "oncall/watch-compensation.md": "oncall/watch-compensation-2024.md",
    "finance/travel-policy.md": "finance/travel-policy-2023.md",
}


def _load_needles() -> None:
    data = json.loads((Path(__file__).with_name("acme_wiki_needles.json")).read_text())
    NEEDLES.update(data["needles"])
    OLD_NEEDLES.update(data["old_needles"])


def norm(text: str) -> str:
    text = text.replace("*", "").replace("`", "")
    return re.sub(r"\s+", " ", text).strip().lower()


def main() -> int:
    _load_needles()
    errors: list[str] = []
    conn = FilesConnector("acme", WIKI)
    pages: dict[str, str] = {}
    formats: Counter = Counter()
    folders: Counter = Counter()
    for batch in conn.load():
        for doc in batch:
            if isinstance(doc, ConnectorFailure):
                errors.append(f"parse failure: {doc.item}: {doc.reason}")
                continue
            rel = doc.metadata["path"]
            if rel == "README.md":
                continue
            text = "\n".join(f"{s.heading}\n{s.text}" for s in doc.sections)
            pages[rel] = norm(doc.title + "\n" + text)
            words = len(" ".join(s.text for s in doc.sections).split())
            if not 150 <= words <= 900:
                errors.append(f"{rel}: {words} words (want 150-900)")
            if not rel.endswith(".md") and doc.title == _title_from_name(WIKI / rel):
                errors.append(f"{rel}: no title in the document metadata")
            if not doc.metadata.get("owner") and not rel.endswith(".pdf"):
                errors.append(f"{rel}: no owner")
            formats[Path(rel).suffix] += 1
            folders[str(Path(rel).parent)] += 1
            if rel.endswith(".md"):
                raw = (WIKI / rel).read_text()
                m = re.match(r"---\ntitle: .+\nowner: .+\nupdated: \d{4}-\d{2}-\d{2}\n", raw)
                if not m:
                    errors.append(f"{rel}: front matter must start with title/owner/updated")
                body = raw.split("\n---\n", 1)[1].lstrip()
                if not body.startswith("# "):
                    errors.append(f"{rel}: body does not start with '# Title'")

    questions = [json.loads(line) for line in (WIKI / "questions.jsonl").read_text().splitlines() if line.strip()]
    kinds = Counter(q["kind"] for q in questions)
    ids = [q["id"] for q in questions]
    if len(ids) != len(set(ids)):
        errors.append("duplicate question ids")
    for q in questions:
        qid, kind, qpages = q["id"], q["kind"], q["pages"]
        if not {"id", "question", "answer", "pages", "kind"} <= set(q) <= {"id", "question", "answer", "pages", "kind",
                                                                            "off_topic"}:
            errors.append(f"{qid}: unexpected keys {sorted(q)}")
        if q.get("off_topic") and (kind != "unanswerable" or qpages):
            errors.append(f"{qid}: off_topic questions are unanswerable, with no pages")
        if kind not in ("fact", "fresh", "unanswerable"):
            errors.append(f"{qid}: unknown kind {kind}")
        if kind == "unanswerable":
            if qpages or q["answer"]:
                errors.append(f"{qid}: unanswerable question with pages or an answer")
            continue
        if not qpages or not q["answer"]:
            errors.append(f"{qid}: answerable question without pages or answer")
        for p in qpages:
            if p not in pages:
                errors.append(f"{qid}: page {p} does not exist")
        needles = NEEDLES.get(qid)
        if not needles:
            errors.append(f"{qid}: no key phrase in acme_wiki_needles.json")
            continue
        for needle in needles:
            n = norm(needle)
            where = sorted(p for p, t in pages.items() if n in t)
            if where != sorted(qpages):
                errors.append(f"{qid}: {needle!r} found on {where}, expected exactly {qpages}")
        if kind == "fresh":
            old = SUPERSEDED.get(qpages[0])
            if not old:
                errors.append(f"{qid}: fresh question whose page has no superseded version")
                continue
            for needle in OLD_NEEDLES.get(qid, []):
                if norm(needle) not in pages.get(old, ""):
                    errors.append(f"{qid}: old value {needle!r} not on {old}")
            if not OLD_NEEDLES.get(qid):
                errors.append(f"{qid}: no old value recorded")

    print("pages per format:", dict(sorted(formats.items())), "total", sum(formats.values()))
    print("pages per folder:", dict(sorted(folders.items())))
    print("questions per kind:", dict(sorted(kinds.items())), "total", len(questions))
    print("distinct single-page key facts:", sum(1 for q in questions if q["kind"] != "unanswerable"
                                                 and len(q["pages"]) == 1))
    for e in errors:
        print("FAIL", e)
    print("OK" if not errors else f"{len(errors)} problem(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
