"""Retention tables: versioned policies, runs with one step per policy, the batch journal and policy locks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, BigIntPK, utcnow

ORIGINS = ("api", "config")
ACTIONS = ("delete", "anonymize")
TRIGGERS = ("api", "cli", "schedule")
RUN_STATES = ("queued", "running", "succeeded", "failed")
STEP_STATES = ("pending", "running", "done", "held", "skipped", "failed")


class RetentionPolicy(Base):
    """A policy's identity and state; what it says lives in its versions (the current one is `version`).

    Retention is company-wide, like the stores it applies to: no app owns a policy.
    """

    __tablename__ = "retention_policies"
    __table_args__ = (Index("ix_retention_policies_store_category", "store", "category"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    store: Mapped[str] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(100))
    origin: Mapped[str] = mapped_column(String(10))
    enabled: Mapped[bool] = mapped_column(default=True)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The cron slot of the latest scheduled run: the scheduler's tick compares the schedule against it.
    last_scheduled_at: Mapped[datetime | None]


class RetentionPolicyVersion(Base):
    """One version of a policy. Never updated: a change adds a version and the old one stays on record."""

    __tablename__ = "retention_policy_versions"
    __table_args__ = (UniqueConstraint("policy_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("retention_policies.id"), index=True)
    version: Mapped[int]
    retain_for: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(10))
    basis: Mapped[str] = mapped_column(Text)
    schedule: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100))


class RetentionRun(Base):
    """A run applies one policy, or several, as one job; `as_of` fixes every step's cutoff once.

    `active_key` is set while a run triggered for one policy (or for all) is queued or running: its unique
    index makes concurrent triggers produce a single run. The lease (`lease_token`, `lease_expires_at`) is held
    by the one attempt executing the run and expires if that worker dies.
    """

    __tablename__ = "retention_runs"
    __table_args__ = (Index("ix_retention_runs_created_at", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    policy_id: Mapped[int | None] = mapped_column(ForeignKey("retention_policies.id"), index=True)
    dry_run: Mapped[bool]
    trigger: Mapped[str] = mapped_column(String(20))
    requested_by: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(20), default="queued", index=True)
    active_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    source_run_id: Mapped[str | None] = mapped_column(String(36))
    as_of: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    lease_token: Mapped[str | None] = mapped_column(String(32))
    lease_expires_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    certificate: Mapped[str | None] = mapped_column(Text)
    certificate_sha256: Mapped[str | None] = mapped_column(String(64))


class RetentionStep(Base):
    """One policy applied within a run: the policy version and cutoff it uses, and what came of it."""

    __tablename__ = "retention_steps"
    __table_args__ = (UniqueConstraint("run_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("retention_runs.id"), index=True)
    position: Mapped[int]
    policy_id: Mapped[int] = mapped_column(ForeignKey("retention_policies.id"), index=True)
    policy_key: Mapped[str] = mapped_column(String(100))
    policy_version: Mapped[int]
    store: Mapped[str] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(10))
    retain_for: Mapped[str] = mapped_column(String(40))
    cutoff: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(20), default="pending")
    destroyed: Mapped[int] = mapped_column(default=0)
    key_digest: Mapped[str | None] = mapped_column(String(64))
    skipped: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class RetentionBatch(Base):
    """The journal: one row per batch a store destroyed (or, in a dry run, would destroy).

    A batch is `prepared` (with its record keys) before the store commits it and `committed` after; see
    docs/retention.md for why a crash at any point neither loses nor double counts a batch.
    """

    __tablename__ = "retention_batches"
    __table_args__ = (UniqueConstraint("step_id", "seq"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    step_id: Mapped[int] = mapped_column(ForeignKey("retention_steps.id"), index=True)
    seq: Mapped[int]
    state: Mapped[str] = mapped_column(String(10))
    count: Mapped[int]
    digest: Mapped[str | None] = mapped_column(String(64))
    keys: Mapped[list[str] | None] = mapped_column(JSON)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class RetentionLock(Base):
    """Which run is applying a policy now. Held while that run's lease lives; a dead holder's lock is taken over."""

    __tablename__ = "retention_locks"

    policy_id: Mapped[int] = mapped_column(ForeignKey("retention_policies.id"), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("retention_runs.id"), index=True)
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)
