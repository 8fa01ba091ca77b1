"""Files connector: walks a folder and reads Markdown, text, HTML, PDF and DOCX files."""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from connectors.base import Batch, ConnectorFailure, SourceDocument, SourceUnavailable, batched
from connectors.files.parsers import SUPPORTED, ParseError, parse

log = logging.getLogger(__name__)

DEFAULT_EXCLUDE = (".*", "_*", "*~", "node_modules", "__pycache__")


def _title_from_name(path: Path) -> str:
    return path.stem.replace("-", " ").replace("_", " ").strip().capitalize()


class FilesConnector:
    """`LoadConnector` + `SlimConnector` over a folder. Document id: `<source>:<relative path>`."""

    def __init__(
        self,
        name: str,
        root: str | Path,
        *,
        base_url: str | None = None,
        max_file_bytes: int = 50 * 1024 * 1024,
        exclude: tuple[str, ...] = DEFAULT_EXCLUDE,
        acl: tuple[str, ...] = (),
        batch_size: int = 32,
    ):
        self.name = name
        self.root = Path(root).expanduser()
        self.base_url = base_url.rstrip("/") + "/" if base_url else None
        self.max_file_bytes = max_file_bytes
        self.exclude = exclude
        self.acl = tuple(acl)
        self.batch_size = batch_size

    def _files(self) -> list[Path]:
        if not self.root.is_dir():
            raise SourceUnavailable(f"folder {self.root} does not exist; check the source's path in config.yaml")
        out = []
        for path in sorted(self.root.rglob("*")):
            rel = path.relative_to(self.root)
            if any(fnmatch.fnmatch(part, pat) for part in rel.parts for pat in self.exclude):
                continue
            if path.is_file() and path.suffix.lower() in SUPPORTED:
                out.append(path)
        return out

    def document_id(self, path: Path) -> str:
        return f"{self.name}:{path.relative_to(self.root).as_posix()}"

    def url_for(self, path: Path) -> str:
        rel = path.relative_to(self.root).as_posix()
        if self.base_url:
            return self.base_url + quote(rel)
        return path.resolve().as_uri()

    def estimate(self) -> int | None:
        try:
            return len(self._files())
        except SourceUnavailable:
            return None

    def list_ids(self) -> set[str]:
        return {self.document_id(p) for p in self._files()}

    def read(self, path: Path) -> SourceDocument | ConnectorFailure:
        rel = path.relative_to(self.root).as_posix()
        doc_id = self.document_id(path)

        def fail(reason: str) -> ConnectorFailure:
            return ConnectorFailure(source=self.name, item=str(path), reason=reason, document_id=doc_id)

        try:
            size = path.stat().st_size
            if size > self.max_file_bytes:
                return ConnectorFailure(
                    source=self.name, item=str(path),
                    reason=f"{size / 1e6:.0f} MB is over the {self.max_file_bytes / 1e6:.0f} MB limit "
                    "(sources.<name>.max_file_mb in config.yaml)",
                )
            data = path.read_bytes()
        except OSError as e:
            return fail(f"cannot read the file ({e.strerror or e})")
        try:
            parsed = parse(path.suffix, data)
        except ParseError as e:
            return fail(str(e))
        except Exception as e:  # noqa: BLE001 - a parser bug must not stop the sync
            log.exception("parser crashed", extra={"path": str(path)})
            return fail(f"unexpected {type(e).__name__} while parsing: {e}")
        if not any(s.text.strip() for s in parsed.sections) and not parsed.navigation:
            return fail("no text found in the file")  # (a page of links only is indexed as empty: nothing to find)
        mtime = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
        return SourceDocument(
            id=doc_id,
            source=self.name,
            title=(parsed.title or _title_from_name(path)).strip(),
            url=self.url_for(path),
            sections=tuple(parsed.sections),
            updated_at=parsed.updated_at or mtime,
            acl=parsed.acl if parsed.acl is not None else self.acl,
            metadata={"path": rel, **parsed.meta},
        )

    def load(self) -> Iterator[Batch]:
        yield from batched((self.read(path) for path in self._files()), self.batch_size)
