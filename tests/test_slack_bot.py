"""The Slack bot as Slack drives it: signed requests to /slack/events, Web API calls to a fake Slack.

The product path is real (Bolt, the Answerer, an EmbeddedIndex over markdown files, the SyncRunner);
only the language model (ScriptedGenerator), the embedder (HashingEmbedder) and Slack itself are fakes.
"""

from __future__ import annotations

import json
import logging
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from bot.feedback import FeedbackStore
from bot.runtime import SyncRunner, make_answerer
from bot.settings import load_settings
from bot.slack.app import HttpServer, build_app
from bot.slack.blocks import FEEDBACK_UP, SHARE
from bot.slack.middleware import NOT_ADMIN, RATE_LIMITED
from retrieval.sqlite_index import EmbeddedIndex
from tests.fakes.embedder import HashingEmbedder
from tests.fakes.fake_slack import SIGNING_SECRET, FakeSlack, SlackSender
from tests.fakes.generator import ScriptedGenerator

PAGES = {
    "vpn.md": "---\ntitle: VPN Setup\n---\n# VPN Setup\n## Install\n"
              "Import the acme-vpn profile into WireGuard and sign in with AcmeID.",
    "parking.md": "---\ntitle: Parking\n---\n# Parking\n## Toronto\nStaff park for free in lot B behind the office.",
    "salaries.md": "---\ntitle: Salary Bands\nacl: [UHR]\n---\n# Salary Bands\n## Engineering\n"
                   "Salary bands for engineering levels are secret figures.",
}


def passage_reply(messages: list[dict]) -> str:
    """Answers with the first sentence of passage [1], cited, like a well-behaved model."""
    user = messages[-1]["content"]
    m = re.search(r"^<passage 1> [^\n]*\n([^\n]+)", user, re.M)
    return f"Hi! {m.group(1) if m else 'I found it'} [1]."


class Bot:
    """orgbot wired to a fake Slack: `send` Slack's requests, inspect `slack` (the fake) and `gen`."""

    def __init__(self, tmp_path: Path, gen: ScriptedGenerator, *, pages: dict[str, str] = PAGES,
                 more_config: dict | None = None, index=None, **slack_settings):
        """`more_config`: more top-level settings (access, audit, sources.wiki.*); `index`: a factory
        (settings, embedder) -> DocumentIndex, default the embedded engine in the data dir."""
        self.wiki = tmp_path / "wiki"
        self.wiki.mkdir()
        for name, text in pages.items():
            (self.wiki / name).parent.mkdir(parents=True, exist_ok=True)
            (self.wiki / name).write_text(text)
        self.slack = FakeSlack().start()
        self.slack.users.update({"UASKER": "Dana", "UHR": "Hana"})
        config = {
            "data_dir": str(tmp_path / "data"),
            "sources": {"wiki": {"type": "files", "path": str(self.wiki)}},
            "retrieval": {"min_similarity": 0.2, "top_k": 3},
            "slack": {"bot_token": "xoxb-test", "signing_secret": SIGNING_SECRET, "api_url": self.slack.api_url,
                      "admin_users": ["UADMIN"], "streaming": "off", **slack_settings},
        }
        for key, value in (more_config or {}).items():
            if key == "sources":
                config["sources"]["wiki"].update(value["wiki"])
            else:
                config[key] = value
        cfg = tmp_path / "config.yaml"
        cfg.write_text(yaml.safe_dump(config))
        self.settings = load_settings(cfg)
        self.gen = gen
        embedder = HashingEmbedder()
        index = index(self.settings, embedder) if index else EmbeddedIndex(self.settings.index_path)
        self.runner = SyncRunner(self.settings, embedder=embedder, index=index)
        self.runner.sync_sources()
        self.answerer = make_answerer(self.settings, generator=gen, embedder=embedder, index=index)
        self.feedback = FeedbackStore(tmp_path / "feedback.db")
        self.clock_value, self.fake_clock = 0.0, False
        self.app = build_app(self.settings, self.answerer, self.runner, self.feedback,
                             clock=lambda: self.clock_value if self.fake_clock else time.monotonic())
        self.server = HttpServer(self.app, "127.0.0.1", 0).start()
        self.send = SlackSender(f"http://127.0.0.1:{self.server.port}/slack/events", self.slack)

    def close(self):
        self.server.stop()
        self.slack.stop()

    def replies(self, channel: str = "CGENERAL") -> list[dict]:
        """Answers the bot posted (not notices), in order."""
        return [p for p in self.slack.called("chat.postMessage") if p["channel"] == channel]


@pytest.fixture
def bot(tmp_path):
    b = Bot(tmp_path, ScriptedGenerator(passage_reply))
    yield b
    b.close()


def blocks_text(blocks: list[dict]) -> str:
    out = []
    for b in blocks:
        if b["type"] == "section":
            out.append(b["text"]["text"])
        elif b["type"] == "context":
            out.extend(e["text"] for e in b["elements"])
    return "\n".join(out)


def sources_of(blocks: list[dict]) -> list[str]:
    ctx = [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"]]
    return [t for t in ctx if not t.startswith("*")]


def button_value(blocks: list[dict], action_id: str) -> str:
    return next(e["value"] for b in blocks if b["type"] == "actions" for e in b["elements"]
                if e["action_id"] == action_id)


# -- answering ---------------------------------------------------------------------------------------

def test_reply_lands_in_the_thread_of_the_question(bot):
    event, (status, _) = bot.send.message("<@UBOT> how do I set up the VPN profile?")
    assert status == 200
    reply = bot.slack.wait_calls("chat.postMessage")[0]
    assert reply["thread_ts"] == event["ts"] and reply["channel"] == "CGENERAL"
    assert "AcmeID" in reply["text"] and "Hi! Import the acme-vpn profile" in blocks_text(reply["blocks"])
    # a sign of life before the answer, gone after it
    bot.slack.wait_calls("reactions.remove")
    methods = bot.slack.methods()
    assert methods.index("reactions.add") < methods.index("chat.postMessage") < methods.index("reactions.remove")
    assert bot.slack.called("reactions.add")[0].items() >= {"channel": "CGENERAL", "timestamp": event["ts"], "name": "eyes"}.items()
    assert "Asker: Dana" in bot.gen.prompts[0][-1]["content"]


def test_sources_block_links_match_the_numbers_in_the_text(tmp_path):
    def reply(messages):
        user = messages[-1]["content"]
        n = int(re.search(r"^<passage (\d)> Parking", user, re.M).group(1))
        v = int(re.search(r"^<passage (\d)> VPN Setup", user, re.M).group(1))
        return f"Park in **lot B** [{n}]; the VPN needs AcmeID [{v}] [7]."

    b = Bot(tmp_path, ScriptedGenerator(reply))
    try:
        b.settings.sources["wiki"].base_url = "https://wiki.acme.test/"
        b.runner.sync_sources(full=True)  # re-index with web URLs
        b.send.message("<@UBOT> where do staff park, and what about the VPN profile sign in?")
        blocks = b.slack.wait_calls("chat.postMessage")[0]["blocks"]
        text = blocks_text([x for x in blocks if x["type"] == "section"])
        assert "*lot B*" in text and "[7]" not in text  # mrkdwn bold; an invented citation dropped
        markers = [int(x) for x in re.findall(r"\[(\d+)\]", text)]
        sources = sources_of(blocks)
        assert len(sources) == len(markers) == 2
        for marker, source in zip(sorted(markers), sources, strict=True):
            url, label = re.fullmatch(r"<(https://wiki\.acme\.test/[^|]+)\|(.+)>", source).groups()
            assert label.startswith(f"{marker}. ")
            title = "Parking" if url.endswith("parking.md") else "VPN Setup"
            assert title in label
            assert re.search(rf"\[{marker}\]", text)
    finally:
        b.close()


def test_nothing_found_lists_the_nearest_pages_without_guessing(bot):
    bot.send.message("<@UBOT> quarterly revenue of the Brazil subsidiary?")
    reply = bot.slack.wait_calls("chat.postMessage")[0]
    assert "couldn't find" in reply["text"] and bot.gen.prompts == []
    assert "*Nearest pages:*" in blocks_text(reply["blocks"])


def test_a_retried_event_yields_one_reply(bot):
    event, (status, _) = bot.send.message("<@UBOT> how do I set up the VPN profile?", event_id="EvSAME")
    status2, _ = bot.send.event(event, event_id="EvSAME", retry=1)
    status3, _ = bot.send.event(event, event_id="EvSAME", retry=2)
    assert status == status2 == status3 == 200
    bot.slack.wait_calls("reactions.remove")
    time.sleep(0.3)
    assert len(bot.replies()) == 1 and len(bot.gen.prompts) == 1


def second_instance(bot: Bot) -> tuple[HttpServer, SlackSender]:
    """Another bot process on the same data dir: the one after a restart, or one beside the first."""
    app = build_app(bot.settings, bot.answerer, bot.runner, bot.feedback)
    server = HttpServer(app, "127.0.0.1", 0).start()
    return server, SlackSender(f"http://127.0.0.1:{server.port}/slack/events", bot.slack)


def test_a_retry_that_reaches_the_restarted_bot_yields_no_second_reply(bot):
    event, _ = bot.send.message("<@UBOT> how do I set up the VPN profile?", event_id="EvDEPLOY")
    bot.slack.wait_calls("reactions.remove")
    bot.server.stop()  # a deploy: the process that answered is gone
    server, send = second_instance(bot)
    try:
        status, _ = send.event(event, event_id="EvDEPLOY", retry=1)
        assert status == 200
        time.sleep(0.3)
        assert len(bot.replies()) == 1 and len(bot.gen.prompts) == 1
    finally:
        server.stop()


def test_two_bot_processes_on_one_data_dir_answer_a_message_once(bot):
    first, _ = bot.send.message("<@UBOT> where do staff park for free?")
    bot.slack.wait_calls("reactions.remove")
    server, other = second_instance(bot)
    try:
        # a mention in a thread the bot answered: both its `message` and its `app_mention` would be answered,
        # and here each reaches a different process
        ts, text = bot.send.next_ts(), "<@UBOT> and is that lot behind the office?"
        bot.send.message(text, kind="message", ts=ts, thread_ts=first["ts"], event_id="EvMESSAGE")
        other.message(text, kind="app_mention", ts=ts, thread_ts=first["ts"], event_id="EvMENTION")
        bot.slack.wait_calls("reactions.remove", 2)
        time.sleep(0.3)
        assert len(bot.replies()) == 2 and len(bot.gen.prompts) == 2
    finally:
        server.stop()


def test_message_and_app_mention_for_the_same_ts_yield_one_reply(bot):
    first, _ = bot.send.message("<@UBOT> where do staff park for free?")
    bot.slack.wait_calls("reactions.remove")
    # a mention in a thread the bot answered is both a follow-up `message` and an `app_mention`
    ts, text = bot.send.next_ts(), "<@UBOT> and is that lot behind the office?"
    bot.send.message(text, kind="message", ts=ts, thread_ts=first["ts"])
    bot.send.message(text, kind="app_mention", ts=ts, thread_ts=first["ts"])
    bot.slack.wait_calls("reactions.remove", 2)
    time.sleep(0.3)
    assert len(bot.replies()) == 2 and len(bot.gen.prompts) == 2


def test_channel_chatter_is_ignored_in_mentions_mode_but_dms_are_answered(bot):
    _, (status, _) = bot.send.message("does anyone know how the VPN profile works?", kind="message")
    assert status == 200
    bot.send.message("how do I set up the VPN profile?", kind="message", channel="DDANA", channel_type="im")
    reply = bot.slack.wait_calls("chat.postMessage")[0]
    assert reply["channel"] == "DDANA"
    time.sleep(0.2)
    assert len(bot.slack.called("chat.postMessage")) == 1


def test_a_follow_up_in_the_thread_uses_the_earlier_question(bot):
    first, _ = bot.send.message("<@UBOT> where do staff park for free?")
    bot.slack.wait_calls("reactions.remove")
    # a reply in the thread without a mention: the bot answered there, so it answers again
    bot.send.message("and is that lot behind the office?", kind="message", thread_ts=first["ts"])
    replies = bot.slack.wait_calls("chat.postMessage", 2)
    assert replies[1]["thread_ts"] == first["ts"]
    prompt = bot.gen.prompts[1]
    history = [m for m in prompt[:-1] if m["role"] in ("user", "assistant")][-2:]
    assert history[0] == {"role": "user", "content": "where do staff park for free?"}
    assert history[1]["role"] == "assistant" and "lot B" in history[1]["content"]
    # the search query carried the earlier question too: Parking is passage [1] of the follow-up
    assert prompt[-1]["content"].split("\n")[1].startswith("<passage 1> Parking")


def test_private_documents_stay_out_of_channels(bot):
    bot.send.message("<@UBOT> what are the engineering salary bands?", user="UHR")
    bot.slack.wait_calls("reactions.remove")
    bot.send.message("what are the engineering salary bands?", kind="message", user="UHR", channel="DHANA",
                     channel_type="im")
    bot.slack.wait_calls("reactions.remove", 2)
    in_channel = " ".join(m["content"] for m in bot.gen.prompts[0]) if bot.gen.prompts else ""
    assert "secret figures" not in in_channel
    assert "secret figures" in bot.gen.prompts[-1][-1]["content"]  # the DM's reader may see it


def test_failure_posts_an_apology_with_an_error_id_and_the_bot_keeps_running(bot, caplog):
    bot.gen.fail = RuntimeError("the model fell over")
    with caplog.at_level(logging.ERROR):
        event, _ = bot.send.message("<@UBOT> how do I set up the VPN profile?")
        reply = bot.slack.wait_calls("chat.postMessage")[0]
    eid = re.search(r"error id `([0-9a-f]{8})`", reply["text"]).group(1)
    assert reply["thread_ts"] == event["ts"] and "Sorry" in reply["text"]
    logged = [r for r in caplog.records if getattr(r, "error_id", None) == eid]
    assert logged and "the model fell over" in logged[0].exc_text
    bot.gen.fail = None
    bot.send.message("<@UBOT> how do I set up the VPN profile?")
    assert "AcmeID" in bot.slack.wait_calls("chat.postMessage", 2)[1]["text"]


def test_rate_limit_gives_a_friendly_message(tmp_path):
    b = Bot(tmp_path, ScriptedGenerator(passage_reply), user_questions_per_minute=1)
    try:
        b.send.message("<@UBOT> how do I set up the VPN profile?")
        b.send.message("<@UBOT> where do staff park?")
        note = b.slack.wait_calls("chat.postEphemeral")[0]
        assert note["user"] == "UASKER" and note["text"] == RATE_LIMITED["user"]
        b.send.message("<@UBOT> where do staff park?", user="USOMEONE")  # others may still ask
        b.slack.wait_calls("chat.postMessage", 2)
        assert len(b.replies()) == 2
    finally:
        b.close()


def test_slack_429_is_retried_after_retry_after(bot):
    bot.slack.rate_limit_once("chat.postMessage", retry_after=1)
    t0 = time.monotonic()
    bot.send.message("<@UBOT> how do I set up the VPN profile?")
    bot.slack.wait_for(lambda s: [p for p in s.called("chat.postMessage") if not p.get("_rate_limited")])
    posts = bot.slack.called("chat.postMessage")
    assert [bool(p.get("_rate_limited")) for p in posts] == [True, False]
    assert time.monotonic() - t0 >= 1.0


def test_bad_signature_is_refused_and_nothing_runs(bot):
    before = len(bot.slack.calls)
    _, (status, _) = bot.send.message("<@UBOT> how do I set up the VPN profile?", signed=False)
    assert status == 401
    bot.send.secret = "wrong-secret"
    status, _ = bot.send.command("/kb", "reindex", user="UADMIN")
    assert status == 401
    time.sleep(0.3)
    assert len(bot.slack.calls) == before and bot.gen.prompts == []


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_healthz(bot):
    status, body = get(f"http://127.0.0.1:{bot.server.port}/healthz")
    assert status == 200 and json.loads(body) == {"ok": True, "mode": "http"}
    assert get(f"http://127.0.0.1:{bot.server.port}/elsewhere")[0] == 404


def test_socket_mode_serves_healthz_on_the_port_given(bot, monkeypatch):
    import slack_bolt.adapter.socket_mode as socket_mode
    from pydantic import SecretStr

    from bot.slack.app import serve

    ready, probes = [], {}

    class OfflineSocketModeHandler:
        """Stands in for the real handler, which would dial Slack; it probes while "connected"."""

        def __init__(self, app, app_token):
            probes["app_token"] = app_token

        def start(self):
            found = re.search(r":(\d+)/healthz", ready[-1])
            if not found:
                return
            port = probes["port"] = int(found.group(1))
            probes["healthz"] = get(f"http://127.0.0.1:{port}/healthz")
            probes["events"] = get(f"http://127.0.0.1:{port}/slack/events")[0]

    monkeypatch.setattr(socket_mode, "SocketModeHandler", OfflineSocketModeHandler)
    bot.settings.slack.app_token = SecretStr("xapp-test")
    serve(bot.settings, host="127.0.0.1", port=0, answerer=bot.answerer, on_ready=ready.append)
    status, body = probes["healthz"]
    assert status == 200 and json.loads(body) == {"ok": True, "mode": "socket"}
    assert probes["events"] == 404 and probes["app_token"] == "xapp-test"
    with pytest.raises(urllib.error.URLError):  # stopped when the socket handler returns
        get(f"http://127.0.0.1:{probes['port']}/healthz")

    ready.clear()
    serve(bot.settings, host="127.0.0.1", answerer=bot.answerer, on_ready=ready.append)
    assert "healthz" not in ready[0]  # no port given: no HTTP server at all


# -- streaming ---------------------------------------------------------------------------------------

def test_chat_update_streams_at_most_once_per_second(tmp_path):
    b = Bot(tmp_path, ScriptedGenerator(), streaming="update")
    b.fake_clock = True
    # Streaming shows whole sentences once they pass the grounding check: several, so several updates.
    text = ("Hi! Import the acme-vpn profile into WireGuard [1]. Then sign in with AcmeID [1]. "
            "Import the profile before you sign in [1]. Sign in with AcmeID in WireGuard [1].")

    def stream(messages, max_new_tokens=None):  # 0.3 fake seconds per piece
        b.gen.prompts.append(messages)
        for i in range(0, len(text), 4):
            b.clock_value += 0.3
            yield text[i:i + 4]

    b.gen.stream = stream
    try:
        b.send.message("<@UBOT> how do I set up the VPN profile?")
        placeholder = b.slack.wait_calls("chat.postMessage")[0]
        assert placeholder["text"] == "_Searching the wiki…_"
        b.slack.wait_for(lambda s: any(u.get("blocks") and "Sources" in json.dumps(u["blocks"])
                                       for u in s.called("chat.update")))
        updates = b.slack.called("chat.update")
        assert len({u["ts"] for u in updates}) == 1  # every update edits the placeholder
        partial = updates[:-1]
        fake_seconds = b.clock_value
        assert 2 <= len(partial) <= int(fake_seconds / 1.0) + 1
        assert "AcmeID" in updates[-1]["text"] and len(b.replies()) == 1
    finally:
        b.close()


def test_native_streaming_appends_then_stops_with_sources_and_buttons(tmp_path):
    b = Bot(tmp_path, ScriptedGenerator(passage_reply), streaming="native")
    try:
        event, _ = b.send.message("<@UBOT> how do I set up the VPN profile?")
        stop = b.slack.wait_calls("chat.stopStream")[0]
        start = b.slack.called("chat.startStream")[0]
        assert start["thread_ts"] == event["ts"] and start["recipient_user_id"] == "UASKER"
        streamed = start["markdown_text"] + "".join(a["markdown_text"] for a in b.slack.called("chat.appendStream"))
        assert streamed + (stop.get("markdown_text") or "") == "Hi! Import the acme-vpn profile into WireGuard " \
                                                                "and sign in with AcmeID [1]."
        assert any(x["type"] == "actions" for x in stop["blocks"]) and sources_of(stop["blocks"])
        assert b.slack.called("chat.postMessage") == []
    finally:
        b.close()


def test_native_streaming_refused_falls_back_to_updates(tmp_path):
    b = Bot(tmp_path, ScriptedGenerator(passage_reply), streaming="auto")
    b.slack.errors["chat.startStream"] = "not_allowed"
    try:
        b.send.message("<@UBOT> how do I set up the VPN profile?")
        b.slack.wait_for(lambda s: any("Sources" in json.dumps(u.get("blocks")) for u in s.called("chat.update")))
        assert b.slack.called("chat.postMessage")[0]["text"] == "_Searching the wiki…_"
    finally:
        b.close()


# -- feedback ------------------------------------------------------------------------------------------

def test_feedback_click_is_stored_and_exported_in_the_training_shape(bot, tmp_path):
    from training.data import load_examples

    bot.send.message("<@UBOT> how do I set up the VPN profile?")
    reply = bot.slack.wait_calls("chat.postMessage")[0]
    answer_id = button_value(reply["blocks"], FEEDBACK_UP)
    bot.send.click("feedback_down", answer_id, user="UVOTER")
    bot.slack.wait_calls("response_url", 1)  # the first vote is stored before the second click arrives
    bot.send.click(FEEDBACK_UP, answer_id, user="UVOTER")  # changed their mind: the latest vote wins
    thanks = bot.slack.wait_calls("response_url", 2)
    assert "Thanks" in thanks[-1]["text"] and thanks[-1]["response_type"] == "ephemeral"
    out = tmp_path / "feedback.jsonl"
    assert bot.feedback.export(out) == 1
    row = json.loads(out.read_text())
    assert row["vote"] == "up" and row["user"] == "UVOTER" and row["channel"] == "CGENERAL"
    assert row["question"] == "how do I set up the VPN profile?" and "AcmeID" in row["answer"]
    assert row["citations"] == ["wiki:vpn.md"] and row["passages"][0]["title"] == "VPN Setup"
    examples, _ = load_examples([out])
    assert [e.kind for e in examples] == ["feedback"]
    assert examples[0].messages[-1]["content"] == row["answer"]


def test_feedback_export_command(bot, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from bot.cli import app, state

    bot.send.message("<@UBOT> how do I set up the VPN profile?")
    answer_id = button_value(bot.slack.wait_calls("chat.postMessage")[0]["blocks"], FEEDBACK_UP)
    bot.send.click(FEEDBACK_UP, answer_id)
    bot.slack.wait_calls("response_url")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"),
                                   "slack": {"feedback_db": str(tmp_path / "feedback.db")}}))
    state._settings = None
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, ["--config", str(cfg), "feedback", "export", "--out", str(out)])
    state._settings = None
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["vote"] == "up"


# -- /ask ----------------------------------------------------------------------------------------------

def test_ask_answers_privately_and_shares_with_the_askers_name(bot):
    status, body = bot.send.command("/ask", "how do I set up the VPN profile?")
    assert status == 200 and json.loads(body)["response_type"] == "ephemeral"
    private = bot.slack.wait_calls("response_url")[0]
    assert private["response_type"] == "ephemeral" and "AcmeID" in private["text"]
    assert bot.slack.called("chat.postMessage") == []
    bot.send.click(SHARE, button_value(private["blocks"], SHARE))
    shared = bot.slack.wait_calls("chat.postMessage")[0]
    assert shared["channel"] == "CGENERAL" and "AcmeID" in shared["text"]
    assert "asked by <@UASKER>" in blocks_text(shared["blocks"])
    assert bot.slack.wait_calls("response_url", 2)[1].get("delete_original") in (True, "true")


def test_ask_without_a_question_says_how(bot):
    status, body = bot.send.command("/ask", "  ")
    assert "/ask How do I" in json.loads(body)["text"]


# -- /kb -----------------------------------------------------------------------------------------------

def syncs(bot) -> int:
    import sqlite3

    with sqlite3.connect(bot.runner.state.path) as c:
        return c.execute("SELECT COUNT(*) FROM syncs").fetchone()[0]


def test_non_admin_kb_reindex_is_refused_and_nothing_is_reindexed(bot):
    before = syncs(bot)
    status, body = bot.send.command("/kb", "reindex wiki", user="UASKER")
    assert status == 200 and json.loads(body) == {"response_type": "ephemeral", "text": NOT_ADMIN}
    time.sleep(0.5)
    assert syncs(bot) == before and bot.slack.called("response_url") == []


def test_admin_group_member_may_run_kb(bot):
    bot.settings.slack.admin_groups.append("SADMINS")
    bot.slack.usergroups["SADMINS"] = ["UGROUPIE"]
    status, body = bot.send.command("/kb", "sources", user="UGROUPIE")
    assert "`wiki` (files)" in json.loads(body)["text"]
    bot.send.command("/kb", "status", user="UGROUPIE")
    assert len(bot.slack.called("usergroups.users.list")) == 1  # cached


def test_admin_kb_reindex_updates_what_the_bot_answers(bot):
    (bot.wiki / "vpn.md").write_text("---\ntitle: VPN Setup\n---\n# VPN Setup\n## Install\n"
                                     "Import the acme-vpn profile into WireGuard and sign in with the new AcmeKey.")
    status, body = bot.send.command("/kb", "reindex wiki", user="UADMIN")
    assert "started" in json.loads(body)["text"]
    done = bot.slack.wait_calls("response_url")[0]
    assert "wiki" in done["text"] and "1 changed" in done["text"] and "3 documents seen" in done["text"]
    bot.send.message("<@UBOT> how do I set up the VPN profile?")
    assert "AcmeKey" in bot.slack.wait_calls("chat.postMessage")[0]["text"]
    status, body = bot.send.command("/kb", "status", user="UADMIN")
    assert "`wiki`: 3 documents" in json.loads(body)["text"]
