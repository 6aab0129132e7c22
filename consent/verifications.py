"""Ledger verification as an operation: each run recorded (when, what it checked, what it found) with, when
intact, the signed checkpoint that a later incremental run starts from."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from consent import checkpoint as checkpoints
from consent.checkpoint import Checkpoint
from consent.ledger import BATCH, Break, verify
from consent.models import LedgerVerification
from service.config import Settings
from service.crypto import KeyMaterial
from service.db import Database, utcnow

log = logging.getLogger(__name__)

# Serialises the start of runs on PostgreSQL (pg_advisory_xact_lock), so two schedulers cannot both start one.
_LOCK = 0x6C656467  # "ledg"
# A run still "running" after this long died with its process; the next run records it as abandoned.
STALE_AFTER = timedelta(hours=6)


@dataclasses.dataclass(frozen=True)
class Options:
    """How a run reads the ledger: events per round trip, the checkpoint's lag and segment size."""

    batch: int = BATCH
    lag: timedelta = checkpoints.LAG
    segment: int = checkpoints.SEGMENT
    stale_after: timedelta = STALE_AFTER


def run(db: Database, keys: KeyMaterial, settings: Settings, *, trigger: str, incremental: bool = False,
        exclusive: bool = False, options: Options = Options(),
        on_break: Callable[[Break], None] | None = None) -> LedgerVerification | None:
    """Run one verification and record it; commits (the record is written when the run starts and when it ends,
    each on its own, so a run that dies leaves a `running` row that the next one marks `abandoned`).

    `incremental` starts from the latest intact checkpoint (a full run when there is none). `exclusive` (the
    scheduled job) returns None without running while another run is in progress. `on_break` sees every break.
    """
    started = _start(db, trigger, "incremental" if incremental else "full", exclusive, options.stale_after)
    if started is None:
        return None
    verification_id, started_at = started
    try:
        base, forged = _base(db, keys)
        mode = "incremental" if incremental and base is not None else "full"
        first, breaks = forged, int(forged is not None)
        if forged is not None and on_break:
            on_break(forged)
        with db.sessions() as session:
            check = verify(session, options.batch, since=base, incremental=mode == "incremental", lag=options.lag,
                           segment=options.segment, started_at=started_at)
            for found in check:
                breaks += 1
                first = first or found
                if on_break:
                    on_break(found)
        signed = None
        if check.checkpoint is not None and breaks == 0:
            signed = checkpoints.sign(dataclasses.replace(check.checkpoint, verification=verification_id),
                                      keys.signer, settings.issuer)
    except Exception as exc:
        _finish(db, verification_id, status="failed", error=type(exc).__name__)
        raise
    return _finish(db, verification_id, status="broken" if breaks else "intact", mode=mode,
                   events_checked=check.events, chains_checked=check.chains, breaks=breaks,
                   events_covered=check.checkpoint.events if signed and check.checkpoint else None,
                   first_break=first.event_id[:100] if first else None,
                   first_break_problem=first.problem[:300] if first else None,
                   first_break_app_id=first.app_id if first else None,
                   base_id=base.verification if base else None, checkpoint=signed)


def _start(db: Database, trigger: str, mode: str, exclusive: bool,
           stale_after: timedelta) -> tuple[int, datetime] | None:
    now = utcnow()
    with db.session() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})
        session.execute(update(LedgerVerification)
                        .where(LedgerVerification.status == "running",
                               LedgerVerification.started_at < now - stale_after)
                        .values(status="abandoned", finished_at=now, error="did not finish: its process ended"))
        if exclusive and session.scalar(select(LedgerVerification.id)
                                        .where(LedgerVerification.status == "running").limit(1)) is not None:
            log.info("ledger verification skipped: another one is running")
            return None
        row = LedgerVerification(started_at=now, status="running", mode=mode, trigger=trigger)
        session.add(row)
        session.flush()
        return row.id, now


def _finish(db: Database, verification_id: int, **values: object) -> LedgerVerification:
    with db.session() as session:
        row = session.get_one(LedgerVerification, verification_id)
        for name, value in values.items():
            setattr(row, name, value)
        row.finished_at = utcnow()
    return row


def _base(db: Database, keys: KeyMaterial) -> tuple[Checkpoint | None, Break | None]:
    """The latest intact run's checkpoint, its signature checked; a checkpoint that does not verify is a break
    itself (its record was altered) and the run is then a full one without it."""
    with db.sessions() as session:
        row = session.execute(select(LedgerVerification.id, LedgerVerification.checkpoint)
                              .where(LedgerVerification.status == "intact",
                                     LedgerVerification.checkpoint.is_not(None))
                              .order_by(LedgerVerification.id.desc()).limit(1)).first()
    if row is None:
        return None, None
    try:
        return checkpoints.load(row.checkpoint, keys.signer, row.id), None
    except (ValueError, KeyError, TypeError):
        return None, Break(f"verification {row.id}", "", "its checkpoint does not verify with the service's keys "
                           "(the record was altered): checked in full without it")


def latest(session: Session) -> LedgerVerification | None:
    return session.scalars(select(LedgerVerification).order_by(LedgerVerification.id.desc()).limit(1)).first()


def readiness(session: Session) -> dict[str, Any]:
    """What /readyz shows of the ledger: the latest verification's time and status (None when there is none)."""
    row = latest(session)
    last = None if row is None else {
        "id": row.id, "status": row.status, "mode": row.mode, "started_at": row.started_at.isoformat(),
        "finished_at": row.finished_at.isoformat() if row.finished_at else None}
    return {"last_verification": last}


def page(session: Session, offset: int, limit: int) -> tuple[list[LedgerVerification], int]:
    """Verifications, newest first, and how many there are."""
    total = session.scalar(select(func.count()).select_from(LedgerVerification)) or 0
    rows = session.scalars(select(LedgerVerification).order_by(LedgerVerification.id.desc())
                           .offset(offset).limit(limit))
    return list(rows), total
