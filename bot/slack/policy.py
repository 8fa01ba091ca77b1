"""Who may ask what, where: channel policy, ACL principals and rate limits. Plain Python, no Slack calls.
(The memory that makes every question answered exactly once is `bot.slack.claims`.)"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from bot.settings import SlackSettings


@dataclass(frozen=True)
class Scope:
    """What an answer in one conversation may draw on."""

    sources: tuple[str, ...] | None  # None = every source
    principals: tuple[str, ...]  # () = public documents only


def is_dm(channel: str | None, channel_type: str | None = None) -> bool:
    return channel_type == "im" or (channel_type is None and bool(channel) and channel.startswith("D"))


class ChannelPolicy:
    """Reads `slack.allowed_channels`, `slack.answer_mode` and `slack.channels` from the config.

    ACL principals (who the *audience* of an answer is, since everyone in a channel sees it):
    - a DM (or an assistant thread) has one reader: the asker's Slack user id, also as `slack:<id>`;
    - any other conversation sees public documents, plus those whose ACL lists the channel id,
      `slack:<channel id>`, or a principal given in `slack.channels.<id>.principals`.
    So a private document never reaches a channel unless the config says that channel may see it.
    """

    def __init__(self, settings: SlackSettings):
        self.settings = settings

    def allowed(self, channel: str, channel_type: str | None = None) -> bool:
        if is_dm(channel, channel_type):
            return self.settings.answer_dms
        return not self.settings.allowed_channels or channel in self.settings.allowed_channels

    def answer_mode(self, channel: str) -> str:
        override = self.settings.channels.get(channel)
        return (override and override.answer_mode) or self.settings.answer_mode

    def scope(self, channel: str, channel_type: str | None, user: str | None) -> Scope:
        override = self.settings.channels.get(channel)
        sources = tuple(override.sources) if override and override.sources is not None else None
        if is_dm(channel, channel_type):
            principals = (user, f"slack:{user}") if user else ()
        else:
            principals = (channel, f"slack:{channel}", *(override.principals if override else ()))
        return Scope(sources, tuple(principals))


def looks_like_question(text: str) -> bool:
    return "?" in text and len(text.split()) >= 3


class RateLimiter:
    """Sliding one-minute windows: per user and for everyone. `check` records the question if allowed."""

    def __init__(self, per_user: int, overall: int, clock: Callable[[], float] = time.monotonic):
        self.per_user, self.overall, self.clock = per_user, overall, clock
        self._users: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()
        self._lock = threading.Lock()

    def check(self, user: str) -> str | None:
        """None if `user` may ask now, else "user" or "global" (which limit was hit)."""
        now = self.clock()
        with self._lock:
            mine = self._users.setdefault(user, deque())
            for q in (mine, self._all):
                while q and q[0] <= now - 60:
                    q.popleft()
            if len(mine) >= self.per_user:
                return "user"
            if len(self._all) >= self.overall:
                return "global"
            mine.append(now)
            self._all.append(now)
            return None
