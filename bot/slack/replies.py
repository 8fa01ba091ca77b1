"""One question in, one threaded reply out: sign of life, thread history, the answerer's stream shown
as it is generated, the final Block Kit message, the feedback record, and an apology if it fails."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.answering import Answer, Answerer, QuestionError
from bot.answering.answerer import Delta
from bot.audit import AuditEntry, AuditLog
from bot.feedback import AnswerRecord, FeedbackStore, record_of
from bot.settings import Settings
from bot.slack.blocks import (
    ANSWER_IN_DM,
    PLACEHOLDER,
    answer_blocks,
    answer_footer,
    button,
    text_blocks,
    to_mrkdwn,
)
from bot.slack.directory import Directory
from bot.slack.policy import ChannelPolicy, Scope, is_dm
from bot.slack.threads import Question, thread_history

log = logging.getLogger(__name__)

EYES = "eyes"
STATUS = "Searching the wiki…"
EMPTY = "What would you like to know? Ask me a question, e.g. _How do I set up the VPN?_"
DM_OFFER = ("I may have a better answer for you from pages that only you (not everyone here) may see, so I left "
            "them out of this reply. Want me to answer in a direct message?")
NOT_SHAREABLE = ("_Only you can see this answer: it uses pages that not everyone in this channel may see, "
                 "so it can't be shared here._")
SHARE_REFUSED = ("I can't post this answer here: it uses pages that not everyone in this channel may see. "
                 "Mention me in the channel for an answer from pages everyone here can read.")


def error_id() -> str:
    return uuid.uuid4().hex[:8]


def apology(eid: str) -> str:
    return (f"Sorry, something went wrong while answering (error id `{eid}`). "
            "Please try again in a minute; if it keeps happening, send the error id to the bot's admins.")


def blocks_for(record: AnswerRecord, *, share: bool = False, asked_by: str | None = None) -> list[dict]:
    return answer_blocks(record.answer, answer_id=record.id, found=record.found, citations=record.citations,
                         passages=record.passages, share=share, asked_by=asked_by)


def visible_in(record: AnswerRecord, scope: Scope) -> bool:
    """Whether every passage the answer was written from (and may list as its nearest pages) is one
    `scope` may see. A record from before sources and ACLs were stored is not."""
    return all("acl" in p and "source" in p and scope.allows(p["source"], p["acl"]) for p in record.passages)


def safe_prefix(text: str) -> str:
    """`text` without a citation marker still being written ("… lot B [1" → "… lot B ")."""
    cut = text.rfind("[")
    return text[:cut] if cut != -1 and "]" not in text[cut:] else text


class Delivery:
    """How a reply appears while it is generated. `finish` returns the ts of the final message."""

    def __init__(self, client: WebClient, q: Question, interval_s: float, clock: Callable[[], float]):
        self.client, self.q, self.interval_s, self.clock = client, q, interval_s, clock
        self.ts: str | None = None
        self._last = float("-inf")

    def _due(self) -> bool:
        now = self.clock()
        if now - self._last < self.interval_s:
            return False
        self._last = now
        return True

    def start(self) -> None: ...

    def partial(self, text: str) -> None: ...

    def post(self, text: str, blocks: list[dict]) -> str:
        if self.ts:
            self.client.chat_update(channel=self.q.channel, ts=self.ts, text=text, blocks=blocks)
            return self.ts
        resp = self.client.chat_postMessage(channel=self.q.channel, thread_ts=self.q.thread_ts, text=text,
                                            blocks=blocks, unfurl_links=False)
        self.ts = resp["ts"]
        return resp["ts"]

    def finish(self, record: AnswerRecord) -> str:
        return self.post(record.answer, blocks_for(record))

    def fail(self, message: str) -> None:
        self.post(message, text_blocks(message))


class UpdateDelivery(Delivery):
    """A placeholder at once, `chat.update`d with the text so far at most once per `interval_s`."""

    def start(self) -> None:
        self.post(PLACEHOLDER, text_blocks(PLACEHOLDER))

    def partial(self, text: str) -> None:
        if text and self._due():
            self.client.chat_update(channel=self.q.channel, ts=self.ts, text=text,
                                    blocks=text_blocks(to_mrkdwn(text) + " …"))


class NativeDelivery(Delivery):
    """Slack's own streaming (chat.startStream / appendStream / stopStream): markdown appended as it comes,
    the sources and buttons added when it stops. Falls back to `UpdateDelivery` if Slack refuses."""

    def __init__(self, *args, on_unavailable: Callable[[], None] = lambda: None):
        super().__init__(*args)
        self.sent = ""
        self.fallback: UpdateDelivery | None = None
        self.on_unavailable = on_unavailable

    def partial(self, text: str) -> None:
        if self.fallback:
            return self.fallback.partial(text)
        text = safe_prefix(text)
        if not text.startswith(self.sent) or len(text) == len(self.sent) or not self._due():
            return None
        if self.ts is None:
            try:
                resp = self.client.chat_startStream(
                    channel=self.q.channel, thread_ts=self.q.thread_ts, markdown_text=text,
                    recipient_user_id=self.q.user or None, recipient_team_id=self.q.team or None)
            except SlackApiError as e:
                log.warning("native streaming refused, using chat.update", extra={"error": e.response.get("error")})
                self.on_unavailable()
                self.fallback = UpdateDelivery(self.client, self.q, self.interval_s, self.clock)
                self.fallback.start()
                return self.fallback.partial(text)
            self.ts = resp["ts"]
        else:
            self.client.chat_appendStream(channel=self.q.channel, ts=self.ts, markdown_text=text[len(self.sent):])
        self.sent = text
        return None

    def finish(self, record: AnswerRecord) -> str:
        if self.fallback:
            return self.fallback.finish(record)
        if self.ts is None:  # nothing was streamed (not found, or a one-piece answer)
            return super().finish(record)
        footer = answer_footer(answer_id=record.id, found=record.found, citations=record.citations,
                               passages=record.passages)
        exact = record.answer.startswith(self.sent)
        self.client.chat_stopStream(channel=self.q.channel, ts=self.ts, blocks=footer,
                                    markdown_text=record.answer[len(self.sent):] if exact else None)
        if not exact:  # the checked answer differs from what streamed (a dropped citation): show the checked one
            self.client.chat_update(channel=self.q.channel, ts=self.ts, text=record.answer, blocks=blocks_for(record))
        return self.ts

    def fail(self, message: str) -> None:
        if self.fallback:
            return self.fallback.fail(message)
        if self.ts is None:
            return super().fail(message)
        self.client.chat_stopStream(channel=self.q.channel, ts=self.ts, markdown_text=f"\n\n{message}")
        return None


class Responder:
    """Answers questions asked in Slack conversations. Thread-safe: one instance serves every listener."""

    def __init__(self, settings: Settings, answerer: Answerer, feedback: FeedbackStore, *,
                 clock: Callable[[], float] = time.monotonic, audit: AuditLog | None = None,
                 directory: Directory | None = None):
        self.settings = settings
        self.answerer = answerer
        self.feedback = feedback
        self.policy = ChannelPolicy(settings.slack)
        self.directory = directory or Directory(settings.access, clock=clock)
        self.audit = audit
        self.clock = clock
        self.native = settings.slack.streaming in ("auto", "native") and hasattr(WebClient, "chat_startStream")

    def _delivery(self, client: WebClient, q: Question) -> Delivery:
        mode, interval = self.settings.slack.streaming, self.settings.slack.stream_interval_s
        if mode in ("auto", "native") and self.native:
            def unavailable():
                if mode == "auto":  # don't try again on every question
                    self.native = False
            return NativeDelivery(client, q, interval, self.clock, on_unavailable=unavailable)
        if mode == "off":
            return Delivery(client, q, interval, self.clock)
        return UpdateDelivery(client, q, interval, self.clock)

    def scope_for(self, client: WebClient, q: Question) -> Scope:
        """A DM or assistant thread: the asker's own principals; a channel (and its threads): the channel's."""
        if is_dm(q.channel, q.channel_type):
            return self.policy.private_scope(q.channel, q.user, self.directory.principals(client, q.user))
        return self.policy.channel_scope(q.channel)

    def _audit(self, surface: str, *, user: str | None, channel: str | None, question: str, scope: Scope,
               answer: Answer | None = None, answer_id: str | None = None, outcome: str | None = None) -> None:
        if self.audit is None:
            return
        self.audit.record(AuditEntry(
            surface=surface, asker=user, channel=channel, question=question, audience=scope.audience,
            principals=scope.principals, sources=scope.sources,
            retrieved=[p.chunk.document_id for p in answer.passages] if answer else (),
            cited=[c.document_id for c in answer.citations] if answer else (),
            found=bool(answer and answer.found), answer_id=answer_id,
            outcome=outcome or ("answered" if answer and answer.found else "not_found")))

    def answer(self, client: WebClient, q: Question, *, context: dict | None = None,
               set_status: Callable[[str], None] | None = None, surface: str = "message") -> str | None:
        """Answer `q` in its thread; returns the reply's ts (None if even the apology failed)."""
        context = context or {}
        t0 = self.clock()
        if not q.text:
            return Delivery(client, q, 0, self.clock).post(EMPTY, text_blocks(EMPTY))
        if set_status:
            _quietly(set_status, STATUS)
        else:
            _quietly(client.reactions_add, channel=q.channel, timestamp=q.ts, name=EYES)
        delivery = self._delivery(client, q)
        scope = self.policy.channel_scope(q.channel)  # the strictest, until the asker's is known
        try:
            scope = self.scope_for(client, q)
            delivery.start()
            history = thread_history(client, q, turns=self.settings.answering.history_turns,
                                     bot_user_id=context.get("bot_user_id"), bot_id=context.get("bot_id"))
            answer = self._generate(client, q, history, delivery, scope)
            record = record_of(answer, asker=self.directory.name(client, q.user), user=q.user, channel=q.channel,
                               thread_ts=q.thread_ts)
            self.feedback.save(record)
            ts = delivery.finish(record)
            self.feedback.set_ts(record.id, ts)
            self._audit(surface, user=q.user, channel=q.channel, question=q.text, scope=scope, answer=answer,
                        answer_id=record.id)
            log.info("answered", extra={"channel": q.channel, "user": q.user, "found": answer.found,
                                        "citations": len(answer.citations), "answer_id": record.id,
                                        "audience": scope.audience, "seconds": round(self.clock() - t0, 3),
                                        **answer.timings})
            self._offer_dm(client, q, scope, history, record)
            return ts
        except QuestionError as e:
            self._audit(surface, user=q.user, channel=q.channel, question=q.text, scope=scope, outcome="refused")
            return self._fail(delivery, str(e))
        except Exception:
            eid = error_id()
            log.exception("answer failed", extra={"error_id": eid, "channel": q.channel, "user": q.user})
            self._audit(surface, user=q.user, channel=q.channel, question=q.text, scope=scope, outcome="failed")
            return self._fail(delivery, apology(eid))
        finally:
            if not set_status:
                _quietly(client.reactions_remove, channel=q.channel, timestamp=q.ts, name=EYES)

    def _offer_dm(self, client: WebClient, q: Question, scope: Scope, history, record: AnswerRecord) -> None:
        """In a channel: if pages the asker may see (and the channel may not) rank among the best for this
        question, tell the asker, and only them, with a button to get that answer in a DM. Nothing about
        those pages (title, link, text) is shown; the offer only says that they exist."""
        if (is_dm(q.channel, q.channel_type) or not self.settings.access.dm_hint
                or not self.settings.slack.answer_dms or not q.user):
            return
        try:
            mine = self.directory.principals(client, q.user)
            if not set(mine) - set(scope.principals):
                return
            wider = tuple(dict.fromkeys((*scope.principals, *mine)))
            passages = self.answerer.retrieve(q.text, sources=scope.sources, principals=wider, history=history)
            hidden = [p for p in passages if not scope.allows(p.chunk.source, p.chunk.acl)
                      and p.vector_score is not None and p.vector_score >= self.answerer.min_similarity]
            if not hidden:
                return
            client.chat_postEphemeral(
                channel=q.channel, user=q.user, thread_ts=q.thread_ts, text=DM_OFFER,
                blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": DM_OFFER}},
                        {"type": "actions", "elements": [button(ANSWER_IN_DM, record.id, "Answer me in a DM",
                                                                primary=True)]}])
            log.info("offered a DM answer", extra={"channel": q.channel, "user": q.user, "answer_id": record.id})
        except Exception:  # the answer is out; a failed offer must not turn it into an apology
            log.exception("could not offer a DM answer", extra={"channel": q.channel, "user": q.user})

    def answer_in_dm(self, client: WebClient, record: AnswerRecord) -> str | None:
        """The DM the offer promised: the same question, answered with the asker's own principals."""
        dm = client.conversations_open(users=record.user)["channel"]["id"]
        intro = client.chat_postMessage(channel=dm, text=f"You asked in <#{record.channel}>: {record.question}",
                                        unfurl_links=False)
        q = Question(record.question, record.user or "", dm, "im", intro["ts"], intro["ts"])
        return self.answer(client, q, set_status=lambda _text: None, surface="dm_offer")

    def _generate(self, client: WebClient, q: Question, history, delivery: Delivery, scope: Scope) -> Answer:
        final = None
        for event in self.answerer.stream(q.text, asker=self.directory.name(client, q.user), history=history,
                                          sources=scope.sources, principals=scope.principals):
            if isinstance(event, Delta):
                delivery.partial(event.text)
            else:
                final = event
        assert final is not None
        return final

    def _fail(self, delivery: Delivery, message: str) -> str | None:
        try:
            delivery.fail(message)
            return delivery.ts
        except Exception:
            log.exception("could not post the apology")
            return None

    def answer_privately(self, client: WebClient, *, text: str, user: str, channel: str
                         ) -> tuple[AnswerRecord | None, str, bool]:
        """For /ask: the record (None on failure), the message to show only to the asker, and whether it
        may be shared into `channel` (every passage it used is one that channel may see). Only the asker
        reads it, so their own principals apply."""
        scope = self.policy.private_scope(channel, user, ())
        try:
            scope = self.policy.private_scope(channel, user, self.directory.principals(client, user))
            answer = self.answerer.answer(text, asker=self.directory.name(client, user), sources=scope.sources,
                                          principals=scope.principals)
        except QuestionError as e:
            self._audit("ask", user=user, channel=channel, question=text, scope=scope, outcome="refused")
            return None, str(e), False
        except Exception:
            eid = error_id()
            log.exception("answer failed", extra={"error_id": eid, "channel": channel, "user": user})
            self._audit("ask", user=user, channel=channel, question=text, scope=scope, outcome="failed")
            return None, apology(eid), False
        record = record_of(answer, asker=self.directory.name(client, user), user=user, channel=channel, thread_ts=None)
        self.feedback.save(record)
        self._audit("ask", user=user, channel=channel, question=text, scope=scope, answer=answer,
                    answer_id=record.id)
        return record, answer.text, self.shareable(record, channel)

    def shareable(self, record: AnswerRecord, channel: str) -> bool:
        """*Share in channel* posts for everyone there: only if the channel may see every passage used."""
        return visible_in(record, self.policy.channel_scope(channel))

    def audit_share(self, record: AnswerRecord, channel: str, *, shared: bool) -> None:
        if self.audit is None:
            return
        scope = self.policy.channel_scope(channel)
        self.audit.record(AuditEntry(
            surface="share", asker=record.user, channel=channel, question=record.question, audience=scope.audience,
            principals=scope.principals, sources=scope.sources,
            retrieved=[p["document_id"] for p in record.passages],
            cited=[c["document_id"] for c in record.citations], found=record.found, answer_id=record.id,
            outcome="shared" if shared else "share_refused"))


def _quietly(fn: Callable, *args, **kwargs) -> None:
    """A sign of life is nice to have; failing to show one must not stop the answer."""
    try:
        fn(*args, **kwargs)
    except Exception as e:
        log.info("could not signal", extra={"call": getattr(fn, "__name__", "?"), "error": str(e)})
