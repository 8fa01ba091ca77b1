"""APScheduler runs the source syncs: `schedule:` per source, an interval (`15m`) or a cron expression.

- The jobs live in a SQLite job store in the data dir, so a restart keeps each source's next run
  (a run missed while orgbot was down runs once on start, if within `scheduler.misfire_grace_s`).
- `max_instances=1` and coalescing: a source never syncs twice at once; `SyncRunner`'s per-source
  lock also refuses a `/kb reindex` or `orgbot index` of a source the scheduler is syncing, even
  from another process.
- Jitter spreads the runs so sources and replicas do not hit the wikis at the same second.
- One scheduler per data dir: the first process to take `locks/scheduler.lock` schedules; other
  replicas serve answers only (or set `scheduler.enabled: false`).
"""

from __future__ import annotations

import fcntl
import logging
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.runtime import SyncRunner
from bot.settings import Settings, parse_interval

log = logging.getLogger(__name__)

JOB_PREFIX = "sync:"
TABLE = "apscheduler_jobs"

# The job store keeps a reference to `run_scheduled_sync` and the data dir, never the runner
# itself; the running scheduler registers its runner here.
_RUNNERS: dict[str, SyncRunner] = {}


def jobstore_path(settings: Settings) -> Path:
    return settings.data_path / "scheduler.db"


def trigger_for(schedule: str, jitter_s: float = 0) -> BaseTrigger:
    jitter = int(jitter_s) or None
    seconds = parse_interval(schedule)
    if seconds:
        return IntervalTrigger(seconds=seconds, jitter=jitter, timezone=UTC)
    trigger = CronTrigger.from_crontab(schedule, timezone=UTC)
    trigger.jitter = jitter
    return trigger


def run_scheduled_sync(key: str, source: str) -> None:
    """The job: an incremental sync of one source. Never raises (the report records what broke)."""
    runner = _RUNNERS.get(key)
    if runner is None:
        log.warning("scheduled sync without a runner", extra={"source": source, "data_dir": key})
        return
    try:
        report = runner.sync_sources([source])[0]
    except Exception:  # a source removed from the config, a broken config: logged, the scheduler goes on
        log.exception("scheduled sync could not run", extra={"source": source})
        return
    if report is None:
        log.info("scheduled sync skipped: the source is already syncing", extra={"source": source})
    else:
        log.info("scheduled sync", extra={"source": source, "ok": report.ok, "indexed": report.documents_indexed,
                                          "deleted": report.documents_deleted, "failures": len(report.failures),
                                          "error": report.error})


class SyncScheduler:
    def __init__(self, runner: SyncRunner):
        self.runner = runner
        self.settings = runner.settings
        self.key = str(self.settings.data_path.resolve())
        cfg = self.settings.scheduler
        path = jobstore_path(self.settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{path}", tablename=TABLE)},
            executors={"default": ThreadPoolExecutor(max_workers=4)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": int(cfg.misfire_grace_s)},
            timezone=UTC,
        )
        self._lock_file = None
        self._stopped = threading.Event()

    def start(self) -> bool:
        """Start scheduling; False (and nothing started) when another process already schedules."""
        locks = self.settings.data_path / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        f = open(locks / "scheduler.lock", "a+")  # noqa: SIM115 - held until stop()
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            log.info("another process runs the scheduler for this data dir", extra={"data_dir": self.key})
            return False
        self._lock_file = f
        _RUNNERS[self.key] = self.runner
        self.scheduler.start(paused=True)
        self._reconcile()
        self.scheduler.resume()
        log.info("scheduler started", extra={"jobs": [j.id for j in self.scheduler.get_jobs()]})
        return True

    def _reconcile(self) -> None:
        """Make the stored jobs match the config, keeping the next run of every unchanged schedule."""
        jitter = self.settings.scheduler.jitter_s
        wanted = {JOB_PREFIX + name: (name, src.effective_schedule)
                  for name, src in self.settings.sources.items() if src.effective_schedule}
        for job in self.scheduler.get_jobs():
            if job.id.startswith(JOB_PREFIX) and job.id not in wanted:
                job.remove()
        for job_id, (name, schedule) in wanted.items():
            label = f"{name} ({schedule}, jitter {jitter:g}s)"
            existing = self.scheduler.get_job(job_id)
            if existing and existing.name == label and list(existing.args) == [self.key, name]:
                continue  # unchanged: keep the stored next run
            self.scheduler.add_job(run_scheduled_sync, trigger_for(schedule, jitter), args=[self.key, name],
                                   id=job_id, name=label, replace_existing=True)

    def next_runs(self) -> dict[str, datetime | None]:
        return {j.id[len(JOB_PREFIX):]: j.next_run_time for j in self.scheduler.get_jobs()
                if j.id.startswith(JOB_PREFIX)}

    def run_now(self, source: str) -> None:
        self.scheduler.modify_job(JOB_PREFIX + source, next_run_time=datetime.now(UTC))

    def stop(self, wait: bool = True) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)
        _RUNNERS.pop(self.key, None)
        if self._lock_file:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None
        self._stopped.set()

    def wait(self) -> None:
        """Block until `stop()` (or Ctrl-C in the caller)."""
        while not self._stopped.wait(1):
            pass


def scheduled_next_runs(settings: Settings) -> dict[str, datetime | None]:
    """Next run per source as stored in the job store, read without starting a scheduler (for status)."""
    path = jobstore_path(settings)
    if not path.exists():
        return {}
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as c:
            rows = c.execute(f"SELECT id, next_run_time FROM {TABLE}").fetchall()  # noqa: S608 - constant
    except sqlite3.Error:
        return {}
    return {job_id[len(JOB_PREFIX):]: datetime.fromtimestamp(t, UTC) if t is not None else None
            for job_id, t in rows if job_id.startswith(JOB_PREFIX)}
