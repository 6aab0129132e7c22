"""Legal holds: what must not be erased or destroyed (a subject, a store, a category, or a combination).

Rights-request erasure and retention runs both consult `active_holds`; the subject's identity is kept
encrypted (it is personal data) and matched by keyed pseudonyms.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, LargeBinary, String, Text, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from service import audit
from service.crypto import KeyMaterial
from service.db import Base, utcnow
from service.errors import Conflict, Invalid, NotFound

Identity = dict[str, str]


class LegalHold(Base):
    __tablename__ = "legal_holds"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    subject_keys: Mapped[list[str] | None] = mapped_column(JSON)
    subject: Mapped[bytes | None] = mapped_column(LargeBinary)
    store: Mapped[str | None] = mapped_column(String(100))
    category: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100))
    released_at: Mapped[datetime | None]
    released_by: Mapped[str | None] = mapped_column(String(100))
    release_reason: Mapped[str | None] = mapped_column(Text)


@dataclass(frozen=True)
class ActiveHold:
    id: str
    subject: Identity | None
    store: str | None
    category: str | None
    reason: str

    def applies_to(self, store: str, category: str | None = None) -> bool:
        """Does the hold reach this store (and category, when given)?"""
        return (self.store in (None, store)) and (category is None or self.category in (None, category))


def identity_keys(keys: KeyMaterial, app_id: int, identity: Identity) -> list[str]:
    """Keyed pseudonyms of each `type:value` of an identity, for matching without decrypting."""
    return sorted(keys.pseudonyms.subject(app_id, f"{kind}:{value}") for kind, value in identity.items() if value)


def create_hold(session: Session, keys: KeyMaterial, *, app_id: int, actor: str, subject: Identity | None,
                store: str | None, category: str | None, reason: str, until: datetime | None) -> LegalHold:
    subject = {k: v for k, v in (subject or {}).items() if v} or None
    if subject is None and store is None and category is None:
        raise Invalid("a hold needs a subject, a store or a category",
                      errors={"subject": ["give at least one of subject, store, category"]})
    if until is not None and until <= utcnow():
        raise Invalid("until must be in the future", errors={"until": ["must be in the future"]})
    hold_id = str(uuid.uuid4())
    hold = LegalHold(
        id=hold_id, app_id=app_id, store=store, category=category, reason=reason, until=until, created_by=actor,
        subject_keys=identity_keys(keys, app_id, subject) if subject else None,
        subject=keys.fields.encrypt(json.dumps(subject, sort_keys=True).encode(), f"legal_hold:{hold_id}")
        if subject else None,
    )
    session.add(hold)
    audit.record(session, app_id=app_id, actor=actor, action="hold.created", resource_type="legal_hold",
                 resource_id=hold_id, details={"store": store, "category": category, "subject": subject is not None,
                                               "until": until.isoformat() if until else None})
    return hold


def get_hold(session: Session, app_id: int, hold_id: str) -> LegalHold:
    hold = session.get(LegalHold, hold_id)
    if hold is None or hold.app_id != app_id:
        raise NotFound(f"no hold {hold_id!r}")
    return hold


def release_hold(session: Session, *, app_id: int, hold_id: str, actor: str, reason: str) -> LegalHold:
    hold = get_hold(session, app_id, hold_id)
    if hold.released_at is not None:
        raise Conflict("the hold is already released")
    hold.released_at, hold.released_by, hold.release_reason = utcnow(), actor, reason
    audit.record(session, app_id=app_id, actor=actor, action="hold.released", resource_type="legal_hold",
                 resource_id=hold_id, details={})
    return hold


def _active(now: datetime) -> Any:
    return (LegalHold.released_at.is_(None), or_(LegalHold.until.is_(None), LegalHold.until > now))


def hold_subject(keys: KeyMaterial, hold: LegalHold) -> Identity | None:
    if hold.subject is None:
        return None
    return json.loads(keys.fields.decrypt(hold.subject, f"legal_hold:{hold.id}"))


def active_holds(session: Session, keys: KeyMaterial, *, app_id: int | None = None,
                 now: datetime | None = None) -> list[ActiveHold]:
    """Holds in force now; every app's when `app_id` is None (retention runs span the whole company)."""
    stmt = select(LegalHold).where(*_active(now or utcnow()))
    if app_id is not None:
        stmt = stmt.where(LegalHold.app_id == app_id)
    return [ActiveHold(h.id, hold_subject(keys, h), h.store, h.category, h.reason) for h in session.scalars(stmt)]


def holds_for_subject(session: Session, keys: KeyMaterial, *, app_id: int, identity: Identity,
                      now: datetime | None = None) -> list[ActiveHold]:
    """Holds in force that cover this subject: those naming any of its identities, and subject-less ones."""
    mine = set(identity_keys(keys, app_id, identity))
    found = []
    for hold in session.scalars(select(LegalHold).where(LegalHold.app_id == app_id, *_active(now or utcnow()))):
        if hold.subject_keys is None or mine.intersection(hold.subject_keys):
            found.append(ActiveHold(hold.id, hold_subject(keys, hold), hold.store, hold.category, hold.reason))
    return found
