"""Turn one file's bytes into title, sections and metadata. One function per format.

Each parser raises `ParseError` with a reason a person can act on; the connector records it as
a failure and carries on with the other files.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import yaml

from connectors.base import Section, fenced, next_fence


class ParseError(Exception):
    pass


@dataclass
class Parsed:
    sections: list[Section]
    title: str | None = None
    updated_at: datetime | None = None
    meta: dict[str, str] = field(default_factory=dict)
    acl: tuple[str, ...] | None = None
    navigation: bool = False  # the page had only navigation (link lists): nothing to index, and not an error


def _as_datetime(value) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    text = str(value).strip()
    m = re.match(r"D:(\d{4})(\d{2})?(\d{2})?", text)  # PDF dates: D:20260314...
    if m:
        return datetime(int(m[1]), int(m[2] or 1), int(m[3] or 1), tzinfo=UTC)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def decode_text(data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise ParseError("binary content in a text file (NUL bytes); rename it or remove it from the folder")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise ParseError("not UTF-8 and no other text encoding fits; save the file as UTF-8")
    return str(best)


class _SectionBuilder:
    """Collects text under the current heading path (h1 › h2 › h3)."""

    def __init__(self):
        self.path: list[tuple[int, str]] = []
        self.lines: list[str] = []
        self.sections: list[Section] = []

    def heading(self, level: int, text: str) -> None:
        self.flush()
        self.path = [(lvl, t) for lvl, t in self.path if lvl < level] + [(level, text.strip())]

    def add(self, text: str) -> None:
        self.lines.append(text)

    def flush(self) -> None:
        body = "\n".join(self.lines).strip()
        body = re.sub(r"\n{3,}", "\n\n", body)
        if body:
            # The page title (h1) is prefixed to every chunk anyway; the heading names the section.
            names = [t for lvl, t in self.path if lvl > 1] or [t for _, t in self.path]
            self.sections.append(Section(" › ".join(names), body))
        self.lines = []


def parse_markdown(text: str) -> Parsed:
    meta: dict = {}
    m = re.match(r"\A---\s*\n(.*?)\n---\s*\n", text, re.S)
    if m:
        try:
            meta = yaml.safe_load(m.group(1)) or {}
        except yaml.YAMLError as e:
            raise ParseError(f"front matter is not valid YAML ({e.__class__.__name__}); fix the block between ---") from e
        if not isinstance(meta, dict):
            meta = {}
        text = text[m.end():]
    b = _SectionBuilder()
    title = meta.get("title")
    fence: str | None = None
    for line in _unwrapped(text):
        after = next_fence(fence, line)
        h = None if fence or after else re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if h:
            level = len(h.group(1))
            if level == 1 and not title:
                title = h.group(2)
            b.heading(level, h.group(2))
        else:
            b.add(line)
        fence = after
    b.flush()
    acl = meta.get("acl")
    return Parsed(
        sections=b.sections,
        title=str(title) if title else None,
        updated_at=_as_datetime(meta.get("updated") or meta.get("updated_at") or meta.get("date")),
        meta={k: str(v) for k, v in meta.items() if k in ("owner", "status", "superseded_by")},
        acl=tuple(str(a) for a in acl) if isinstance(acl, list) else None,
    )


def _unwrapped(text: str) -> list[str]:
    """The lines of a Markdown page with each paragraph on one line, as Markdown shows it: a README wrapped at
    80 columns otherwise reads as one "sentence" per line ("If you build from a Git tree, you have to install
    Autotools and start"), and a quote would stop where the line does. A hard break (two spaces or a backslash
    at a line's end) stays a line break; code, tables, lists and quotations keep their lines (a list item's or a
    quotation's own paragraph is joined, without the indentation or the ">" of its next lines)."""
    from markdown_it import MarkdownIt

    lines = text.splitlines()
    joined: dict[int, tuple[int, str]] = {}  # first line -> (lines it takes, the paragraph as one line)
    for token in MarkdownIt("commonmark").enable("table").parse(text):
        if token.type != "paragraph_open" or not token.map or token.map[1] - token.map[0] < 2:
            continue
        start, end = token.map
        out = lines[start]
        for k in range(start + 1, end):
            if lines[k - 1].endswith(("  ", "\\")):
                break  # a hard break: the paragraph's lines as they are
            rest = lines[k].strip()
            if lines[start].lstrip().startswith(">"):
                rest = re.sub(r"^>\s?", "", rest)
            out = f"{out.rstrip()} {rest}"
        else:
            joined[start] = (end - start, out)
    result, k = [], 0
    while k < len(lines):
        taken, line = joined.get(k, (1, lines[k]))
        result.append(line)
        k += taken
    return result


_UNDERLINE = re.compile(r"\s*(=+|-+|~+)\s*")  # "Introduction" / "------------": a heading in plain text
_TEXT_BULLET = re.compile(r"\s*(?:[-*+•]|\d{1,2}[.)]|\(?[a-z][.)])\s+\S")
_LAID_OUT = re.compile(r"\S(?: {3,}|\t)\S|[\u2500-\u257f|]")  # columns set with spaces or tabs, a box drawn
_TEXT_WORD = re.compile(r"[(‘“\"'*`]?[A-Za-z][\w'’-]*[”’\"'`,.;:!?)]*")  # a word of running text ("`filter`")


def _reads_as_text(line: str) -> bool:
    """A line of running text (a list item's marker aside): five words or more, most of them plain words."""
    words = _TEXT_BULLET.sub("", line, count=1).split() if _TEXT_BULLET.match(line) else line.split()
    return len(words) >= 5 and sum(bool(_TEXT_WORD.fullmatch(w)) for w in words) >= 0.7 * len(words)


def parse_text(text: str) -> Parsed:
    """A plain-text file as it reads: sections under its underlined headings ("TRIGGERS" / "========" names
    the page, "Concepts" / "--------" a section), and a paragraph wrapped at 72 or 80 columns on one line
    (`_unwrapped_text`)."""
    lines = text.splitlines()
    b, body, title = _SectionBuilder(), [], None
    k = 0
    while k < len(lines):
        line, under = lines[k], lines[k + 1] if k + 1 < len(lines) else ""
        mark = _UNDERLINE.fullmatch(under)
        if line.strip() and mark and len(under.strip()) >= max(3, len(line.strip()) // 2):
            b.add(_unwrapped_text(body))
            body = []
            level = 1 if mark.group(1)[0] == "=" and title is None else 2
            title = title or (line.strip() if level == 1 else None)
            b.heading(level, line.strip())
            k += 2
            continue
        body.append(line)
        k += 1
    b.add(_unwrapped_text(body))
    b.flush()
    return Parsed(sections=b.sections, title=title)


def _unwrapped_text(lines: list[str]) -> str:
    """Plain text with each paragraph (lines between blank ones) on one line, a list's items one per line,
    where the paragraph reads as running text; anything laid out (code, a table set with spaces, a diagram)
    as it is."""
    out: list[str] = []
    block: list[str] = []

    def flush() -> None:
        if block and _reads_as_text(block[0]) and not any(_LAID_OUT.search(line.strip()) for line in block):
            for line in block:
                if out and out[-1].strip() and line is not block[0] and not _TEXT_BULLET.match(line):
                    out[-1] = f"{out[-1].rstrip()} {line.strip()}"
                else:
                    out.append(line.rstrip())
        else:
            out.extend(block)
        block.clear()

    for line in lines:
        if line.strip():
            block.append(line)
        else:
            flush()
            out.append(line)
    flush()
    return "\n".join(out)


_BOILERPLATE = ["script", "style", "nav", "header", "footer", "aside", "noscript", "form", "svg"]
_BLOCKS = ("h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "pre", "table", "dt", "dd", "blockquote")
_CELL_BLOCKS = _BLOCKS + ("div", "td", "th", "tr")  # what a cell or a heading can hold that a browser sets apart
_LINE_BREAK = "\ue000"  # a <br>, kept apart from the source's own newlines (which HTML collapses)
_ANCHOR_MARKS = {"¶", "§", "#", "🔗", "link"}  # a heading's or definition's permalink (Sphinx, MkDocs, GitHub)


def _text_nodes(root):
    """The text under `root` a reader sees: no comments, doctypes or processing instructions."""
    from bs4 import CData, NavigableString

    return (s for s in root.find_all(string=True) if type(s) in (NavigableString, CData))


def _one_line(el) -> str:
    """A heading's or a cell's text on one line, as a browser shows it: inline elements join without a
    space ("importing <code>DJANGO_SETTINGS_MODULE</code>?" is "… DJANGO_SETTINGS_MODULE?"), blocks
    inside it (a cell's paragraphs) and line breaks with one."""
    parts, block = [], None
    for s in _text_nodes(el):
        owner = next((p for p in s.parents if p is el or p.name in _CELL_BLOCKS), el)
        if owner is not block and parts:
            parts.append(" ")
        parts.append(str(s).replace(_LINE_BREAK, " "))
        block = owner
    return " ".join("".join(parts).split())


def _own_text(root) -> dict[int, list[str]]:
    """Each text node under `root`, given to its nearest block element (paragraph, list item, cell's
    table…): a block's own text leaves out what its nested blocks say, so nothing is read twice (a list
    item holding a nested list, a definition holding paragraphs)."""
    owned: dict[int, list[str]] = {}
    for s in _text_nodes(root):
        for parent in s.parents:
            if parent.name in _BLOCKS:
                owned.setdefault(id(parent), []).append(str(s))
                break
            if parent is root:
                break
    return owned


def _words(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def _is_link_list(lst, min_items: int = 10) -> bool:
    """A long list whose items are nothing but links to pages (a table of contents, a site map, a "pages
    in this category" box): navigation. Each linked page is indexed on its own; its title in a list
    answers nothing, yet it matches every question about the page, ahead of the page itself. Short lists
    ("see also", a team's members) and lists of e-mail or phone links stay: they can be the answer."""
    items = lst.find_all("li")
    if len(items) < min_items:
        return False
    own: dict[int, list[str]] = {}
    linked: dict[int, list[str]] = {}
    for s in _text_nodes(lst):
        in_link = False
        for parent in s.parents:
            if parent.name == "a" and not str(parent.get("href", "")).lower().startswith(("mailto:", "tel:")):
                in_link = True
            elif parent.name == "li":
                own.setdefault(id(parent), []).append(s)
                if in_link:
                    linked.setdefault(id(parent), []).append(s)
                break
    pure = 0
    for li in items:
        words = _words("".join(own.get(id(li), ())))
        pure += bool(words) and words == _words("".join(linked.get(id(li), ())))
    return pure >= 0.9 * len(items)


def _is_contents(lst, anchors: set[str]) -> bool:
    """A page's own table of contents: a list of two links or more to places on the page itself (`anchors`), each
    numbered, with nothing else in it ("1.1. How do you pronounce “Valgrind”?", as DocBook writes a FAQ's). Each
    entry's section follows on the page; its title in a list answers nothing, yet matches every question about it,
    ahead of the section. A list of links without numbers ("the following flags: RWF_HIPRI, RWF_NOWAIT") says
    something and stays."""
    inside = [a for a in lst.find_all("a", href=True) if "#" in a["href"] and a["href"].split("#", 1)[1] in anchors]
    if len(inside) < 2:
        return False
    ids = {id(a) for a in inside}
    rest = [str(s) for s in _text_nodes(lst) if not any(id(p) in ids for p in s.parents)]
    numbers = "".join(rest).replace(_LINE_BREAK, " ")
    return re.fullmatch(r"[\d.,:()\s-]*", numbers) is not None and len(re.findall(r"\d+", numbers)) >= len(inside)


_SITE_SEPARATOR = re.compile(r"\s+[—–|·»:-]\s+\S")


def _without_site_name(title: str, h1: str) -> str:
    """A page's <title> without the site name most sites add to it ("Programming FAQ — Python 3.11.2
    documentation", "VPN Setup | Acme Wiki"): cut where the page's own <h1> ends, when a separator follows it
    there. Without that confirmation from the h1 the title is kept whole."""
    title_words, h1_words = " ".join(title.split()), " ".join(h1.split())
    if h1_words and title_words.startswith(h1_words) and _SITE_SEPARATOR.match(title_words[len(h1_words):]):
        return h1_words
    return title


def html_soup(text: str):
    """A page read with BeautifulSoup (lxml). XHTML pages (<?xml …?> first, as DocBook writes them) read fine
    as HTML: no warning on the terminal."""
    import warnings

    from bs4 import BeautifulSoup, XMLParsedAsHTMLWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        return BeautifulSoup(text, "lxml")


_HEADING = re.compile(r"h[1-6]")


def _is_layout_table(table) -> bool:
    """A table that lays a page out rather than holding data: marked so (role="presentation"), or holding a
    heading or another table. DocBook writes a FAQ (its qandaset) as one: each chapter's heading, question and
    answer in rows of one table; read as data, every answer became one "cell | cell" row under the page title."""
    return (table.get("role") in ("presentation", "none") or table.find(_HEADING) is not None
            or table.find("table") is not None)


def _flow(soup, table) -> None:
    """A layout table read as the page it lays out: each cell a block of its own, in order; a question row
    (DocBook's `class="question"`: "1.1. How do you pronounce "Valgrind"?") a heading one level under the
    heading before it, so each question and its answer are a section of their own."""
    for row in [tr for tr in table.find_all("tr") if tr.find_parent("table") is table]:
        if "question" in (row.get("class") or []):
            before = row.find_previous(lambda t: _HEADING.fullmatch(t.name or "") and not t.has_attr("data-question"))
            heading = soup.new_tag(f"h{min(int(before.name[1]) + 1, 6) if before else 2}", attrs={"data-question": ""})
            heading.string = _one_line(row)
            row.replace_with(heading)
            continue
        for cell in row.find_all(["td", "th"], recursive=False):
            cell.name = "p"  # a block: the text it holds outside its own paragraphs is read as one
        row.name = "div"
    for part in [table, *(t for t in table.find_all(["thead", "tbody", "tfoot"]) if t.find_parent("table") is table)]:
        part.name = "div"


def parse_html(text: str, drop: str = "") -> Parsed:
    """`drop`: a CSS selector of more boilerplate to remove (a wiki's edit links, footnote markers)."""
    soup = html_soup(text)
    title = soup.title.get_text(" ", strip=True) if soup.title else None
    meta = {}
    for name in ("owner", "updated", "author", "last-modified"):
        tag = soup.find("meta", attrs={"name": name})
        if tag and tag.get("content"):
            meta[name] = tag["content"]
    for tag in soup(_BOILERPLATE):
        tag.decompose()
    # The page had a table of contents or a list of links taken out: a page of nothing else is empty, not broken. (A
    # page with nothing but its site's bars, an app that draws its text with JavaScript, is "no text found".)
    navigation = any(tag.get_text(strip=True) for tag in soup.select(".toc, .toctree-wrapper"))
    # .navheader/.navfooter: DocBook's Prev / Up / Next bars; .nav-panel: Texinfo's; #sidebar: a theme's side column;
    # .toctree-wrapper: Sphinx's list of a chapter's pages, however short ("1. Embedding Python in Another
    # Application" quoted as the answer to "How can I embed Python into a Windows application?")
    # (Django's docs: its "Last update:" box would be a section under each page's last heading). a.footnote-reference
    # (Sphinx) and a.footnote (DocBook): a footnote's number in the text ("Shell Command Language 7 plus …", "…
    # directory [2]"), which reads as part of the sentence or as a citation; the footnote itself stays.
    for tag in soup.select("[role=navigation], .nav, .navbar, .breadcrumb, .footer, .sidebar, .toc, .navheader, "
                           ".navfooter, .nav-panel, #sidebar, .toctree-wrapper, a.footnote-reference, a.footnote"
                           + (", " + drop if drop else "")):
        tag.decompose()
    anchors = {t["id"] for t in soup.find_all(id=True)} | {t["name"] for t in soup.find_all("a", attrs={"name": True})}
    for lst in soup.find_all(["ul", "ol", "dl"]):
        # (a list inside a dropped one is gone with it)
        if not lst.decomposed and (lst.name != "dl" and _is_link_list(lst) or _is_contents(lst, anchors)):
            lst.decompose()
            navigation = True
    for a in soup.find_all("a"):
        if a.get_text(strip=True) in _ANCHOR_MARKS:
            a.decompose()
    for br in soup.find_all("br"):
        br.replace_with(_LINE_BREAK)
    for table in soup.find_all("table"):
        if not table.decomposed and _is_layout_table(table):
            _flow(soup, table)
    root = soup.find("main") or soup.find("article") or soup.body or soup
    h1 = root.find("h1")
    if h1:
        page = h1.get_text(" ", strip=True)
        title = _without_site_name(title, page) if title else page
    owned = _own_text(root)
    b = _SectionBuilder()
    bullet = None  # a list item whose text is all in its paragraphs: the first of them gets its "- "
    # A definition's term written as a label ("0-99:", "Eligible:"), and its definition: the term opens the
    # definition's first paragraph, so that a chunk boundary never parts them ("100-999:" ended one chunk of Debian
    # Policy's UID classes, "Dynamically allocated system users …" began the next). A term with no colon (a
    # function's signature, a glossary's word) stays a line of its own.
    label = None
    for el in root.find_all(_BLOCKS):
        if el.name != "table" and el.find_parent("table"):
            continue  # the table reads its cells row by row
        if el.name[0] == "h" and el.name[1:].isdigit():
            b.heading(int(el.name[1]), _one_line(el))
        elif el.name == "table":
            trs = el.find_all("tr")
            rows = [tr.find_all(["th", "td"]) for tr in trs]
            header = bool(trs) and (all(c.name == "th" for c in rows[0]) or trs[0].find_parent("thead") is not None)
            _add_table(b, [[_one_line(c) for c in row] for row in rows], header)
        elif el.name == "pre":
            # a code block as a Markdown page writes one: its lines are code or a command's output, never
            # sentences ("$ lsb_release -a" / "No LSB modules are available."), and stay together
            code = el.get_text().replace(_LINE_BREAK, "\n").strip("\n").rstrip()
            if code.strip():
                b.add(fenced(code))
        else:
            # HTML collapses whitespace: a paragraph hard-wrapped in the source is one line of text. Inline
            # elements join without a space ("os.<b>getenv</b>()"), as a browser shows them.
            parts = "".join(owned.get(id(el), ())).split(_LINE_BREAK)
            line = "\n".join(t for t in (" ".join(part.split()) for part in parts) if t)
            if el.name == "li" and not line:
                bullet = el
            elif el.name == "dt" and line.endswith(":") and "\n" not in line and \
                    getattr(definition := el.find_next_sibling(), "name", None) == "dd":
                label = (line, definition)
            elif line:
                if label is not None and (el is label[1] or label[1] in el.parents):
                    line = f"{label[0]} {line}"
                label = None
                dash = el.name == "li" or (bullet is not None and bullet in el.parents)
                bullet = None if dash else bullet
                b.add(("- " if dash else "") + line)
    b.flush()
    return Parsed(sections=b.sections, title=title, updated_at=_as_datetime(meta.get("updated") or
                                                                                  meta.get("last-modified")),
                  meta={k: v for k, v in meta.items() if k == "owner"},
                  navigation=navigation and not any(sec.text.strip() for sec in b.sections))


def parse_pdf(data: bytes) -> Parsed:
    """A PDF as sections under its own headings, its paragraphs whole (`connectors.files.pdf`)."""
    from connectors.files.pdf import read_pdf

    title, sections, running, updated = read_pdf(data)
    b = _SectionBuilder()
    for level, heading, text in sections:
        if heading:
            b.heading(level, heading)
        b.add(text)
    if running:  # said once, at the end, instead of once per page in the middle of a section
        b.heading(2, "Document details")
        for line in running:
            b.add(line)
    b.flush()
    return Parsed(sections=b.sections, title=title, updated_at=_as_datetime(updated))


def _add_table(b: _SectionBuilder, rows: list[list[str]], header: bool) -> None:
    """A table's rows as "cell | cell" lines, and under the first, when the page marks it as the header row
    (`header`), a rule, "--- | --- | ---" as under a Markdown table's header: a quote reads each row with the header
    (`bot.answering.grounding._record`); a table with no header row marked gets none."""
    for k, cells in enumerate(rows):
        if any(cells):
            b.add(" | ".join(cells))
            if k == 0 and header and len(rows) > 1 and len(cells) > 1:
                b.add(" | ".join(["---"] * len(cells)))
    b.add("")


def _docx_header_row(row) -> bool:
    """A Word table's first row is its header when Word marks it so ("Repeat as header row") or all its text is
    bold, as a header row is typed."""
    from docx.oxml.ns import qn

    if row._tr.trPr is not None and row._tr.trPr.find(qn("w:tblHeader")) is not None:
        return True
    runs = [r for cell in row.cells for p in cell.paragraphs for r in p.runs if r.text.strip()]
    return bool(runs) and all(r.bold for r in runs)


def parse_docx(data: bytes) -> Parsed:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, OSError) as e:
        raise ParseError(f"the DOCX cannot be opened ({type(e).__name__}); re-save it from Word") from e
    props = document.core_properties
    b = _SectionBuilder()
    title = props.title or None
    # Walk paragraphs and tables in document order.
    body = document.element.body
    for child in body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            para = docx.text.paragraph.Paragraph(child, document)
            style = (para.style.name if para.style is not None else "") or ""
            text = para.text.strip()
            if not text:
                continue
            m = re.match(r"Heading (\d)", style)
            if style == "Title":
                title = title or text
                b.heading(1, text)
            elif m:
                b.heading(int(m.group(1)) + 1 if title else int(m.group(1)), text)
            else:
                b.add(("- " if "List" in style else "") + text)
        elif tag == "tbl":
            table = docx.table.Table(child, document)
            rows = list(table.rows)
            _add_table(b, [[c.text.strip() for c in row.cells] for row in rows],
                       bool(rows) and _docx_header_row(rows[0]))
    b.flush()
    return Parsed(sections=b.sections, title=title, updated_at=_as_datetime(props.modified),
                  meta={"owner": props.author} if props.author else {})


TEXT_PARSERS = {".md": parse_markdown, ".markdown": parse_markdown, ".txt": parse_text,
                ".html": parse_html, ".htm": parse_html}
BINARY_PARSERS = {".pdf": parse_pdf, ".docx": parse_docx}
SUPPORTED = frozenset(TEXT_PARSERS) | frozenset(BINARY_PARSERS)


def parse(suffix: str, data: bytes) -> Parsed:
    suffix = suffix.lower()
    if suffix in BINARY_PARSERS:
        return BINARY_PARSERS[suffix](data)
    if suffix in TEXT_PARSERS:
        return TEXT_PARSERS[suffix](decode_text(data))
    raise ParseError(f"unsupported file type {suffix!r}")
