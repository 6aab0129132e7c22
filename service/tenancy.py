"""Tenants (apps) and their API keys: creation, hashing, lookup and revocation."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, String, func, or_, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from service.db import Base, utcnow

# An app's scopes act on that app's own data only; `admin` implies every one of them.
APP_SCOPES = frozenset({"consent:read", "consent:write", "dsar:submit", "dsar:manage", "incidents:manage", "admin"})
# Company-wide scopes: retention and the store registry span every app's data, so no app's `admin` implies them.
# platform:read reads the stores and the data map; platform:retention manages retention policies and runs.
PLATFORM_SCOPES = frozenset({"platform:read", "platform:retention"})
SCOPES = APP_SCOPES | PLATFORM_SCOPES
# Scopes that no longer exist, with what replaced them (migration 0008 rewrote the keys that held them).
RENAMED = {"retention:manage": "platform:retention"}
# Revocations are announced on this PostgreSQL channel (NOTIFY); each web process listens (service.revocations).
REVOCATION_CHANNEL = "privacy_key_revoked"
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
KEY_PREFIX = "psk"
# A key id is 16 lowercase hex digits; anything else (a NUL byte, non-ASCII) is refused before any query.
_KEY_ID = re.compile(r"[0-9a-f]{16}")


class App(Base):
    __tablename__ = "apps"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(300))
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]  # None: until revoked
    last_used_at: Mapped[datetime | None]  # written at most once a minute per key and process (KeyUsage)
    replaces: Mapped[str | None] = mapped_column(String(32))  # the key id this one rotated out


@dataclass(frozen=True)
class Principal:
    """Who is calling: the app (tenant) and the key, with the key's scopes."""

    app_id: int
    app_slug: str
    key_id: str
    scopes: frozenset[str]
    expires: float | None = None  # Unix time the key stops working (caches must not serve it past then)

    def expired(self, now: float) -> bool:
        return self.expires is not None and self.expires <= now

    def has(self, scope: str) -> bool:
        """Whether the key holds `scope`; `admin` stands for every app scope, never for a platform scope."""
        return scope in self.scopes or ("admin" in self.scopes and scope in APP_SCOPES)


class TenancyError(ValueError):
    pass


def _hash(secret: str) -> str:
    # Keys carry 256 bits of entropy, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


def create_app_tenant(session: Session, slug: str, name: str | None = None) -> App:
    if not SLUG.match(slug):
        raise TenancyError(f"slug: {slug!r} must be 2-63 lowercase letters, digits or dashes")
    if session.scalar(select(App.id).where(App.slug == slug)) is not None:
        raise TenancyError(f"slug: app {slug!r} already exists")
    app = App(slug=slug, name=name or slug)
    session.add(app)
    session.flush()
    return app


def parse_scopes(text: str) -> frozenset[str]:
    scopes = frozenset(s.strip() for s in text.split(",") if s.strip())
    unknown = scopes - SCOPES
    if not scopes or unknown:
        renamed = "".join(f"; {old} is now {RENAMED[old]}" for old in sorted(unknown & RENAMED.keys()))
        raise TenancyError(f"scopes: unknown {sorted(unknown)}; choose from {sorted(SCOPES)}{renamed}")
    return scopes


def create_key(session: Session, slug: str, scopes: frozenset[str], label: str | None = None,
               expires_at: datetime | None = None) -> tuple[ApiKey, str]:
    """Create a key and return it with its secret, which is never stored and cannot be shown again."""
    app = session.scalar(select(App).where(App.slug == slug))
    if app is None:
        raise TenancyError(f"app: no app {slug!r}")
    if expires_at is not None and expires_at <= utcnow():
        raise TenancyError("expires: the expiry must be in the future")
    key_id = secrets.token_hex(8)
    secret = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    row = ApiKey(key_id=key_id, app_id=app.id, secret_hash=_hash(secret),
                 scopes=",".join(sorted(scopes)), label=label, expires_at=expires_at)
    session.add(row)
    session.flush()
    return row, secret


def rotate_key(session: Session, key_id: str, overlap: timedelta) -> tuple[ApiKey, ApiKey, str]:
    """A new key of the same app, scopes and label; the old one keeps working for `overlap` (or until its own
    earlier expiry), so clients can switch without an outage; no overlap revokes it. Returns (old, new, new
    secret). Key caches hold a key for CACHE_TTL_SECONDS (5 s) at most, so an overlap shorter than that may run
    that much longer."""
    old = session.scalar(select(ApiKey).where(ApiKey.key_id == key_id).with_for_update())
    if old is None:
        raise TenancyError(f"key: no key {key_id!r}")
    now = utcnow()
    if old.revoked_at is not None or (old.expires_at is not None and old.expires_at <= now):
        raise TenancyError(f"key: {key_id!r} is revoked or expired; create a new key instead")
    if overlap < timedelta(0):
        raise TenancyError("overlap: must not be negative")
    slug = session.scalar(select(App.slug).where(App.id == old.app_id))
    new, secret = create_key(session, slug or "", frozenset(old.scopes.split(",")), old.label)
    new.replaces = old.key_id
    old.expires_at = min(filter(None, (old.expires_at, now + overlap)))
    if overlap == timedelta(0):
        revoke_key(session, old.key_id)  # no overlap: a revocation, so every process's key cache drops it now
    session.flush()
    return old, new, secret


def list_keys(session: Session, slug: str | None = None) -> list[tuple[ApiKey, str]]:
    """Every key (of one app, or all) with its app's slug: ids, labels, scopes and dates, never a secret."""
    stmt = select(ApiKey, App.slug).join(App, App.id == ApiKey.app_id).order_by(App.slug, ApiKey.created_at)
    return [(k, s) for k, s in session.execute(stmt if slug is None else stmt.where(App.slug == slug)).all()]


def touch_keys(session: Session, key_ids: list[str], now: datetime) -> None:
    """Record that these keys were used: one UPDATE, skipping keys written in the last minute by any process."""
    session.execute(update(ApiKey).where(ApiKey.key_id.in_(key_ids),
                                         or_(ApiKey.last_used_at.is_(None),
                                             ApiKey.last_used_at < now - timedelta(minutes=1)))
                    .values(last_used_at=now))


def revoke_key(session: Session, key_id: str) -> ApiKey:
    """Revoke a key. On PostgreSQL the revocation is announced to every web process when the caller commits, so
    their key caches drop it at once (service.revocations); SQLite's caches see the revoked count change."""
    row = session.scalar(select(ApiKey).where(ApiKey.key_id == key_id))
    if row is None:
        raise TenancyError(f"key: no key {key_id!r}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    session.flush()
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_notify(REVOCATION_CHANNEL, row.key_id)))  # delivered at commit
    return row


def authenticate(session: Session, secret: str) -> Principal | None:
    """The principal for a presented key, or None for a malformed, unknown, revoked or expired key."""
    parts = secret.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not _KEY_ID.fullmatch(parts[1]):
        return None
    row = session.execute(
        select(ApiKey.secret_hash, ApiKey.scopes, ApiKey.revoked_at, ApiKey.expires_at, App.id, App.slug)
        .join(App, App.id == ApiKey.app_id)
        .where(ApiKey.key_id == parts[1])
    ).first()
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.secret_hash, _hash(secret)):
        return None
    principal = Principal(app_id=row.id, app_slug=row.slug, key_id=parts[1], scopes=frozenset(row.scopes.split(",")),
                          expires=None if row.expires_at is None else row.expires_at.timestamp())
    return None if principal.expired(utcnow().timestamp()) else principal
