"""Git wikis: a GitHub/GitLab wiki or a docs folder in any repository.

The repository is cloned once (bare, into the data dir) and fetched before each sync; files are
read from the commit itself, never from a work tree. Changes come from `git diff` between the
last synced commit and the new one, with renames (a move: delete the old id, read the new path)
and deletions. A checkpoint the history no longer has (a force push) reads everything again.

Document id: `<source>:<path in the repository>`.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from connectors.base import Batch, ConnectorFailure, Deletion, SourceDocument, SourceUnavailable, batched
from connectors.files.connector import DEFAULT_EXCLUDE, _title_from_name
from connectors.files.parsers import SUPPORTED, ParseError, parse

log = logging.getLogger(__name__)


class GitConnector:
    """`LoadConnector`, `PollConnector` (checkpoint = commit), `SlimConnector`, `FetchConnector`."""

    def __init__(self, name: str, repository: str, *, workdir: str | Path, branch: str | None = None,
                 folder: str = "", url_pattern: str | None = None, acl: tuple[str, ...] = (),
                 exclude: tuple[str, ...] = DEFAULT_EXCLUDE, max_file_bytes: int = 2_000_000,
                 batch_size: int = 32, timeout_s: float = 300):
        self.name = name
        local = Path(repository).expanduser()
        self.repository = str(local.resolve()) if local.exists() else repository
        self.workdir = Path(workdir)
        self.branch = branch
        self.folder = folder.strip("/")
        self.url_pattern = url_pattern
        self.acl = tuple(acl)
        self.exclude = exclude
        self.max_file_bytes = max_file_bytes
        self.batch_size = batch_size
        self.timeout_s = timeout_s
        self._head: str | None = None

    # -- git ----------------------------------------------------------------------------------
    def _git(self, *args: str, check: bool = True, binary: bool = False) -> str | bytes:
        try:
            r = subprocess.run(["git", "--git-dir", str(self.workdir), *args], capture_output=True,
                               timeout=self.timeout_s, env=_env())
        except FileNotFoundError:
            raise SourceUnavailable("git is not installed; install it (apt-get install git)") from None
        except subprocess.TimeoutExpired:
            raise SourceUnavailable(f"git {args[0]} took over {self.timeout_s:.0f}s") from None
        if check and r.returncode != 0:
            raise SourceUnavailable(f"git {args[0]} failed: {_redact(r.stderr.decode(errors='replace').strip()[-500:])}")
        return r.stdout if binary else r.stdout.decode("utf-8", errors="replace")

    def _ref(self) -> str:
        return f"refs/remotes/origin/{self.branch}" if self.branch else "refs/remotes/origin/HEAD"

    def checkpoint(self) -> str:
        """Clone or fetch, and return the commit to sync to."""
        if not (self.workdir / "HEAD").exists():
            self.workdir.parent.mkdir(parents=True, exist_ok=True)
            r = subprocess.run(["git", "clone", "--bare", "--quiet", self.repository, str(self.workdir)],
                               capture_output=True, timeout=self.timeout_s, env=_env())
            if r.returncode != 0:
                raise SourceUnavailable(f"cannot clone {_redact(self.repository)}: "
                                        f"{_redact(r.stderr.decode(errors='replace').strip()[-300:])}; check the URL and "
                                        "access (a deploy key or a token in the URL from the environment)")
            self._git("config", "remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*")
        self._git("fetch", "--quiet", "--prune", "origin")
        if not self.branch:
            self._git("remote", "set-head", "origin", "--auto", check=False)
        head = self._git("rev-parse", "--verify", "--quiet", self._ref() + "^{commit}", check=False).strip()
        if not head:
            raise SourceUnavailable(f"branch {self.branch or '(default)'} not found in {_redact(self.repository)}; "
                                    "set branch: in the source's config")
        self._head = head
        return head

    def _commit(self) -> str:
        return self._head or self.checkpoint()

    # -- files --------------------------------------------------------------------------------
    def _wanted(self, path: str) -> bool:
        p = PurePosixPath(path)
        if self.folder and not path.startswith(self.folder + "/"):
            return False
        rel = p.relative_to(self.folder) if self.folder else p
        if any(fnmatch.fnmatch(part, pat) for part in rel.parts for pat in self.exclude):
            return False
        return p.suffix.lower() in SUPPORTED

    def _paths(self, commit: str) -> list[str]:
        args = ["ls-tree", "-r", "-z", "--name-only", commit]
        if self.folder:
            args += ["--", self.folder]
        return sorted(p for p in self._git(*args).split("\0") if p and self._wanted(p))

    def document_id(self, path: str) -> str:
        return f"{self.name}:{path}"

    def url_for(self, path: str) -> str:
        if not self.url_pattern:
            return f"{_redact(self.repository)}#{path}"
        stem = PurePosixPath(path).stem
        return self.url_pattern.format(path=quote(path), stem=quote(stem), branch=self.branch or "HEAD",
                                       name=quote(PurePosixPath(path).name))

    def read(self, commit: str, path: str) -> SourceDocument | ConnectorFailure:
        doc_id = self.document_id(path)

        def fail(reason: str) -> ConnectorFailure:
            return ConnectorFailure(self.name, path, reason, document_id=doc_id)

        size = int(self._git("cat-file", "-s", f"{commit}:{path}").strip() or 0)
        if size > self.max_file_bytes:
            return fail(f"{size / 1e6:.1f} MB is over the {self.max_file_bytes / 1e6:g} MB limit "
                        f"(sources.{self.name}.max_page_mb in config.yaml)")
        data = self._git("cat-file", "blob", f"{commit}:{path}", binary=True)
        try:
            parsed = parse(PurePosixPath(path).suffix, data)
        except ParseError as e:
            return fail(str(e))
        except Exception as e:  # noqa: BLE001 - a parser bug must not stop the sync
            log.exception("parser crashed", extra={"source": self.name, "path": path})
            return fail(f"unexpected {type(e).__name__} while parsing: {e}")
        if not any(s.text.strip() for s in parsed.sections):
            return fail("no text found in the file")
        return SourceDocument(
            id=doc_id, source=self.name, title=(parsed.title or _title_from_name(Path(path))).strip(),
            url=self.url_for(path), sections=tuple(parsed.sections), updated_at=parsed.updated_at,
            acl=parsed.acl if parsed.acl is not None else self.acl,
            metadata={"path": path, "commit": commit, **parsed.meta},
        )

    # -- capabilities --------------------------------------------------------------------------
    def estimate(self) -> int | None:
        try:
            return len(self._paths(self._commit()))
        except SourceUnavailable:
            return None

    def list_ids(self) -> set[str]:
        return {self.document_id(p) for p in self._paths(self._commit())}

    def load(self) -> Iterator[Batch]:
        commit = self._commit()
        yield from self._batched(self.read(commit, p) for p in self._paths(commit))

    def poll(self, since: str, until: str) -> Iterator[Batch]:
        if not self._has(since):
            log.info("checkpoint not in the history (force push?): reading everything",
                     extra={"source": self.name, "since": since})
            yield from self.load()
            return
        yield from self._batched(self._changes(since, until))

    def fetch(self, document_ids: set[str]) -> Iterator[Batch]:
        commit = self._commit()
        present = set(self._paths(commit))
        prefix = f"{self.name}:"
        paths = sorted(i[len(prefix):] for i in document_ids if i.startswith(prefix))
        yield from self._batched(self.read(commit, p) if p in present else Deletion(self.name, self.document_id(p))
                                 for p in paths)

    def _has(self, commit: str) -> bool:
        r = subprocess.run(["git", "--git-dir", str(self.workdir), "cat-file", "-e", f"{commit}^{{commit}}"],
                           capture_output=True, env=_env())
        return r.returncode == 0

    def _changes(self, since: str, until: str) -> Iterator[SourceDocument | ConnectorFailure | Deletion]:
        args = ["diff", "--name-status", "-z", "--find-renames", since, until]
        if self.folder:
            args += ["--", self.folder]
        fields = self._git(*args).split("\0")
        i = 0
        while i < len(fields) and fields[i]:
            status = fields[i]
            if status[0] in "RC":
                old, new = fields[i + 1], fields[i + 2]
                i += 3
                if status[0] == "R" and self._wanted(old):
                    yield Deletion(self.name, self.document_id(old), f"renamed to {new}")
                if self._wanted(new):
                    yield self.read(until, new)
                continue
            path = fields[i + 1]
            i += 2
            if not self._wanted(path):
                continue
            if status[0] == "D":
                yield Deletion(self.name, self.document_id(path), "deleted in the repository")
            else:  # A, M, T
                yield self.read(until, path)

    def _batched(self, items: Iterable) -> Iterator[Batch]:
        return batched(items, self.batch_size)


def _env() -> dict[str, str]:
    # never wait for a password on a terminal nobody watches
    return {**os.environ, "GIT_TERMINAL_PROMPT": "0"}


def _redact(text: str) -> str:
    """Credentials in a repository URL (https://user:token@host/…) never reach a message or a log."""
    return re.sub(r"://[^/@\s]+@", "://***@", text)
