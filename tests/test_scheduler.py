"""Scheduled syncs (APScheduler): per-source schedules that survive restarts, never two syncs of a
source at once, one scheduler per data dir."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from typer.testing import CliRunner

from bot.cli import app, state
from bot.runtime import SyncRunner
from bot.scheduler import TABLE, SyncScheduler, jobstore_path, scheduled_next_runs, trigger_for
from bot.settings import ConfigError, Settings, SourceSettings, load_settings
from connectors.files import FilesConnector
from tests.fakes.embedder import HashingEmbedder


@pytest.fixture
def wiki(tmp_path: Path) -> Path:
    root = tmp_path / "wiki"
    root.mkdir()
    (root / "vpn.md").write_text("# VPN\nImport the acme-vpn profile.")
    return root


def settings_for(tmp_path: Path, wiki: Path, schedule: str | None = "1h", **scheduler) -> Settings:
    return Settings(data_dir=str(tmp_path / "data"), sources={"wiki": SourceSettings(path=str(wiki), schedule=schedule)},
                    scheduler={"jitter_s": 0, **scheduler})


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def sync_count(runner: SyncRunner) -> int:
    import sqlite3

    with sqlite3.connect(runner.state.path) as c:
        return c.execute("SELECT COUNT(*) FROM syncs").fetchone()[0]


def test_a_scheduled_source_is_synced_on_its_interval_and_picks_up_new_files(tmp_path, wiki):
    runner = SyncRunner(settings_for(tmp_path, wiki, "1s"), embedder=HashingEmbedder())
    sched = SyncScheduler(runner)
    assert sched.start()
    try:
        assert wait_for(lambda: "wiki:vpn.md" in runner.index.document_ids("wiki"))
        (wiki / "parking.md").write_text("# Parking\nLot B.")
        assert wait_for(lambda: "wiki:parking.md" in runner.index.document_ids("wiki"))
        (wiki / "vpn.md").unlink()
        assert wait_for(lambda: "wiki:vpn.md" not in runner.index.document_ids("wiki"))
    finally:
        sched.stop()


def test_a_restart_keeps_the_next_run_and_a_changed_schedule_replaces_it(tmp_path, wiki):
    settings = settings_for(tmp_path, wiki, "1h")
    first = SyncScheduler(SyncRunner(settings, embedder=HashingEmbedder()))
    assert first.start()
    planned = first.next_runs()["wiki"]
    first.stop()
    time.sleep(1.1)
    assert scheduled_next_runs(settings)["wiki"] == planned  # what `orgbot status` shows while it is down

    again = SyncScheduler(SyncRunner(settings, embedder=HashingEmbedder()))
    assert again.start()
    assert again.next_runs()["wiki"] == planned  # not pushed back an hour by the restart
    again.stop()

    changed = settings_for(tmp_path, wiki, "0 3 * * *")
    third = SyncScheduler(SyncRunner(changed, embedder=HashingEmbedder()))
    assert third.start()
    nxt = third.next_runs()["wiki"]
    assert (nxt.hour, nxt.minute) == (3, 0)
    third.stop()

    removed = Settings(data_dir=settings.data_dir, sources={"wiki": SourceSettings(path=str(wiki))})
    fourth = SyncScheduler(SyncRunner(removed, embedder=HashingEmbedder()))
    assert fourth.start()
    assert fourth.next_runs() == {}
    fourth.stop()


def test_runs_missed_while_down_run_once_on_start(tmp_path, wiki):
    settings = settings_for(tmp_path, wiki, "20m")
    sched = SyncScheduler(SyncRunner(settings, embedder=HashingEmbedder()))
    sched.start()
    sched.stop()
    # as if orgbot had been down for 50 minutes: two and a half runs missed
    store = SQLAlchemyJobStore(url=f"sqlite:///{jobstore_path(settings)}", tablename=TABLE)
    store.start(BackgroundScheduler(timezone=UTC), "default")
    job = store.lookup_job("sync:wiki")
    job.next_run_time = datetime.now(UTC) - timedelta(minutes=50)
    store.update_job(job)
    store.shutdown()
    runner = SyncRunner(settings, embedder=HashingEmbedder())
    restarted = SyncScheduler(runner)
    restarted.start()
    try:
        assert wait_for(lambda: sync_count(runner) >= 1, 5)
        time.sleep(1)
        assert sync_count(runner) == 1  # coalesced: the missed runs are one sync, not three
        assert restarted.next_runs()["wiki"] > datetime.now(UTC)
    finally:
        restarted.stop()


def test_only_one_scheduler_runs_per_data_dir(tmp_path, wiki):
    settings = settings_for(tmp_path, wiki)
    a = SyncScheduler(SyncRunner(settings, embedder=HashingEmbedder()))
    b = SyncScheduler(SyncRunner(settings, embedder=HashingEmbedder()))
    assert a.start()
    assert not b.start()  # a second replica serves answers but does not schedule
    a.stop()
    assert b.start()  # takes over once the first is gone
    b.stop()


class SlowFiles(FilesConnector):
    def __init__(self, *a, gate: threading.Event, started: threading.Event, **kw):
        super().__init__(*a, **kw)
        self.gate, self.started = gate, started

    def load(self):
        self.started.set()
        self.gate.wait(10)
        yield from super().load()


def test_a_source_never_syncs_twice_at_once_even_from_another_process(tmp_path, wiki):
    settings = settings_for(tmp_path, wiki)
    runner = SyncRunner(settings, embedder=HashingEmbedder())
    gate, started = threading.Event(), threading.Event()
    results = []
    t = threading.Thread(target=lambda: results.append(
        runner.sync(SlowFiles("wiki", wiki, gate=gate, started=started))))
    t.start()
    assert started.wait(5)
    assert runner.sync(FilesConnector("wiki", wiki)) is None  # same process (/kb reindex during a scheduled run)
    other_process = SyncRunner(settings, embedder=HashingEmbedder())  # its own lock file handle, like a process
    assert other_process.sync(FilesConnector("wiki", wiki)) is None
    gate.set()
    t.join(10)
    assert results[0].ok
    assert other_process.sync(FilesConnector("wiki", wiki)).ok  # free again afterwards


def test_schedules_are_checked_when_the_config_loads(tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text("sources:\n  wiki:\n    path: .\n    schedule: every tuesday\n")
    with pytest.raises(ConfigError, match="neither an interval .* nor a cron expression"):
        load_settings(cfg)
    cfg.write_text("sources:\n  wiki:\n    type: sharepoint\n")
    with pytest.raises(ConfigError, match="files, mediawiki, confluence, git"):
        load_settings(cfg)
    cfg.write_text("sources:\n  wiki:\n    path: .\n    schedule: '*/15 * * * *'\n")
    assert load_settings(cfg).sources["wiki"].schedule == "*/15 * * * *"
    nxt = trigger_for("*/15 * * * *").get_next_fire_time(None, datetime(2026, 1, 1, 10, 7, tzinfo=UTC))
    assert (nxt.hour, nxt.minute) == (10, 15)
    assert trigger_for("15m", jitter_s=30).jitter == 30


def test_status_shows_next_run_last_error_and_failures(tmp_path, wiki, monkeypatch):
    (wiki / "broken.pdf").write_bytes(b"%PDF-1.4 nonsense")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"data_dir: {tmp_path / 'data'}\nscheduler:\n  jitter_s: 0\nsources:\n"
                   f"  wiki:\n    path: {wiki}\n    schedule: 30m\n"
                   f"  gone:\n    path: {tmp_path / 'nope'}\n")
    monkeypatch.setenv("ORGBOT_CONFIG", str(cfg))
    state._settings = None
    cli = CliRunner()
    assert cli.invoke(app, ["index", "--source", "wiki"]).exit_code == 0
    result = cli.invoke(app, ["index", "--source", "gone"])
    assert result.exit_code == 1 and "does not exist" in " ".join(result.output.split())
    sched = SyncScheduler(SyncRunner(load_settings(cfg), embedder=HashingEmbedder()))
    sched.start()
    sched.stop()
    state._settings = None
    out = json.loads(cli.invoke(app, ["status", "--json"]).stdout)
    rows = {r["source"]: r for r in out["sources"]}
    assert rows["wiki"]["documents"] == 1 and rows["wiki"]["next_run"] and rows["wiki"]["last_error"] is None
    assert rows["wiki"]["failures"][0]["item"].endswith("broken.pdf")
    assert "does not exist" in rows["gone"]["last_error"] and rows["gone"]["next_run"] is None
    state._settings = None
    table = cli.invoke(app, ["status"], env={"COLUMNS": "250"}).output
    assert "broken.pdf" in table and "not scheduled" in table
    state._settings = None


def test_scheduler_command_without_schedules_says_what_to_add(tmp_path, wiki, monkeypatch):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"data_dir: {tmp_path / 'data'}\nsources:\n  wiki:\n    path: {wiki}\n")
    state._settings = None
    result = CliRunner().invoke(app, ["--config", str(cfg), "scheduler"])
    state._settings = None
    assert result.exit_code == 1 and "schedule: 15m" in result.output


def test_kb_status_shows_next_run_last_error_and_what_was_skipped(tmp_path, wiki):
    from concurrent.futures import ThreadPoolExecutor

    from bot.slack.admin import KbCommands

    (wiki / "broken.pdf").write_bytes(b"%PDF-1.4 nonsense")
    settings = Settings(data_dir=str(tmp_path / "data"), scheduler={"jitter_s": 0}, sources={
        "wiki": SourceSettings(path=str(wiki), schedule="15m"), "gone": SourceSettings(path=str(tmp_path / "nope"))})
    runner = SyncRunner(settings, embedder=HashingEmbedder())
    runner.sync_sources()
    sched = SyncScheduler(runner)
    sched.start()
    try:
        text = KbCommands(runner, ThreadPoolExecutor(1)).status()
    finally:
        sched.stop()
    wiki_line = next(line for line in text.splitlines() if line.startswith("• `wiki`"))
    assert "1 documents" in wiki_line and "next run" in wiki_line and "1 failures" in wiki_line
    assert "skipped" in text and "broken.pdf" in text
    assert "`gone`: 0 documents" in text and "last error" in text and "does not exist" in text
    assert "schedule 15m" in KbCommands(runner, ThreadPoolExecutor(1)).sources()


def test_serve_schedules_in_one_replica_only_and_not_when_disabled(tmp_path, wiki):
    from bot.slack.app import start_scheduler

    settings = settings_for(tmp_path, wiki, "1h")
    first = start_scheduler(SyncRunner(settings, embedder=HashingEmbedder()))
    try:
        assert first is not None and first.next_runs()["wiki"] is not None
        assert start_scheduler(SyncRunner(settings, embedder=HashingEmbedder())) is None  # a second replica
    finally:
        first.stop()
    disabled = settings_for(tmp_path, wiki, "1h", enabled=False)
    assert start_scheduler(SyncRunner(disabled, embedder=HashingEmbedder())) is None
