"""Structured logs: `log.info("indexed", extra={"source": s, "chunks": n})` prints the fields as key=value.

Two places: the terminal shows orgbot's own warnings as one line each, no tracebacks and no library
chatter (retry warnings of elastic_transport, urllib3, …); the log file (`<data_dir>/orgbot.log`, or
`log_file`) keeps everything from INFO up, tracebacks included. `--verbose` shows it all on the
terminal too. Known secret values and passwords in URLs are replaced by *** everywhere.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from pathlib import Path

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}
_SECRET_WORDS = ("token", "secret", "password", "api_key", "authorization")
_OURS = ("bot", "retrieval", "connectors", "training", "__main__")
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^/@\s:]+):(?P<password>[^/@\s]+)@", re.I)
_NOISY = ("httpx", "httpcore", "urllib3", "sentence_transformers", "transformers", "elastic_transport",
          "elasticsearch", "slack_sdk", "slack_bolt", "huggingface_hub", "filelock")

_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Never show `value` (a token, an API key, a password) in a log line or an error message."""
    if value and len(value) >= 4:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for s in secrets:
        if s in text:
            text = text.replace(s, "***")
    return text


class KeyValueFormatter(logging.Formatter):
    def __init__(self, *, tracebacks: bool = True):
        super().__init__()
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}
        parts = [f"{self.formatTime(record, '%Y-%m-%dT%H:%M:%S')}", record.levelname.lower(), record.name,
                 f"event={json.dumps(record.getMessage())}"]
        for k, v in fields.items():
            if any(w in k.lower() for w in _SECRET_WORDS):
                v = "***"
            parts.append(f"{k}={json.dumps(v, default=str)}")
        line = " ".join(parts)
        if record.exc_info and self.tracebacks:
            line += "\n" + self.formatException(record.exc_info)
        elif record.exc_info and record.exc_info[1] is not None:
            line += f" error={json.dumps(f'{type(record.exc_info[1]).__name__}: {record.exc_info[1]}')}"
        return redact(line)


class _OnlyOurs(logging.Filter):
    """The terminal shows orgbot's own messages; libraries' (retry warnings…) go to the log file."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.split(".")[0] in _OURS


_file_handler: logging.Handler | None = None


def configure(level: str = "WARNING", *, verbose: bool = False) -> None:
    global _file_handler
    terminal = logging.StreamHandler(sys.stderr)
    terminal.setFormatter(KeyValueFormatter(tracebacks=verbose))
    terminal.setLevel("INFO" if verbose else level.upper())
    if not verbose:
        terminal.addFilter(_OnlyOurs())
    root = logging.getLogger()
    root.handlers[:] = [terminal]
    _file_handler = None
    root.setLevel("INFO" if verbose else level.upper())
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def log_to_file(path: str | Path) -> Path | None:
    """Also write INFO and up, with tracebacks, to `path` (once). None if it cannot be opened."""
    global _file_handler
    if _file_handler is not None:
        return Path(_file_handler.baseFilename)  # type: ignore[attr-defined]
    path = Path(path).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8", delay=True)
    except OSError:
        return None
    handler.setFormatter(KeyValueFormatter(tracebacks=True))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO:
        # the terminal handler keeps its own level; the root must let INFO through for the file
        for h in root.handlers:
            if h is not handler and h.level == logging.NOTSET:
                h.setLevel(root.level)
        root.setLevel(logging.INFO)
    _file_handler = handler
    return path


def log_file() -> Path | None:
    return Path(_file_handler.baseFilename) if _file_handler is not None else None  # type: ignore[attr-defined]
