"""The latency cost of permissions, written to bench/results/acl.json.

1. Group lookup (bot.slack.directory.Directory) against the fake Slack Web API over real HTTP: the
   first asker after a start or a TTL expiry (users.info + usergroups.list for the whole workspace),
   a new asker (users.info only), and a cached one (no Slack call). Loopback HTTP: with the real Slack
   add its round trip (~100-300 ms) to the first two; the cached path is what almost every question pays.
2. The ACL filter inside the embedded engine's hybrid search (EmbeddedIndex), baseline measured in the
   same run: no filter (a trusted caller), public only, and a person with 8 principals, with the
   allowed-rows mask cached (the same person again) and cold (a new person, or the first query after
   a sync).

    nice -n 19 python bench/bench_acl.py [--chunks 20000] [--queries 100] [--users 50]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

from common import pct  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from slack_sdk import WebClient  # noqa: E402

from bot.settings import AccessSettings  # noqa: E402
from bot.slack.directory import Directory  # noqa: E402
from retrieval.sqlite_index import EmbeddedIndex  # noqa: E402
from retrieval.types import Chunk, Query  # noqa: E402
from tests.fakes.embedder import HashingEmbedder  # noqa: E402
from tests.fakes.fake_slack import FakeSlack  # noqa: E402

OUT = Path("bench/results/acl.json")


def stats(values: list[float]) -> dict:
    return {"n": len(values), "p50_ms": round(pct(values, 50) * 1000, 3), "p99_ms": round(pct(values, 99) * 1000, 3),
            "mean_ms": round(statistics.fmean(values) * 1000, 3)}


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench_groups(users: int, rounds: int, rng: random.Random) -> dict:
    fake = FakeSlack().start()
    people = [f"U{i:06d}" for i in range(2000)]
    for u in people:
        fake.users[u] = "Pat"
        fake.emails[u] = f"{u.lower()}@example.com"
    for g in range(300):  # a large workspace: 300 user groups of 50
        fake.usergroups[f"S{g:05d}"] = rng.sample(people, 50)
    static = {f"group:team{g}": rng.sample(people, 20) + [f"{u.lower()}@example.com" for u in rng.sample(people, 20)]
              for g in range(50)}
    settings = AccessSettings(groups=static, cache_s=300)
    client = WebClient(token="xoxb-bench", base_url=fake.api_url)
    askers = rng.sample(people, users)
    try:
        client.auth_test()  # connection warm-up
        baseline = [timed(lambda: client.auth_test()) for _ in range(rounds)]
        first, new, cached = [], [], []
        for _ in range(max(3, rounds // 10)):
            d = Directory(settings)
            first.append(timed(lambda d=d: d.principals(client, askers[0])))
        d = Directory(settings)
        d.principals(client, askers[0])
        for u in askers[1:]:
            new.append(timed(lambda u=u: d.principals(client, u)))
        for _ in range(rounds):
            for u in askers:
                cached.append(timed(lambda u=u: d.principals(client, u)))
        principals = [len(d.principals(client, u)) for u in askers]
    finally:
        fake.stop()
    return {
        "workspace": {"users": len(people), "slack_user_groups": 300, "static_groups": len(static)},
        "slack_round_trip_baseline": stats(baseline),
        "first_asker_users_info_plus_usergroups_list": stats(first),
        "new_asker_users_info": stats(new),
        "cached": stats(cached),
        "principals_per_asker_mean": round(statistics.fmean(principals), 1),
    }


WORDS = ("vpn leave parking expense laptop badge payroll salary severance budget roadmap incident deploy "
         "holiday office printer wifi travel visa insurance pension bonus review hiring onboarding security "
         "password phishing backup release sprint design api database cluster robot gripper sensor firmware").split()


def previous_filter_sql(self, query: Query, alias: str = "c") -> tuple[str, list]:
    """The embedded engine's ACL filter before it looked the principals' rows up once (for comparison)."""
    clauses, params = [], []
    if query.sources is not None:
        clauses.append(f"{alias}.source IN ({','.join('?' * len(query.sources))})")
        params += list(query.sources)
    if query.principals is not None:
        ps = list(query.principals)
        acl = f"{alias}.acl = ''"
        if ps:
            acl += (f" OR EXISTS (SELECT 1 FROM chunk_acl a WHERE a.chunk_rowid = {alias}.rowid"
                    f" AND a.principal IN ({','.join('?' * len(ps))}))")
            params += ps
        clauses.append(f"({acl})")
    return (" AND ".join(clauses) or "1"), params


def bench_filter(n_chunks: int, queries: int, rng: random.Random) -> dict:
    emb = HashingEmbedder(dim=384)
    groups = [f"group:g{i}" for i in range(20)]
    with tempfile.TemporaryDirectory() as tmp:
        index = EmbeddedIndex(Path(tmp) / "index.db")
        batch = []
        for i in range(n_chunks):
            doc = f"wiki:page{i // 4}"
            acl = (rng.choice(groups),) if (i // 4) % 10 < 3 else ()  # 30% of documents restricted
            text = " ".join(rng.choice(WORDS) for _ in range(60))
            batch.append(Chunk(id=f"{doc}#{i % 4}", document_id=doc, source="wiki", title=f"Page {i // 4}",
                               heading="", text=text, url=f"https://wiki/{i // 4}", position=i % 4,
                               content_hash="h", acl=acl))
            if len(batch) == 2000:
                vecs = emb.embed([c.embedding_text for c in batch])
                index.upsert([c.__class__(**{**c.__dict__, "embedding": v}) for c, v in zip(batch, vecs, strict=True)])
                batch = []
        texts = [" ".join(rng.choice(WORDS) for _ in range(6)) for _ in range(queries)]
        vectors = [emb.embed_query(t) for t in texts]
        person = ("U000123", "slack:U000123", "pat@example.com", "group:g1", "group:g7", "slack-group:eng",
                  "slack-group:all", "group:g13")
        index.search(Query(texts[0], vectors[0]), 5)  # load the vectors once

        # The engine as it was before this change, on a copy of the same data: the correlated filter,
        # without the acl indexes.
        with sqlite3.connect(Path(tmp) / "index.db") as src, sqlite3.connect(Path(tmp) / "previous.db") as dst:
            src.backup(dst)
        old = EmbeddedIndex(Path(tmp) / "previous.db")
        assert old.stats().chunks == n_chunks
        with old._connect() as conn:
            conn.execute("DROP INDEX chunks_acl")
            conn.execute("DROP INDEX chunks_source_acl")
        old._filter_sql = types.MethodType(previous_filter_sql, old)
        old.search(Query(texts[0], vectors[0]), 5)
        # mode: (index, principals, sources, mask cold)
        modes = {"base": (index, None, None, False), "public": (index, (), None, False),
                 "cached": (index, person, None, False), "cold": (index, person, None, True),
                 "sources": (index, person, ["wiki"], False), "previous": (old, person, None, False),
                 "previous_sources": (old, person, ["wiki"], False)}
        times: dict[str, list[float]] = {m: [] for m in modes}
        for _ in range(2):  # the modes interleaved query by query, so a busy machine slows them all alike
            for t, v in zip(texts, vectors, strict=True):
                for mode, (idx, principals, sources, cold) in modes.items():
                    if cold:  # a principal set not seen since the last sync: its vector mask is built
                        idx._masks.pop((None, tuple(sorted(principals))), None)
                    q = Query(t, v, principals=principals, sources=sources, candidates=50)
                    times[mode].append(timed(lambda q=q, idx=idx: idx.search(q, 5)))
        old.close()
        base, public, person_cached, person_cold, with_sources, before, before_sources = (times[m] for m in modes)
        index.close()
    b = statistics.fmean(base)
    return {
        "index": {"chunks": n_chunks, "restricted_documents": "30%", "groups": len(groups), "dim": 384},
        "no_filter_baseline": stats(base),
        "public_only": {**stats(public), "ratio_to_baseline": round(statistics.fmean(public) / b, 3)},
        "person_8_principals_mask_cached": {**stats(person_cached),
                                            "ratio_to_baseline": round(statistics.fmean(person_cached) / b, 3)},
        "person_8_principals_mask_cold": {**stats(person_cold),
                                          "ratio_to_baseline": round(statistics.fmean(person_cold) / b, 3)},
        "person_8_principals_and_a_source_filter": {**stats(with_sources),
                                                    "ratio_to_baseline": round(statistics.fmean(with_sources) / b, 3)},
        "before_this_change": {
            "note": "the same data on the engine as it was: a correlated EXISTS per chunk, no acl indexes",
            "person_8_principals": {**stats(before), "ratio_to_baseline": round(statistics.fmean(before) / b, 3)},
            "person_8_principals_and_a_source_filter": {
                **stats(before_sources), "ratio_to_baseline": round(statistics.fmean(before_sources) / b, 3)},
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunks", type=int, default=20000)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    rng = random.Random(15)
    result = {
        "command": "nice -n 19 python bench/bench_acl.py " + " ".join(sys.argv[1:]),
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(), "platform": platform.platform()},
        "note": "group lookups against a loopback fake Slack; with the real Slack add its round trip to the "
                "uncached ones. ACL filter on the embedded engine; Elasticsearch not measured here (no server).",
        "group_lookup": bench_groups(args.users, args.rounds, rng),
        "acl_filter": bench_filter(args.chunks, args.queries, rng),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
