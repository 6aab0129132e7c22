"""State changes of a request and of its tasks, each recorded in the audit trail with its actor and reason (never
personal data), in the caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dsar.agents.hook import changed as drp_changed
from dsar.models import FINAL, DsarRequest, DsarTask
from service import audit
from service.db import utcnow


def transition(session: Session, req: DsarRequest, status: str, actor: str, reason: str | None = None,
               **details: Any) -> None:
    previous, req.status = req.status, status
    if status in FINAL:
        req.closed_at = utcnow()
    audit.record(session, app_id=req.app_id, actor=actor, action=f"dsar.{status}", resource_type="dsar_request",
                 resource_id=req.id, details={"from": previous, "reason": reason, **details})
    drp_changed(session, req.id)  # the agent that made it, if any, is called back after the commit


def give_up(session: Session, task: DsarTask, app_id: int, limit: int) -> None:
    """Fail a task whose every allowed run has started and none recorded a result (a worker killed each time,
    or a result the database refused). The request closes as its rules say."""
    task.state, task.lease_until, task.updated_at = "failed", None, utcnow()
    task.last_error = (f"gave up after {task.attempts} attempt(s) (limit {limit}): the last run ended without "
                       f"recording a result" + (f"; before that: {task.last_error}" if task.last_error else ""))[:1000]
    audit.record(session, app_id=app_id, actor="system", action="dsar.task_failed", resource_type="dsar_task",
                 resource_id=task.id, details={"request": task.request_id, "store": task.store,
                                               "attempt": task.attempts, "reason": "attempts exhausted"})


def tasks_of(session: Session, request_id: str) -> list[DsarTask]:
    return list(session.scalars(select(DsarTask).where(DsarTask.request_id == request_id)
                                .order_by(DsarTask.store)))
