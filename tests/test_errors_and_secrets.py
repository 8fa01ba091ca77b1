"""Errors a person can read (one message with the fix, exit 1, the traceback in the log file), and secrets
that never show up in logs, errors, `orgbot status` or the audit log."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from bot import cli, logs
from tests.fakes.fake_elasticsearch import FakeElasticsearch
from tests.fakes.generator import ScriptedGenerator
from tests.test_slack_bot import Bot, passage_reply

ES_KEY = "es-key-QWERTY-5521"
ES_PASSWORD = "pw-ZXCV-9876"
SLACK_TOKEN = "xoxb-secret-TOKEN-4242"
SIGNING = "signing-SECRET-7777"


def orgbot(capsys, monkeypatch, *args: str) -> tuple[int, str, str]:
    """Run `orgbot ARGS` the way the installed command does (bot.cli:entry): exit code, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["orgbot", *args])
    cli.state._settings = None
    code = 0
    try:
        cli.entry()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        cli.state._settings = None
    out = capsys.readouterr()
    return code, " ".join(out.out.split()), " ".join(out.err.split())  # as read, whatever rich wrapped


def workspace(tmp_path: Path, es: dict | None = None, **more) -> Path:
    wiki = tmp_path / "wiki"
    wiki.mkdir(exist_ok=True)
    (wiki / "vpn.md").write_text("# VPN\nImport the acme-vpn profile and sign in with AcmeID.")
    config = {"data_dir": str(tmp_path / "data"), "sources": {"wiki": {"path": str(wiki)}}, **more}
    if es is not None:
        config["retrieval"] = {"backend": "elasticsearch", "elasticsearch": {"max_retries": 0, **es}}
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(config))
    return cfg


def closed_port() -> int:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("command", [["index"], ["ask", "how do I set up the VPN?"]])
def test_elasticsearch_down_is_one_message_with_the_fix_and_exit_1(tmp_path, capsys, monkeypatch, command):
    url = f"http://elastic:{ES_PASSWORD}@127.0.0.1:{closed_port()}"
    cfg = workspace(tmp_path, es={"url": url})
    code, out, err = orgbot(capsys, monkeypatch, "--config", str(cfg), *command)
    assert code == 1
    text = out + err
    assert "is not reachable (connection refused)" in text and "Check that the cluster is running" in text
    assert "Traceback" not in text and "elastic_transport" not in text and "urllib3" not in text
    assert ES_PASSWORD not in text and "elastic:***@" in text
    log = (tmp_path / "data" / "orgbot.log").read_text()
    assert "Traceback" in log  # the details are kept for whoever debugs it
    assert ES_PASSWORD not in log


def test_the_larger_embedder_configured_before_it_is_fetched_says_how_to_fetch_it(tmp_path, capsys, monkeypatch):
    # The README's switch is one config line; the folder it names exists only after `make embedder-mpnet`.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # as on a machine without the hub: nothing is fetched
    for name in (str(tmp_path / "models" / "all-mpnet-base-v2"), "models/all-mpnet-base-v2"):  # as the README writes it
        cfg = workspace(tmp_path, retrieval={"embedding_model": name})
        code, out, err = orgbot(capsys, monkeypatch, "--config", str(cfg), "index")
        text = out + err
        assert code == 1 and "Traceback" not in text and "huggingface.co" not in text
        assert "no such folder" in text and "make embedder-mpnet" in text
    code, out, err = orgbot(capsys, monkeypatch, "--config", str(cfg), "ask", "how do I set up the VPN?")
    text = out + err
    assert code == 1 and "Traceback" not in text and "unexpected" not in text
    assert "no such folder" in text and "make embedder-mpnet" in text


def test_a_focus_embedder_configured_before_it_is_fetched_names_its_setting_before_answering(
        tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = workspace(tmp_path, answering={"focus_embedder": "models/all-mpnet-base-v2"})
    code, out, err = orgbot(capsys, monkeypatch, "--config", str(cfg), "ask", "how do I set up the VPN?")
    text = out + err
    assert code == 1 and "Traceback" not in text and "unexpected" not in text
    assert "answering.focus_embedder" in text and "no such folder" in text and "make embedder-mpnet" in text
    assert "answering.focus_embedder: null" in text  # or go without it
    assert "retrieval.embedding_model" not in text  # the retriever's embedder is fine: the message says which


class _Refuses(BaseHTTPRequestHandler):
    """An Elasticsearch that rejects every credential (401), as a cluster with security on does."""

    seen_auth: list[str] = []

    def _refuse(self):
        self.seen_auth.append(self.headers.get("Authorization", ""))
        body = json.dumps({"error": {"type": "security_exception", "reason": "unable to authenticate user"},
                           "status": 401}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _refuse  # noqa: N815

    def log_message(self, *args):
        pass


def test_elasticsearch_refusing_the_key_says_which_setting_to_fix(tmp_path, capsys, monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refuses)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("ELASTICSEARCH_API_KEY", ES_KEY)
        cfg = workspace(tmp_path, es={"url": f"http://127.0.0.1:{server.server_address[1]}"})
        code, out, err = orgbot(capsys, monkeypatch, "--config", str(cfg), "index")
    finally:
        server.shutdown()
        server.server_close()
    assert code == 1 and _Refuses.seen_auth  # the key was sent…
    assert "rejected the credentials (401)" in err and "ELASTICSEARCH_API_KEY" in err
    assert "Traceback" not in err
    for where in (out + err, (tmp_path / "data" / "orgbot.log").read_text()):
        assert ES_KEY not in where  # …and never shown


def test_a_missing_folder_and_a_bad_config_are_one_line_each(tmp_path, capsys, monkeypatch):
    cfg = workspace(tmp_path)
    bad = yaml.safe_load(cfg.read_text())
    bad["sources"]["wiki"]["path"] = str(tmp_path / "nowhere")
    cfg.write_text(yaml.safe_dump(bad))
    code, _, err = orgbot(capsys, monkeypatch, "--config", str(cfg), "index")
    assert code == 1 and "does not exist; check the source's path" in err and "Traceback" not in err
    cfg.write_text(cfg.read_text() + "retrieval:\n  top_k: lots\n")
    code, _, err = orgbot(capsys, monkeypatch, "--config", str(cfg), "status")
    assert code == 1 and "retrieval.top_k" in err and "Traceback" not in err


def test_an_unexpected_error_points_to_the_log_file(tmp_path, capsys, monkeypatch):
    cfg = workspace(tmp_path)

    def broken(*a, **kw):
        raise KeyError("the-bug")

    monkeypatch.setattr("bot.runtime.SyncRunner.sync_sources", broken)
    code, _, err = orgbot(capsys, monkeypatch, "--config", str(cfg), "index")
    assert code == 1 and "unexpected KeyError" in err and "orgbot.log" in err and "Traceback" not in err
    assert "Traceback" in (tmp_path / "data" / "orgbot.log").read_text()


def test_secrets_never_appear_in_logs_errors_status_or_the_audit_log(tmp_path, capsys, monkeypatch):
    # The bot, with real tokens in its settings, answering through the fake Slack, with logging set up the
    # way `orgbot serve` sets it up (terminal + log file), and an answer that fails with a traceback.
    (tmp_path / "slack").mkdir()
    bot = Bot(tmp_path / "slack", ScriptedGenerator(passage_reply), bot_token=SLACK_TOKEN, signing_secret=SIGNING)
    bot.send.secret = SIGNING
    logs.configure("INFO")
    logs.log_to_file(tmp_path / "slack" / "orgbot.log")
    try:
        bot.send.message("<@UBOT> how do I set up the VPN profile?")
        bot.slack.wait_calls("chat.postMessage")
        bot.gen.fail = RuntimeError("the model fell over")
        bot.send.message("how do I set up the VPN profile?", kind="message", channel="DDANA", channel_type="im")
        bot.send.command("/ask", "where do staff park?")
        bot.slack.wait_calls("chat.postMessage", 2)
        bot.slack.wait_calls("response_url")
        assert bot.slack.called("auth.test")  # the token was used…
    finally:
        bot.close()
    # `orgbot status` and `orgbot audit` with every secret in the environment
    monkeypatch.setenv("SLACK_BOT_TOKEN", SLACK_TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING)
    monkeypatch.setenv("ELASTICSEARCH_API_KEY", ES_KEY)
    monkeypatch.setenv("ELASTICSEARCH_PASSWORD", ES_PASSWORD)
    shown = []
    with FakeElasticsearch() as fake:
        cfg = workspace(tmp_path, es={"url": fake.url},
                        audit={"path": str(bot.settings.data_path / "audit.db")})
        for args in (["index"], ["status"], ["audit", "--json"], ["-v", "status"]):
            code, out, err = orgbot(capsys, monkeypatch, "--config", str(cfg), *args)
            assert code == 0, err
            shown.append(out + err)
    assert "how do I set up the VPN profile?" in shown[2]  # the audit log is there and readable
    files = [tmp_path / "slack" / "orgbot.log", tmp_path / "data" / "orgbot.log",
             bot.settings.data_path / "audit.db", bot.settings.data_path / "feedback.db"]
    everything = "\n".join(shown) + "\n".join(f.read_bytes().decode("utf-8", "replace") for f in files if f.exists())
    assert "the model fell over" in everything  # the failure was logged…
    for secret in (SLACK_TOKEN, SIGNING, ES_KEY, ES_PASSWORD):
        assert secret not in everything, secret  # …and no secret anywhere
