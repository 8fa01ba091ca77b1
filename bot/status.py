"""What `orgbot status` and `/kb status` show per source, from the index, the sync state and the job store."""

from __future__ import annotations

from bot.settings import Settings
from retrieval.types import IndexStats


def source_rows(settings: Settings, stats: IndexStats) -> list[dict]:
    """Per source: documents, chunks, last sync, next run, last error, failures (status, /kb status)."""
    from bot.scheduler import scheduled_next_runs
    from retrieval.state import SyncState

    sync_state = SyncState(settings.data_path / "state.db")
    next_runs = scheduled_next_runs(settings)
    rows = []
    for name in sorted(set(stats.per_source) | set(settings.sources) | set(sync_state.sources())):
        docs, chunks = stats.per_source.get(name, (0, 0))
        st = sync_state.source_state(name)
        src = settings.sources.get(name)
        schedule = src.effective_schedule if src else None
        nxt = next_runs.get(name) if schedule else None
        rows.append({
            "source": name, "type": src.type if src else "(removed)", "documents": docs, "chunks": chunks,
            "last_sync": st.last_attempt_at, "last_success": st.last_success_at,
            "last_mode": st.last.mode if st.last else None, "took_s": st.last.seconds if st.last else None,
            "schedule": schedule, "next_run": nxt.isoformat() if nxt else None,
            "last_error": st.last_error, "failures": [{"item": f.item, "reason": f.reason} for f in st.failures],
        })
    return rows
