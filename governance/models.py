"""Governance tables: the processor register and its due-diligence reviews, the people-kept fields of each
processing activity, signed ROPA snapshots and privacy impact assessments. All company-wide: no app owns a row."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, utcnow

ROLES = ("processor", "sub-processor", "independent controller")
REVIEW_RESULTS = ("passed", "passed_with_actions", "failed")
ASSESSMENT_STATES = ("draft", "in_review", "approved", "changes_requested", "review_needed")
SECTIONS = ("collection", "storage", "use", "destruction")
NOTICE_STATES = ("pending", "sending", "sent", "acknowledged", "failed")


class Processor(Base):
    """A processor, sub-processor or independent controller that receives personal data from the company."""

    __tablename__ = "governance_processors"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(30))
    countries: Mapped[list[str]] = mapped_column(JSON, default=list)  # ISO 3166-1 alpha-2
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    purposes: Mapped[list[str]] = mapped_column(JSON, default=list)  # purpose keys, or app/policy/purpose
    dpa_date: Mapped[date | None] = mapped_column(Date)
    contact: Mapped[str | None] = mapped_column(String(300))
    erasure_webhook: Mapped[str | None] = mapped_column(String(2000))
    # The webhook's HMAC secret, sealed with the field key (bound to this row); shown once when generated.
    erasure_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    erasure_email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProcessorReview(Base):
    """One due-diligence review of a processor. Never updated: a new review is a new row."""

    __tablename__ = "governance_processor_reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    processor_id: Mapped[int] = mapped_column(ForeignKey("governance_processors.id"), index=True)
    reviewed_on: Mapped[date] = mapped_column(Date)
    result: Mapped[str] = mapped_column(String(30))
    reviewer: Mapped[str] = mapped_column(String(200))
    next_due: Mapped[date] = mapped_column(Date)
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Activity(Base):
    """What only people know about a processing activity (app/policy/purpose); the rest is derived."""

    __tablename__ = "governance_activities"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(320), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    controller: Mapped[str | None] = mapped_column(String(300))
    joint_controller: Mapped[str | None] = mapped_column(String(300))
    security_measures: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(100))


class RopaSnapshot(Base):
    """A frozen, signed record of processing: `token` is a JWS whose payload holds the whole record."""

    __tablename__ = "governance_ropa_snapshots"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    created_by: Mapped[str] = mapped_column(String(100))
    activities: Mapped[int]
    token: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))


class Assessment(Base):
    """A privacy impact assessment of an app or of one processing activity.

    `facts` and `facts_digest` are what the service knew when it was approved; drift compares against them.
    """

    __tablename__ = "governance_assessments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    activity: Mapped[str | None] = mapped_column(String(320))  # null: the whole app
    title: Mapped[str] = mapped_column(String(300))
    state: Mapped[str] = mapped_column(String(20), default="draft", index=True)
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # section -> text
    risks: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    mitigations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    facts: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    facts_digest: Mapped[str | None] = mapped_column(String(64))
    drift: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    reviewer_comment: Mapped[str | None] = mapped_column(Text)
    approved_by: Mapped[str | None] = mapped_column(String(200))
    approved_at: Mapped[datetime | None]
    review_due: Mapped[date | None] = mapped_column(Date)
    token: Mapped[str | None] = mapped_column(Text)  # the signed, frozen assessment (JWS)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ErasureNotice(Base):
    """One erasure notice to one processor for one completed erasure request (at most one per pair).

    Keyed by the processor's key, not its row, so the history outlives a processor removed from the register.
    `payload` is the message body sealed with the field key (bound to this row); `ack_token_sha256` the hash of the
    email's acknowledgement link token (the token itself is only in the email).
    """

    __tablename__ = "governance_erasure_notices"
    __table_args__ = (UniqueConstraint("request_id", "processor_key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(36), index=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    processor_key: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(10))  # webhook | email
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    ack_token_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    mail_id: Mapped[str | None] = mapped_column(String(36))
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
