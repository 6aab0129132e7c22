"""Leases on a job's row (an assessment run, a campaign), in the database so they work on every backend: the one
attempt holding the lease executes the job; a dead attempt's lease expires, and the next attempt takes over."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, update
from sqlalchemy.orm import Session

from service.db import utcnow

LIVE = ("queued", "running")


class LeaseLost(Exception):
    """Another attempt holds the row now: this one stops."""


def claim(db: Any, model: Any, row_id: str, ttl: int) -> str | None:
    """Take a live row for this attempt when no live attempt holds it; its token, or None. Commits."""
    token, now = uuid.uuid4().hex, utcnow()
    with db.session() as session:
        done = session.execute(
            update(model)
            .where(model.id == row_id, model.state.in_(LIVE),
                   or_(model.lease_expires_at.is_(None), model.lease_expires_at < now))
            .values(lease_token=token, lease_expires_at=now + timedelta(seconds=ttl), state="running",
                    attempts=model.attempts + 1, started_at=func.coalesce(model.started_at, now)),
            execution_options={"synchronize_session": False})
    return token if done.rowcount == 1 else None


def renew(session: Session, model: Any, row_id: str, token: str, ttl: int) -> None:
    """Extend the lease in the caller's transaction; LeaseLost when another attempt took over."""
    done = session.execute(update(model).where(model.id == row_id, model.lease_token == token)
                           .values(lease_expires_at=utcnow() + timedelta(seconds=ttl)),
                           execution_options={"synchronize_session": False})
    if done.rowcount != 1:
        raise LeaseLost(f"{model.__tablename__} {row_id}: lease lost")
