"""A scripted generator for tests that are not about the language model."""

from __future__ import annotations

from collections.abc import Callable


class ScriptedGenerator:
    """Replies with `reply(messages)` (or a fixed text), a few characters at a time, and records prompts."""

    name = "scripted-test-generator"

    def __init__(self, reply: str | Callable[[list[dict]], str] = "Hi there! It is in the handbook [1].",
                 fail: Exception | None = None):
        self.reply = reply
        self.fail = fail
        self.prompts: list[list[dict]] = []

    def stream(self, messages, max_new_tokens=None):
        self.prompts.append(list(messages))
        if self.fail:
            raise self.fail
        text = self.reply(list(messages)) if callable(self.reply) else self.reply
        for i in range(0, len(text), 7):
            yield text[i : i + 7]
