"""Who is asking: a Slack user's ACL principals (user id, e-mail, groups), cached with a TTL.

- `access.groups` in config maps a group principal to members given as user ids or e-mails;
- Slack user groups become `slack-group:<handle>`: one `usergroups.list(include_users=true)` call per
  TTL for the whole workspace (Tier 2, ~20/min), not one call per asker;
- the e-mail comes from `users.info` (Tier 4; needs `users:read.email`).

A user Slack cannot tell us about (unknown, deleted, or a lookup that failed) gets no principals:
public documents only. When a refresh fails, the previous answer is used for at most one more TTL,
then the user falls back to public documents (fail closed, never open).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.settings import AccessSettings

log = logging.getLogger(__name__)

UNKNOWN_RETRY_S = 30.0  # a failed users.info is asked again this soon, whatever the TTL


@dataclass(frozen=True)
class Person:
    user: str
    email: str | None
    known: bool  # False: Slack would not say who this is; public documents only
    name: str | None = None  # first name, for the prompt's "Asker:" line


@dataclass
class _Cached:
    value: object
    at: float
    ok: bool = True


class Directory:
    """Thread-safe; one instance serves every listener. `clock` is injectable for tests."""

    def __init__(self, settings: AccessSettings, *, clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.clock = clock
        self._people: dict[str, _Cached] = {}
        self._groups: _Cached | None = None  # {handle: set(user ids)}
        self._groups_off = False  # the workspace has no user groups, or the app lacks usergroups:read
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()
        self.lookups = 0  # Slack calls made (for the benchmark and tests)

    # -- the person ------------------------------------------------------------------------------
    def person(self, client: WebClient, user: str) -> Person:
        ttl = self.settings.cache_s
        with self._lock:
            cached = self._people.get(user)
        now = self.clock()
        if cached and now - cached.at < (ttl if cached.ok else min(ttl, UNKNOWN_RETRY_S)):
            return cached.value  # type: ignore[return-value]
        person, ok = self._lookup(client, user)
        if not ok and cached and cached.ok and now - cached.at < 2 * ttl:
            log.warning("users.info failed; using the previous answer", extra={"user": user})
            return cached.value  # type: ignore[return-value]
        with self._lock:
            self._people[user] = _Cached(person, now, ok)
        return person

    def _lookup(self, client: WebClient, user: str) -> tuple[Person, bool]:
        self.lookups += 1
        try:
            info = client.users_info(user=user).get("user") or {}
        except SlackApiError as e:
            error = e.response.get("error")
            log.warning("could not look up a user; public documents only",
                        extra={"user": user, "error": error})
            # user_not_found is an answer ("unknown"); anything else is a failure to ask
            return Person(user, None, False), error == "user_not_found"
        except Exception as e:  # noqa: BLE001 - network: fail closed
            log.warning("could not look up a user; public documents only",
                        extra={"user": user, "error": type(e).__name__})
            return Person(user, None, False), False
        if info.get("deleted") or info.get("id", user) != user:
            return Person(user, None, False), True
        profile = info.get("profile") or {}
        email = profile.get("email") if self.settings.emails else None
        full = profile.get("first_name") or profile.get("display_name") or profile.get("real_name") or ""
        return Person(user, email.lower() if email else None, True, full.split()[0] if full.strip() else None), True

    # -- Slack user groups -----------------------------------------------------------------------
    def slack_groups(self, client: WebClient) -> dict[str, set[str]]:
        if not self.settings.slack_user_groups or self._groups_off:
            return {}
        ttl, now = self.settings.cache_s, self.clock()
        cached = self._groups
        if cached and now - cached.at < ttl:
            return cached.value  # type: ignore[return-value]
        with self._refreshing:  # one refresh at a time; the others wait and read its result
            cached = self._groups
            if cached and self.clock() - cached.at < ttl:
                return cached.value  # type: ignore[return-value]
            self.lookups += 1
            try:
                resp = client.usergroups_list(include_users=True)
            except SlackApiError as e:
                error = e.response.get("error")
                if error in ("plan_upgrade_required", "missing_scope", "not_allowed_token_type"):
                    log.warning("Slack user groups are not available; only access.groups apply",
                                extra={"error": error})
                    self._groups_off = True
                    return {}
                if cached and now - cached.at < 2 * ttl:
                    log.warning("usergroups.list failed; using the previous answer", extra={"error": error})
                    return cached.value  # type: ignore[return-value]
                log.warning("usergroups.list failed; no Slack groups for now", extra={"error": error})
                return {}
            groups = {g["handle"]: set(g.get("users") or ()) for g in resp.get("usergroups", [])
                      if g.get("handle") and not g.get("date_delete")}
            self._groups = _Cached(groups, self.clock())
            return groups

    # -- principals ------------------------------------------------------------------------------
    def principals(self, client: WebClient, user: str | None) -> tuple[str, ...]:
        """Every ACL principal `user` has: `U…`, `slack:U…`, the e-mail, `access.groups` names and
        `slack-group:<handle>`s. () for a user Slack does not know: public documents only."""
        if not user:
            return ()
        person = self.person(client, user)
        if not person.known:
            return ()
        out = [user, f"slack:{user}"]
        if person.email:
            out.append(person.email)
        ids = {user, person.email} - {None}
        out += [g for g, members in self.settings.groups.items() if ids & set(members)]
        out += [f"slack-group:{h}" for h, members in sorted(self.slack_groups(client).items()) if user in members]
        return tuple(dict.fromkeys(out))

    def name(self, client: WebClient, user: str | None) -> str | None:
        """The asker's first name (from the same cached users.info), None when Slack won't say."""
        return self.person(client, user).name if user else None

    def forget(self) -> None:
        """Drop every cached answer (tests; an admin who just changed groups)."""
        with self._lock:
            self._people.clear()
            self._groups = None
