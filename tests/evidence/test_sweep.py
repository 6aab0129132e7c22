"""Old evidence packs' files are deleted after EVIDENCE_KEEP_DAYS (the row and its digest stay, state `expired`,
audited); a `.part` file no live export owns (a killed worker's) goes too, a live export's stays."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from flask import Flask
from sqlalchemy import select

from governance import evidence_jobs
from governance.evidence_models import EvidenceExport
from service.audit import AuditEvent
from service.db import utcnow


def _export(app: Flask, export_id: str, state: str, finished_days_ago: int | None, path: Path | None,
            token: str | None = None) -> None:
    now = utcnow()
    with app.extensions["db"].session() as session:
        session.add(EvidenceExport(id=export_id, period_start=now, period_end=now, state=state, requested_by="t",
                                   finished_at=None if finished_days_ago is None else now - timedelta(
                                       days=finished_days_ago), path=str(path) if path else None, lease_token=token,
                                   lease_expires_at=now + timedelta(hours=1) if token else None))


def test_sweep_deletes_old_packs_and_orphaned_parts(app: Flask) -> None:
    rt = app.extensions["runtime"]
    folder = evidence_jobs.pack_dir(rt)
    folder.mkdir(parents=True, exist_ok=True)
    old, fresh = folder / "old.zip", folder / "fresh.zip"
    for f in (old, fresh):
        f.write_bytes(b"PK")
    orphan, live = folder / "dead.aaaa.part", folder / "live.bbbb.part"
    orphan.write_bytes(b"x")
    live.write_bytes(b"x")
    _export(app, "old", "done", 31, old)
    _export(app, "fresh", "done", 29, fresh)
    _export(app, "live", "running", None, None, token="bbbb")
    assert evidence_jobs.sweep(rt) == ["old"]
    assert not old.exists() and fresh.exists() and not orphan.exists() and live.exists()
    with app.extensions["db"].sessions() as session:
        row = session.get(EvidenceExport, "old")
        assert (row.state, row.path) == ("expired", None)
        assert session.get(EvidenceExport, "fresh").state == "done"
        events = list(session.scalars(select(AuditEvent).where(AuditEvent.action == "evidence.pack_deleted")))
        assert [e.resource_id for e in events] == ["old"] and events[0].details["keep_days"] == 30
    assert evidence_jobs.sweep(rt) == []  # once
