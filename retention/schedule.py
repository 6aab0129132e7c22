"""Scheduled runs: the scheduler's tick compares each enabled policy's cron schedule with the slot of its last
scheduled run, so policies created or changed after the scheduler started are picked up at the next tick."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update

from retention import policies
from retention.leases import LIVE_STATES
from retention.models import RetentionPolicy, RetentionRun
from retention.periods import latest_slot
from retention.runs import schedule_run
from service.db import utcnow

LOST_AFTER = timedelta(minutes=10)  # a queued run no worker has started by then: its job was lost


def claim_due(db: Any, now: datetime | None = None) -> str | None:
    """Claim every policy whose schedule fired since its last scheduled run; one run applies them all.

    The claim is a conditional update of the policy's last slot, so two schedulers (or two ticks) racing for
    the same slot produce one run. Returns the run id, or None when nothing is due.
    """
    now = now or utcnow()
    with db.session() as session:
        claimed = []
        for policy in policies.list_policies(session, enabled=True):
            slot = latest_slot(policies.current(session, policy).schedule, now)
            base = policy.last_scheduled_at or policy.created_at
            if slot <= base:
                continue
            won = session.execute(
                update(RetentionPolicy)
                .where(RetentionPolicy.id == policy.id,
                       or_(RetentionPolicy.last_scheduled_at.is_(None), RetentionPolicy.last_scheduled_at < slot))
                .values(last_scheduled_at=slot),
                execution_options={"synchronize_session": False})
            if won.rowcount == 1:
                claimed.append(policy)
        if not claimed:
            return None
        return schedule_run(session, claimed, now).id


def stranded(db: Any, now: datetime | None = None) -> list[str]:
    """Runs to hand to a worker again: their attempt died (lease expired) or their job never started."""
    now = now or utcnow()
    with db.sessions() as session:
        return list(session.scalars(select(RetentionRun.id).where(
            RetentionRun.state.in_(LIVE_STATES),
            or_(RetentionRun.lease_expires_at < now,
                (RetentionRun.lease_expires_at.is_(None)) & (RetentionRun.created_at < now - LOST_AFTER)))))
