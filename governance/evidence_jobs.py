"""Evidence pack exports as jobs: request (a row, then a job), execute (claim a lease, write the pack to a temporary
file, rename it into place, record it), and the reconciler that dispatches again what a dead worker or a lost
Redis job left behind, and the sweep that deletes old packs' files. An attempt starts the pack over: it is written
whole or not at all (docs/evidence.md says why)."""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select, update

from governance import evidence
from governance.evidence_models import EvidenceExport
from service import audit
from service.config import env_int
from service.db import utcnow
from service.errors import NotFound
from service.evidence import Period
from service.runtime import runtime
from service.stores.registry import registry_for

log = logging.getLogger(__name__)
LIVE = ("queued", "running")
LEASE_SECONDS = 3600  # longer than a year's pack takes (bench/evidence.py); a dead worker's export waits this long
RETRIES, RETRY_INTERVALS = 2, (30, 300)


def job_id(export_id: str) -> str:
    return f"evidence-export-{export_id}"


def pack_dir(rt: Any) -> Path:
    return Path(rt.settings.instance_path) / "evidence"


def request(session: Any, actor: str, period: Period) -> EvidenceExport:
    """A queued export (the caller commits, then dispatches)."""
    row = EvidenceExport(id=str(uuid.uuid4()), period_start=period.start, period_end=period.end, state="queued",
                         requested_by=actor)
    session.add(row)
    session.flush()
    audit.record(session, app_id=None, actor=actor, action="evidence.export_requested", resource_type="evidence",
                 resource_id=row.id, details={"from": period.start.isoformat(), "to": period.end.isoformat()})
    return row


def get(session: Any, export_id: str) -> EvidenceExport:
    row = session.get(EvidenceExport, export_id)
    if row is None:
        raise NotFound(f"no evidence export {export_id!r}")
    return row


def dispatch(queue: Any, export_id: str) -> bool:
    """Hand the export to the queue; never raises (the reconciler dispatches what the queue did not take)."""
    try:
        queue.enqueue(execute_export, export_id, queue="default", job_id=job_id(export_id), retries=RETRIES,
                      retry_intervals=RETRY_INTERVALS, timeout=LEASE_SECONDS)
    except Exception as exc:  # noqa: BLE001 - the queue is down, or in-process the export failed (recorded)
        log.warning("evidence export %s: not dispatched (%s)", export_id, type(exc).__name__)
        return False
    return True


def _claim(rt: Any, export_id: str) -> str | None:
    token, now = uuid.uuid4().hex, utcnow()
    with rt.db.session() as session:
        done = session.execute(
            update(EvidenceExport)
            .where(EvidenceExport.id == export_id, EvidenceExport.state.in_(LIVE),
                   or_(EvidenceExport.lease_expires_at.is_(None), EvidenceExport.lease_expires_at < now))
            .values(state="running", lease_token=token, lease_expires_at=now + timedelta(seconds=LEASE_SECONDS),
                    attempts=EvidenceExport.attempts + 1, started_at=now, error=None),
            execution_options={"synchronize_session": False})
    return token if done.rowcount == 1 else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 16):
            digest.update(chunk)
    return digest.hexdigest()


def execute(rt: Any, stores: Any, sections: list[Any], export_id: str) -> str | None:
    """Write the pack once: a second delivery finds it done or leased and returns None."""
    token = _claim(rt, export_id)
    if token is None:
        return None
    with rt.db.sessions() as session:
        row = get(session, export_id)
        period = Period(row.period_start, row.period_end)
    out = pack_dir(rt) / f"{export_id}.zip"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{token}.part")
    try:
        with rt.db.sessions() as session:
            index = evidence.build(session, rt, stores, sections, period, str(tmp))
        os.replace(tmp, out)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        with rt.db.session() as session:
            session.execute(update(EvidenceExport).where(EvidenceExport.id == export_id,
                                                         EvidenceExport.lease_token == token)
                            .values(state="failed", error=type(exc).__name__, lease_token=None,
                                    lease_expires_at=None, finished_at=utcnow()))
        raise
    summary = {s["name"]: s["summary"] for s in index["sections"]}
    with rt.db.session() as session:
        session.execute(update(EvidenceExport).where(EvidenceExport.id == export_id,
                                                     EvidenceExport.lease_token == token)
                        .values(state="done", path=str(out), sha256=_sha256(out), summary=summary,
                                finished_at=utcnow(), lease_token=None, lease_expires_at=None),
                        execution_options={"synchronize_session": False})
        audit.record(session, app_id=None, actor="system", action="evidence.exported", resource_type="evidence",
                     resource_id=export_id, details={"sections": len(summary)})
    return export_id


def execute_export(export_id: str) -> str | None:
    """The job: the worker's runtime, stores and the wiring's sections."""
    from privacy import wiring  # the composition root: the job runs in a worker that has no Flask app

    rt = runtime()
    return execute(rt, registry_for(rt), wiring().evidence, export_id)


def stranded(rt: Any, redis: Any = None) -> list[str]:
    """Exports to dispatch again: a lease that expired (the worker died), or queued with no job waiting in Redis."""
    now = utcnow()
    with rt.db.sessions() as session:
        lapsed = list(session.scalars(select(EvidenceExport.id).where(EvidenceExport.state.in_(LIVE),
                                                                      EvidenceExport.lease_expires_at < now)))
        unstarted = list(session.scalars(select(EvidenceExport.id).where(EvidenceExport.state == "queued",
                                                                         EvidenceExport.lease_expires_at.is_(None))))
    waiting: set[str] = set()
    if redis is not None and unstarted:
        from rq.job import Job

        waiting = {j.id for j in Job.fetch_many([job_id(i) for i in unstarted], connection=redis)
                   if j is not None and j.get_status(refresh=False) in ("queued", "scheduled", "deferred", "started")}
    return lapsed + [i for i in unstarted if job_id(i) not in waiting]


def reconcile() -> list[str]:
    """The cron entry: dispatch again every stranded export."""
    rt = runtime()
    again = [i for i in stranded(rt, getattr(rt.queue, "redis", None)) if dispatch(rt.queue, i)]
    for export_id in again:
        log.info("evidence export %s: dispatched again", export_id)
    return again


def keep_days(env: Any) -> int:
    """EVIDENCE_KEEP_DAYS: how long a finished pack's zip stays on disk (default 30); the row and its SHA-256 stay."""
    return env_int(env, "EVIDENCE_KEEP_DAYS", 30, minimum=1)


def sweep(rt: Any, now: Any = None) -> list[str]:
    """Delete the zip of every export finished more than keep_days ago (state `expired`, path cleared, audited),
    and temporary `.part` files no live export owns (a worker killed mid-write). Returns the expired exports."""
    now = now or utcnow()
    cutoff = now - timedelta(days=keep_days(rt.settings.env))
    expired: list[str] = []
    with rt.db.session() as session:
        old = session.scalars(select(EvidenceExport).where(EvidenceExport.state == "done",
                                                           EvidenceExport.finished_at < cutoff)
                              .with_for_update(skip_locked=True))
        for row in old:
            if row.path:
                Path(row.path).unlink(missing_ok=True)
            row.state, row.path = "expired", None
            audit.record(session, app_id=None, actor="system", action="evidence.pack_deleted",
                         resource_type="evidence", resource_id=row.id,
                         details={"finished_at": row.finished_at.isoformat(), "keep_days": keep_days(rt.settings.env)})
            expired.append(row.id)
        live = {t for t in session.scalars(select(EvidenceExport.lease_token).where(
            EvidenceExport.state.in_(LIVE), EvidenceExport.lease_token.is_not(None)))}
    folder = pack_dir(rt)
    if folder.is_dir():
        for part in folder.glob("*.part"):
            if part.suffixes[-2:-1] and part.suffixes[-2].lstrip(".") not in live:
                part.unlink(missing_ok=True)
    return expired


def sweep_packs() -> list[str]:
    """The cron entry: the worker's runtime."""
    return sweep(runtime())
