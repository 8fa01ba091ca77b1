from connectors.base import Section, SourceDocument
from retrieval.chunking import as_read, chunk_document


def doc(*sections: tuple[str, str]) -> SourceDocument:
    return SourceDocument(id="w:d", source="w", title="Expense Policy", url="u",
                          sections=tuple(Section(h, t) for h, t in sections))


def test_every_chunk_fits_the_real_embedder_limit_with_its_prefix(real_embedder):
    long_para = " ".join(f"Receipts for category {i} must be uploaded to Ledgerly within 30 days." for i in range(80))
    table = "\n".join(f"| Item {i} | EUR {i * 10} | needs approval from the budget owner |" for i in range(60))
    chunks = chunk_document(doc(("Receipts", long_para), ("Limits", table), ("Short", "Ask Finance.")),
                            real_embedder.count_tokens, max_tokens=real_embedder.max_tokens)
    assert len(chunks) > 5
    for c in chunks:
        assert real_embedder.count_tokens(c.embedding_text) <= real_embedder.max_tokens == 256
    # nothing lost: every sentence is in some chunk
    joined = " ".join(c.text for c in chunks)
    assert "category 79" in joined and "Item 59" in joined
    assert {c.heading for c in chunks} == {"Receipts", "Limits", "Short"}


def test_chunks_never_cross_a_heading_and_small_paragraphs_are_packed():
    count = lambda t: len(t.split()) + 2  # noqa: E731
    chunks = chunk_document(doc(("A", "one.\n\ntwo.\n\nthree."), ("B", "four.")), count, max_tokens=50)
    assert [(c.heading, c.text) for c in chunks] == [("A", "one.\n\ntwo.\n\nthree."), ("B", "four.")]
    assert [c.id for c in chunks] == ["w:d#0", "w:d#1"]


def test_a_giant_word_is_still_cut_to_fit():
    count = lambda t: len(t) // 4 + 2  # noqa: E731
    chunks = chunk_document(doc(("Blob", "x" * 5000)), count, max_tokens=100)
    assert all(count(c.embedding_text) <= 100 for c in chunks)
    assert sum(len(c.text) for c in chunks) == 5000


def test_a_long_line_is_cut_into_a_few_long_pieces_with_its_words_kept_together():
    # A line with no sentence ends (a table of contents, a log line, a list flattened by a parser) used to
    # come out one word per paragraph: "What’s\n\nNew\n\nin\n\nPython…", useless to read and to search.
    count = lambda t: len(t.split()) + 2  # noqa: E731
    line = " ".join(f"word{i}" for i in range(500))
    chunks = chunk_document(doc(("Contents", line)), count, max_tokens=100, target_tokens=80)
    assert all(count(c.embedding_text) <= 100 for c in chunks)
    assert len(chunks) <= 8
    assert all("\n" not in c.text for c in chunks)
    assert " ".join(c.text for c in chunks) == line


def test_sentences_of_a_long_paragraph_stay_one_paragraph():
    count = lambda t: len(t.split()) + 2  # noqa: E731
    para = " ".join(f"Sentence number {i} is here." for i in range(60))
    chunks = chunk_document(doc(("S", para)), count, max_tokens=60, target_tokens=50)
    assert all("\n" not in c.text for c in chunks)
    assert " ".join(c.text for c in chunks) == para


def test_code_keeps_its_indentation_where_a_section_is_split():
    # Seen in the Python FAQ's delegation example: a method after a blank line came out unindented
    # ("def write(self, s):" at the left margin under "class UpperOut:"), in chunks and in the code a quote brings.
    code = ("class UpperOut:\n\n    def __init__(self, outfile):\n        self._outfile = outfile\n\n"
            "    def write(self, s):\n        self._outfile.write(s.upper())")
    prose = " ".join(f"Sentence {i} says something about delegation." for i in range(12))
    count = lambda t: len(t.split()) + 2  # noqa: E731
    chunks = chunk_document(doc(("Delegation", f"{prose}\n\n{code}")), count, max_tokens=40)
    assert len(chunks) > 1
    assert code in "\n\n".join(c.text for c in chunks)


def test_a_chunk_that_starts_inside_a_table_starts_with_its_header():
    # The rows of a long table's later chunks were searched and quoted without their columns' names
    # ("Douro | 2 | 12": two what?).
    count = lambda t: len(t.split()) + 2  # noqa: E731
    rows = [f"Room {i} | floor {i % 5} | {i + 4} seats" for i in range(30)]
    marked = "Rooms are booked in Outlook.\nRoom | Floor | Seats\n--- | --- | ---\n" + "\n".join(rows) + "\nAsk Facilities."
    chunks = chunk_document(doc(("Rooms", marked)), count, max_tokens=60)
    assert len(chunks) > 2 and chunks[0].text.startswith("Rooms are booked in Outlook.")
    for c in chunks[1:]:
        first = c.text.split("\n")[0]
        assert c.text.startswith("Room | Floor | Seats\n--- | --- | ---\n") or "Ask Facilities." in first, c.text
        assert count(as_read(c.embedding_text)) <= 60  # what the embedder reads (the rule is for quotes)
    assert sum(c.text.count("seats") for c in chunks) == 30  # every row once
    unmarked = marked.replace("--- | --- | ---\n", "")
    assert not any(c.text.startswith("Room | Floor") for c in chunk_document(doc(("Rooms", unmarked)), count,
                                                                            max_tokens=60)[1:])


def test_a_code_block_cut_between_chunks_is_closed_and_opened_again_so_each_part_reads_as_code():
    # An HTML page's <pre> (a command's output, a config file) arrives as a fenced block; a chunk that began
    # inside it read its lines as sentences ("No LSB modules are available." quoted as the answer).
    count = lambda t: len(t.split()) + 2  # noqa: E731
    output = "\n".join(f"Line {i} of what the command printed." for i in range(40))
    chunks = chunk_document(doc(("Version", f"Run this:\n```\n$ lsb_release -a\n{output}\n```\nThat is all.")), count,
                            max_tokens=60)
    assert len(chunks) > 2
    for c in chunks:
        fences = [line for line in c.text.splitlines() if line.startswith("```")]
        assert len(fences) % 2 == 0, c.text  # every block that opens in a chunk closes in it
        assert c.text.startswith(("Run this:", "```")), c.text  # a later chunk opens inside the block: with a fence
    text = "\n".join(c.text for c in chunks)
    assert all(f"Line {i} of" in text for i in range(40)) and text.count("Line 7 of") == 1
    assert chunks[-1].text.rstrip().endswith("That is all.")
    # a block that shows fences ("````" around a README's "```bash" example) is closed and opened with its own
    # fence; the fences it shows are its lines, read by the models as the page has them
    shown = "\n".join(f"echo step {i} of the example" for i in range(40))
    chunks = chunk_document(doc(("Examples", f"Write it so:\n````\n```bash\n{shown}\n```\n````\nThat is all.")), count,
                            max_tokens=60)
    assert len(chunks) > 2 and all(c.text.count("````") == 2 for c in chunks), [c.text for c in chunks]
    read = [" ".join(as_read(c.text).split()) for c in chunks]  # (a long section's lines are paragraphs)
    assert read[0].startswith("Write it so: ```bash echo step 0") and "````" not in "".join(read)
    assert read[-1].endswith("echo step 39 of the example ``` That is all.")
    # the models read the lines as the page shows them: the fences are for quotes (a model shown them copied them
    # into its sentence: "execute the command: ```dpkg --list [3].")
    assert as_read("Run this:\n```bash\n$ lsb_release -a\n```\nThat is all.") == "Run this:\n$ lsb_release -a\nThat is all."
    assert as_read("Run this:\n\n```\n\n$ lsb_release -a\n\n```\n\nThat is all.") == \
        "Run this:\n\n$ lsb_release -a\n\nThat is all."  # a long section's lines are paragraphs: as without fences
