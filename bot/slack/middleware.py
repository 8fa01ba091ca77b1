"""Cross-cutting rules as Bolt middleware, so listeners stay a few lines each.

A middleware that stops a request returns a `BoltResponse` without calling `next()`: Slack gets its
200 (so it does not retry), and nothing else runs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor

from slack_bolt import BoltRequest, BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.settings import SlackSettings
from bot.slack.claims import ClaimStore
from bot.slack.policy import ChannelPolicy, RateLimiter, is_dm

log = logging.getLogger(__name__)

RATE_LIMITED = {
    "user": "You're asking faster than I can look things up — please wait a minute and ask again. 🙏",
    "global": "Lots of people are asking me things right now — please try again in a minute. 🙏",
}
NOT_ADMIN = ("Sorry, `/kb` is only for the knowledge-base admins. Ask one of them to run it, "
             "or to add you to `slack.admin_users` in the bot's config.")
NOT_HERE = "I'm not set up to answer in this channel. Send me a direct message, or ask in a channel I answer in."


def _ok() -> BoltResponse:
    return BoltResponse(status=200, body="")


def question_key(body: dict) -> str | None:
    """channel:ts of the message that asks (the same for its `message` and `app_mention` deliveries)."""
    event = body.get("event") or {}
    if event.get("channel") and event.get("ts"):
        return f"{event['channel']}:{event['ts']}"
    return None


def drop_retries(claims: ClaimStore) -> Callable:
    """Global: an event id Slack already delivered (a retry after a slow ack, X-Slack-Retry-Num) is dropped,
    even when the first delivery went to another bot process or to this one before a restart."""

    def drop_retried_events(req: BoltRequest, body: dict, next: Callable):
        event_id = body.get("event_id")
        if body.get("type") == "event_callback" and event_id and not claims.add(f"event:{event_id}"):
            log.info("dropped a repeated event", extra={"event_id": event_id,
                                                        "retry": req.headers.get("x-slack-retry-num", [None])[0]})
            return _ok()
        return next()

    return drop_retried_events


def once_per_message(claims: ClaimStore) -> Callable:
    """Listener: the first listener to take a message answers it; its twin delivery is acknowledged only."""

    def answer_once(body: dict, next: Callable):
        key = question_key(body)
        if key and not claims.add(f"message:{key}"):
            log.info("dropped a second delivery", extra={"question": key})
            return _ok()
        return next()

    return answer_once


def notify(executor: Executor, client: WebClient, *, channel: str, user: str, text: str,
           thread_ts: str | None = None, dm: bool = False) -> None:
    """Tell one person something, off the request thread (the ack must not wait for Slack)."""

    def send():
        try:
            if dm:
                client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text)
            else:
                client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread_ts, text=text)
        except SlackApiError as e:
            log.warning("could not notify", extra={"user": user, "error": e.response.get("error")})

    executor.submit(send)


def _asker(body: dict) -> tuple[str, str, str | None, str | None, bool]:
    """(user, channel, thread_ts, channel_type, is_dm) of an event or a slash command."""
    event = body.get("event")
    if event:
        dm = is_dm(event["channel"], event.get("channel_type"))
        return (event.get("user", ""), event["channel"], event.get("thread_ts") or event.get("ts"),
                event.get("channel_type"), dm)
    return body.get("user_id", ""), body.get("channel_id", ""), None, None, False


def rate_limited(limiter: RateLimiter, executor: Executor) -> Callable:
    """Listener: too many questions (per person or overall) get a friendly note instead of an answer."""

    def within_rate_limit(body: dict, client: WebClient, next: Callable):
        user, channel, thread_ts, _, dm = _asker(body)
        hit = limiter.check(user)
        if hit is None:
            return next()
        log.info("rate limited", extra={"user": user, "limit": hit})
        if body.get("command"):
            return BoltResponse(status=200, body={"response_type": "ephemeral", "text": RATE_LIMITED[hit]})
        notify(executor, client, channel=channel, user=user, text=RATE_LIMITED[hit], thread_ts=thread_ts, dm=dm)
        return _ok()

    return within_rate_limit


def channel_allowed(policy: ChannelPolicy, executor: Executor) -> Callable:
    """Listener: a mention in a channel the config does not allow gets a note, not an answer."""

    def in_allowed_channel(body: dict, client: WebClient, next: Callable):
        user, channel, thread_ts, channel_type, _ = _asker(body)
        if policy.allowed(channel, channel_type):
            return next()
        if body.get("command"):
            return BoltResponse(status=200, body={"response_type": "ephemeral", "text": NOT_HERE})
        notify(executor, client, channel=channel, user=user, text=NOT_HERE, thread_ts=thread_ts)
        return _ok()

    return in_allowed_channel


class Admins:
    """`slack.admin_users`, or members of `slack.admin_groups` (usergroups.users.list, cached)."""

    def __init__(self, settings: SlackSettings, clock: Callable[[], float] = time.monotonic):
        self.settings, self.clock = settings, clock
        self._groups: dict[str, tuple[float, set[str]]] = {}
        self._lock = threading.Lock()

    def _members(self, client: WebClient, group: str) -> set[str]:
        with self._lock:
            cached = self._groups.get(group)
        if cached and self.clock() - cached[0] < self.settings.admin_cache_s:
            return cached[1]
        try:
            users = set(client.usergroups_users_list(usergroup=group).get("users", []))
        except SlackApiError as e:
            log.warning("could not read an admin group", extra={"group": group, "error": e.response.get("error")})
            return cached[1] if cached else set()
        with self._lock:
            self._groups[group] = (self.clock(), users)
        return users

    def is_admin(self, client: WebClient, user: str) -> bool:
        return user in self.settings.admin_users or any(user in self._members(client, g)
                                                         for g in self.settings.admin_groups)


def admins_only(admins: Admins) -> Callable:
    """Listener: `/kb` from anyone else gets a polite ephemeral refusal as the ack; nothing runs."""

    def only_admins(body: dict, client: WebClient, next: Callable):
        user = body.get("user_id") or (body.get("user") or {}).get("id", "")
        if admins.is_admin(client, user):
            return next()
        log.info("refused an admin command", extra={"user": user, "command": body.get("command")})
        return BoltResponse(status=200, body={"response_type": "ephemeral", "text": NOT_ADMIN})

    return only_admins
