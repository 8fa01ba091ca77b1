"""Structured logs: `log.info("indexed", extra={"source": s, "chunks": n})` prints the fields as key=value."""

from __future__ import annotations

import json
import logging
import sys

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}
_SECRET_WORDS = ("token", "secret", "password", "api_key", "authorization")


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}
        parts = [f"{self.formatTime(record, '%Y-%m-%dT%H:%M:%S')}", record.levelname.lower(), record.name,
                 f"event={json.dumps(record.getMessage())}"]
        for k, v in fields.items():
            if any(w in k.lower() for w in _SECRET_WORDS):
                v = "***"
            parts.append(f"{k}={json.dumps(v, default=str)}")
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure(level: str = "WARNING") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "urllib3", "sentence_transformers", "transformers", "elastic_transport"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
