"""Seed tone data from a wiki: one RAG-shaped, house-style example per section, plus refusals.

Each section of each page becomes a grounded example (`training/data.py` "grounded" rows): a question
about the section, the section as its passage, and an extractive answer in the house style (greeting,
one-line answer, up to two bullets, the policy line, the sign-off) that cites it. `prepare` adds
distractor passages from other pages and shuffles them, so the model learns to find and cite the right
one. Refusal rows give only unrelated sections and answer that the wiki does not say.

    python training/tools/wiki_to_examples.py examples/acme-wiki training/data/acme-sections/sections.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from connectors.files import FilesConnector  # noqa: E402

NAMES = ("Dana Omar Lea Kenji Priya Jonas Ana Ruth Mateus Ines Tiago Chen Aisha Lars Marta Yusuf Sofia Pedro "
         "Nina Ravi Elena Tom Zara Hugo Mei Kofi Ola Bea Raj Femi Ivo Noor").split()
QUESTIONS = ["how does {h} work? ({t})", "quick q: what's the rule on {h}?", "anyone know about {h} in the {t} page?",
             "what does the {t} page say about {h}?", "{h}: what do I need to know?", "where do I find info on {h}?",
             "can you explain {h} for me", "what's our policy on {h}?", "{h} — {t}, how does it work",
             "question about {h} please"]
SIGN_OFF = "— Anvil 🔨"


def sentences(text: str) -> list[str]:
    out = []
    for part in re.split(r"(?<=[.!?])\s+(?=[A-Z|•`*-])|\s+-\s+(?=[A-Z`*])", text):
        part = part.strip().lstrip("-•* ").strip()
        if len(part) > 15 and "|" not in part and not part.endswith(":"):
            out.append(part)
    return out


def passage_text(text: str, limit: int = 900) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit].rfind(". ")
    return text[: cut + 1] if cut > limit // 3 else text[:limit]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("wiki")
    ap.add_argument("out")
    ap.add_argument("--source", default="acme-wiki")
    ap.add_argument("--max-examples", type=int, default=240, help="grounded examples kept (a spread over pages)")
    ap.add_argument("--refusals", type=int, default=30)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)

    docs = [d for batch in FilesConnector(args.source, args.wiki).load() for d in batch if hasattr(d, "sections")]
    sections = []
    for d in docs:
        for s in d.sections:
            text = " ".join(s.text.split())
            if len(text) >= 120 and s.heading and s.heading != d.title and sentences(text[:900]):
                sections.append((d, s.heading.split(" › ")[-1], passage_text(text)))
    rng.shuffle(sections)
    sections = sections[: args.max_examples]

    rows = []
    for i, (d, heading, text) in enumerate(sections):
        name = NAMES[i % len(NAMES)]
        sents = sentences(text)
        bullets = [f"• {s.rstrip('.')} [1]" for s in sents[1:3] if len(s) < 260]
        answer = (f"Hi {name}! {sents[0].rstrip('.')} [1]." + ("\n\n" + "\n".join(bullets) if bullets else "")
                  + f"\n\n📘 Policy: {d.title} [1]\n{SIGN_OFF}")
        rows.append({"id": f"s{i:03d}", "topic": d.id.split(":", 1)[1].split("/")[0], "asker": name,
                     "question": rng.choice(QUESTIONS).format(h=heading.lower(), t=d.title),
                     "passages": [{"title": d.title, "heading": heading, "text": text,
                                   "updated": d.updated_at.date().isoformat() if d.updated_at else None}],
                     "answer": answer})
    for j in range(args.refusals):
        d, heading, _ = sections[j]
        others = [s for s in sections if s[0].id != d.id]
        picked = rng.sample(others, 2)
        name = NAMES[(j * 7) % len(NAMES)]
        rows.append({"id": f"r{j:03d}", "topic": "refusal", "asker": name,
                     "question": rng.choice(QUESTIONS).format(h=heading.lower(), t=d.title),
                     "passages": [{"title": p.title, "heading": h, "text": t,
                                   "updated": p.updated_at.date().isoformat() if p.updated_at else None}
                                  for p, h, t in picked],
                     "answer": f"Hi {name}! I couldn't find this on the Anvil, so I won't guess.\n\n"
                               f"• Closest pages: {picked[0][0].title} [1], {picked[1][0].title} [2]\n"
                               f"• Ask the page owner, or Pit Crew in #pit-crew\n\n{SIGN_OFF}"})
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(rows)} examples ({len(rows) - args.refusals} grounded, {args.refusals} refusals) from "
          f"{len({r['passages'][0]['title'] for r in rows})} pages → {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
