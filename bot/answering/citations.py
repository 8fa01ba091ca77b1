"""Citation markers: keep the ones that point at a passage we gave, drop invented ones."""

from __future__ import annotations

import re

CITATION_MARKER = re.compile(r"\[(\s*\d+\s*(?:[,;–-]\s*\d+\s*)*)\]")


def marker_numbers(group: str) -> list[int]:
    out: list[int] = []
    for part in re.split(r"[,;]", group):
        part = part.strip()
        if re.fullmatch(r"\d+\s*[–-]\s*\d+", part):
            a, b = (int(x) for x in re.split(r"[–-]", part))
            if 0 < b - a < 10:
                out.extend(range(a, b + 1))
                continue
        for n in re.findall(r"\d+", part):
            out.append(int(n))
    return out


def cited_numbers(text: str) -> list[int]:
    """Every passage number a text cites ([2], [1, 3], [1-2]), in order, with repeats."""
    return [n for m in CITATION_MARKER.finditer(text) for n in marker_numbers(m.group(1))]


def validate_citations(text: str, n_passages: int) -> tuple[str, list[int]]:
    """Rewrite `text` so every marker names a passage in 1..n_passages; return it and the cited numbers
    in order of first mention. `[2, 9]` with 3 passages becomes `[2]`; `[9]` disappears."""
    cited: list[int] = []

    def fix(m: re.Match) -> str:
        valid = [n for n in marker_numbers(m.group(1)) if 1 <= n <= n_passages]
        for n in valid:
            if n not in cited:
                cited.append(n)
        return "".join(f"[{n}]" for n in dict.fromkeys(valid))

    fixed = CITATION_MARKER.sub(fix, text)
    # "fact. [2]." as small models write it: the marker goes before the sentence's stop ("fact [2].")
    fixed = re.sub(r"(?<![\s.])(?<!\betc)([.!?])[ \t]*((?:\[\d+\])+)\.?(?=\s|$)", r" \2\1", fixed)
    fixed = re.sub(r"[ \t]+([.,;:!?])", r"\1", fixed)  # "fact ." left by a dropped marker
    fixed = re.sub(r"[ \t]{2,}", " ", fixed)
    return fixed.strip(), cited
