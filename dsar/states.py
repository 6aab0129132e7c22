"""State changes of a request, each recorded in the audit trail with its actor and reason (never personal data)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

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


def tasks_of(session: Session, request_id: str) -> list[DsarTask]:
    return list(session.scalars(select(DsarTask).where(DsarTask.request_id == request_id)
                                .order_by(DsarTask.store)))
