"""Consent tables: policies, purposes, versions, the append-only consent ledger and the record of its checks."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.db import Base, utcnow


class Policy(Base):
    __tablename__ = "policies"
    __table_args__ = (UniqueConstraint("app_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"))
    key: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    purposes: Mapped[list[Purpose]] = relationship(order_by="Purpose.id", lazy="selectin")
    versions: Mapped[list[PolicyVersion]] = relationship(
        order_by="(PolicyVersion.effective_at, PolicyVersion.id)", lazy="selectin")


class Purpose(Base):
    __tablename__ = "purposes"
    __table_args__ = (UniqueConstraint("policy_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("policies.id"))
    key: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text)
    required: Mapped[bool] = mapped_column(default=False)
    honors_gpc: Mapped[bool] = mapped_column(default=False)
    # A sale or sharing of personal data (CCPA): what an opt-out of sale withdraws (Data Rights Protocol).
    sale_or_sharing: Mapped[bool] = mapped_column(default=False)
    lawful_basis: Mapped[str] = mapped_column(String(40), default="consent")
    retention: Mapped[str | None] = mapped_column(String(40))
    pii_categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    third_party: Mapped[str | None] = mapped_column(String(200))


class PolicyVersion(Base):
    __tablename__ = "policy_versions"
    __table_args__ = (UniqueConstraint("policy_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("policies.id"), index=True)
    version: Mapped[str] = mapped_column(String(50))
    effective_at: Mapped[datetime]
    text: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(String(2000))
    sha256: Mapped[str] = mapped_column(String(64))
    material: Mapped[bool]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConsentEvent(Base):
    """One ledger entry. Append-only: the API never updates or deletes a row.

    `purposes` is the subject's full per-purpose state after this event, so the latest event is the current
    state. `seq`/`prev_hash` chain each subject's events; `hash` covers the row's canonical content.
    """

    __tablename__ = "consent_events"
    # (subject, seq) also serves the per-policy lookups: a subject's events are few, read newest first.
    __table_args__ = (UniqueConstraint("subject", "seq"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"))
    policy_id: Mapped[int] = mapped_column(ForeignKey("policies.id"))
    version_id: Mapped[int] = mapped_column(ForeignKey("policy_versions.id"))
    subject: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int]
    kind: Mapped[str] = mapped_column(String(20))
    purposes: Mapped[dict[str, Any]] = mapped_column(JSON)
    gpc: Mapped[bool] = mapped_column(default=False)
    channel: Mapped[str] = mapped_column(String(40))
    locale: Mapped[str | None] = mapped_column(String(35))
    evidence: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    receipt: Mapped[str] = mapped_column(Text)


class LedgerVerification(Base):
    """One run of the ledger check (scheduled or from the CLI): what it covered, what it found, and when intact
    the signed checkpoint (a JWS) that a later incremental run starts from. The ledger is one for every app."""

    __tablename__ = "ledger_verifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20))  # running, intact, broken, failed, abandoned
    mode: Mapped[str] = mapped_column(String(20))  # full, incremental
    trigger: Mapped[str] = mapped_column(String(20))  # cron, cli
    events_checked: Mapped[int] = mapped_column(default=0)  # events whose hash was recomputed
    chains_checked: Mapped[int] = mapped_column(default=0)
    events_covered: Mapped[int | None]  # events the new checkpoint vouches for
    breaks: Mapped[int] = mapped_column(default=0)
    # The first break: an event id (or a range of them) and what is wrong there; `first_break_app_id` is the app
    # the event claims, so that only that app is shown which event (no foreign key: the row may be a forgery).
    first_break: Mapped[str | None] = mapped_column(String(100))
    first_break_problem: Mapped[str | None] = mapped_column(String(300))
    first_break_app_id: Mapped[int | None]
    base_id: Mapped[int | None]  # the verification whose checkpoint this one was compared with
    checkpoint: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(String(200))  # why a failed run failed (an exception's type)


class ConsentCount(Base):
    """Events per policy, UTC day and purpose, folded from the ledger by consent.counts (never by the recording
    path). The row with purpose "" carries the day's events and those with GPC (an event may name no purpose)."""

    __tablename__ = "consent_counts"

    policy_id: Mapped[int] = mapped_column(ForeignKey("policies.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    purpose: Mapped[str] = mapped_column(String(100), primary_key=True)
    granted: Mapped[int] = mapped_column(default=0)
    denied: Mapped[int] = mapped_column(default=0)
    withdrawn: Mapped[int] = mapped_column(default=0)
    events: Mapped[int] = mapped_column(default=0)
    gpc: Mapped[int] = mapped_column(default=0)


class ConsentCountMark(Base):
    """The one row saying how far consent_counts reach: every event whose id sorts at or below `last_id`."""

    __tablename__ = "consent_count_marks"

    id: Mapped[int] = mapped_column(primary_key=True)
    last_id: Mapped[str | None] = mapped_column(String(36))
    folded_at: Mapped[datetime | None]
