"""Makers of real files in formats the files connector reads (PDF, DOCX), for tests."""

from __future__ import annotations

from pathlib import Path

Line = str | tuple[float, str] | tuple[float, str, float] | list[tuple[float, str]]


def write_pdf(path: Path, lines: list[Line], title: str | None = None,
              more_pages: list[list[Line]] = (), outline: list[tuple[str, int, int]] = ()) -> Path:
    """A valid PDF whose text layer holds `lines` on page 1 and each of `more_pages` on a page of its
    own (Helvetica 11, one line each, 14 points apart). A line is its text, (indent in points, text),
    (indent, text, font size), or a table row: [(x in points from the margin, cell text), …]; "" is an
    empty line. `outline`: bookmarks as (title, page index, depth), depth 1 under the last depth 0."""
    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    def placed(k: int, line: Line) -> list[str]:
        cells = line if isinstance(line, list) else [line if isinstance(line, tuple) else (0, line)]
        return [f"/F1 {size:g} Tf 1 0 0 1 {72 + x:g} {760 - 14 * k} Tm ({esc(text)}) Tj"
                for x, text, size in ((*cell, 11)[:3] for cell in cells) if text]

    pages = [lines, *more_pages]
    # objects: 1 catalog, 2 pages, 3 font, then per page: page, contents; then info
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", None,
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for page_lines in pages:
        ops = ["BT", "/F1 11 Tf"]
        ops += [op for k, line in enumerate(page_lines) for op in placed(k, line)]
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        page_no, contents_no = len(objects) + 1, len(objects) + 2
        kids.append(b"%d 0 R" % page_no)
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >>"
                       b" /Contents %d 0 R >>" % contents_no)
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects[1] = b"<< /Type /Pages /Kids [" + b" ".join(kids) + b"] /Count %d >>" % len(pages)
    if title:
        objects.append(b"<< /Title (" + esc(title).encode("latin-1") + b") /ModDate (D:20260301000000Z) >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    trailer = b"<< /Size %d /Root 1 0 R" % (len(objects) + 1)
    if title:
        trailer += b" /Info %d 0 R" % len(objects)
    out += b"trailer\n" + trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref
    path.write_bytes(bytes(out))
    if outline:
        from pypdf import PdfReader, PdfWriter

        writer = PdfWriter(clone_from=PdfReader(path))
        parent = None
        for text, page, depth in outline:
            item = writer.add_outline_item(text, page, parent=parent if depth else None)
            parent = item if depth == 0 else parent
        with path.open("wb") as f:
            writer.write(f)
    return path


def write_docx(path: Path, title: str, sections: list[tuple[str, str]], table: list[list[str]] | None = None,
               bold_header: bool = False) -> Path:
    import docx

    document = docx.Document()
    document.core_properties.title = title
    document.add_heading(title, level=0)
    for heading, text in sections:
        document.add_heading(heading, level=1)
        document.add_paragraph(text)
    if table:
        t = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, cell in enumerate(row):
                if r == 0 and bold_header:
                    t.cell(r, c).paragraphs[0].add_run(cell).bold = True
                else:
                    t.cell(r, c).text = cell
    document.save(path)
    return path
