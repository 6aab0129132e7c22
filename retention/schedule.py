"""Scheduled runs: the scheduler's tick compares each enabled policy's cron schedule with the slot of its last
scheduled run, so policies created or changed after the scheduler started are picked up at the next tick."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update

from retention import policies
from retention.leases import LIVE_STATES
from retention.models import RetentionPolicy, RetentionRun
from retention.periods import latest_slot
from retention.runs import job_id, schedule_run
from service.db import utcnow

# RQ job states in which the job will still run: its run needs no new job.
_WAITING = frozenset({"queued", "scheduled", "deferred"})


def claim_due(db: Any, now: datetime | None = None) -> str | None:
    """Claim every policy whose schedule fired since its last scheduled run; one run applies them all.

    The claim is a conditional update of the policy's last slot, so two schedulers (or two ticks) racing for
    the same slot produce one run. Returns the run id, or None when nothing is due. Takes the Database and
    commits the claims with the run, so the run exists before the tick hands it to the queue.
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


def stranded(db: Any, now: datetime | None = None, redis: Any = None) -> list[str]:
    """Runs to hand to a worker again: their attempt died (lease expired), or they wait `queued` while no job for
    them waits in Redis (`redis`, the queue's connection; None in-process, where no job ever waits): the
    queue was down when the run was requested, or Redis lost the job. A run whose job still waits is left alone,
    so a tick adds no duplicates; one dispatched twice all the same runs once (its lease is claimed)."""
    now = now or utcnow()
    with db.sessions() as session:
        lapsed = list(session.scalars(select(RetentionRun.id).where(RetentionRun.state.in_(LIVE_STATES),
                                                                    RetentionRun.lease_expires_at < now)
                                      .order_by(RetentionRun.created_at)))
        unstarted = list(session.scalars(select(RetentionRun.id).where(RetentionRun.state.in_(LIVE_STATES),
                                                                       RetentionRun.lease_expires_at.is_(None))
                                         .order_by(RetentionRun.created_at)))
    waiting = _waiting_jobs(redis, [job_id(run_id) for run_id in unstarted])
    return lapsed + [run_id for run_id in unstarted if job_id(run_id) not in waiting]


def _waiting_jobs(redis: Any, ids: list[str]) -> set[str]:
    """The job ids Redis holds queued, scheduled or deferred: jobs that will still run."""
    if redis is None or not ids:
        return set()
    from rq.job import Job

    return {job.id for job in Job.fetch_many(ids, connection=redis)
            if job is not None and job.get_status(refresh=False) in _WAITING}
