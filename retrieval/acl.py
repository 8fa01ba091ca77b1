"""Who may read a document: ACL rules from a source's config, applied to every document a connector
yields (in the indexer, so each connector gets them for free), and the visibility test the Slack layer
uses before it posts anything into a channel.

The most specific statement wins: the document's own ACL (front matter, a wiki page's restrictions),
else the first rule whose pattern matches the document's path, else the source's `acl`, else public.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from connectors.base import SourceDocument


@dataclass(frozen=True)
class AclRule:
    match: str  # glob; `*` crosses folders, "hr/**" also matches "hr" itself
    principals: tuple[str, ...]  # () = everyone


def document_path(doc: SourceDocument) -> str:
    """What rules match against: the connector's `metadata["path"]` (files: the path under the folder;
    wikis: namespace:title), else the id without its `<source>:` prefix."""
    path = doc.metadata.get("path")
    if path:
        return path
    prefix = f"{doc.source}:"
    return doc.id[len(prefix):] if doc.id.startswith(prefix) else doc.id


def _matches(pattern: str, path: str) -> bool:
    if fnmatch.fnmatchcase(path, pattern):
        return True
    if pattern.endswith("/**"):  # the folder itself, and paths in it
        folder = pattern[:-3]
        return fnmatch.fnmatchcase(path, folder) or fnmatch.fnmatchcase(path, folder + "/*")
    return False


class AclPolicy:
    """The ACL of each document of one source. Cheap; the indexer calls `apply` once per document."""

    def __init__(self, rules: Sequence[AclRule] = (), default: Sequence[str] = ()):
        self.rules = tuple(rules)
        self.default = tuple(default)

    def __bool__(self) -> bool:
        return bool(self.rules or self.default)

    def acl_for(self, doc: SourceDocument) -> tuple[str, ...]:
        if doc.acl:
            return tuple(doc.acl)
        path = document_path(doc)
        for rule in self.rules:
            if _matches(rule.match, path):
                return rule.principals
        return self.default

    def apply(self, doc: SourceDocument) -> SourceDocument:
        acl = self.acl_for(doc)
        return doc if acl == tuple(doc.acl) else dataclasses.replace(doc, acl=acl)


def visible_to(acl: Iterable[str], principals: Iterable[str] | None) -> bool:
    """Whether a reader with `principals` may see a document with this ACL (the index's rule:
    public, or any shared principal; None = a trusted reader who sees everything)."""
    acl = tuple(acl)
    if not acl or principals is None:
        return True
    return not set(acl).isdisjoint(principals)
