"""Heading-aware chunking that respects the embedder's real token limit.

all-MiniLM-L6-v2 silently truncates at 256 word pieces, so every chunk, with its title and
heading prefix (what the embedder sees), must fit; text is split at section, then paragraph,
then sentence, then word boundaries.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from connectors.base import FENCE, SourceDocument, next_fence
from retrieval.index import chunk_id
from retrieval.types import Chunk

TokenCounter = Callable[[str], int]
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")
# A table's row: Markdown's "| Canada | CAD 1,500 |", or an HTML or Word table's "Canada | CAD 1,500"; a rule under
# its header row: Markdown's "|---|:---:|", or the "--- | ---" the files connector writes under a marked header row.
TABLE_ROW = re.compile(r"\s*\|.*\|\s*|.*\S \| .*")  # (an HTML row may open with an empty cell: " | __name__ | …")
TABLE_RULE = re.compile(r"(?=.*\|)\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*")  # (not "----")
# "--- | ---" on a line of its own (not Markdown's "|---|"), with the blank line after it where the lines are
# paragraphs (a long section's chunk: "header\n\n--- | ---\n\nrow" reads "header\n\nrow")
_HEADER_RULE = re.compile(r"^[ \t]*-{3}(?:[ \t]\|[ \t]-{3})+[ \t]*(?:\n(?:[ \t]*\n)?|$)", re.M)


# What the index holds for a document (its chunks, and the text their vectors are made from, `as_read`) is made by
# this module from the document. Raise this whenever that changes for the same document: each index then chunks its
# documents again at its next sync (`retrieval.indexer`), so a fix here reaches pages that did not change.
# 2: a code block closes only at its own fence (a reST "~~~~" underline inside a <pre> closed it).
CHUNKING_VERSION = 2


def _open_fence(piece: str, fence: str | None) -> str | None:
    """The fence of the code block still open after `piece` (`fence`: the one open before it)."""
    for line in piece.splitlines():
        fence = next_fence(fence, line)
    return fence


def as_read(text: str) -> str:
    """A chunk's text as the models read it (the embedder, the passage judge, the generator): without the
    "--- | ---" the files connector writes under an HTML or Word table's header row, nor a code block's fences.
    That rule is no text of the page; it tells a quote which row is the header. The fences tell a quote which
    lines are code (an HTML page's <pre>, a Markdown page's block); the models read the lines as the page shows
    them (the grounded adapter learnt from manuals read so, and a model shown fences copies them into its
    sentences: "execute the command: ```dpkg --list"). (A Markdown page's own "|---|" stays: it is the page's.)"""
    text = _HEADER_RULE.sub("", text)
    # (a long section's lines are paragraphs: "worked:\n\n```\n\n>>> x" reads "worked:\n\n>>> x", as without fences)
    return re.sub(r"\n{3,}", "\n\n", _unfenced(text)) if FENCE.search(text) else text


def _unfenced(text: str) -> str:
    """`text` without its code blocks' own fence lines (a fence-like line the block shows stays: "```bash" in a
    "````" block is the page's)."""
    fence, lines = None, []
    for line in text.splitlines(keepends=True):
        after = next_fence(fence, line)
        if after == fence:
            lines.append(line)
        fence = after
    return "".join(lines)


class _TableHead:
    """The header row and rule of the table a section's text is in, line by line: a chunk that starts inside
    the table starts with them ("Room | Seats" / "--- | ---" / "Douro | 12"), so its rows are searched and
    quoted with their columns' names, as in the chunk that has the header."""

    def __init__(self) -> None:
        self.head: str | None = None
        self._last = ""

    def read(self, piece: str) -> None:
        for line in piece.splitlines():
            if not line.strip():
                continue
            if TABLE_RULE.fullmatch(line):
                self.head = f"{self._last.strip()}\n{line.strip()}" if TABLE_ROW.fullmatch(self._last) else None
            elif not TABLE_ROW.fullmatch(line):
                self.head = None
            self._last = line

    def opens(self, piece: str) -> bool:
        """Whether `piece` goes on with the table (its first line a row of it, not its header or rule)."""
        first = next((line for line in piece.splitlines() if line.strip()), "")
        return self.head is not None and bool(TABLE_ROW.fullmatch(first)) and not TABLE_RULE.fullmatch(first)


# (where to split, what joins the parts again): lines are packed as paragraphs (HTML's blocks arrive one per
# line), sentences and words as the running text they were.
_SPLITTERS = ((re.compile(r"\n\s*\n"), "\n\n"), (re.compile(r"\n"), "\n\n"), (_SENTENCE, " "), (re.compile(r"\s+"), " "))


def _pieces(text: str, fits: Callable[[str], bool], joiner: str = "\n\n") -> Iterator[tuple[str, str]]:
    """Split `text` into pieces that each fit, preferring the largest natural boundary. Each piece comes
    with the separator that joins it to the piece before (a paragraph break, a line break, a space), so
    packing puts a long line's words back together as they were written, never one word per paragraph."""
    if fits(text):
        yield text, joiner
        return
    for splitter, sep in _SPLITTERS:
        # a paragraph or line keeps its indentation (code); sentences and words are running text
        parts = [p.rstrip() if sep == "\n\n" else p.strip() for p in splitter.split(text) if p.strip()]
        if len(parts) > 1:
            for i, p in enumerate(parts):
                yield from _pieces(p, fits, joiner if i == 0 else sep)
            return
    # One huge "word" (a hash, a base64 blob): cut it by characters.
    step = max(1, len(text) // 2)
    yield from _pieces(text[:step], fits, joiner)
    yield from _pieces(text[step:], fits, "")


def chunk_document(
    doc: SourceDocument, count_tokens: TokenCounter, max_tokens: int = 256, target_tokens: int = 200
) -> list[Chunk]:
    """Chunks of `doc`, each fitting `max_tokens` with its title/heading prefix.

    Small neighbouring paragraphs of one section are packed up to `target_tokens` so a chunk
    carries enough context; chunks never cross a heading, so each cites one section.
    """
    chunks: list[Chunk] = []
    superseded_by = doc.superseded_by

    def make(heading: str, text: str) -> Chunk:
        pos = len(chunks)
        return Chunk(
            id=chunk_id(doc.id, pos), document_id=doc.id, source=doc.source, title=doc.title, heading=heading,
            text=text, url=doc.url, position=pos, content_hash=doc.content_hash, updated_at=doc.updated_at,
            acl=doc.acl, superseded_by=superseded_by,
        )

    for section in doc.sections:
        text = re.sub(r"\A(?:[ \t]*\n)+", "", section.text.rstrip())  # blank lines off, a first line's indent kept
        if not text:
            continue
        heading = section.heading or doc.title
        prefix_tokens = count_tokens(make(heading, "").embedding_text)
        budget = max(16, max_tokens - prefix_tokens)
        target = max(16, min(target_tokens, max_tokens) - prefix_tokens)

        def tokens(t: str) -> int:
            # what the embedder reads (`as_read`); count_tokens includes [CLS]/[SEP], the prefix paid for them once
            return count_tokens(as_read(t)) - 2

        def fits(t: str, limit: int = budget) -> bool:
            return tokens(t) <= limit

        # Count each piece once and pack by the sum (word pieces of "a\n\nb" = those of a + b),
        # instead of re-tokenizing the growing chunk for every piece.
        current, current_tokens = "", 0
        table = _TableHead()
        fence: str | None = None  # the fence of the code block `current` ends inside
        for piece, joiner in _pieces(text, fits):
            n = tokens(piece)
            fence_after = _open_fence(piece, fence)
            if current and current_tokens + n > target:
                if fence:
                    # a code block cut in two is closed at the chunk's end and opened again at the next one's start
                    # (where the piece opens with the block's end, the block ends with the chunk): each chunk's code
                    # reads as code
                    first, _, after = piece.partition("\n")
                    closes = next_fence(fence, first) is None
                    current, piece = f"{current}\n{fence}", after if closes else f"{fence}\n{piece}"
                    if not piece.strip():
                        chunks.append(make(heading, current))
                        current, current_tokens, fence = "", 0, fence_after
                        continue
                    n = tokens(piece)
                chunks.append(make(heading, current))
                current, current_tokens = piece, n
                if table.opens(piece) and fits(f"{table.head}\n{piece}"):
                    current, current_tokens = f"{table.head}\n{piece}", tokens(f"{table.head}\n{piece}")
            else:
                current = f"{current}{joiner}{piece}" if current else piece
                current_tokens += n
            table.read(piece)
            fence = fence_after
        if current:
            chunks.append(make(heading, current))
    return chunks
