from pathlib import Path

import pytest

from connectors.base import ConnectorFailure, SourceDocument, SourceUnavailable
from connectors.files import FilesConnector
from connectors.files.connector import DEFAULT_EXCLUDE
from connectors.files.parsers import parse_docx, parse_html, parse_markdown
from tests.fakes.documents import write_docx, write_pdf


def read_all(connector) -> tuple[dict[str, SourceDocument], list[ConnectorFailure]]:
    docs, failures = {}, []
    for batch in connector.load():
        for item in batch:
            if isinstance(item, ConnectorFailure):
                failures.append(item)
            else:
                docs[item.metadata["path"]] = item
    return docs, failures


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "hr").mkdir()
    (tmp_path / "hr" / "leave.md").write_text(
        "---\ntitle: Leave Policy\nowner: People\nupdated: 2026-04-01\n---\n# Leave Policy\nIntro.\n"
        "## Parental leave\nSixteen weeks, fully paid.\n### Toronto\nOntario top-up applies.\n"
        "```\n# not a heading\n```\n"
    )
    (tmp_path / "it.html").write_text(
        "<html><head><title>VPN Guide</title><meta name='updated' content='2026-02-02'></head><body>"
        "<nav>Home | Wiki | Login</nav><main><h1>VPN Guide</h1><h2>Install</h2><p>Import acme-vpn.conf.</p>"
        "<table><tr><th>OS</th><th>Client</th></tr><tr><td>macOS</td><td>WireGuard</td></tr></table>"
        "</main><footer>© Acme intranet</footer></body></html>"
    )
    write_pdf(tmp_path / "policy.pdf", ["Security Policy", "1. Passwords", "Use at least 14 characters."],
              title="Security Policy")
    write_docx(tmp_path / "floor.docx", "Floor Guide", [("Kitchen", "The kitchen is on level 2.")],
               table=[["Room", "Level"], ["Atlas", "3"]])
    (tmp_path / "notes.txt").write_text("Plain notes about parking.")
    (tmp_path / ".hidden.md").write_text("secret draft")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    return tmp_path


def test_reads_every_supported_format_with_titles_and_sections(folder):
    docs, failures = read_all(FilesConnector("wiki", folder))
    assert failures == []
    assert set(docs) == {"hr/leave.md", "it.html", "policy.pdf", "floor.docx", "notes.txt"}
    leave = docs["hr/leave.md"]
    assert leave.id == "wiki:hr/leave.md"
    assert leave.title == "Leave Policy"
    assert leave.updated_at.date().isoformat() == "2026-04-01"
    assert [s.heading for s in leave.sections] == ["Leave Policy", "Parental leave", "Parental leave › Toronto"]
    assert "# not a heading" in leave.sections[-1].text
    html = docs["it.html"]
    assert html.title == "VPN Guide"
    assert "Home | Wiki" not in html.text and "©" not in html.text  # boilerplate dropped
    assert "macOS | WireGuard" in html.text
    pdf = docs["policy.pdf"]
    assert pdf.title == "Security Policy" and "14 characters" in pdf.text
    assert any(s.heading == "1. Passwords" for s in pdf.sections)
    docx = docs["floor.docx"]
    assert docx.title == "Floor Guide"
    assert any(s.heading == "Kitchen" and "level 2" in s.text for s in docx.sections)
    assert "Atlas | 3" in docx.text
    assert docs["notes.txt"].title == "Notes"


def test_ids_are_stable_and_urls_use_the_configured_base(folder):
    c = FilesConnector("wiki", folder, base_url="https://wiki.acme.example/")
    docs, _ = read_all(c)
    assert docs["hr/leave.md"].url == "https://wiki.acme.example/hr/leave.md"
    assert read_all(c)[0]["hr/leave.md"].content_hash == docs["hr/leave.md"].content_hash
    assert c.list_ids() == {f"wiki:{p}" for p in docs}


def test_bad_files_are_recorded_failures_and_the_rest_still_load(folder):
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf")
    (folder / "binary.md").write_bytes(b"\x00\x01\x02 not text")
    (folder / "latin1.md").write_bytes("# Café\nLe café est au rez-de-chaussée, près de l'entrée principale.".encode("cp1252"))
    (folder / "empty.docx").write_bytes(b"PK\x03\x04 not a zip")
    (folder / "huge.txt").write_bytes(b"x" * 300_000)
    docs, failures = read_all(FilesConnector("wiki", folder, max_file_bytes=200_000))
    reasons = {Path(f.item).name: f.reason for f in failures}
    assert set(reasons) == {"broken.pdf", "binary.md", "empty.docx", "huge.txt"}
    assert "PDF" in reasons["broken.pdf"]
    assert "binary" in reasons["binary.md"]
    assert "limit" in reasons["huge.txt"] and "max_file_mb" in reasons["huge.txt"]
    assert "café" in docs["latin1.md"].text  # decoded, not mangled
    assert "hr/leave.md" in docs


def test_missing_folder_makes_the_whole_source_unavailable(tmp_path):
    with pytest.raises(SourceUnavailable, match="does not exist"):
        list(FilesConnector("wiki", tmp_path / "nope").load())


def test_front_matter_acl_marks_a_document_private(tmp_path):
    (tmp_path / "salaries.md").write_text("---\ntitle: Salary bands\nacl: [C_LEADS]\n---\nBands.")
    docs, _ = read_all(FilesConnector("wiki", tmp_path, acl=("C_ALL",)))
    assert docs["salaries.md"].acl == ("C_LEADS",)


def test_pdf_running_footers_are_said_once_not_inside_every_section(tmp_path):
    footer = "Policy SEC-9 | Owner: Security Team | Page {} of 3"
    write_pdf(tmp_path / "travel.pdf", ["Travel Security", "1. Laptops", "Keep the laptop in hand luggage.",
                                        footer.format(1)], title="Travel Security",
              more_pages=[["Never check it in.", "2. Hotels", "Use the room safe.", footer.format(2)],
                          ["3. Wi-Fi", "Use AcmeTunnel on hotel Wi-Fi.", footer.format(3)]])
    docs, failures = read_all(FilesConnector("wiki", tmp_path))
    assert not failures
    sections = {s.heading: s.text for s in docs["travel.pdf"].sections}
    # the section that runs across the page break stays one piece of text, without the footer inside
    assert sections["1. Laptops"] == "Keep the laptop in hand luggage.\nNever check it in."
    assert not any("Page" in text for text in sections.values())
    # the footer's facts are kept once, without the page number
    assert sections["Document details"] == "Policy SEC-9 | Owner: Security Team"


def test_exclude_patterns_skip_files_and_folders(tmp_path):
    (tmp_path / "README.md").write_text("# About this folder\nNot a wiki page.")
    (tmp_path / "drafts").mkdir()
    (tmp_path / "drafts" / "new.md").write_text("# Draft\nunfinished")
    (tmp_path / "leave.md").write_text("# Leave\n25 days.")
    connector = FilesConnector("wiki", tmp_path, exclude=(*DEFAULT_EXCLUDE, "README.md", "drafts"))
    docs, _ = read_all(connector)
    assert set(docs) == {"leave.md"}
    assert connector.list_ids() == {"wiki:leave.md"}  # so the skipped files are deleted from the index too


def test_html_nested_blocks_are_read_once_as_a_browser_shows_them():
    # Sphinx, MkDocs and wiki HTML: nested lists, definitions holding paragraphs, permalink marks, inline
    # code. Each text must be indexed once: a nested list read again by every enclosing item made the
    # Python docs' contents page 2,384 chunks of repeated headings, and an API entry said everything twice.
    from connectors.files.parsers import parse_html

    html = """<html><body><main><h1>os</h1>
    <h2>Process Parameters<a class="headerlink" href="#p">¶</a></h2>
    <ul><li><a href="a.html">What’s New</a><ul><li><a href="b.html">Summary</a></li>
      <li><p>Item with a paragraph</p></li></ul></li></ul>
    <dl class="py function"><dt><code>os.</code><code>getenv</code>(<em>key</em>)<a class="headerlink" href="#g">¶</a></dt>
    <dd><p>Return the value of the environment variable <em>key</em>.</p><p>Availability: Unix.</p></dd></dl>
    <p>First line<br>second line, hard-wrapped
    in the source</p>
    </main></body></html>"""
    parsed = parse_html(html)
    text = "\n".join(s.text for s in parsed.sections)
    assert [s.heading for s in parsed.sections] == ["Process Parameters"]  # no "¶"
    assert text.count("Summary") == 1 and text.count("What’s New") == 1 and text.count("Item with") == 1
    assert text.count("Return the value of the environment variable key.") == 1
    assert text.count("Availability: Unix.") == 1
    assert "os.getenv(key)" in text and "¶" not in text
    assert "First line\nsecond line, hard-wrapped in the source" in text


def test_a_list_of_links_is_navigation_and_a_page_of_only_links_is_empty_not_broken(tmp_path):
    # A table of contents names every page; indexed, it matched questions ahead of the pages themselves
    # (the Python docs' contents page was the first hit for 21 of 177 FAQ questions).
    toc = "".join(f'<li><a href="p{i}.html">Why does feature {i} behave so?</a></li>' for i in range(12))
    team = "".join(f'<li><a href="/wiki/User:P{i}">Person {i}</a></li>' for i in range(6))
    mail = "".join(f'<li><a href="mailto:desk{i}@example.com">desk{i}@example.com</a></li>' for i in range(12))
    (tmp_path / "contents.html").write_text(f"<html><body><main><h1>Contents</h1><ul>{toc}</ul></main></body></html>")
    (tmp_path / "page.html").write_text(
        "<html><body><main><h1>Page</h1><p>Feature 3 behaves so because of caching.</p>"
        "<ul><li>First, clear the cache</li><li>then <a href='x'>restart</a> the worker</li></ul>"
        f"<h2>See also</h2><ul>{toc}</ul><h2>Team</h2><ul>{team}</ul><h2>Desks</h2><ul>{mail}</ul>"
        "</main></body></html>")
    docs, failures = read_all(FilesConnector("w", tmp_path))
    assert failures == []  # nothing to index, and not an error
    assert docs["contents.html"].text.strip() == ""
    page = docs["page.html"].text
    assert "because of caching" in page and "- then restart the worker" in page  # a list with content stays
    assert "feature 5" not in page
    assert "- Person 5" in page and "- desk11@example.com" in page  # short lists and contacts are content


def test_the_prev_next_bars_of_docbook_and_texinfo_pages_are_not_indexed(tmp_path):
    # DocBook (the Debian FAQ, most Linux manuals) and Texinfo put a table of Prev / Up / Next links, with the
    # neighbouring chapters' titles, above and below every page: indexed, the bars were a section of their own
    # and the end of every page's last section, and an answer quoted "Chapter 4. Compatibility issues |  |
    # Chapter 6. The Debian archives" as if the page said it.
    bar = ('<table summary="Navigation footer"><tr><td><a href="c4.html">Prev</a></td><td><a href="index.html">'
           'Home</a></td><td><a href="c6.html">Next</a></td></tr><tr><td>Chapter 4. Compatibility issues</td>'
           '<td></td><td>Chapter 6. The Debian archives</td></tr></table>')
    (tmp_path / "software.html").write_text(
        f'<html><body><div class="navheader">{bar}</div><div class="chapter"><h1>Chapter 5. Software</h1>'
        '<div class="section"><h2>Where is VoIP software?</h2><p>Two main open protocols are used for Voice Over '
        f'IP: SIP and H.323.</p></div></div><div class="navfooter">{bar}</div></body></html>')
    (tmp_path / "node.html").write_text(
        '<html><body><div class="nav-panel"><p>Next: <a href="n.html">Options</a>, Up: <a href="t.html">Top</a>'
        '</p></div><h2>Invoking</h2><p>Run the program with a file name.</p></body></html>')
    docs, failures = read_all(FilesConnector("w", tmp_path))
    assert failures == []
    page = docs["software.html"]
    assert "SIP and H.323" in page.text
    assert "Compatibility issues" not in page.text and "Debian archives" not in page.text and "Prev" not in page.text
    assert all(s.heading for s in page.sections)  # no section of bar text before the first heading
    node = docs["node.html"].text
    assert "Run the program" in node and "Options" not in node and "Up:" not in node


def test_a_sphinx_chapters_list_of_its_pages_is_not_indexed_however_short():
    # Seen on the Python docs: "How can I embed Python into a Windows application?" was answered "… doing that
    # successfully. Embedding Python in Another Application [2]", a line of the chapter page's list of its pages.
    text = _text(parse_html(
        '<html><body><h1>Extending and Embedding</h1><h2>Embedding the CPython runtime</h2><p>Sometimes it is '
        'desirable to embed the CPython runtime inside a larger application.</p><div class="toctree-wrapper compound">'
        '<ul><li class="toctree-l1"><a class="reference internal" href="embedding.html">1. Embedding Python in Another '
        'Application</a></li><li class="toctree-l1"><a href="embedding.html#pure">1.1. Pure Embedding</a></li></ul>'
        '</div><p>See the chapters above.</p></body></html>'))
    assert text == "Sometimes it is desirable to embed the CPython runtime inside a larger application.\nSee the chapters above."
    # a chapter page of nothing but its list is empty, not broken (its pages are indexed on their own)
    index = parse_html('<html><body><h1>FAQ</h1><div class="toctree-wrapper compound"><ul><li><a href="general.html">'
                       'General Python FAQ</a></li></ul></div></body></html>')
    assert index.navigation and not any(s.text.strip() for s in index.sections)


def test_a_footnotes_number_is_not_read_into_the_sentence_that_points_to_it():
    # Seen on the Debian Policy (Sphinx): "Scripts may assume that /bin/sh implements the POSIX.1-2017 Shell Command
    # Language 7 plus …" and "3 This includes modifications …" were quoted; the Debian FAQ (DocBook) puts "[2]" after
    # a word, which reads as one of the bot's own citations. The footnote's text is kept.
    sphinx = _text(parse_html('<html><body><h2>Scripts</h2><p>Scripts may assume that /bin/sh implements the '
                              'Shell Command Language<a class="footnote-reference brackets" href="#id8" id="id3">7'
                              '</a> plus these features.</p><dl class="footnote brackets"><dt class="label" id="id8">'
                              '7</dt><dd><p>Single UNIX Specification, version 4.</p></dd></dl></body></html>'))
    assert "Shell Command Language plus these features." in sphinx
    assert "Single UNIX Specification" in sphinx
    docbook = _text(parse_html('<html><body><h2>What is in the pool?</h2><p>Packages are kept in a large pool'
                               '<a class="footnote" href="#ftn.idm8" id="idm8"><sup class="footnote">[2]</sup></a>.'
                               '</p><div class="footnote"><p><a class="para" href="#idm8"><sup class="para">[2] '
                               '</sup></a>Historically, packages were kept in dists.</p></div></body></html>'))
    assert "Packages are kept in a large pool." in docbook
    assert "Historically, packages were kept in dists." in docbook


def _text(parsed) -> str:
    return "\n".join(s.text for s in parsed.sections)


def test_an_html_pages_preformatted_block_is_read_as_a_code_block():
    # A <pre> (a command's output, a config file) is code whatever its lines look like; MediaWiki and Confluence
    # pages come through here too.
    text = _text(parse_html("<html><body><h2>Version</h2><p>An example run:</p><pre>$ lsb_release -a\n"
                            "No LSB modules are available.\n</pre><p>That is all.</p><pre>\n\n</pre></body></html>"))
    assert text == "An example run:\n```\n$ lsb_release -a\nNo LSB modules are available.\n```\nThat is all."


def test_a_code_block_that_shows_fences_stays_one_block():
    # A page about writing pages shows Markdown inside a longer fence (CommonMark): the inner "```bash" neither
    # ends the block nor makes the shell comment after it ("# install the tools first") a heading of the page.
    md = parse_markdown("# Docs\n\n## Examples\n\nWrite the example so:\n\n````markdown\n```bash\n"
                        "# install the tools first\nmake install\n```\n````\n\nThat is the whole page.\n\n"
                        "## Review\n\nAsk a reviewer.")
    assert [s.heading for s in md.sections] == ["Examples", "Review"]
    assert md.sections[0].text.endswith("# install the tools first\nmake install\n```\n````\n\nThat is the whole page.")
    # an HTML <pre> holding a fence comes in a longer one, so the block closes where the <pre> does
    html = _text(parse_html("<html><body><h2>Examples</h2><p>Write it so:</p><pre>```bash\nmake install\n```</pre>"
                            "<p>That is all.</p></body></html>"))
    assert html == "Write it so:\n````\n```bash\nmake install\n```\n````\nThat is all."


def test_a_docbook_faq_reads_as_one_section_per_question(tmp_path):
    # DocBook writes a FAQ (a qandaset: Valgrind's, many Linux manuals') as one layout table, chapter headings,
    # questions and answers in its rows, after a numbered list of links to them. Read as a data table, the whole FAQ
    # was one section under the page title and every answer one "cell | cell" row; asked "how is valgrind
    # pronounced?", the bot quoted "How To Get Further Assistance | The "Val" as in the word "value"…".
    def entry(anchor, number, question, answer):
        return (f'<tr class="question"><td><a name="{anchor}"></a><b>{number}</b></td><td><b>{question}</b></td></tr>'
                f'<tr class="answer"><td></td><td><p>{answer}</p></td></tr>')

    contents = ('<div class="qandaset"><dl><dt>1. <a href="faq.html#bg">Background</a></dt>'
                '<dd>1.1. <a href="faq.html#say">How do you pronounce "Valgrind"?</a></dd>'
                '<dd>1.2. <a href="#name">Where does the name come from?</a></dd></dl>')
    flags = '<p>It accepts these flags:</p><ul><li><a href="#hipri">HIPRI</a></li><li><a href="#sync">SYNC</a></li></ul>'
    table = ('<table summary="Q and A Div"><tr class="qandadiv"><td colspan="2"><h3><a name="bg"></a>1. Background</h3>'
             '</td></tr>' + entry("say", "1.1.", 'How do you pronounce "Valgrind"?', 'The "Val" as in the word "value".')
             + entry("name", "1.2.", "Where does the name come from?", "From Nordic mythology.")
             + '<tr><td>Option</td><td>Meaning</td></tr></table>')
    (tmp_path / "faq.html").write_text(f'<html><body><h1>Valgrind FAQ</h1>{contents}{table}<h2>Flags</h2>{flags}'
                                       '<dl><dt id="hipri">HIPRI</dt><dd>High priority.</dd><dt id="sync">SYNC</dt>'
                                       '<dd>Synchronous.</dd></dl></div></body></html>')
    (tmp_path / "licenses.html").write_text(  # a page of nothing but the contents of the chapters under it
        '<html><body><h1>Licenses</h1><div class="toc"><dl><dt><a href="gpl.html">1. The GPL</a></dt>'
        '<dt><a href="fdl.html">2. The FDL</a></dt></dl></div></body></html>')
    docs, failures = read_all(FilesConnector("w", tmp_path))
    assert failures == []  # nothing to index, and not an error
    faq = docs["faq.html"]
    sections = {s.heading: s.text.strip() for s in faq.sections}
    assert sections['1. Background › 1.1. How do you pronounce "Valgrind"?'] == 'The "Val" as in the word "value".'
    assert sections["1. Background › 1.2. Where does the name come from?"] == "From Nordic mythology.\nOption\nMeaning"
    assert "|" not in faq.text and "Where does the name" not in faq.text  # no table rows, the contents not indexed
    assert "- HIPRI\n- SYNC" in sections["Flags"]  # links to the page's own places, not numbered: they say something
    # a page with nothing but its site's bars (an app drawing its text with JavaScript) is still "no text found"
    (tmp_path / "app.html").write_text('<html><body><div class="navbar"><a href="/">Home</a> <a href="/faq">FAQ</a>'
                                       '</div><div id="app"></div></body></html>')
    _, failures = read_all(FilesConnector("w", tmp_path))
    assert [f.reason for f in failures] == ["no text found in the file"]


def test_a_heading_or_cell_with_inline_code_and_a_themes_side_column_read_as_a_browser_shows_them(tmp_path):
    # Django's docs (Sphinx, its own theme): a heading holding inline code was cited as "Why do I get an error about
    # importing DJANGO_SETTINGS_MODULE ?" and a table cell read "compressed tar file ( .tar.Z )", a space for every
    # element; and the theme's side column, outside its navigation, put a section "Last update: May 26, 2026" under
    # every page's last heading ("How do I cite Django? › Last update:").
    (tmp_path / "usage.html").write_text(
        '<html><body><div id="bd"><div id="yui-main"><div class="section"><h1>FAQ: Using Django</h1>'
        '<h2>Why do I get an error about importing <code><span class="pre">DJANGO_SETTINGS_MODULE</span></code>?</h2>'
        '<p>Make sure that the module is on <code>sys.path</code>.</p>'
        '<table><tr><th>Format</th><th>Description</th></tr><tr><td><p><code>ztar</code></p></td>'
        '<td><p>compressed tar file (<code>.tar.Z</code>)</p><p>Deprecated.</p></td></tr></table></div></div>'
        '<div class="yui-b" id="sidebar"><div class="sphinxsidebar" role="navigation"><h3>Table of Contents</h3>'
        '</div><h3>Last update:</h3><p class="topless">May 26, 2026</p></div></div></body></html>')
    docs, failures = read_all(FilesConnector("w", tmp_path))
    assert failures == []
    (section,) = docs["usage.html"].sections
    assert section.heading == "Why do I get an error about importing DJANGO_SETTINGS_MODULE?"
    assert "ztar | compressed tar file (.tar.Z) Deprecated." in section.text  # a cell's paragraphs still apart
    assert "Last update" not in docs["usage.html"].text and "2026" not in docs["usage.html"].text


def test_a_definitions_term_written_as_a_label_opens_its_definition():
    # Debian Policy's UID classes are a definition list: "100-999:" ended one chunk and "Dynamically allocated
    # system users and groups …" began the next, the range parted from what it is for.
    parsed = parse_html(
        "<html><body><h1>UID and GID classes</h1><p>The UID and GID numbers are divided into classes as follows:</p>"
        "<dl><dt>0-99:</dt><dd><p>Globally allocated by the Debian project.</p><p>Ask for one.</p></dd>"
        "<dt>100-999:</dt><dd>Dynamically allocated system users and groups.</dd></dl>"
        "<dl><dt id='os.getenv'>os.getenv(key)</dt><dd><p>Return the value of the environment variable key.</p></dd>"
        "</dl></body></html>")
    lines = parsed.sections[0].text.strip().split("\n")
    assert lines[1:4] == ["0-99: Globally allocated by the Debian project.", "Ask for one.",
                          "100-999: Dynamically allocated system users and groups."]
    assert lines[4:] == ["os.getenv(key)", "Return the value of the environment variable key."]  # no label: apart


def test_an_html_pages_title_leaves_out_the_site_name_its_h1_does_not_have():
    # Sphinx, MkDocs and most wikis title every page "<page> — <site>": the site name in every chunk's
    # title is the same words in every passage the embedder reads (and every source line a reply shows).
    from connectors.files.parsers import parse_html

    def title(head: str, h1: str) -> str | None:
        return parse_html(f"<html><head><title>{head}</title></head><body><h1>{h1}</h1><p>Body text.</p>"
                          "</body></html>").title

    assert title("Programming FAQ — Python 3.11.2 documentation",
                 'Programming FAQ<a class="headerlink" href="#x">¶</a>') == "Programming FAQ"
    assert title("VPN Setup | Acme Wiki", "VPN Setup") == "VPN Setup"
    assert title("Toronto Office", "Toronto Office") == "Toronto Office"
    # Kept whole where the h1 does not say where the page's own title ends.
    assert title("git-add(1)", "git-add(1) Manual Page") == "git-add(1)"
    assert title("Release notes - 2024", "Welcome") == "Release notes - 2024"
    assert title("C++ — the basics", "C") == "C++ — the basics"


def test_a_page_that_says_it_was_replaced_names_its_successor_in_every_chunk(tmp_path):
    from retrieval.chunking import chunk_document

    (tmp_path / "finance").mkdir()
    (tmp_path / "finance" / "travel.md").write_text("# Travel\nPremium economy over six hours.\n")
    (tmp_path / "finance" / "travel-2023.md").write_text(
        "---\ntitle: Travel (2023)\nstatus: superseded\nsuperseded_by: finance/travel.md\n---\n"
        "# Travel (2023)\n## Flights\nEconomy only.\n## Hotels\nEUR 150 a night.\n")
    (tmp_path / "finance" / "travel-2021.md").write_text(
        "---\nstatus: archived\nsuperseded_by: ./travel-2023.md\n---\n# Travel (2021)\nBook through the desk.\n")
    (tmp_path / "finance" / "travel-2019.md").write_text(
        "# Travel (2019)\n> **Superseded.** Replaced by the 2021 policy; kept for reference.\n\n## Flights\nAsk.\n")
    (tmp_path / "finance" / "deprecations.md").write_text(  # a note about deprecation is not a notice
        "# Deprecations\nDeprecated since version 3.6: the old form API.\n")
    docs, _ = read_all(FilesConnector("wiki", tmp_path))
    marks = {path: doc.superseded_by for path, doc in docs.items()}
    assert marks == {"finance/travel.md": None, "finance/travel-2023.md": "wiki:finance/travel.md",
                     "finance/travel-2021.md": "wiki:finance/travel-2023.md", "finance/travel-2019.md": "",
                     "finance/deprecations.md": None}
    chunks = chunk_document(docs["finance/travel-2023.md"], lambda t: len(t.split()) + 2)
    assert len(chunks) == 2 and {c.superseded_by for c in chunks} == {"wiki:finance/travel.md"}
    # Marking a page replaced is a change the next sync writes to the index; an unmarked page's hash stays.
    from dataclasses import replace

    old = docs["finance/travel-2023.md"]
    assert replace(old, metadata={"path": "finance/travel-2023.md"}).content_hash != old.content_hash
    current = docs["finance/travel.md"]
    assert replace(current, metadata={}).content_hash == current.content_hash


def _widget_manual(path):
    """A manual laid out as LaTeX and Texinfo lay one out: a contents page, running headers with the page
    number, headings in the outline, justified paragraphs over several lines (a word hyphenated, one
    running over a page break), an indented first line, examples indented further, a table."""
    def header(chapter: str, number: int) -> list:
        return [[(0, chapter), (440, str(number))]]

    return write_pdf(path, [
        "Widget FAQ", "",
        "1 Basics . . . . . . . . . . . . . . . . . . . . . . . . . . . . . . . . . . . . . . 1",
        (18, "1.1 How do I reset a widget? . . . . . . . . . . . . . . . . . . . . . . . . . . 1"),
        (18, "1.2 Why is the light red? . . . . . . . . . . . . . . . . . . . . . . . . . . . 2"),
        "2 Care . . . . . . . . . . . . . . . . . . . . . . . . . . . . . . . . . . . . . . . 3"],
        more_pages=[
            [*header("Chapter 1: Basics", 1), "", "1  Basics", "1.1  How do I reset a widget?",
             "To reset a widget, unplug it from the wall, wait until the status light goes dark and",
             "then hold the reset but-",
             "ton on its back for ten seconds. The light blinks blue three times when the reset is",
             "complete. For example",
             (36, "widgetctl reset --hard"),
             (36, "widgetctl status"),
             (18, "A reset keeps your saved schedules but forgets the Wi-Fi network, so after a reset"),
             "you join the network again from the app, which finds the widget by its serial number"],
            [*header("Chapter 1: Basics", 2), "",
             "printed under the stand.",
             "1.2  Why is the light red?",
             "The light shows the state of the battery, as in this table:",
             [(0, "Light"), (150, "Battery")],
             [(0, "Green"), (150, "Charged")],
             [(0, "Red"), (150, "Below ten percent")]],
            [*header("Chapter 2: Care", 3), "", "2  Care", "Wipe the widget with a dry cloth."]],
        outline=[("1 Basics", 1, 0), ("How do I reset a widget?", 1, 1), ("Why is the light red?", 2, 1),
                 ("2 Care", 3, 0)])


def test_a_pdf_manual_reads_as_paragraphs_under_its_own_headings(tmp_path):
    _widget_manual(tmp_path / "widget-faq.pdf")
    docs, failures = read_all(FilesConnector("wiki", tmp_path))
    assert not failures
    sections = {s.heading: s.text for s in docs["widget-faq.pdf"].sections}
    # the outline's headings, numbered as the page numbers them; no contents page, no running header
    assert list(sections) == ["1 Basics › 1.1 How do I reset a widget?", "1 Basics › 1.2 Why is the light red?",
                              "2 Care"]
    text = "\n".join(sections.values())
    assert ". . ." not in text and "Chapter 1" not in text
    reset = sections["1 Basics › 1.1 How do I reset a widget?"].splitlines()
    # a paragraph is one line: its hyphenated word whole; the indented paragraph goes on over the page break
    assert reset[0] == ("To reset a widget, unplug it from the wall, wait until the status light goes dark and then "
                        "hold the reset button on its back for ten seconds. The light blinks blue three times when "
                        "the reset is complete. For example")
    assert reset[1:3] == ["widgetctl reset --hard", "widgetctl status"]  # the example, line by line
    assert reset[3].startswith("A reset keeps your saved schedules") and reset[3].endswith(
        "which finds the widget by its serial number printed under the stand.")
    # a table's rows, cell by cell
    assert sections["1 Basics › 1.2 Why is the light red?"].splitlines()[1:] == [
        "Light | Battery", "Green | Charged", "Red | Below ten percent"]


def test_a_pdf_paragraph_is_quoted_by_the_sentence_not_by_the_line(tmp_path):
    from bot.answering.grounding import quote

    _widget_manual(tmp_path / "widget-faq.pdf")
    docs, _ = read_all(FilesConnector("wiki", tmp_path))
    section = next(s.text for s in docs["widget-faq.pdf"].sections if s.heading.endswith("reset a widget?"))
    answer = quote("how long do I hold the reset button?", section, 1)
    assert answer.startswith("To reset a widget, unplug it from the wall, wait until the status light goes dark and "
                             "then hold the reset button on its back for ten seconds.")


def test_a_wrapped_markdown_paragraph_is_one_line_code_lists_and_tables_keep_theirs(tmp_path):
    (tmp_path / "README.md").write_text(
        "# libfoo\n\nIf you build from a Git tree, you have to install Autotools and start\n"
        "by generating the configuration files with:\n\n    ./autogen.sh\n    make\n\n"
        "- a list item that is long enough to\n  wrap onto a second line\n- a short one\n\n"
        "> a quotation that also\n> wraps\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        "Jane Doe  \nMaintainer\n\nAcme Ltd\nFloor 2  \nLisbon\n")
    docs, _ = read_all(FilesConnector("wiki", tmp_path))
    assert docs["README.md"].sections[0].text.splitlines() == [
        "If you build from a Git tree, you have to install Autotools and start by generating the configuration "
        "files with:", "", "    ./autogen.sh", "    make", "",
        "- a list item that is long enough to wrap onto a second line", "- a short one", "",
        "> a quotation that also wraps", "", "| a | b |", "|---|---|", "| 1 | 2 |", "",
        "Jane Doe  ", "Maintainer", "", "Acme Ltd", "Floor 2  ", "Lisbon"]


def test_a_pdf_page_in_two_columns_reads_column_by_column(tmp_path):
    left = ["Widgets are small devices that sit on a", "desk and hum quietly while they work. They",
            "need power from the wall and a network", "connection to report their state.", "",
            "Resetting a widget clears its network", "settings but keeps its schedules."]
    right = ["The second column talks about batteries,", "which last for about ten hours when the",
             "widget is charged fully and the light is", "green.", "",
             "Replace the battery every two years, or", "when the light turns red within an hour."]
    write_pdf(tmp_path / "widgets.pdf", [[(0, a), (260, b)] for a, b in zip(left, right, strict=True)])
    docs, _ = read_all(FilesConnector("wiki", tmp_path))
    assert docs["widgets.pdf"].sections[0].text.split("\n\n") == [
        "Widgets are small devices that sit on a desk and hum quietly while they work. They need power from the wall "
        "and a network connection to report their state.",
        "Resetting a widget clears its network settings but keeps its schedules.",
        "The second column talks about batteries, which last for about ten hours when the widget is charged fully "
        "and the light is green.",
        "Replace the battery every two years, or when the light turns red within an hour."]


def test_a_pdf_without_bookmarks_takes_its_headings_from_their_larger_type(tmp_path):
    # A policy exported without an outline and without numbered headings was one section with no heading.
    write_pdf(tmp_path / "expenses.pdf", [
        (0, "Expense Policy", 20), "",
        (0, "Meals with customers", 14),
        "A meal with a customer is paid with the company card, up to EUR 60 a person.", "",
        (0, "Who approves a trip that costs more than", 14), (0, "the travel budget?", 14),
        "Your director approves it in the travel tool before you book.", "",
        (0, "Train or plane", 14),
        "Take the train for any trip under four hours."])
    docs, failures = read_all(FilesConnector("wiki", tmp_path))
    assert not failures
    doc = docs["expenses.pdf"]
    assert doc.title == "Expense Policy"  # the line set largest on the first page, where the PDF names none
    assert [(s.heading, s.text) for s in doc.sections] == [
        ("Meals with customers", "A meal with a customer is paid with the company card, up to EUR 60 a person."),
        ("Who approves a trip that costs more than the travel budget?",
         "Your director approves it in the travel tool before you book."),
        ("Train or plane", "Take the train for any trip under four hours.")]


def test_a_plain_text_file_reads_as_paragraphs_under_its_underlined_headings(tmp_path):
    (tmp_path / "triggers.txt").write_text(
        "TRIGGERS\n========\n\nConcepts\n--------\n\n"
        "A trigger is a facility that allows events caused by one package but of\n"
        "interest to another package to be recorded and processed later.\n\n"
        "There are two kinds of triggers:\n"
        " * Explicit triggers. These can be activated by any program by running\n"
        "   dpkg-trigger from a maintainer script.\n"
        " * File triggers, activated when a matching file is installed.\n\n"
        "   postinst triggered \"<trigger-name> ...\"\n\n"
        "Status      Pending   Awaited\n"
        "  unpacked    never      maybe\n\n"
        "Command line\t\tTrigproc\n--unpack\t\tno\n\n"
        "More precisely, `git pull` runs `git fetch` with the given parameters\n"
        "and then calls `git merge`.\n")
    docs, _ = read_all(FilesConnector("wiki", tmp_path))
    doc = docs["triggers.txt"]
    assert doc.title == "TRIGGERS"
    assert [s.heading for s in doc.sections] == ["Concepts"]
    assert doc.sections[0].text.splitlines() == [
        "A trigger is a facility that allows events caused by one package but of interest to another package to "
        "be recorded and processed later.", "",
        "There are two kinds of triggers:",
        " * Explicit triggers. These can be activated by any program by running dpkg-trigger from a maintainer "
        "script.",
        " * File triggers, activated when a matching file is installed.", "",
        "   postinst triggered \"<trigger-name> ...\"", "",  # code, and a table set with spaces: as they are
        "Status      Pending   Awaited", "  unpacked    never      maybe", "",
        "Command line\t\tTrigproc", "--unpack\t\tno", "",  # (set with tabs)
        "More precisely, `git pull` runs `git fetch` with the given parameters and then calls `git merge`."]


def test_a_table_header_row_the_page_marks_is_read_as_its_header(tmp_path):
    # A quote reads each row with its header ("Outage (P1) — First response: 30 minutes, 24/7"): the header row
    # is the one the page marks, a rule under it as under a Markdown table's.
    html = parse_html("<h1>Support</h1><table><thead><tr><th>Category</th><th>First response</th></tr></thead>"
                      "<tr><td>Outage (P1)</td><td>30 minutes, 24/7</td></tr><tr><td>Hardware</td><td>1 day</td></tr>"
                      "</table><table><tr><th>Lisbon</th><td>08:00</td></tr><tr><th>Pune</th><td>09:00</td></tr></table>")
    assert html.sections[0].text.splitlines() == [
        "Category | First response", "--- | ---", "Outage (P1) | 30 minutes, 24/7", "Hardware | 1 day", "",
        "Lisbon | 08:00", "Pune | 09:00"]  # a first column of <th> is no header row
    thead = parse_html("<table><thead><tr><td>Office</td><td>Opens</td></tr></thead><tr><td>Pune</td><td>09:00</td>"
                       "</tr></table>")
    assert thead.sections[0].text.splitlines()[:2] == ["Office | Opens", "--- | ---"]
    table = [["Room", "Seats"], ["Tejo", "20"], ["Douro", "12"]]
    bold = parse_docx(write_docx(tmp_path / "bold.docx", "Rooms", [], table=table, bold_header=True).read_bytes())
    plain = parse_docx(write_docx(tmp_path / "plain.docx", "Rooms", [], table=table).read_bytes())
    assert "Room | Seats\n--- | ---\nTejo | 20" in "\n".join(s.text for s in bold.sections)
    assert "Room | Seats\nTejo | 20" in "\n".join(s.text for s in plain.sections)
