"""The Bolt app, and how it runs: Socket Mode when an app token is set, else HTTP on one port
(`/slack/events` for events, slash commands and interactivity; `/healthz` for load balancers).
In Socket Mode, a port given to `serve` gets an HTTP server with `/healthz` only."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from slack_bolt import App, BoltRequest
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from bot.answering import Answerer
from bot.audit import AuditLog, open_audit
from bot.feedback import FeedbackStore
from bot.runtime import SyncRunner
from bot.settings import ConfigError, Settings
from bot.slack.admin import KbCommands
from bot.slack.claims import ClaimStore, open_claims
from bot.slack.listeners import register
from bot.slack.middleware import Admins
from bot.slack.replies import Responder

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
DEFAULT_PORT = 3000


def _secret(value) -> str | None:
    return value.get_secret_value() if value else None


def make_client(settings: Settings) -> WebClient:
    """A WebClient that waits out Slack's 429s (Retry-After) and retries dropped connections."""
    kwargs = {"base_url": settings.slack.api_url} if settings.slack.api_url else {}
    return WebClient(token=_secret(settings.slack.bot_token), timeout=30,
                     retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=2),
                                     RateLimitErrorRetryHandler(max_retry_count=3)], **kwargs)


def check_tokens(settings: Settings, *, socket_mode: bool, client: WebClient | None = None) -> None:
    """Fail before anything slow starts, naming the variable to set."""
    if not (client.token if client else settings.slack.bot_token):
        raise ConfigError("slack.bot_token is not set. Export SLACK_BOT_TOKEN=xoxb-… (see docs/slack.md)")
    if not socket_mode and not settings.slack.signing_secret:
        raise ConfigError("slack.signing_secret is not set. Export SLACK_SIGNING_SECRET (Basic Information page "
                          "of your Slack app), or set SLACK_APP_TOKEN to use Socket Mode (see docs/slack.md)")


def build_app(settings: Settings, answerer: Answerer, runner: SyncRunner, feedback_store: FeedbackStore,
              client: WebClient | None = None, *, claims: ClaimStore | None = None, socket_mode: bool = False,
              clock: Callable[[], float] = time.monotonic, workers: int = 16, audit: AuditLog | None = None) -> App:
    """The Slack app. `client` defaults to `make_client(settings)`; `auth.test` is called once here.
    `claims` (event ids and messages already taken) defaults to `open_claims(settings)`, in the data dir;
    `audit` to `open_audit(settings)` (`<data_dir>/audit.db` unless `audit.enabled` is false)."""
    client = client or make_client(settings)
    check_tokens(settings, socket_mode=socket_mode, client=client)
    claims = claims or open_claims(settings)
    signing_secret = _secret(settings.slack.signing_secret)
    # Listeners run on this pool after the ack; /kb reindex and notices use a second one so a long
    # reindex never takes a slot an answer needs.
    app = App(client=client, signing_secret=signing_secret or "", process_before_response=False,
              request_verification_enabled=not socket_mode, name="orgbot",
              listener_executor=ThreadPoolExecutor(max_workers=workers, thread_name_prefix="slack-listener"))
    background = ThreadPoolExecutor(max_workers=4, thread_name_prefix="slack-background")
    responder = Responder(settings, answerer, feedback_store, clock=clock,
                          audit=audit if audit is not None else open_audit(settings))
    register(app, responder=responder, feedback=feedback_store, kb=KbCommands(runner, background),
             admins=Admins(settings.slack, clock), claims=claims, executor=background)
    return app


class _HealthHandler(BaseHTTPRequestHandler):
    """`GET /healthz` and nothing else: what Socket Mode serves for load balancers and orchestrators."""

    mode = "socket"
    protocol_version = "HTTP/1.1"

    def _send(self, status: int, body: bytes | str, headers: dict[str, list[str]] | None = None) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        for name, values in (headers or {}).items():
            if name.lower() != "content-length":
                for v in values:
                    self.send_header(name, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if urlsplit(self.path).path == "/healthz":
            return self._send(200, json.dumps({"ok": True, "mode": self.mode}),
                              {"Content-Type": ["application/json"]})
        return self._send(404, "Not Found")

    def do_POST(self):  # noqa: N802
        return self._send(404, "Not Found")

    def log_message(self, format, *args):  # noqa: A002 - quiet: Bolt and orgbot log what matters
        log.debug("http %s", format % args)


class _Handler(_HealthHandler):
    """`/healthz`, and Bolt at `/slack/events` (HTTP mode)."""

    app: App
    mode = "http"

    def do_POST(self):  # noqa: N802
        url = urlsplit(self.path)
        if url.path != EVENTS_PATH:
            return self._send(404, "Not Found")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8")
        headers = {k.lower(): [v] for k, v in self.headers.items()}
        resp = self.app.dispatch(BoltRequest(body=body, query=url.query, headers=headers))
        return self._send(resp.status, resp.body, resp.headers)


class HttpServer:
    """Bolt behind a threading HTTP server, or with `app=None` only `/healthz` (Socket Mode).
    `start()` returns at once (tests, benchmarks, Socket Mode); `serve_forever()` blocks."""

    def __init__(self, app: App | None, host: str = "0.0.0.0", port: int = DEFAULT_PORT):
        handler = type("Handler", (_Handler,), {"app": app}) if app is not None else _HealthHandler
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def start(self) -> HttpServer:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="slack-http")
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve(settings: Settings, *, host: str = "0.0.0.0", port: int | None = None,
          answerer: Answerer | None = None, claims: ClaimStore | None = None,
          on_ready: Callable[[str], None] = print) -> None:
    """Run the bot until interrupted: Socket Mode when `slack.app_token` is set (plus `/healthz` on
    `port` if one is given), else HTTP on `port` (default 3000)."""
    from bot.feedback import feedback_path
    from bot.runtime import make_answerer

    app_token = _secret(settings.slack.app_token)
    check_tokens(settings, socket_mode=bool(app_token))
    claims = claims or open_claims(settings)  # before the slow model load: a bad data dir fails at once
    answerer = answerer or make_answerer(settings)
    runner = SyncRunner(settings, embedder=answerer.embedder, index=answerer.index)
    app = build_app(settings, answerer, runner, FeedbackStore(feedback_path(settings)), claims=claims,
                    socket_mode=bool(app_token))
    scheduler = start_scheduler(runner)
    try:
        _run(app, app_token, settings, host, port, on_ready)
    finally:
        if scheduler:
            scheduler.stop(wait=False)


def start_scheduler(runner: SyncRunner):
    """The source syncs on their `schedule:` (APScheduler), unless `scheduler.enabled` is false or
    another process already schedules for this data dir."""
    if not runner.settings.scheduler.enabled:
        log.info("scheduler disabled in this process (scheduler.enabled: false)")
        return None
    from bot.scheduler import SyncScheduler

    scheduler = SyncScheduler(runner)
    return scheduler if scheduler.start() else None


def _run(app: App, app_token: str | None, settings: Settings, host: str, port: int | None,
         on_ready: Callable[[str], None]) -> None:
    if app_token:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        health = HttpServer(None, host, port).start() if port is not None else None
        if health:
            log.info("health endpoint", extra={"mode": "socket", "host": host, "port": health.port})
        where = f" Health: http://{host}:{health.port}/healthz." if health else ""
        on_ready(f"orgbot is connected to Slack (Socket Mode).{where} Ctrl-C stops it.")
        try:
            SocketModeHandler(app, app_token).start()
        finally:
            if health:
                health.stop()
        return
    server = HttpServer(app, host, DEFAULT_PORT if port is None else port)
    on_ready(f"orgbot listens on http://{host}:{server.port}{EVENTS_PATH} (health: /healthz). Ctrl-C stops it.")
    try:
        server.serve_forever()
    finally:
        server.server.server_close()
