"""Slack messages → what the answerer needs: the question text and the thread as `Turn`s.
(The asker's name and principals come from `bot.slack.directory`.)"""

from __future__ import annotations

import re
from dataclasses import dataclass

from slack_sdk import WebClient

from bot.answering import Turn
from bot.slack.blocks import PLACEHOLDER

_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")


def strip_mentions(text: str) -> str:
    return re.sub(r"\s+", " ", _MENTION.sub(" ", text or "")).strip()


@dataclass(frozen=True)
class Question:
    text: str
    user: str
    channel: str
    channel_type: str | None  # "channel" | "group" | "im" | "mpim"; None when Slack does not say (commands)
    ts: str  # the message that asks
    thread_ts: str  # where the answer goes
    team: str | None = None

    @property
    def in_thread(self) -> bool:
        return self.thread_ts != self.ts

    @classmethod
    def from_event(cls, event: dict, team: str | None = None) -> Question:
        return cls(strip_mentions(event.get("text", "")), event.get("user", ""), event["channel"],
                   event.get("channel_type"), event["ts"], event.get("thread_ts") or event["ts"],
                   event.get("team") or team)


def thread_history(client: WebClient, q: Question, *, turns: int, bot_user_id: str | None,
                   bot_id: str | None = None) -> list[Turn]:
    """The last `turns` exchanges of the thread before `q` (oldest first): our bot's messages are the
    assistant, people are the user, other bots are left out."""
    if not q.in_thread or turns <= 0:
        return []
    resp = client.conversations_replies(channel=q.channel, ts=q.thread_ts, limit=200)
    history: list[Turn] = []
    for m in resp.get("messages", []):
        if float(m["ts"]) >= float(q.ts):
            continue
        mine = (bot_user_id and m.get("user") == bot_user_id) or (bot_id and m.get("bot_id") == bot_id)
        if not mine and (m.get("bot_id") or m.get("subtype")):
            continue
        text = strip_mentions(m.get("text", ""))
        if text and text != PLACEHOLDER:
            history.append(Turn("assistant" if mine else "user", text))
    return history[-2 * turns:]
