"""The evidence pack's export jobs: the database row is the job's truth (Redis only carries the wake-up)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, utcnow


class EvidenceExport(Base):
    """One requested pack: queued -> running -> done | failed. A running row whose lease expired (its worker died)
    or a queued one whose job Redis no longer holds is dispatched again by the reconciler."""

    __tablename__ = "evidence_exports"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(20), default="queued", index=True)
    requested_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    lease_token: Mapped[str | None] = mapped_column(String(32))
    lease_expires_at: Mapped[datetime | None]
    path: Mapped[str | None] = mapped_column(String(500))
    sha256: Mapped[str | None] = mapped_column(String(64))  # of the whole zip
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
