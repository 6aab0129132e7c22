"""The audit trail shared by all domains: who did what, when, to which resource. Never personal data."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from service.db import Base, BigIntPK, utcnow

SYSTEM = "system"


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_resource", "resource_type", "resource_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    app_id: Mapped[int | None] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(100))
    resource_type: Mapped[str] = mapped_column(String(50))
    resource_id: Mapped[str] = mapped_column(String(100))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


def record(session: Session, *, app_id: int | None, actor: str, action: str,
           resource_type: str, resource_id: str, details: dict[str, Any] | None = None) -> None:
    """Add an audit event to the caller's unit of work, so it commits (or not) with the change it records.

    `actor` is "key:<key id>", "cli:<command>" or "system"; `details` must hold no personal data.
    """
    # A Core insert, sent at once: cheaper than the ORM unit of work on hot write paths.
    session.execute(insert(AuditEvent), [{"at": utcnow(), "app_id": app_id, "actor": actor, "action": action,
                                          "resource_type": resource_type, "resource_id": str(resource_id),
                                          "details": details or {}}])
