"""A PDF's text as a reader sees it: sections under the document's own headings, paragraphs whole.

A PDF holds positioned lines, not paragraphs: a sentence runs over several lines, a word is hyphenated
at a line's end, a page has a running header with its number, a manual opens with a table of contents,
and a table is text in columns. Taken line by line, an answer quotes "… test rigs that have no" or
"Public Allowed Allowed". Here each page is read in pypdf's layout mode (indentation and columns kept)
and put back together:
- headings from the PDF's outline (its bookmarks: LaTeX, Texinfo, Word with headings), else lines set in
  larger type than the body text (a policy exported without bookmarks), else numbered lines ("2. Scope");
- a paragraph's lines joined into one (a hyphenated word whole again), across a page break too; a
  paragraph ends at a blank line, an indented first line, or a line that stops well short of the margin;
- code and examples (indented further) kept line by line; list items one per line; a table's rows
  as "cell | cell";
- a page in two columns read column by column (layout mode puts both on one line);
- running headers and footers left out: a line on the edge of most pages (its facts said once, under
  "Document details"), or one that holds the page's own number ("Chapter 7: R Miscellanea   37"), and
  the table of contents ("7.31 Why doesn't R … . . . . 37").
"""

from __future__ import annotations

import io
import re
from collections import Counter
from dataclasses import dataclass

_NUMBERED_HEADING = re.compile(r"^(\d+(\.\d+)*)\.?\s+[A-Z][^.!]{1,80}$")
_PAGE_NUMBER = re.compile(r"(?i)\b(page\s+)?\d+(\s*(/|of)\s*\d+)?\b")
_LEADER = re.compile(r"(?:\.\s?){4,}\s*(?:\d+|[ivxlc]+)(?:,\s*\d+)*\s*$")  # contents, index: "Title . . . 37", "c . . . 8, 11"
_ROMAN = re.compile(r"(?i)[ivxlc]{1,6}")  # a front-matter page number, on a line of its own
_BULLET = re.compile(r"(?:[-–•◦▪*]|\(?\d{1,2}[.)]|\(?[a-z][.)])\s+\S")
_HYPHENATED = re.compile(r"[a-z]{2}-$")
_ENDS_SENTENCE = re.compile(r"[.!?:;][\"'”’)]*$")
_URL_CUT = re.compile(r"(?:https?:|www\.)\S*[/.?&=_-]$")  # a web address the line's end cut in two
_EDGE = 2  # lines at the top and at the bottom of a page where running headers and footers are


@dataclass
class _Line:
    text: str  # as laid out: indentation and the spaces between columns kept
    page: int

    @property
    def indent(self) -> int:
        return len(self.text) - len(self.text.lstrip())

    @property
    def words(self) -> str:
        return " ".join(self.text.split())


def read_pdf(data: bytes):
    """(title, sections as (level, heading, text) …, updated) of a PDF; raises ParseError."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    from connectors.files.parsers import ParseError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                reader.decrypt("")
            except Exception as e:  # noqa: BLE001
                raise ParseError("the PDF is password-protected; save an unprotected copy") from e
        info = reader.metadata or {}
        pages = [_page_text(page) for page in reader.pages]
        outline = _outline(reader) or _font_headings(reader)
    except ParseError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as e:
        raise ParseError(f"the PDF cannot be read ({type(e).__name__}: {e}); re-export it") from e
    if not any(p.strip() for p in pages):
        raise ParseError("the PDF has no extractable text (a scan?); add a text layer (OCR) or a text copy")
    title = (info.get("/Title") or "").strip() or next((text for depth, text, _ in outline if depth < 0), None)
    page_lines = [_trimmed([ln.rstrip() for ln in text.splitlines()]) for text in pages]
    page_lines = _without_page_numbers(page_lines)  # first: a chapter's header can be on most of a short PDF's pages
    page_lines, running = _strip_running_lines(page_lines)
    lines = [_Line(text, k) for k, page in enumerate(page_lines)
             for text in _trimmed(_columns(_without_contents(page)))]  # (an index in two columns goes first)
    return title, _sections(lines, outline, title), running, info.get("/ModDate") or info.get("/CreationDate")


def _trimmed(lines: list[str]) -> list[str]:
    """A page's lines without the blank ones at its top and bottom (a paragraph goes on over a page break),
    and one blank line for several (layout mode spaces lines as the page does)."""
    out: list[str] = []
    for line in lines:
        if line.strip() or out and out[-1].strip():
            out.append(line)
    while out and not out[-1].strip():
        out.pop()
    return out


def _page_text(page) -> str:
    """The page as laid out (indentation and columns kept); as plain text where layout mode fails."""
    try:
        return page.extract_text(extraction_mode="layout") or ""
    except Exception:  # noqa: BLE001 (layout mode is newer and stricter than plain; plain still reads the text)
        return page.extract_text() or ""


def _outline(reader) -> list[tuple[int, str, int | None]]:
    """(depth, title, page index) of each bookmark, in order; [] when the PDF has none."""
    out: list[tuple[int, str, int | None]] = []

    def walk(items, depth: int) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item, depth + 1)
                continue
            try:
                page = reader.get_destination_page_number(item)
            except Exception:  # noqa: BLE001 (a bookmark to nowhere is still a heading to look for)
                page = None
            title = " ".join(str(getattr(item, "title", "") or "").split())
            if title:
                out.append((depth, title, page))

    try:
        walk(reader.outline, 0)
    except Exception:  # noqa: BLE001 (a broken outline: the numbered lines are the headings)
        return []
    return out


def _font_headings(reader) -> list[tuple[int, str, int | None]]:
    """Headings set in a larger font than the body text, as (depth, text, page index) in the outline's form,
    for a PDF without an outline (a policy exported without bookmarks): a line in a font at least 15% larger
    than the one most of the text is set in (two such lines one after the other: one heading wrapped); the
    larger, the higher. One line set largest of all, on the first page, is the document's title (depth -1).
    [] where they would be more than half of the lines (a poster: its body text is not the most of it)."""
    lines: dict[tuple[int, int], list[tuple[float, str]]] = {}
    for k, page in enumerate(reader.pages):
        def visit(text, cm, tm, font, size, k=k):
            if text.strip() and cm and tm:
                scale = abs(tm[0] * cm[0] + tm[1] * cm[2]) or 1
                lines.setdefault((k, round(tm[5] * cm[3] + cm[5])), []).append((round(size * scale, 1), text))
        try:
            page.extract_text(visitor_text=visit)
        except Exception:  # noqa: BLE001 (no sizes: the numbered lines are the headings)
            return []
    chars: Counter[float] = Counter()
    for runs in lines.values():
        for size, text in runs:
            chars[size] += len(text.strip())
    if not chars:
        return []
    body = chars.most_common(1)[0][0]
    found: list[tuple[int, float, str]] = []
    last = None  # the line before, when it was a heading: a heading wrapped over two lines is one
    for n, ((k, _), runs) in enumerate(sorted(lines.items(), key=lambda kv: (kv[0][0], -kv[0][1]))):
        size, text = max(size for size, _ in runs), " ".join("".join(t for _, t in runs).split())
        if min(size for size, _ in runs) < 1.15 * body or not re.search(r"[A-Za-z]", text):
            continue
        if last == n - 1 and found[-1][:2] == (k, size):
            found[-1] = (k, size, f"{found[-1][2]} {text}")
        else:
            found.append((k, size, text))
        last = n
    found = [(k, size, text) for k, size, text in found if len(text.split()) <= 25]
    if not found or len(found) > 0.5 * len(lines):
        return []
    sizes = sorted({size for _, size, _ in found}, reverse=True)
    top = [text for k, size, text in found if size == sizes[0]]
    depth = {size: n - (len(top) == 1 and found[0][0] == 0) for n, size in enumerate(sizes)}  # (its title: -1)
    return [(min(depth[size], 3), text, k) for k, size, text in found]


def _strip_running_lines(pages: list[list[str]]) -> tuple[list[list[str]], list[str]]:
    """Drop running headers and footers: a line among the first or last `_EDGE` lines of a page that
    recurs (page numbers aside) on most pages. Returns the pages without them and each distinct
    running line once, page number removed, so a footer's facts (policy id, owner, effective date)
    are kept but no longer split a section in two."""
    if len(pages) < 2:
        return pages, []

    def key(line: str) -> str:
        return _PAGE_NUMBER.sub("#", " ".join(line.split()))

    counts: Counter[str] = Counter()
    for lines in pages:
        counts.update({key(pages_line) for pages_line in _edges(lines)})
    running = {k for k, n in counts.items() if n >= max(2, (len(pages) + 1) // 2)}
    if not running:
        return pages, []
    kept, said = [], {}
    for lines in pages:
        edges = set(_edge_positions(lines))
        out = []
        for i, line in enumerate(lines):
            if i in edges and key(line) in running:
                said.setdefault(key(line), _unpaged(line))
            else:
                out.append(line)
        kept.append(out)
    return kept, list(said.values())


def _edge_positions(lines: list[str]) -> list[int]:
    filled = [i for i, line in enumerate(lines) if line.strip()]
    return filled[:_EDGE] + filled[-_EDGE:]


def _edges(lines: list[str]) -> list[str]:
    return [lines[i] for i in _edge_positions(lines)]


def _unpaged(line: str) -> str:
    """'Policy X | Owner: Y | Page 1 of 2' -> 'Policy X | Owner: Y'."""
    line = re.sub(r"(?i)\s*[|·•-]?\s*page\s+\d+(\s*(/|of)\s*\d+)?\s*$", "", " ".join(line.split()))
    return line.strip(" |")


def _without_page_numbers(pages: list[list[str]]) -> list[list[str]]:
    """Drop an edge line that starts or ends with the page's own number ("Chapter 7: R Miscellanea   37",
    "iii"): a page header or footer that changes with the chapter, which `_strip_running_lines` does not
    see recur. The page numbers are those that go up with the page on most pages (a book's first page is
    rarely its page 1)."""
    def numbers(line: str) -> list[str]:
        """The number a line starts or ends with, where it is set apart from the line's words (a header's
        page number is; a heading's own number, "1  Introduction" on page 1, is not)."""
        words = [w.strip("-–—|.()[]") for w in line.split()]
        if len(words) == 1:
            return [w for w in words if w.isdigit() or _ROMAN.fullmatch(w)]
        ends = [w for w, apart in ((words[0], re.match(r"\s*\S+\s{3,}", line)), (words[-1], re.search(r"\s{3,}\S+\s*$", line)))
                if apart]
        return [w for w in ends if w.isdigit()]

    offsets = Counter(int(n) - k for k, lines in enumerate(pages) for line in _edges(lines)
                      for n in numbers(line) if n.isdigit())
    offset, seen = offsets.most_common(1)[0] if offsets else (None, 0)
    if len(pages) < 2 or seen < max(2, len(pages) // 2):
        return pages
    out = []
    for k, lines in enumerate(pages):
        edges = set(_edge_positions(lines))
        out.append([line for i, line in enumerate(lines) if i not in edges or not any(
            n == str(k + offset) or (_ROMAN.fullmatch(n) and len(line.split()) == 1) for n in numbers(line))])
    return out


def _columns(lines: list[str]) -> list[str]:
    """A page set in two columns (layout mode puts both on one line) as the left column's lines, then the
    right's: the page has a gutter, a run of spaces at one place on most of its lines with words either side
    (both sides running text, not a table's short cells), and hardly any line across it."""
    filled = [line for line in lines if line.strip()]
    if len(filled) < 6:
        return lines
    width = max(len(line) for line in filled)
    best, at = 0, None
    for x in range(width // 4, 3 * width // 4):
        split = crossing = 0
        for line in filled:
            left, right = line[:x], line[x:]
            if line[x - 1:x + 2].strip() == "" and left.strip() and right.strip():
                split += 1
            elif len(line) > x and line[x] != " ":
                crossing += 1
        if split > best and crossing <= 0.1 * len(filled):
            best, at = split, x
    if at is None or best < 0.5 * len(filled):
        return lines
    halves = [(line[:at], line[at:]) for line in lines]
    if sum(len(a.split()) >= 4 and len(b.split()) >= 4 for a, b in halves) < 0.4 * len(filled):
        return lines  # short cells: a table, not columns
    # (layout mode places the right column's lines where the left one's text ends, a few columns either way:
    # their indentation says nothing)
    return [a.rstrip() for a, _ in halves] + [""] + [b.strip() for _, b in halves]


def _without_contents(lines: list[str]) -> list[str]:
    """A page without its table of contents: lines that end in dot leaders and a page number, and the line
    before one that it wraps onto; all of a page that is mostly contents."""
    leaders = [i for i, line in enumerate(lines) if _LEADER.search(line)]
    if not leaders:
        return lines
    filled = sum(1 for line in lines if line.strip())
    if len(leaders) * 2 >= filled:
        return []
    wrapped = {i - 1 for i in leaders if i > 0 and _NUMBERING.match(lines[i - 1].strip())
               and not _LEADER.search(lines[i - 1]) and not _ENDS_SENTENCE.search(lines[i - 1])}
    return [line for i, line in enumerate(lines) if i not in set(leaders) | wrapped]


def _sections(lines: list[_Line], outline, title: str | None) -> list[tuple[int, str, str]]:
    """(level, heading, text) of each section, in order."""
    headings = _outline_headings(lines, outline) if outline else {}
    headings = {i: (1, *h[1:]) if title and h[1] == title else h for i, h in headings.items()}  # (the page's title)
    if not headings:
        headings = {i: (1 if title and line.words == title else 2, line.words) for i, line in enumerate(lines)
                    if _NUMBERED_HEADING.match(line.words) or (title and line.words == title)}
    margin, full = _measures(lines)
    out: list[tuple[int, str, str]] = []
    level, heading, body = 2, "", []
    skip = set()
    for i, line in enumerate(lines):
        if i in skip:
            continue
        if i in headings:
            out.append((level, heading, _paragraphs(body, margin, full)))
            level, heading = headings[i][:2]
            skip.update(headings[i][2:])
            body = []
        else:
            body.append(line)
    out.append((level, heading, _paragraphs(body, margin, full)))
    return [(lvl, h, text) for lvl, h, text in out if text.strip() or h]


def _measures(lines: list[_Line]) -> tuple[int, int]:
    """The text's left margin (the indentation most lines have) and its full width (the 90th percentile)."""
    margin = Counter(line.indent for line in lines if line.text.strip()).most_common(1)
    widths = sorted(len(line.text) for line in lines if line.text.strip())
    return (margin[0][0] if margin else 0), (widths[int(len(widths) * 0.9)] if widths else 0)


def _norm(text: str) -> str:
    return re.sub(r"[^\w]+", " ", text.lower().replace("’", "'")).strip()


_NUMBERING = re.compile(r"(?i)^(?:(?:chapter|appendix|section|part)\s+)?(?:\d+(?:\.\d+)*|[A-Z](?:\.\d+)*)[.:]?\s+")


def _outline_headings(lines: list[_Line], outline) -> dict[int, tuple]:
    """{line index: (level, heading, the index of a line the heading wraps onto …)} for each bookmark found
    as a line of its page (or the next), with or without its number ("7.31 Why doesn't R …" for the
    bookmark "Why doesn't R …"), in the outline's order."""
    found: dict[int, tuple] = {}
    at = 0
    for depth, title, page in outline:
        want = _norm(title)
        if not want:
            continue
        for i in range(at, len(lines)):
            if page is not None and lines[i].page < page:
                continue
            if page is not None and lines[i].page > page + 1:
                break
            match = _as_heading(lines, i, want)
            if match:
                found[i] = (depth + 2, *match)
                at = i + len(match)
                break
    return found


def _as_heading(lines: list[_Line], i: int, want: str) -> tuple | None:
    """(the heading as the page shows it, the index of each line it wraps onto …) where line `i` is the heading
    `want` (normalised), with or without its number ("7.31 …" for the bookmark "Why doesn't R …"), over
    one line or more; None where it is not."""
    for text in (_NUMBERING.sub("", lines[i].words, count=1), lines[i].words):
        shown, key, wraps = lines[i].words, _norm(text), []
        while key != want and want.startswith(key + " ") and len(key) >= 8 and i + len(wraps) + 1 < len(lines):
            more = lines[i + len(wraps) + 1].words
            shown, key = f"{shown} {more}", _norm(f"{key} {more}")
            wraps.append(i + len(wraps))
        if key == want:
            return (shown, *(k + 1 for k in wraps))
    return None


def _paragraphs(lines: list[_Line], margin: int, full: int) -> str:
    """The lines of a section as text: a paragraph's lines joined into one, code and examples line by line,
    list items one per line, a table's rows as "cell | cell"."""
    out: list[str] = []
    open_ = False  # whether the last line of `out` is a paragraph the next line may go on
    block = None  # where the code block the line is in starts
    rows = _table_rows(lines)
    for k, line in enumerate(lines):
        text = line.words
        if not text:
            open_ = False
            if out and out[-1]:
                out.append("")
            continue
        if k in rows:
            out.append(" | ".join(rows[k]))
            open_ = False
            continue
        step = line.indent - margin
        block = block if block is not None and k and lines[k - 1].indent - margin > 4 else None
        previous = lines[k - 1] if k else None
        deeper = line.indent > previous.indent if previous else step > 0  # (a block set in goes on at its indent)
        item = open_ and bool(_BULLET.match(out[-1]))  # a list item's next line, indented to its text or not
        page_break = previous is not None and previous.page != line.page
        goes_on = open_ and not _BULLET.match(text) and (not deeper or item) and not page_break or (
            open_ and page_break and not text.isupper() and not _BULLET.match(text)  # (a page's header: "ACME")
            and (not _ENDS_SENTENCE.search(out[-1]) or text[:1].islower()))  # a sentence goes on over the break
        if open_ and _HYPHENATED.search(out[-1]) and text[:1].islower():
            out[-1] = out[-1][:-1] + text
        elif goes_on:
            out[-1] += text if _URL_CUT.search(out[-1]) else f" {text}"
        elif step > 4 and (len(line.text) < 0.75 * full or not _reads_as_prose(text)):
            # code, an example, a quotation set off: as it is, indented as in its block (an indented paragraph's
            # first line runs to the margin, in words)
            base = min(ln.indent for ln in lines[block:k + 1] if ln.text.strip()) if block is not None else line.indent
            block = k if block is None else block
            out.append(" " * (line.indent - base) + text)
            open_ = False
            continue
        else:
            out.append("- " + text[1:].strip() if text[0] in "•◦▪–" else text)
        short = len(line.text) < 0.6 * full or len(line.text) < 0.85 * full and _ENDS_SENTENCE.search(text)
        open_ = not short or bool(_HYPHENATED.search(text))  # (a paragraph does not end in half a word)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


_PLAIN = re.compile(r"[(‘“\"']?[A-Za-z][a-z'’-]*[”’\"',.;:!?)]*")


def _reads_as_prose(text: str) -> bool:
    """Running text: six words or more, nearly all of them plain words (code has names, marks and numbers)."""
    words = text.split()
    return len(words) >= 6 and sum(bool(_PLAIN.fullmatch(w)) for w in words) >= 0.8 * len(words)


def _table_rows(lines: list[_Line]) -> dict[int, list[str]]:
    """{line index: cells} of the lines that are rows of a table: two or more consecutive lines whose
    cells (text set apart by three spaces or more) start at the same columns, two cells or more."""
    def cells(line: _Line) -> list[tuple[int, str]]:
        gaps = [len(g) for g in re.findall(r"(?<=\S) +(?=\S)", line.text.strip())]
        if sum(g > 1 for g in gaps) >= 3 and sum(g > 1 for g in gaps) * 2 >= len(gaps):
            return []  # justified text: its words spread over the line, not cells
        parts = [(m.start(), m.group()) for m in re.finditer(r"\S+(?: {1,2}\S+)*", line.text)]
        if any(not re.match(r"[\w(\"'‘“€$£+-]", cell) for _, cell in parts):
            return []  # code set in columns ("year   =  YEAR,"), not a table
        return parts if len(parts) >= 2 else []

    out: dict[int, list[str]] = {}
    run: list[int] = []

    def close() -> None:
        if len(run) >= 2:
            out.update({k: [c for _, c in cells(lines[k])] for k in run})

    columns: set[int] | None = None
    for k, line in enumerate(lines):
        parts = cells(line)
        starts = {s for s, _ in parts[1:]}
        near = {s + d for s in columns or () for d in range(-3, 4)}  # (layout mode places a proportional font's text
        if parts and columns is not None and starts and starts <= near:  # a column or two either way)
            run.append(k)
            continue
        close()
        run, columns = ([k], starts) if parts else ([], None)
    close()
    return out
