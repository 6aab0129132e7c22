"""Seed a ledger fast: valid chains built as the write path builds them (content hash, signed receipt, one audit
entry per event), inserted in bulk, for tests that need more events than posting them one by one allows."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import insert, select

from consent.ledger import content_hash
from consent.models import ConsentEvent, Policy
from consent.receipts import receipt_claims
from consent.views import PolicyView, VersionRow
from service.audit import AuditEvent
from service.db import utcnow
from service.ids import uuid7

CHUNK = 5000


def seed_chains(app: Flask, slug: str, policy_key: str, subjects: range, length: Any = lambda n: 1 + n % 3) -> int:
    """Chains of `length(n)` events for subjects "seed-<n>" of the app `slug`'s policy; returns the event count."""
    from service.tenancy import App

    keys, settings, db = app.extensions["keys"], app.config["SETTINGS"], app.extensions["db"]
    with db.sessions() as session:
        app_id = session.scalar(select(App.id).where(App.slug == slug))
        orm_policy = session.scalars(select(Policy).where(Policy.app_id == app_id, Policy.key == policy_key)).one()
        policy = PolicyView.of(orm_policy)
        v = orm_policy.versions[-1]
        version = VersionRow(v.id, v.version, v.effective_at, v.url, v.sha256)
    events: list[dict[str, Any]] = []
    audits: list[dict[str, Any]] = []
    total = 0
    for n in subjects:
        subject = keys.pseudonyms.subject(app_id, f"seed-{n}")
        prev = None
        for seq in range(1, length(n) + 1):
            event = ConsentEvent(
                id=uuid7(), app_id=app_id, policy_id=policy.id, version_id=version.id, subject=subject, seq=seq,
                kind="consent", purposes={p.key: p.required or (n + seq) % 2 == 0 for p in policy.purposes},
                gpc=False, channel="web", locale="en-GB", evidence=None, created_at=utcnow(),
                prev_hash=prev.hash if prev else None)
            event.hash = content_hash(event)
            event.receipt = keys.signer.sign(receipt_claims(
                event=event, record_hash=event.hash, policy=policy, version=version, app_slug=slug,
                settings=settings, gpc_denied=[]))
            events.append({c.key: getattr(event, c.key) for c in ConsentEvent.__table__.columns})
            audits.append({"at": event.created_at, "app_id": app_id, "actor": "seed", "action": "consent.recorded",
                           "resource_type": "consent_event", "resource_id": event.id,
                           "details": {"policy": policy.key, "version": version.version, "gpc": False}})
            prev = event
        if len(events) >= CHUNK:
            total += _insert(db, events, audits)
    return total + _insert(db, events, audits)


def _insert(db: Any, events: list[dict[str, Any]], audits: list[dict[str, Any]]) -> int:
    count = len(events)
    if count:
        with db.engine.begin() as conn:
            conn.execute(insert(ConsentEvent.__table__), events)
            conn.execute(insert(AuditEvent.__table__), audits)
    events.clear()
    audits.clear()
    return count
