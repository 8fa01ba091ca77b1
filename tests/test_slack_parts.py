"""The Slack layer's plain parts: Block Kit rendering, channel policy, claims (dedupe memory), rate limits,
/kb's refusal to run a source twice, and assistant threads end to end."""

from __future__ import annotations

import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

from bot.settings import ChannelPolicy as ChannelSettings
from bot.settings import SlackSettings
from bot.slack.admin import KbCommands
from bot.slack.blocks import MAX_BLOCKS, SECTION_LIMIT, answer_blocks, split_text, to_mrkdwn
from bot.slack.claims import ClaimStore
from bot.slack.policy import ChannelPolicy, RateLimiter
from bot.slack.replies import safe_prefix
from tests.fakes.generator import ScriptedGenerator
from tests.test_slack_bot import Bot, passage_reply


def test_markdown_becomes_slack_mrkdwn():
    md = "## Steps\n- **Import** the [profile](https://wiki.acme.test/vpn) & sign in\n* use __AcmeID__ <now>"
    assert to_mrkdwn(md) == ("*Steps*\n• *Import* the <https://wiki.acme.test/vpn|profile> &amp; sign in\n"
                             "• use *AcmeID* &lt;now&gt;")


def test_code_in_an_answer_is_left_as_written():
    md = ("Call it with keyword arguments [1]:\n```\ndef f(*args, **kwargs):\n    - x if a < b else **y**\n```\n"
          "and `**kwargs` collects the **rest**.")
    assert to_mrkdwn(md) == ("Call it with keyword arguments [1]:\n```\ndef f(*args, **kwargs):\n"
                             "    - x if a &lt; b else **y**\n```\nand `**kwargs` collects the *rest*.")


def test_a_code_block_split_across_sections_is_closed_and_reopened():
    code = "\n".join(f"print({i})  # line {i}" for i in range(400))  # ~9k characters of code
    pieces = split_text(f"Run this [1]:\n```\n{code}\n```\nThat is all.")
    assert len(pieces) > 1 and all(len(p) <= SECTION_LIMIT for p in pieces)
    assert all(p.count("```") % 2 == 0 for p in pieces)  # every section shows its part as code
    shown = "\n".join(line for p in pieces for line in p.splitlines() if line.startswith("print("))
    assert shown == code
    # Cut just before the block's own closing fence: that fence closes it, no empty block follows.
    for n in range(2960, 3000):
        pieces = split_text("Run this:\n```\n" + "x" * n + "\n```\n" + "and then this. " * 200)
        assert all(p.count("```") % 2 == 0 for p in pieces)
        assert not any(p.startswith("```\n```") for p in pieces), n


def test_long_answers_are_split_within_slack_limits():
    para = ("word " * 500).strip()
    text = "\n\n".join([para] * 80)  # ~200k characters
    pieces = split_text(text)
    assert all(len(p) <= SECTION_LIMIT for p in pieces) and "".join(pieces).replace(" ", "") \
        .startswith(para.replace(" ", ""))
    citations = [{"number": 1, "title": "VPN", "heading": "Install", "url": "https://w/vpn"}]
    blocks = answer_blocks(text, answer_id="a1", found=True, citations=citations)
    assert len(blocks) == MAX_BLOCKS
    assert blocks[-1]["type"] == "actions" and blocks[-2]["type"] == "context"
    assert all(len(b["text"]["text"]) <= SECTION_LIMIT for b in blocks if b["type"] == "section")


def test_sources_without_a_web_url_are_plain_titles():
    blocks = answer_blocks("It is in the handbook [1].", answer_id=None, found=True,
                           citations=[{"number": 1, "title": "Handbook", "heading": "Handbook",
                                       "url": "file:///srv/wiki/handbook.md"}])
    assert blocks[-1]["elements"][1]["text"] == "1. Handbook"


def test_a_citation_being_written_is_not_streamed():
    assert safe_prefix("Park in lot B [1") == "Park in lot B "
    assert safe_prefix("Park in lot B [1].") == "Park in lot B [1]."


def test_channel_policy_and_principals():
    policy = ChannelPolicy(SlackSettings(allowed_channels=["CHELP"], channels={
        "CHR": ChannelSettings(sources=["hr-wiki"], principals=["group:hr"], answer_mode="all_questions")}))
    assert policy.allowed("CHELP") and not policy.allowed("CRANDOM") and policy.allowed("DDANA", "im")
    assert policy.scope("CHELP", "channel", "U1").principals == ("CHELP", "slack:CHELP")
    hr = policy.scope("CHR", "group", "U1")
    assert hr.sources == ("hr-wiki",) and "group:hr" in hr.principals and "U1" not in hr.principals
    mine = ("U1", "slack:U1", "u1@example.com", "group:hr")
    assert policy.scope("DDANA", "im", "U1", mine).principals == mine  # a DM: the asker's own principals
    assert policy.scope("CHELP", "channel", "U1", mine).principals == ("CHELP", "slack:CHELP")  # not in a channel
    assert policy.scope("DDANA", "im", "U1").principals == ()  # unknown asker: public documents only
    assert policy.answer_mode("CHR") == "all_questions" and policy.answer_mode("CHELP") == "mentions"


def test_an_expired_claim_can_be_claimed_again(tmp_path):
    now = [1_700_000_000.0]
    claims = ClaimStore(tmp_path / "claims.db", ttl=10, clock=lambda: now[0])
    assert claims.add("event:Ev1") and not claims.add("event:Ev1")
    now[0] += 9
    assert not claims.add("event:Ev1")
    now[0] += 2  # 11 s after the claim: expired, though not pruned yet
    assert claims.add("event:Ev1") and not claims.add("event:Ev1")


def test_claims_outlive_the_store_that_made_them(tmp_path):
    ClaimStore(tmp_path / "claims.db", ttl=60).add("message:C1:1.1")
    assert not ClaimStore(tmp_path / "claims.db", ttl=60).add("message:C1:1.1")


def test_racing_claims_from_threads_exactly_one_wins(tmp_path):
    # four stores on one file, as four processes would have, each shared by six threads
    stores = [ClaimStore(tmp_path / "claims.db", ttl=60) for _ in range(4)]
    go, results = threading.Barrier(24), []

    def claim(store: ClaimStore):
        go.wait()
        results.append(store.add("event:EvSAME"))

    threads = [threading.Thread(target=claim, args=(stores[i % 4],)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1 and len(results) == 24


def test_expired_claims_are_pruned_now_and_then(tmp_path):
    now = [0.0]
    claims = ClaimStore(tmp_path / "claims.db", ttl=10, clock=lambda: now[0], prune_every_s=60)
    for i in range(5):
        claims.add(f"event:Ev{i}")

    def stored() -> list[str]:
        with sqlite3.connect(tmp_path / "claims.db") as db:
            return [k for (k,) in db.execute("SELECT key FROM claims ORDER BY key")]

    now[0] = 30
    claims.add("event:Ev30")
    assert len(stored()) == 6  # five expired, kept until the prune due at 60
    now[0] = 61
    claims.add("event:Ev61")
    assert stored() == ["event:Ev61"]


def test_a_claim_store_that_cannot_be_opened_stops_serve_naming_the_file_and_setting(tmp_path):
    from typer.testing import CliRunner

    from bot.cli import app, state

    not_a_folder = tmp_path / "data"
    not_a_folder.write_text("a file where the data dir should be")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"data_dir: {not_a_folder}\nslack:\n  bot_token: xoxb-x\n  signing_secret: s\n")
    state._settings = None
    result = CliRunner().invoke(app, ["--config", str(cfg), "serve"])
    state._settings = None
    flat = result.output.replace("\n", "")
    assert result.exit_code == 1
    assert str(not_a_folder / "slack-claims.db") in flat and "data_dir" in flat


def test_rate_limiter_per_user_and_global_windows():
    now = [0.0]
    limiter = RateLimiter(per_user=2, overall=3, clock=lambda: now[0])
    assert [limiter.check("a"), limiter.check("a"), limiter.check("a")] == [None, None, "user"]
    assert limiter.check("b") is None and limiter.check("c") == "global"
    now[0] = 61
    assert limiter.check("a") is None


def test_a_second_reindex_of_a_running_source_is_refused_not_queued():
    release, started = threading.Event(), threading.Event()
    syncs = []

    class SlowRunner:
        settings = SimpleNamespace(sources={"wiki": object()})

        def running(self):
            return set()

        def sync_sources(self, names, full=False):
            syncs.append(names)
            started.set()
            release.wait(5)
            return [None]

    reports = []
    kb = KbCommands(SlowRunner(), ThreadPoolExecutor(2))
    assert "started" in kb.run("reindex wiki", "UADMIN", reports.append)
    started.wait(5)
    assert "already being reindexed" in kb.run("reindex wiki --full", "UADMIN", reports.append)
    assert "no source named `nope`" in kb.run("reindex nope", "UADMIN", reports.append)
    release.set()
    deadline = time.monotonic() + 5
    while not reports and time.monotonic() < deadline:
        time.sleep(0.02)
    assert syncs == [["wiki"]] and len(reports) == 1
    assert "/kb reindex" in kb.run("help", "U", reports.append)


def test_assistant_thread_gets_prompts_then_a_status_and_an_answer(tmp_path):
    b = Bot(tmp_path, ScriptedGenerator(passage_reply))
    try:
        b.send.event({"type": "assistant_thread_started", "event_ts": "1.1", "assistant_thread": {
            "user_id": "UASKER", "channel_id": "DASSIST", "thread_ts": "1700000900.000100", "context": {}}})
        prompts = b.slack.wait_calls("assistant.threads.setSuggestedPrompts")[0]
        assert prompts["channel_id"] == "DASSIST" and prompts["prompts"][0]["message"]
        b.send.message("how do I set up the VPN profile?", kind="message", channel="DASSIST", channel_type="im",
                       thread_ts="1700000900.000100")
        answer = b.slack.wait_for(lambda s: [p for p in s.called("chat.postMessage") if "AcmeID" in p["text"]])[0]
        assert answer["thread_ts"] == "1700000900.000100"
        status = b.slack.called("assistant.threads.setStatus")[0]
        assert status["status"] == "Searching the wiki…" and b.slack.called("reactions.add") == []
    finally:
        b.close()


def test_a_bare_mention_gets_a_prompt_to_ask(tmp_path):
    b = Bot(tmp_path, ScriptedGenerator(passage_reply))
    try:
        event, _ = b.send.message("<@UBOT>")
        reply = b.slack.wait_calls("chat.postMessage")[0]
        assert reply["thread_ts"] == event["ts"] and "What would you like to know?" in reply["text"]
        assert b.gen.prompts == []
    finally:
        b.close()


def test_http_mode_without_a_signing_secret_says_what_to_set(tmp_path):
    import pytest

    from bot.settings import ConfigError, load_settings
    from bot.slack.app import build_app

    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"data_dir: {tmp_path}\nslack:\n  bot_token: xoxb-x\n")
    settings = load_settings(cfg)
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET"):
        build_app(settings, None, None, None)


def test_serve_without_tokens_says_what_to_export_before_loading_anything(tmp_path):
    from typer.testing import CliRunner

    from bot.cli import app, state

    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"data_dir: {tmp_path}\n")
    state._settings = None
    result = CliRunner().invoke(app, ["--config", str(cfg), "serve"])
    state._settings = None
    assert result.exit_code == 1 and "SLACK_BOT_TOKEN" in result.output
