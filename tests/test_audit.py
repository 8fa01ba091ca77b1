"""The audit log: what is kept, for how long, and how it is queried."""

from datetime import UTC, datetime, timedelta

from bot.audit import AuditEntry, AuditLog


def entry(**kw) -> AuditEntry:
    base = dict(surface="mention", asker="U1", channel="C1", question="where do I park?", audience="channel:C1",
                principals=("C1", "slack:C1"), retrieved=("wiki:parking.md", "wiki:vpn.md", "wiki:parking.md"),
                cited=("wiki:parking.md",), found=True)
    return AuditEntry(**{**base, **kw})


def test_entries_are_queried_by_asker_channel_document_and_date(tmp_path):
    log = AuditLog(tmp_path / "audit.db")
    log.record(entry())
    log.record(entry(asker="U2", channel="DU2", audience="user:U2", principals=("U2", "group:hr"),
                     retrieved=("wiki:hr/pay.md",), cited=("wiki:hr/pay.md",), surface="message"))
    log.record(entry(surface="cli", asker="cli:ops", channel=None, audience="trusted", principals=None))
    rows = log.query()
    assert [r["surface"] for r in rows] == ["cli", "message", "mention"]  # newest first
    assert rows[2]["retrieved"] == ["wiki:parking.md", "wiki:vpn.md"] and rows[2]["cited"] == ["wiki:parking.md"]
    assert rows[0]["principals"] is None and rows[1]["principals"] == ["U2", "group:hr"]
    assert [r["asker"] for r in log.query(document="wiki:hr/pay.md")] == ["U2"]
    assert [r["asker"] for r in log.query(channel="C1")] == ["U1"]
    assert log.query(asker="U2", limit=5)[0]["audience"] == "user:U2"
    assert log.query(since=(datetime.now(UTC) + timedelta(days=1)).date().isoformat()) == []


def test_entries_older_than_the_retention_are_deleted(tmp_path):
    log = AuditLog(tmp_path / "audit.db", retention_days=30)
    old = (datetime.now(UTC) - timedelta(days=31)).isoformat(timespec="seconds")
    log.record(entry(at=old, question="an old question"))
    log.record(entry(question="a new question"))
    assert log.prune() == 1
    assert [r["question"] for r in log.query()] == ["a new question"]
    AuditLog(tmp_path / "audit.db", retention_days=1)  # opening the log prunes too
    assert len(log.query()) == 1
