"""Leases in the database, so they work on the embedded default and on PostgreSQL alike.

A run's lease (a token and an expiry on the run row) is held by the one attempt executing it; a policy's lock
(a row naming the run) is held while that run's lease lives. Both expire when their holder dies, because
nothing renews them: a worker renews its lease at every batch it records.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, exists, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from retention.models import RetentionLock, RetentionRun
from service.db import utcnow

LIVE_STATES = ("queued", "running")


class LeaseLost(Exception):
    """This attempt no longer holds its run (or its policy): it must stop without destroying anything more."""


@dataclass
class Lease:
    run_id: str
    token: str
    ttl: int
    policy_id: int | None = None  # set while the attempt applies a policy: renewal then checks its lock too

    def renew(self, session: Session) -> None:
        """Extend the lease in the caller's transaction; LeaseLost when another attempt or run took over."""
        stmt = update(RetentionRun).where(RetentionRun.id == self.run_id, RetentionRun.lease_token == self.token)
        if self.policy_id is not None:
            stmt = stmt.where(exists().where(RetentionLock.policy_id == self.policy_id,
                                             RetentionLock.run_id == self.run_id))
        done = session.execute(stmt.values(lease_expires_at=utcnow() + timedelta(seconds=self.ttl)),
                               execution_options={"synchronize_session": False})
        if done.rowcount != 1:
            raise LeaseLost(f"run {self.run_id}: lease lost")


def claim(db: Any, run_id: str, ttl: int) -> Lease | None:
    """Take the run for this attempt: only when it is unfinished and no live attempt holds it. Commits: the lease
    must stand before the attempt destroys anything."""
    token, now = uuid.uuid4().hex, utcnow()
    with db.session() as session:
        done = session.execute(
            update(RetentionRun)
            .where(RetentionRun.id == run_id, RetentionRun.state.in_(LIVE_STATES),
                   or_(RetentionRun.lease_expires_at.is_(None), RetentionRun.lease_expires_at < now))
            .values(lease_token=token, lease_expires_at=now + timedelta(seconds=ttl), state="running",
                    attempts=RetentionRun.attempts + 1,
                    started_at=func.coalesce(RetentionRun.started_at, now)),
            execution_options={"synchronize_session": False})
    return Lease(run_id, token, ttl) if done.rowcount == 1 else None


def lease_alive(run: RetentionRun) -> bool:
    return run.state in LIVE_STATES and run.lease_expires_at is not None and run.lease_expires_at > utcnow()


def acquire(db: Any, lease: Lease, policy_id: int) -> str | None:
    """Lock the policy for the lease's run. None when locked; otherwise the id of the live run applying it.
    Commits (retried when another run inserts the lock at the same moment): the lock must stand before the step
    destroys anything."""
    for _ in range(5):
        try:
            with db.session() as session:
                row = session.get(RetentionLock, policy_id)
                if row is None:
                    session.add(RetentionLock(policy_id=policy_id, run_id=lease.run_id))
                    session.flush()
                    return None
                if row.run_id == lease.run_id:
                    return None  # an earlier attempt of this run: its lease has expired or we would not be here
                holder = session.get(RetentionRun, row.run_id)
                if holder is not None and lease_alive(holder):
                    return holder.id
                taken = session.execute(
                    update(RetentionLock)
                    .where(RetentionLock.policy_id == policy_id, RetentionLock.run_id == row.run_id)
                    .values(run_id=lease.run_id, acquired_at=utcnow()),
                    execution_options={"synchronize_session": False})
                if taken.rowcount == 1:
                    return None
        except IntegrityError:
            continue  # another run inserted the lock at the same moment: look again
    raise LeaseLost(f"run {lease.run_id}: could not settle the lock of policy {policy_id}")


def release(session: Session, run_id: str, policy_id: int | None = None) -> None:
    stmt = delete(RetentionLock).where(RetentionLock.run_id == run_id)
    if policy_id is not None:
        stmt = stmt.where(RetentionLock.policy_id == policy_id)
    session.execute(stmt, execution_options={"synchronize_session": False})
