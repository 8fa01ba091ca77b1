"""Who may ask what, where: channel policy, ACL principals and rate limits. Plain Python, no Slack calls.
(The memory that makes every question answered exactly once is `bot.slack.claims`.)"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.settings import SlackSettings
from retrieval.acl import visible_to


@dataclass(frozen=True)
class Scope:
    """What an answer in one conversation may draw on, and who will read it."""

    sources: tuple[str, ...] | None  # None = every source
    principals: tuple[str, ...]  # () = public documents only
    audience: str = ""  # "channel:C…" (everyone in it) or "user:U…" (only the asker)

    def allows(self, source: str, acl: Sequence[str]) -> bool:
        """Whether a document may appear in an answer with this scope (the index's own rule)."""
        return (self.sources is None or source in self.sources) and visible_to(acl, self.principals)


def is_dm(channel: str | None, channel_type: str | None = None) -> bool:
    return channel_type == "im" or (channel_type is None and bool(channel) and channel.startswith("D"))


class ChannelPolicy:
    """Reads `slack.allowed_channels`, `slack.answer_mode` and `slack.channels` from the config.

    ACL principals follow who will *read* the answer:
    - a DM, an assistant thread or an ephemeral `/ask` has one reader, the asker: their own principals
      (user id, `slack:<id>`, e-mail, groups; see `bot.slack.directory`);
    - anything posted in a channel is read by all its members: public documents, plus those whose ACL
      lists the channel id, `slack:<channel id>`, or a principal in `slack.channels.<id>.principals`,
      whoever asks. A thread follow-up is in the channel too, so it keeps that scope.
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

    def _sources(self, channel: str) -> tuple[str, ...] | None:
        override = self.settings.channels.get(channel)
        return tuple(override.sources) if override and override.sources is not None else None

    def channel_scope(self, channel: str) -> Scope:
        """What everyone in `channel` may see: the scope of anything posted there (Share in channel too)."""
        override = self.settings.channels.get(channel)
        principals = (channel, f"slack:{channel}", *(override.principals if override else ()))
        return Scope(self._sources(channel), tuple(principals), f"channel:{channel}")

    def private_scope(self, channel: str, user: str | None, principals: Sequence[str]) -> Scope:
        """An answer only `user` sees (a DM, an ephemeral /ask): their own principals."""
        return Scope(self._sources(channel), tuple(principals) if user else (), f"user:{user}")

    def scope(self, channel: str, channel_type: str | None, user: str | None,
              principals: Sequence[str] = ()) -> Scope:
        """The scope of an answer posted in `channel`; `principals` are the asker's (used in DMs only)."""
        if is_dm(channel, channel_type):
            return self.private_scope(channel, user, principals)
        return self.channel_scope(channel)


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
