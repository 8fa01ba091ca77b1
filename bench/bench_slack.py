"""Slack bot latency against the fake Slack Web API, written to bench/results/slack.json.

Real retrieval (the configured embedder over an EmbeddedIndex of examples/acme-wiki), the real Bolt
app behind its HTTP server, signed app_mention events; Slack itself is `tests/fakes/fake_slack.py`.
For each question it measures, from the moment the request is sent:
- ack: the HTTP response to Slack's request (Slack wants it within 3 s);
- first sign: the 👀 reaction (reactions.add) reaching the fake Slack;
- first text: the first text the asker sees: a streamed part (chat.startStream, or a chat.update of the
  placeholder), or the final reply when the answer was complete before the first update;
- reply: the final message (chat.stopStream / chat.postMessage / the final chat.update with buttons).

    python bench/bench_slack.py [--questions 50] [--streaming auto|update|off]
    python bench/bench_slack.py --real-generator --questions 3     # the configured language model
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import pct  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.feedback import FeedbackStore  # noqa: E402
from bot.runtime import SyncRunner, make_answerer, make_embedder, make_generator  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from bot.slack.app import HttpServer, build_app  # noqa: E402
from retrieval.sqlite_index import EmbeddedIndex  # noqa: E402
from tests.fakes.fake_slack import SIGNING_SECRET, FakeSlack, SlackSender  # noqa: E402
from tests.fakes.generator import ScriptedGenerator  # noqa: E402

WIKI = Path("examples/acme-wiki")
QUESTIONS = WIKI / "questions.jsonl"
OUT = Path("bench/results/slack.json")


def stats(values: list[float]) -> dict:
    if not values:
        return {}
    return {"n": len(values), "p50_ms": round(pct(values, 50) * 1000, 1), "p99_ms": round(pct(values, 99) * 1000, 1),
            "mean_ms": round(statistics.fmean(values) * 1000, 1), "max_ms": round(max(values) * 1000, 1)}


def fake_reply(messages: list[dict]) -> str:
    return ("Hi! Here is what the handbook says about it, in two short sentences with a citation [1]. "
            "Ask me again if you need more detail [1].\n— Anvil 🔨")


def questions(n: int) -> list[str]:
    rows = [json.loads(line) for line in QUESTIONS.read_text().splitlines() if line.strip()]
    qs = [r["question"] for r in rows]
    return [qs[i % len(qs)] for i in range(n)]


def is_final(call) -> bool:
    if call.method in ("chat.stopStream", "chat.postMessage") and call.params.get("blocks") \
            and any(b.get("type") == "actions" for b in call.params["blocks"]):
        return True
    return call.method == "chat.update" and any(b.get("type") == "actions" for b in call.params.get("blocks") or [])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=50)
    ap.add_argument("--real-generator", action="store_true", help="use the configured language model")
    ap.add_argument("--streaming", default="auto", choices=["auto", "native", "update", "off"])
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()

    base = load_settings()
    tmp = Path(tempfile.mkdtemp(prefix="orgbot-bench-slack-"))
    slack = FakeSlack().start()
    cfg = tmp / "config.yaml"
    cfg.write_text(json.dumps({
        "data_dir": str(tmp / "data"),
        "sources": {"acme-wiki": {"type": "files", "path": str(WIKI.resolve()), "exclude": ["README.md"]}},
        "retrieval": base.retrieval.model_dump(mode="json", exclude={"elasticsearch"}) | {"backend": "embedded"},
        "generation": base.generation.model_dump(mode="json"),
        "slack": {"bot_token": "xoxb-bench", "signing_secret": SIGNING_SECRET, "api_url": slack.api_url,
                  "user_questions_per_minute": 10_000, "questions_per_minute": 10_000, "streaming": args.streaming},
    }))
    settings = load_settings(cfg)
    t0 = time.perf_counter()
    embedder = make_embedder(settings)
    embedder.warm_up()
    index = EmbeddedIndex(settings.index_path)
    runner = SyncRunner(settings, embedder=embedder, index=index)
    report = runner.sync_sources()[0]
    index_s = time.perf_counter() - t0
    generator = make_generator(settings) if args.real_generator else ScriptedGenerator(fake_reply)
    if args.real_generator and hasattr(generator, "warm_up"):
        generator.warm_up()
    answerer = make_answerer(settings, generator=generator, embedder=embedder, index=index)
    app = build_app(settings, answerer, runner, FeedbackStore(tmp / "feedback.db"))
    server = HttpServer(app, "127.0.0.1", 0).start()
    send = SlackSender(f"http://127.0.0.1:{server.port}/slack/events", slack)
    answerer.answer("warm up: how do I set up the VPN?")  # first-query costs (vector matrix load) not counted

    ack, sign, first_text, reply, found = [], [], [], [], 0
    for q in questions(args.questions):
        ts = send.next_ts()
        start = time.monotonic()
        _, (status, _) = send.message(f"<@UBOT> {q}", ts=ts)
        ack.append(time.monotonic() - start)
        assert status == 200, status
        # sequential: the 👀 is removed right after the reply, so everything after `start` is this question's
        slack.wait_for(lambda s, ts=ts: any(c.method == "reactions.remove" and c.params["timestamp"] == ts
                                            for c in s.calls), timeout=600)
        with slack._lock:
            ours = [c for c in slack.calls if c.at >= start]
        final = next(c for c in reversed(ours) if is_final(c))
        sign.append(next(c.at for c in ours if c.method == "reactions.add" and c.params["timestamp"] == ts) - start)
        texts = [c.at for c in ours if c.method in ("chat.startStream", "chat.update") and c is not final]
        first_text.append(min([*texts, final.at]) - start)  # what the asker sees first: a streamed part or the reply
        reply.append(final.at - start)
        found += "Sources" in json.dumps(final.params.get("blocks"))
    server.stop()
    slack.stop()

    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "note": "2-core CPU; fake Slack on localhost"},
        "setup": {"documents": report.documents_seen, "chunks": report.chunks_written, "index_s": round(index_s, 1),
                  "embedder": settings.retrieval.embedding_model, "streaming": args.streaming,
                  "generator": getattr(generator, "name", type(generator).__name__),
                  "questions": args.questions, "answered_with_sources": found,
                  "mode": "sequential: each mention is sent after the previous reply"},
        "ack": stats(ack), "first_sign_reaction": stats(sign), "first_streamed_text": stats(first_text),
        "final_reply": stats(reply),
    }
    out = Path(args.out)  # one file, one section per variant, so the two runs do not overwrite each other
    everything = json.loads(out.read_text()) if out.exists() else {}
    everything["real_generator" if args.real_generator else "fake_generator"] = result
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(everything, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
