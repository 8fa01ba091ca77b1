"""The plain data a connector yields, and the capabilities a connector can have.

Modelled on Onyx's connector interfaces: a connector says what it can do by which
protocol it implements (load everything, poll changes since a time, list the ids that
still exist), and a broken item becomes a recorded `ConnectorFailure`, never an exception
that kills the whole sync.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

FENCE = re.compile(r"[ \t]*(`{3,}|~{3,})")  # a code block's opening or closing line: Markdown's, and an HTML <pre>'s as
# the files connector writes it (`fenced`)


def next_fence(fence: str | None, line: str) -> str | None:
    """The fence of the code block open after `line` (`fence`: the one open before it, None outside a block), as
    CommonMark reads fences: a block closes only at a line of its own fence's character, at least as long, with
    nothing after it. So a block can show fences ("````" around a page's "```bash" example, "~~~" around
    "```"), and a block that says which language it holds opens one, never closes one."""
    m = FENCE.match(line)
    if not m:
        return fence
    if fence is None:
        return m.group(1)
    mark = m.group(1)
    return None if mark[0] == fence[0] and len(mark) >= len(fence) and not line[m.end():].strip() else fence


def fenced(code: str) -> str:
    """`code` as a fenced code block, its fence longer than any fence-like line it holds (a page's
    "```bash" example stays inside the block)."""
    runs = [len(m.group(1)) for m in map(FENCE.match, code.splitlines()) if m and m.group(1)[0] == "`"]
    fence = "`" * max([3, *(n + 1 for n in runs)])
    return f"{fence}\n{code}\n{fence}"


@dataclass(frozen=True)
class Section:
    """A run of text under one heading; `heading` is the path of headings, outermost first."""

    heading: str
    text: str


# Front matter statuses of a document that was replaced (`SourceDocument.superseded_by`).
RETIRED = frozenset({"superseded", "deprecated", "archived", "obsolete", "outdated", "retired"})
# A notice opening the document: "> **Superseded.** …", "ARCHIVED: …", "This page is outdated …".
_NOTICE = re.compile(r"[>*_\s]*(?:(?:superseded|deprecated|archived|obsolete|outdated)\b[*_]*\s*[.:!—–-]"
                     r"|this (?:page|document|policy|article) (?:is|has been|was) (?:superseded|deprecated|archived"
                     r"|obsolete|outdated|replaced)\b)", re.I)


@dataclass(frozen=True)
class SourceDocument:
    id: str
    source: str
    title: str
    url: str
    sections: tuple[Section, ...]
    updated_at: datetime | None = None
    # Principals (Slack user ids, channel ids, group names) allowed to read this document.
    # An empty tuple means "everyone in the workspace".
    acl: tuple[str, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def superseded_by(self) -> str | None:
        """None while the document is current. When it says it was replaced (front matter `status: superseded`
        or `deprecated`, `archived`, `obsolete`, `outdated`; or a `superseded_by:` naming its successor; or its
        text opening with such a notice, "> **Superseded.** This policy was replaced…"): the successor's
        document id when it names one (a path in the same source, from the source's root, or from the page's
        folder when it starts with ./ or ../), else "" (replaced, successor unknown)."""
        successor = (self.metadata.get("superseded_by") or "").strip()
        if successor:
            if ":" in successor:  # already a document id ("wiki:Travel policy")
                return successor
            path = self.metadata.get("path") or ""
            if successor.startswith(("./", "../")):
                successor = posixpath.normpath(posixpath.join(posixpath.dirname(path), successor))
            return f"{self.source}:{successor.lstrip('/')}"
        status = (self.metadata.get("status") or "").strip().lower()
        opening = next((s.text.lstrip() for s in self.sections if s.text.strip()), "")
        return "" if status in RETIRED or _NOTICE.match(opening) else None

    @property
    def text(self) -> str:
        return "\n\n".join(s.text for s in self.sections if s.text)

    @property
    def content_hash(self) -> str:
        """Changes whenever anything that ends up in the index changes."""
        h = hashlib.sha256()
        for part in (self.title, self.url, ",".join(self.acl), str(self.updated_at or "")):
            h.update(part.encode("utf-8", "replace") + b"\x00")
        if self.superseded_by is not None:  # only then: a current document's hash stays what it was
            h.update(b"superseded by " + self.superseded_by.encode("utf-8", "replace") + b"\x00")
        for s in self.sections:
            h.update(s.heading.encode("utf-8", "replace") + b"\x01" + s.text.encode("utf-8", "replace") + b"\x00")
        return h.hexdigest()


@dataclass(frozen=True)
class ConnectorFailure:
    """One item that could not be read: where it is and why, in words a person can act on."""

    source: str
    item: str
    reason: str
    # The document this item would have been, if known: its previous version stays indexed.
    document_id: str | None = None


@dataclass(frozen=True)
class Deletion:
    """A document that no longer exists at the source (deleted, moved away, made a redirect)."""

    source: str
    document_id: str
    reason: str = "deleted at the source"


Batch = list["SourceDocument | ConnectorFailure | Deletion"]


def batched(items: Iterable, size: int) -> Iterator[Batch]:
    """`items` in lists of `size` (the last one may be shorter): how connectors hand documents over."""
    batch: Batch = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class SourceUnavailable(Exception):
    """The whole source could not be listed (wiki down, folder missing).

    Raised instead of yielding failures so the indexer knows the listing is incomplete and must
    not prune documents it did not see.
    """


@runtime_checkable
class LoadConnector(Protocol):
    name: str

    def load(self) -> Iterator[Batch]:
        """Every document the source has, in batches."""
        ...


@runtime_checkable
class PollConnector(Protocol):
    """Reports changes since a checkpoint: an opaque string the connector made (a time for wikis,
    a commit for git). The indexer stores it only after the changes are committed to the index, so a
    sync that fails half-way is simply polled again from the same checkpoint."""

    name: str

    def checkpoint(self) -> str:
        """A mark of the source's state now, taken before reading; the next poll starts from it."""
        ...

    def poll(self, since: str, until: str) -> Iterator[Batch]:
        """Documents changed, and `Deletion`s of those removed, between the two checkpoints. Time
        based connectors look back an overlap window before `since` (clock skew, late commits)."""
        ...


@runtime_checkable
class FetchConnector(Protocol):
    name: str

    def fetch(self, document_ids: set[str]) -> Iterator[Batch]:
        """These documents read again (to retry failures); a `Deletion` for those that are gone."""
        ...


@runtime_checkable
class SlimConnector(Protocol):
    name: str

    def list_ids(self) -> set[str]:
        """Ids of every document that still exists, to prune deleted ones from the index."""
        ...


def time_checkpoint(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time_checkpoint(value: str, overlap: timedelta = timedelta(0)) -> datetime:
    """A checkpoint made by `time_checkpoint`, moved back by the overlap window."""
    at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (at if at.tzinfo else at.replace(tzinfo=UTC)) - overlap
