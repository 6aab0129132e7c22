"""The console's tables: operators (named accounts with a role, limited to some apps or not), their server-side
sessions (so one can end them all) and their single-use set-up links."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, utcnow

ROLES = ("viewer", "agent", "retention", "admin")


class Operator(Base):
    """A member of the privacy team. The TOTP secret is encrypted with the field key, bound to the row."""

    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # lower-cased; never written to the audit trail
    role: Mapped[str] = mapped_column(String(20))
    app_ids: Mapped[list[int] | None] = mapped_column(JSON)  # None: every app
    password_hash: Mapped[str | None] = mapped_column(String(200))
    totp_secret: Mapped[bytes | None] = mapped_column(LargeBinary)  # set at enrolment, in force once confirmed
    totp_enabled_at: Mapped[datetime | None]
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)  # a code is accepted once (no replay)
    failed_attempts: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    setup_completed_at: Mapped[datetime | None]  # no sign-in before set-up is complete
    last_sign_in_at: Mapped[datetime | None]
    disabled_at: Mapped[datetime | None]
    # "<issuer>|<sub>" of an operator who signs in through OpenID Connect (console.sso); None: a local account.
    sso_subject: Mapped[str | None] = mapped_column(String(300), unique=True)


class OperatorSession(Base):
    """One signed-in browser: the cookie holds a random token, the table its hash. Ending the rows of an
    operator signs them out everywhere."""

    __tablename__ = "operator_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the cookie's token
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]


class SetupToken(Base):
    """A one-time set-up link (24 hours): choose a password, enrol a second factor."""

    __tablename__ = "operator_setup_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
