"""Heading-aware chunking that respects the embedder's real token limit.

all-MiniLM-L6-v2 silently truncates at 256 word pieces, so every chunk, with its title and
heading prefix (what the embedder sees), must fit; text is split at section, then paragraph,
then sentence, then word boundaries.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from connectors.base import SourceDocument
from retrieval.index import chunk_id
from retrieval.types import Chunk

TokenCounter = Callable[[str], int]
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")


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

        def fits(t: str, limit: int = budget) -> bool:
            # count_tokens includes [CLS]/[SEP]; the prefix count already paid for them once
            return count_tokens(t) - 2 <= limit

        # Count each piece once and pack by the sum (word pieces of "a\n\nb" = those of a + b),
        # instead of re-tokenizing the growing chunk for every piece.
        current, current_tokens = "", 0
        for piece, joiner in _pieces(text, fits):
            n = count_tokens(piece) - 2
            if current and current_tokens + n > target:
                chunks.append(make(heading, current))
                current, current_tokens = piece, n
            else:
                current = f"{current}{joiner}{piece}" if current else piece
                current_tokens += n
        if current:
            chunks.append(make(heading, current))
    return chunks
