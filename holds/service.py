"""Legal holds, callable without Flask: create, release, and the holds in force that rights-request erasure
and retention runs consult (`holds_for_subject`, `active_holds`).

The subject's identity is kept encrypted (it is personal data) and matched by keyed pseudonyms. Functions take
the caller's session and never commit.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from holds.models import LegalHold
from service import audit
from service.crypto import KeyMaterial
from service.db import utcnow
from service.errors import Conflict, Invalid, NotFound

Identity = dict[str, str]


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


def list_holds(session: Session, app_id: int, *, offset: int, limit: int) -> tuple[list[LegalHold], int]:
    """The app's holds, newest first, released ones included; and how many there are."""
    mine = LegalHold.app_id == app_id
    total = session.scalar(select(func.count()).where(mine)) or 0
    rows = session.scalars(select(LegalHold).where(mine).order_by(LegalHold.created_at.desc(), LegalHold.id)
                           .offset(offset).limit(limit))
    return list(rows), total


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
