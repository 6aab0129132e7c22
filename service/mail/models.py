"""The mail outbox table: one encrypted row per message, with its delivery state."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, utcnow

# queued -> sending -> sent | queued (retry) | failed; a 'sending' row whose lease lapsed -> unconfirmed
STATES = ("queued", "sending", "sent", "failed", "unconfirmed")


class MailMessage(Base):
    __tablename__ = "mail_outbox"
    __table_args__ = (Index("ix_mail_outbox_due", "state", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    app_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    ref: Mapped[str | None] = mapped_column(String(64), index=True)  # e.g. the rights request it is about
    kind: Mapped[str] = mapped_column(String(40))
    locale: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[bytes] = mapped_column(LargeBinary)  # all four encrypted, the row id as associated data
    subject: Mapped[bytes] = mapped_column(LargeBinary)
    text_body: Mapped[bytes] = mapped_column(LargeBinary)
    html_body: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(nullable=True)
    message_id: Mapped[str] = mapped_column(String(255))  # chosen before the first attempt, never changed
    sent_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)  # SMTP reply, no address or body
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
