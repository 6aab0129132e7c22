"""The scheduler's periodic pass over rights requests (the `dsar` queue's cron entry, or `flask dsar maintain`):
dispatch the outbox, reconcile lost work, destroy expired exports, forget expired idempotency keys."""

from __future__ import annotations

import shutil

from sqlalchemy import select

from dsar.config import export_dir
from dsar.models import DsarRequest
from dsar.outbox import dispatch, reconcile
from service import audit
from service.db import utcnow
from service.idempotency import purge_expired
from service.runtime import runtime


def purge_exports() -> int:
    """Destroy exports past their time, in one transaction (commits); returns how many. Run by the maintenance
    pass or `flask dsar purge-exports`."""
    rt = runtime()
    purged = 0
    with rt.db.session() as session:
        due = session.scalars(select(DsarRequest).where(DsarRequest.export_path.is_not(None),
                                                        DsarRequest.export_expires_at < utcnow()))
        for req in due:
            shutil.rmtree(export_dir(rt.settings, req.id), ignore_errors=True)
            req.export_path, req.export_key = None, None
            audit.record(session, app_id=req.app_id, actor="system", action="dsar.export_destroyed",
                         resource_type="dsar_request", resource_id=req.id)
            purged += 1
    return purged


def maintain() -> dict[str, int]:
    """The scheduler's periodic pass: dispatch what the outbox still holds, re-dispatch tasks whose worker is
    gone or whose job Redis lost, close requests left open, destroy exports past their time, and forget
    idempotency keys past theirs. Each part commits its own work."""
    rt = runtime()
    return {"dispatched": dispatch(rt), "reconciled": reconcile(rt), "exports_destroyed": purge_exports(),
            "idempotency_keys_expired": purge_expired(rt.db)}
