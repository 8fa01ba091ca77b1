"""Every Slack listener, registered in one place. Each acks, hands the work to `Responder` or
`KbCommands`, and turns the result into blocks; rules that apply to many are middleware."""

from __future__ import annotations

import logging
from concurrent.futures import Executor

from slack_bolt import App
from slack_bolt.middleware.custom_middleware import CustomMiddleware
from slack_sdk.errors import SlackApiError

from bot.feedback import FeedbackStore
from bot.slack.admin import KbCommands
from bot.slack.blocks import ANSWER_IN_DM, FEEDBACK_DOWN, FEEDBACK_UP, SHARE
from bot.slack.claims import ClaimStore
from bot.slack.middleware import (
    Admins,
    admins_only,
    channel_allowed,
    drop_retries,
    once_per_message,
    rate_limited,
)
from bot.slack.policy import RateLimiter, is_dm, looks_like_question
from bot.slack.replies import NOT_SHAREABLE, SHARE_REFUSED, Responder, blocks_for
from bot.slack.threads import Question

log = logging.getLogger(__name__)

ASK_USAGE = "Ask a question after the command, e.g. `/ask How do I set up the VPN?`"
GREETING = "Hi! I answer questions from the company wiki and cite my sources. What would you like to know?"


def register(app: App, *, responder: Responder, feedback: FeedbackStore, kb: KbCommands, admins: Admins,
             claims: ClaimStore, executor: Executor) -> None:
    settings, policy = responder.settings.slack, responder.policy
    app.use(drop_retries(claims))
    limiter = RateLimiter(settings.user_questions_per_minute, settings.questions_per_minute)
    questions = [once_per_message(claims), rate_limited(limiter, executor)]

    @app.event("app_mention", middleware=[channel_allowed(policy, executor), *questions])
    def on_mention(event, context, client):
        responder.answer(client, Question.from_event(event, context.team_id), context=context, surface="mention")

    def is_question(event: dict, context) -> bool:
        """DMs; in channels, replies in a thread the bot answered, or any question in all_questions mode."""
        if event.get("subtype") or event.get("bot_id") or not event.get("text", "").strip():
            return False
        channel, channel_type = event["channel"], event.get("channel_type")
        if not policy.allowed(channel, channel_type):
            return False
        if is_dm(channel, channel_type):
            return True
        thread = event.get("thread_ts")
        if thread and thread != event["ts"] and feedback.answered_in_thread(channel, thread):
            return True
        mentioned = context.bot_user_id and f"<@{context.bot_user_id}>" in event["text"]
        return (not mentioned and policy.answer_mode(channel) == "all_questions"
                and looks_like_question(event["text"]))

    @app.event("message", matchers=[is_question], middleware=questions)
    def on_message(event, context, client):
        responder.answer(client, Question.from_event(event, context.team_id), context=context)

    @app.event("message")
    def ignore_other_messages():
        """Edits, bot messages, channel chatter: acknowledged so Slack does not retry them."""

    _register_assistant(app, responder, questions)

    @app.command("/ask", middleware=[channel_allowed(policy, executor), questions[1]])
    def ask(ack, command, client, respond):
        text = (command.get("text") or "").strip()
        if not text:
            return ack(response_type="ephemeral", text=ASK_USAGE)
        ack(response_type="ephemeral", text=f"_Searching the wiki for:_ {text}")
        record, message, shareable = responder.answer_privately(client, text=text, user=command["user_id"],
                                                                channel=command["channel_id"])
        if record is None:
            return respond(response_type="ephemeral", replace_original=True, text=message)
        blocks = blocks_for(record, share=shareable)
        if not shareable:
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": NOT_SHAREABLE}]})
        return respond(response_type="ephemeral", replace_original=True, text=record.answer, blocks=blocks)

    @app.action(SHARE)
    def share(ack, action, body, client, respond):
        ack()
        record = feedback.get(action["value"])
        if record is None or record.user != body["user"]["id"]:
            return respond(response_type="ephemeral", replace_original=False,
                           text="I can't find that answer any more; please ask again.")
        if not responder.shareable(record, record.channel):  # checked again here: the button is not the gate
            responder.audit_share(record, record.channel, shared=False)
            return respond(response_type="ephemeral", replace_original=False, text=SHARE_REFUSED)
        try:
            resp = client.chat_postMessage(channel=record.channel, text=record.answer, unfurl_links=False,
                                           blocks=blocks_for(record, asked_by=record.user))
        except SlackApiError as e:
            log.warning("could not share an answer", extra={"channel": record.channel,
                                                            "error": e.response.get("error")})
            return respond(response_type="ephemeral", replace_original=False,
                           text="I couldn't post in this channel; invite me with `/invite @orgbot` first.")
        feedback.set_ts(record.id, resp["ts"])
        responder.audit_share(record, record.channel, shared=True)
        return respond(delete_original=True)

    @app.action(ANSWER_IN_DM)
    def answer_in_dm(ack, action, body, client, respond):
        ack()
        record = feedback.get(action["value"])
        if record is None or record.user != body["user"]["id"]:
            return respond(response_type="ephemeral", replace_original=False,
                           text="I can't find that question any more; send it to me in a DM.")
        respond(response_type="ephemeral", replace_original=True, text="I'm answering you in a direct message.")
        responder.answer_in_dm(client, record)

    @app.action(FEEDBACK_UP)
    @app.action(FEEDBACK_DOWN)
    def vote(ack, action, body, respond):
        ack()
        up = action["action_id"] == FEEDBACK_UP
        stored = feedback.vote(action["value"], body["user"]["id"], "up" if up else "down")
        text = ("Thanks for the feedback! 🙏" if up else "Thanks — noted. The admins use this to improve my answers.") \
            if stored else "I can't find that answer any more, so the vote was not saved."
        respond(response_type="ephemeral", replace_original=False, text=text)

    @app.command("/kb", middleware=[admins_only(admins)])
    def kb_command(ack, command, respond):
        def report(text: str):
            return respond(response_type="ephemeral", replace_original=False, text=text)

        ack(response_type="ephemeral", text=kb.run(command.get("text") or "", command["user_id"], report))


def _register_assistant(app: App, responder: Responder, questions: list) -> None:
    """Slack's assistant threads (the AI app split view), where the installed slack_bolt supports them."""
    try:
        from slack_bolt import Assistant
    except ImportError:  # older slack_bolt: DMs still work through the message listener
        return
    assistant = Assistant()
    middleware = [CustomMiddleware(app_name=app.name, func=m) for m in questions]

    @assistant.thread_started
    def started(say, set_suggested_prompts):
        say(GREETING)
        prompts = responder.settings.slack.suggested_prompts
        if prompts:
            set_suggested_prompts(prompts=prompts)

    @assistant.user_message(middleware=middleware)
    def asked(payload, context, client, set_status):
        responder.answer(client, Question.from_event(payload, context.team_id), context=context,
                         set_status=lambda text: set_status(status=text), surface="assistant")

    app.assistant(assistant)
