"""A fake Slack: the Web API (recording every call) and a sender of correctly signed requests.

`FakeSlack` is a real HTTP server on port 0 that answers the Web API methods the bot uses, shaped like
Slack's documented responses, keeps thread history for `conversations.replies`, records calls to
`response_url`s, and can answer a method with 429 + Retry-After once. `SlackSender` signs and posts
events, slash commands and button clicks to the bot's `/slack/events`, as Slack does.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode

BOT_USER_ID, BOT_ID, TEAM_ID = "UBOT", "BBOT", "T0ACME"
SIGNING_SECRET = "test-signing-secret"


@dataclass
class Call:
    method: str  # "chat.postMessage", … or "response_url"
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


class FakeSlack:
    def __init__(self):
        self.calls: list[Call] = []
        self.threads: dict[tuple[str, str], list[dict]] = {}  # (channel, thread_ts) -> messages, oldest first
        self.usergroups: dict[str, list[str]] = {}  # user group id -> member user ids
        self.usergroup_handles: dict[str, str] = {}  # user group id -> handle (@hr-team); default: the id, lowercased
        self.users: dict[str, str] = {}  # user id -> first name
        self.emails: dict[str, str] = {}  # user id -> e-mail (users.info profile.email)
        self.unknown_users: set[str] = set()  # users.info answers user_not_found
        self.errors: dict[str, str] = {}  # method -> Slack error code to answer with
        self._rate_limit: dict[str, int] = {}  # method -> Retry-After seconds, answered once
        self._ts = itertools.count(1)
        self._lock = threading.Condition(threading.RLock())
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> FakeSlack:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def response_url(self, name: str = "r") -> str:
        return f"{self.url}/respond/{name}"

    # -- set up ------------------------------------------------------------------------------------
    def rate_limit_once(self, method: str, retry_after: int = 1) -> None:
        self._rate_limit[method] = retry_after

    def add_message(self, channel: str, ts: str, text: str, user: str, thread_ts: str | None = None,
                    bot_id: str | None = None) -> dict:
        msg = {"type": "message", "ts": ts, "text": text, "user": user}
        if bot_id:
            msg["bot_id"] = bot_id
        if thread_ts:
            msg["thread_ts"] = thread_ts
        with self._lock:
            self.threads.setdefault((channel, thread_ts or ts), []).append(msg)
        return msg

    # -- inspection --------------------------------------------------------------------------------
    def called(self, method: str) -> list[dict]:
        with self._lock:
            return [c.params for c in self.calls if c.method == method]

    def methods(self) -> list[str]:
        with self._lock:
            return [c.method for c in self.calls]

    def wait_for(self, predicate: Callable[[FakeSlack], Any], timeout: float = 15.0) -> Any:
        """Poll until `predicate(self)` is truthy (returns it); fail with the calls seen so far."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                result = predicate(self)
                if result:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out; calls so far: {[c.method for c in self.calls]}")
                self._lock.wait(min(left, 0.2))

    def wait_calls(self, method: str, n: int = 1, timeout: float = 15.0) -> list[dict]:
        return self.wait_for(lambda s: (lambda c: c if len(c) >= n else None)(s.called(method)), timeout)

    # -- the API -----------------------------------------------------------------------------------
    def next_ts(self) -> str:
        """Message timestamps in the order things happen (people's messages and the bot's share one clock)."""
        with self._lock:
            return f"1700000{next(self._ts):03d}.000100"

    def _answer(self, method: str, p: dict) -> dict:
        if method in self.errors:
            return {"ok": False, "error": self.errors[method]}
        if method == "auth.test":
            return {"ok": True, "url": "https://acme.slack.com/", "team": "Acme", "user": "orgbot",
                    "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID, "is_enterprise_install": False}
        if method in ("chat.postMessage", "chat.startStream"):
            ts = self.next_ts()
            msg = {"type": "message", "ts": ts, "text": p.get("text") or p.get("markdown_text") or "",
                   "user": BOT_USER_ID, "bot_id": BOT_ID, "thread_ts": p.get("thread_ts")}
            self.threads.setdefault((p["channel"], p.get("thread_ts") or ts), []).append(msg)
            return {"ok": True, "channel": p["channel"], "ts": ts, "message": msg}
        if method in ("chat.update", "chat.appendStream", "chat.stopStream"):
            for msgs in self.threads.values():
                for m in msgs:
                    if m["ts"] == p.get("ts"):
                        if method == "chat.update":
                            m["text"] = p.get("text", m["text"])
                        elif p.get("markdown_text"):
                            m["text"] += p["markdown_text"]
            return {"ok": True, "channel": p.get("channel"), "ts": p.get("ts")}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": self.next_ts()}
        if method == "conversations.replies":
            msgs = self.threads.get((p["channel"], p["ts"]), [])
            return {"ok": True, "messages": sorted(msgs, key=lambda m: float(m["ts"])), "has_more": False}
        if method == "usergroups.list":
            with_users = str(p.get("include_users", "")).lower() in ("1", "true")
            return {"ok": True, "usergroups": [
                {"id": gid, "handle": self.usergroup_handles.get(gid, gid.lower()), "date_delete": 0,
                 **({"users": list(members)} if with_users else {})}
                for gid, members in self.usergroups.items()]}
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": "D" + str(p.get("users", "")).split(",")[0]}}
        if method == "usergroups.users.list":
            return {"ok": True, "users": self.usergroups.get(p.get("usergroup"), [])}
        if method == "users.info":
            if p.get("user") in self.unknown_users:
                return {"ok": False, "error": "user_not_found"}
            name = self.users.get(p.get("user"), "")
            profile = {"first_name": name, "real_name": name}
            if p.get("user") in self.emails:
                profile["email"] = self.emails[p["user"]]
            return {"ok": True, "user": {"id": p.get("user"), "team_id": TEAM_ID, "deleted": False,
                                         "profile": profile}}
        # reactions.*, chat.delete, assistant.threads.* and anything else: a plain success
        return {"ok": True}

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                params = _parse(raw, self.headers.get("Content-Type", ""))
                if self.path.startswith("/respond/"):
                    method, status, body, headers = "response_url", 200, b"ok", {}
                    params["_path"] = self.path
                else:
                    method = self.path.removeprefix("/api/").split("?")[0]
                    if fake._rate_limit.get(method):
                        retry_after = fake._rate_limit.pop(method)
                        status, headers = 429, {"Retry-After": str(retry_after)}
                        body = json.dumps({"ok": False, "error": "ratelimited"}).encode()
                        params["_rate_limited"] = True
                    else:
                        with fake._lock:
                            answer = fake._answer(method, params)
                        status, headers, body = 200, {}, json.dumps(answer).encode()
                with fake._lock:
                    fake.calls.append(Call(method, params))
                    fake._lock.notify_all()
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if method != "response_url" else "text/plain")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


def _parse(raw: str, content_type: str) -> dict[str, Any]:
    if "json" in content_type:
        params = json.loads(raw or "{}")
    else:
        params = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
    for key in ("blocks", "attachments", "chunks", "prompts"):
        if isinstance(params.get(key), str):
            try:
                params[key] = json.loads(params[key])
            except json.JSONDecodeError:
                pass
    return params


# -- requests Slack sends to the bot ---------------------------------------------------------------

def sign(body: str, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    ts = str(timestamp or int(time.time()))
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


class SlackSender:
    """Posts signed requests to the bot's /slack/events like Slack does; returns (status, body)."""

    def __init__(self, url: str, fake: FakeSlack, secret: str = SIGNING_SECRET):
        self.url, self.fake, self.secret = url, fake, secret
        self._event_ids = itertools.count(1)

    def post(self, body: str, content_type: str, *, headers: dict[str, str] | None = None,
             signed: bool = True) -> tuple[int, str]:
        h = {"Content-Type": content_type, **(sign(body, self.secret) if signed else {}), **(headers or {})}
        req = urllib.request.Request(self.url, data=body.encode(), headers=h, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def next_ts(self) -> str:
        return self.fake.next_ts()

    def event(self, event: dict, *, event_id: str | None = None, retry: int | None = None,
              signed: bool = True) -> tuple[int, str]:
        body = json.dumps({
            "token": "legacy", "team_id": TEAM_ID, "api_app_id": "AORGBOT", "type": "event_callback",
            "event_id": event_id or f"Ev{next(self._event_ids):08d}", "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}],
            "event": {"event_ts": event.get("ts"), **event},
        })
        headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} if retry else {}
        return self.post(body, "application/json", headers=headers, signed=signed)

    def message(self, text: str, *, user: str = "UASKER", channel: str = "CGENERAL", kind: str = "app_mention",
                thread_ts: str | None = None, ts: str | None = None, channel_type: str = "channel",
                **kw) -> tuple[dict, tuple[int, str]]:
        """A person writes `text` (kind "app_mention" or "message"); it is added to the fake's thread history."""
        ts = ts or self.next_ts()
        event = {"type": kind, "user": user, "text": text, "ts": ts, "channel": channel, "team": TEAM_ID}
        if kind == "message":
            event["channel_type"] = channel_type
        if thread_ts:
            event["thread_ts"] = thread_ts
        if not any(m["ts"] == ts for m in self.fake.threads.get((channel, thread_ts or ts), [])):
            self.fake.add_message(channel, ts, text, user, thread_ts)
        return event, self.event(event, **kw)

    def command(self, command: str, text: str, *, user: str = "UASKER", channel: str = "CGENERAL",
                response_url: str | None = None) -> tuple[int, str]:
        body = urlencode({
            "token": "legacy", "team_id": TEAM_ID, "team_domain": "acme", "channel_id": channel,
            "channel_name": "general", "user_id": user, "user_name": user.lower(), "command": command,
            "text": text, "api_app_id": "AORGBOT", "response_url": response_url or self.fake.response_url("cmd"),
            "trigger_id": "1.2.3",
        })
        return self.post(body, "application/x-www-form-urlencoded")

    def click(self, action_id: str, value: str, *, user: str = "UASKER", channel: str = "CGENERAL",
              message_ts: str | None = None, response_url: str | None = None) -> tuple[int, str]:
        payload = {
            "type": "block_actions", "team": {"id": TEAM_ID, "domain": "acme"},
            "user": {"id": user, "username": user.lower(), "team_id": TEAM_ID}, "api_app_id": "AORGBOT",
            "token": "legacy", "trigger_id": "1.2.3", "channel": {"id": channel, "name": "general"},
            "container": {"type": "message", "message_ts": message_ts or "1.1", "channel_id": channel},
            "message": {"type": "message", "ts": message_ts or "1.1", "text": ""},
            "response_url": response_url or self.fake.response_url("action"),
            "actions": [{"type": "button", "action_id": action_id, "block_id": "b", "value": value,
                         "action_ts": str(time.time())}],
        }
        return self.post(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")
