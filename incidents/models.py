"""Incident tables: the register with its versions, notification records, assessment runs with their steps and
the encrypted affected-subject list, and notice campaigns with one delivery row per person."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, BigIntPK, utcnow

STATES = ("open", "assessed", "contained", "closed")
RISKS = ("unlikely", "risk", "high_risk")
SEVERITIES = ("low", "medium", "high", "critical")
OBLIGATIONS = ("authority", "people")
NOTIFICATION_KINDS = ("notified", "supplement", "not_notified")
RUN_STATES = ("queued", "running", "succeeded", "failed")
STEP_STATES = ("pending", "running", "done", "not_determinable", "failed")


class Incident(Base):
    """A breach or incident of one app. Its facts are versioned (`version`, incident_versions); `record` is the
    signed incident record issued when it closes."""

    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_app_state", "app_id", "state"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20), default="open")
    severity: Mapped[str | None] = mapped_column(String(20))
    # Awareness: every clock runs from here (GDPR Art. 33(1) "after having become aware of it").
    discovered_at: Mapped[datetime]
    occurred_from: Mapped[datetime | None]
    occurred_until: Mapped[datetime | None]
    scope: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    jurisdictions: Mapped[list[str]] = mapped_column(JSON, default=list)
    risk: Mapped[str | None] = mapped_column(String(20))
    risk_reasoning: Mapped[str | None] = mapped_column(Text)
    consequences: Mapped[str | None] = mapped_column(Text)
    root_cause: Mapped[str | None] = mapped_column(Text)
    measures: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    assessed_at: Mapped[datetime | None]
    contained_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    # When the affected-subject lists of its assessments are destroyed (set on close).
    subjects_destroy_at: Mapped[datetime | None] = mapped_column(index=True)
    record: Mapped[str | None] = mapped_column(Text)
    record_sha256: Mapped[str | None] = mapped_column(String(64))


class IncidentVersion(Base):
    """One version of an incident's facts, never updated: who changed what, when and why."""

    __tablename__ = "incident_versions"
    __table_args__ = (UniqueConstraint("incident_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id"), index=True)
    version: Mapped[int]
    facts: Mapped[dict[str, Any]] = mapped_column(JSON)
    changed: Mapped[list[str]] = mapped_column(JSON, default=list)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100))


class IncidentNotification(Base):
    """That an authority or the people were notified (and every later supplement, Art. 33(4)), or a reasoned
    decision not to notify."""

    __tablename__ = "incident_notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id"), index=True)
    jurisdiction: Mapped[str] = mapped_column(String(40))
    obligation: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime]
    reference: Mapped[str | None] = mapped_column(String(200))
    notified_by: Mapped[str | None] = mapped_column(String(200))
    reasoning: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100))


class AssessmentRun(Base):
    """The affected population of an incident over its window, computed as a job (leased like retention runs)."""

    __tablename__ = "incident_assessments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id"), index=True)
    state: Mapped[str] = mapped_column(String(20), default="queued", index=True)
    since: Mapped[datetime]
    until: Mapped[datetime]
    requested_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    lease_token: Mapped[str | None] = mapped_column(String(32))
    lease_expires_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    distinct_subjects: Mapped[int | None]
    with_contact: Mapped[int | None]
    subjects_destroyed_at: Mapped[datetime | None]


class AssessmentStep(Base):
    """One (store, category) of the incident's scope within a run: how many subjects the store listed."""

    __tablename__ = "incident_assessment_steps"
    __table_args__ = (UniqueConstraint("run_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("incident_assessments.id"), index=True)
    position: Mapped[int]
    store: Mapped[str] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(20), default="pending")
    subjects: Mapped[int] = mapped_column(default=0)
    batches: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)


class AffectedSubject(Base):
    """One distinct affected person of a run: the identities the stores gave, sealed with the field key."""

    __tablename__ = "incident_subjects"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("incident_assessments.id"), index=True)
    identity: Mapped[bytes] = mapped_column(LargeBinary)
    has_contact: Mapped[bool] = mapped_column(default=False)


class AffectedSubjectKey(Base):
    """A keyed hash of one `type:value` of an affected person: how identities from different stores are found to
    be the same person (the union happens here, in the database, not in a worker's memory)."""

    __tablename__ = "incident_subject_keys"
    # The key first: a batch looks up hundreds of keys of one run, each a probe of this index; led by the run, the
    # planner scanned every key of the run for each batch (quadratic in the people affected).
    __table_args__ = (UniqueConstraint("key", "run_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("incident_assessments.id"))
    key: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[int] = mapped_column(ForeignKey("incident_subjects.id"), index=True)


class Campaign(Base):
    """A notice campaign to the people of one assessment run (dry run first), throttled, sent through the outbox."""

    __tablename__ = "incident_campaigns"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id"), index=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("incident_assessments.id"))
    dry_run: Mapped[bool]
    state: Mapped[str] = mapped_column(String(20), default="queued")
    messages: Mapped[dict[str, Any]] = mapped_column(JSON)
    per_minute: Mapped[int | None]
    requested_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    lease_token: Mapped[str | None] = mapped_column(String(32))
    lease_expires_at: Mapped[datetime | None]
    counts: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)


class Delivery(Base):
    """One person of a campaign: unique per (campaign, subject), so nobody is sent a notice twice."""

    __tablename__ = "incident_deliveries"
    __table_args__ = (UniqueConstraint("campaign_id", "subject_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("incident_campaigns.id"), index=True)
    # Cleared when the subject list is destroyed; the row stays as evidence that a notice was queued.
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("incident_subjects.id"))
    state: Mapped[str] = mapped_column(String(20), default="queued")
    mail_id: Mapped[str | None] = mapped_column(String(36))
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
