"""DRP tables: registered agents, their bearer tokens, DRP requests (each over a rights request), seen messages,
and the status-callback outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, BigIntPK, utcnow


class Agent(Base):
    """An authorised agent accepted by one app (the Covered Business `business_id`), with its Ed25519 verify key
    as the service directory gives it (base64). Revoked registrations keep their row for the audit trail."""

    __tablename__ = "drp_agents"
    __table_args__ = (UniqueConstraint("app_id", "agent_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    agent_id: Mapped[str] = mapped_column(String(100), index=True)
    business_id: Mapped[str] = mapped_column(String(100), index=True)
    verify_key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(200))
    # Whether the agent's `email_verified` / `phone_number_verified` claims verify the person (else a code is sent).
    trust_verification: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class AgentToken(Base):
    """A bearer token of the pair-wise key set-up, stored as its SHA-256; a newer set-up supersedes it."""

    __tablename__ = "drp_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_pk: Mapped[int] = mapped_column(ForeignKey("drp_agents.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class SeenMessage(Base):
    """The SHA-256 of each accepted signed message until its `expires-at`: the same message twice is a replay."""

    __tablename__ = "drp_seen_messages"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class DrpRequest(Base):
    """A data rights request of an agent: the rights request it became (none for an opt-in, which is a consent
    record, or a request refused at intake), and what the status object last said (`last`, for callbacks)."""

    __tablename__ = "drp_requests"
    __table_args__ = (Index("ix_drp_requests_agent_ref", "agent_pk", "agent_request_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    agent_pk: Mapped[int] = mapped_column(ForeignKey("drp_agents.id"))
    dsar_request_id: Mapped[str | None] = mapped_column(ForeignKey("dsar_requests.id"), unique=True)
    agent_request_id: Mapped[str | None] = mapped_column(String(200))
    exercise: Mapped[str] = mapped_column(String(30))
    regime: Mapped[str | None] = mapped_column(String(20))
    status_callback: Mapped[str | None] = mapped_column(String(2000))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set when the outcome is decided here and not by the rights request (opt-in, refusals at intake, an
    # operator's denial code): status, reason and processing details.
    status: Mapped[str | None] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(40))
    details: Mapped[str | None] = mapped_column(Text)
    verify_until: Mapped[datetime | None]
    dirty: Mapped[bool] = mapped_column(default=False, index=True)  # its rights request changed: sync it
    # Single-use URL tokens shown in the status object, sealed with the field key ring (they grant access).
    verification_link: Mapped[bytes | None] = mapped_column(LargeBinary)
    results_token: Mapped[bytes | None] = mapped_column(LargeBinary)
    opt_in_subject: Mapped[bytes | None] = mapped_column(LargeBinary)  # an opt-in's user id until done: sealed
    revoked_at: Mapped[datetime | None]
    revoke_reason: Mapped[bytes | None] = mapped_column(LargeBinary)  # the person's words: sealed
    last: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    current: Mapped[str | None] = mapped_column(String(20), index=True)  # last["status"], for the sweep


class Callback(Base):
    """The status-callback outbox: one row per status change, POSTed to the agent's `status_callback` with
    retries; the sweep re-enqueues due rows Redis lost. States: pending -> sending -> delivered | pending
    (backoff) | failed (attempts used up) | superseded (a newer status of the request was queued)."""

    __tablename__ = "drp_callbacks"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    drp_request_id: Mapped[str] = mapped_column(ForeignKey("drp_requests.id"), index=True)
    payload: Mapped[bytes] = mapped_column(LargeBinary)  # sealed: it may carry a results or verification URL
    state: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]
