"""Rights-request tables: requests, one task per store, the dispatch outbox, download tokens, notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, BigIntPK, utcnow

TYPES = ("access", "portability", "erasure", "rectification", "restriction", "objection", "consent_withdrawal")
STATES = ("pending_verification", "verified", "in_progress", "completed", "partially_completed", "rejected",
          "failed", "cancelled", "locked")
FINAL = frozenset({"completed", "partially_completed", "rejected", "failed", "cancelled"})
# The rows of the partial indexes on open requests (the same text in migration 0013).
OPEN_ONLY = text("status NOT IN (" + ", ".join(f"'{state}'" for state in sorted(FINAL)) + ")")
TASK_STATES = ("pending", "running", "done", "not_applicable", "failed")
TASK_FINAL = frozenset({"done", "not_applicable", "failed"})
# Pseudo-stores a task names instead of a store: the subject's consent records, and work left to an operator.
CONSENT_TASK = "_consent"
MANUAL_TASK = "_manual"


class DsarRequest(Base):
    """A rights request. Identity, contact and details are personal data: encrypted, matched by pseudonyms."""

    __tablename__ = "dsar_requests"
    __table_args__ = (
        Index("ix_dsar_requests_app_status", "app_id", "status"),
        # The console (migration 0013): its queue by due date (overdue first) and the overview's open counts read
        # only the open requests, a few thousand of 100,000; partial indexes keep them that small. The queue's
        # newest-first sort reads received_at.
        Index("ix_dsar_requests_open_due", "due_at", "id", postgresql_where=OPEN_ONLY, sqlite_where=OPEN_ONLY),
        Index("ix_dsar_requests_open_state", "status", "type", "due_at", postgresql_where=OPEN_ONLY,
              sqlite_where=OPEN_ONLY),
        Index("ix_dsar_requests_received", "received_at", "id"),
        # The overview's figures over the requests due in a window (on-time rate, median time to close) read
        # these columns only: on PostgreSQL an index-only scan.
        Index("ix_dsar_requests_due_at", "due_at",
              postgresql_include=["status", "type", "received_at", "closed_at"]),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"))
    type: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(30))
    jurisdiction: Mapped[str] = mapped_column(String(20))
    subject_keys: Mapped[list[str]] = mapped_column(JSON)
    subject: Mapped[bytes] = mapped_column(LargeBinary)
    contact: Mapped[bytes | None] = mapped_column(LargeBinary)
    details: Mapped[bytes | None] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_at: Mapped[datetime] = mapped_column()  # indexed below, with the columns the overview's figures read
    extended_at: Mapped[datetime | None]
    extension_reason: Mapped[str | None] = mapped_column(Text)
    verified_at: Mapped[datetime | None]
    verified_by: Mapped[str | None] = mapped_column(String(100))
    code_hash: Mapped[str | None] = mapped_column(String(64))
    code_expires_at: Mapped[datetime | None]
    code_attempts: Mapped[int] = mapped_column(default=0)  # wrong codes for this request, across resends
    # When codes were resent (Unix seconds), the last hour's only: resends are limited per request per hour.
    code_resent_at: Mapped[list[int] | None] = mapped_column(JSON)
    closed_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(Text)
    certificate: Mapped[str | None] = mapped_column(Text)
    export_path: Mapped[str | None] = mapped_column(String(500))
    export_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    export_expires_at: Mapped[datetime | None]
    consent_result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Restriction and objection stay in force (a flag apps look up; a restriction's hold) until lifted.
    hold_id: Mapped[str | None] = mapped_column(String(36))
    lifted_at: Mapped[datetime | None]
    lifted_by: Mapped[str | None] = mapped_column(String(100))
    lift_reason: Mapped[str | None] = mapped_column(Text)
    # The language of every email about the request (en, zh_Hans); NULL before 0011: MAIL_DEFAULT_LOCALE.
    locale: Mapped[str | None] = mapped_column(String(16))


class DsarTask(Base):
    """The work of one request on one store. A running job renews `lease_until`; once it lapses the worker is
    gone and the reconciler hands the task to another. `attempts` numbers the runs and fences a late writer."""

    __tablename__ = "dsar_tasks"
    __table_args__ = (Index("ix_dsar_tasks_state", "state"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("dsar_requests.id"), index=True)
    store: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    kept: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_error: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)  # for operators: what a manual task asks them to do
    lease_until: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class DsarDispatch(Base):
    """The transactional outbox: written with the task, turned into an RQ job by the dispatcher (one job for a
    request's rows on the `dsar` queue, named after its first row: `dsar-<task>-<row id>`). `job` names the job a
    row went into; the latest row of a task names the job the reconciler looks for in Redis."""

    __tablename__ = "dsar_dispatch"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("dsar_tasks.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column(index=True)
    job: Mapped[str | None] = mapped_column(String(100))  # None: dispatched before grouping, `dsar-<task>-<id>`
    # A task sent again after its job was lost or its worker died runs in a job of its own: if a store's task
    # takes its worker down, it does not take its request's other tasks down with it a second time.
    alone: Mapped[bool] = mapped_column(default=False, server_default=false())


class DownloadToken(Base):
    __tablename__ = "dsar_download_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("dsar_requests.id"), index=True)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class Notification(Base):
    """The old, never-delivered outbox: kept read-only by migration 0009; messages now go to service.mail."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"))
    request_id: Mapped[str] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    recipient: Mapped[bytes] = mapped_column(LargeBinary)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
