"""Answers as Slack messages: mrkdwn text in sections, a Sources block matching the [n] markers,
and 👍/👎 buttons. Pure functions over plain data, so they are easy to test and to reuse for /ask."""

from __future__ import annotations

import re
from collections.abc import Sequence

SECTION_LIMIT = 3000  # characters of text in one section block
MAX_BLOCKS = 50  # blocks in one message
CONTEXT_ELEMENTS = 10  # elements in one context block
PLACEHOLDER = "_Searching the wiki…_"

FEEDBACK_UP, FEEDBACK_DOWN, SHARE = "feedback_up", "feedback_down", "share_answer"
ANSWER_IN_DM = "answer_in_dm"

_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*|__(.+?)__")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*$", re.M)
_BULLET = re.compile(r"^(\s*)[-*+]\s+", re.M)
_STRIKE = re.compile(r"~~(.+?)~~")
_CODE = re.compile(r"```.*?```|`[^`\n]+`", re.S)


def escape(text: str) -> str:
    """Slack's three control characters; everything else is literal."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_mrkdwn(markdown: str) -> str:
    """Markdown as a small model writes it → Slack mrkdwn (bold, links, headings, bullets, strike); code
    (``` blocks and `spans`) is left as written."""
    kept: list[str] = []  # finished mrkdwn (links, code), put back after the conversions

    def keep(mrkdwn: str) -> str:
        kept.append(mrkdwn)
        return f"\x00{len(kept) - 1}\x00"

    def keep_link(m: re.Match) -> str:
        return keep(f"<{m.group(2)}|{escape(m.group(1))}>")

    def keep_code(m: re.Match) -> str:  # code is shown as written: no bold, bullets or headings inside
        return keep(escape(m.group(0)))

    text = _CODE.sub(keep_code, markdown)
    text = _LINK.sub(keep_link, text)
    text = escape(text)
    text = _HEADING.sub(lambda m: f"*{m.group(1)}*", text)
    text = _BULLET.sub(lambda m: f"{m.group(1)}• ", text)
    text = _BOLD.sub(lambda m: f"*{m.group(1) or m.group(2)}*", text)
    text = _STRIKE.sub(r"~\1~", text)
    return re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m.group(1))], text)


def split_text(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """Pieces of at most `limit` characters, cut at paragraph, then line, then word boundaries. A code
    block cut in two is closed at the end of one piece and opened again at the start of the next."""
    fence = "```"
    room = limit - len(fence) - 1  # leaves space to close a code block the cut falls in
    pieces, rest = [], text.strip()
    while len(rest) > limit:
        window = rest[:room]
        cut = max(window.rfind("\n\n"), window.rfind("\n"))
        if cut < room // 2:
            cut = window.rfind(" ")
        if cut < room // 2:
            cut = room
        piece, rest = rest[:cut].rstrip(), rest[cut:].lstrip()
        if piece.count(fence) % 2:  # the cut falls in a code block: close it here, open it again there
            piece = f"{piece}\n{fence}"
            rest = rest.removeprefix(fence).lstrip() if rest.startswith(fence) else f"{fence}\n{rest}"
        pieces.append(piece)
    if rest:
        pieces.append(rest)
    return pieces


def _is_web(url: str | None) -> bool:
    return bool(url) and url.startswith(("http://", "https://"))


def source_label(number: int | None, title: str, heading: str | None) -> str:
    name = title if not heading or heading == title else f"{title} › {heading}"
    return f"{number}. {name}" if number is not None else name


def source_link(number: int | None, title: str, heading: str | None, url: str | None) -> str:
    label = source_label(number, title, heading).replace("|", "¦")
    return f"<{url}|{escape(label)}>" if _is_web(url) else escape(label)


def sources_block(citations: Sequence[dict], *, title: str = "Sources") -> list[dict]:
    """Context block(s) with one numbered link per cited passage, in [n] order."""
    if not citations:
        return []
    items = [source_link(c.get("number"), c["title"], c.get("heading"), c.get("url"))
             for c in sorted(citations, key=lambda c: c.get("number") or 0)]
    first = [{"type": "mrkdwn", "text": f"*{title}:*"}]
    blocks, elements = [], first + [{"type": "mrkdwn", "text": i} for i in items]
    for start in range(0, len(elements), CONTEXT_ELEMENTS):
        blocks.append({"type": "context", "elements": elements[start:start + CONTEXT_ELEMENTS]})
    return blocks


def nearest_citations(passages: Sequence[dict], limit: int = 3) -> list[dict]:
    """Distinct documents among the passages (for answers that found nothing), unnumbered."""
    seen, out = set(), []
    for p in passages:
        if p["document_id"] not in seen:
            seen.add(p["document_id"])
            out.append({"number": None, "title": p["title"], "heading": p.get("heading"), "url": p.get("url")})
    return out[:limit]


def button(action_id: str, value: str, text: str, *, primary: bool = False) -> dict:
    b = {"type": "button", "action_id": action_id, "value": value, "text": {"type": "plain_text", "text": text}}
    if primary:
        b["style"] = "primary"
    return b


def feedback_block(answer_id: str, *, share: bool = False) -> dict:
    elements = [
        {"type": "button", "action_id": FEEDBACK_UP, "value": answer_id,
         "text": {"type": "plain_text", "text": "👍 Helpful", "emoji": True}},
        {"type": "button", "action_id": FEEDBACK_DOWN, "value": answer_id,
         "text": {"type": "plain_text", "text": "👎 Not helpful", "emoji": True}},
    ]
    if share:
        elements.insert(0, {"type": "button", "action_id": SHARE, "value": answer_id, "style": "primary",
                             "text": {"type": "plain_text", "text": "Share in channel"}})
    return {"type": "actions", "block_id": f"answer:{answer_id}", "elements": elements}


def answer_footer(*, answer_id: str | None, found: bool, citations: Sequence[dict], passages: Sequence[dict],
                  share: bool = False, asked_by: str | None = None) -> list[dict]:
    """Everything under the answer text: sources (or the nearest pages), who asked, the buttons."""
    blocks = sources_block(citations) if found else sources_block(nearest_citations(passages),
                                                                    title="Nearest pages")
    if asked_by:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"asked by <@{asked_by}>"}]})
    if answer_id:
        blocks.append(feedback_block(answer_id, share=share))
    return blocks


def answer_blocks(text: str, *, answer_id: str | None, found: bool, citations: Sequence[dict],
                  passages: Sequence[dict] = (), share: bool = False, asked_by: str | None = None) -> list[dict]:
    footer = answer_footer(answer_id=answer_id, found=found, citations=citations, passages=passages,
                           share=share, asked_by=asked_by)
    sections = [{"type": "section", "text": {"type": "mrkdwn", "text": piece}}
                for piece in split_text(to_mrkdwn(text))]
    room = MAX_BLOCKS - len(footer)
    if len(sections) > room:
        sections = sections[:room]
        last = sections[-1]["text"]
        last["text"] = last["text"][: SECTION_LIMIT - 2] + " …"
    return sections + footer


def text_blocks(text: str) -> list[dict]:
    """A plain message (placeholder, partial answer, apology) as section blocks."""
    return [{"type": "section", "text": {"type": "mrkdwn", "text": piece}}
            for piece in split_text(text)[:MAX_BLOCKS]]
