"""A subject's consent records as they are read back (the history API, rights-request exports) and erased."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session

from consent.context import Context
from consent.evidence import unseal
from consent.models import ConsentEvent, Policy, PolicyVersion
from service import audit
from service.crypto import KeyMaterial
from service.errors import NotFound


def history(session: Session, ctx: Context, subject_id: str, policy_key: str | None,
            offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """The subject's events, newest first, with evidence decrypted for the app that supplied it."""
    stmt = _events(ctx.principal.app_id, ctx.pseudonym(subject_id), policy_key)
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    if not total:
        raise NotFound("no consent recorded for this subject")
    rows = session.execute(stmt.order_by(ConsentEvent.seq.desc()).offset(offset).limit(limit)).all()
    return [_item(ctx.keys, *row) for row in rows], total


def subject_events(session: Session, keys: KeyMaterial, app_id: int, subject_id: str) -> list[dict[str, Any]]:
    """Every event of the subject in the app, oldest first, as `history` shows them (none: an empty list)."""
    stmt = _events(app_id, keys.pseudonyms.subject(app_id, subject_id), None)
    return [_item(keys, *row) for row in session.execute(stmt.order_by(ConsentEvent.seq))]


def _events(app_id: int, subject: str, policy_key: str | None) -> Select[Any]:
    stmt = select(ConsentEvent, Policy.key, PolicyVersion.version).join(
        Policy, Policy.id == ConsentEvent.policy_id).join(PolicyVersion, PolicyVersion.id == ConsentEvent.version_id)
    stmt = stmt.where(ConsentEvent.subject == subject, ConsentEvent.app_id == app_id)
    if policy_key is not None:
        stmt = stmt.where(Policy.key == policy_key)
    return stmt


def _item(keys: KeyMaterial, event: ConsentEvent, policy_key: str, version: str) -> dict[str, Any]:
    return {"id": event.id, "kind": event.kind, "policy": policy_key, "version": version,
            "purposes": event.purposes, "gpc": event.gpc, "channel": event.channel, "locale": event.locale,
            "evidence": unseal(keys, event.id, event.evidence), "created_at": event.created_at,
            "receipt": event.receipt}


def latest_locales(session: Session, app_id: int, subjects: Collection[str]) -> dict[str, str]:
    """The language each subject (by pseudonym) last gave consent in, where one was recorded: what the person reads
    the app in, for messages the service sends them unasked (an incident notice)."""
    found: dict[str, tuple[int, str]] = {}
    if not subjects:
        return {}
    stmt = (select(ConsentEvent.subject, ConsentEvent.seq, ConsentEvent.locale)
            .where(ConsentEvent.app_id == app_id, ConsentEvent.subject.in_(list(subjects)),
                   ConsentEvent.locale.is_not(None)))
    for subject, seq, locale in session.execute(stmt):
        if subject not in found or seq > found[subject][0]:
            found[subject] = (seq, locale)
    return {subject: locale for subject, (_, locale) in found.items()}


def subject_policy_keys(session: Session, app_id: int, subject: str) -> list[str]:
    """Keys of the app's policies the subject (by pseudonym) has consent records for."""
    stmt = (select(Policy.key).join(ConsentEvent, ConsentEvent.policy_id == Policy.id)
            .where(ConsentEvent.app_id == app_id, ConsentEvent.subject == subject).distinct())
    return sorted(session.scalars(stmt))


def erase_subject_chain(session: Session, app_id: int, subject: str, actor: str,
                        keep_policies: Collection[str] = ()) -> int:
    """Delete a subject's consent events (right to erasure) except those of `keep_policies` (kept as proof).

    Each removed event is audited as `consent.erased` with its place in the chain (seq, hash, previous hash: no
    personal data), so the ledger check tells an erasure from tampering and still verifies the links of a chain
    whose kept events now have gaps between them. Returns the number of events removed.
    """
    stmt = (select(ConsentEvent.id, ConsentEvent.seq, ConsentEvent.hash, ConsentEvent.prev_hash)
            .join(Policy, Policy.id == ConsentEvent.policy_id)
            .where(ConsentEvent.app_id == app_id, ConsentEvent.subject == subject))
    if keep_policies:
        stmt = stmt.where(Policy.key.not_in(list(keep_policies)))
    rows = list(session.execute(stmt))
    for event_id, seq, digest, prev in rows:
        audit.record(session, app_id=app_id, actor=actor, action="consent.erased", resource_type="consent_event",
                     resource_id=event_id, details={"seq": seq, "hash": digest, "prev_hash": prev})
    if rows:
        session.execute(delete(ConsentEvent).where(ConsentEvent.id.in_([r[0] for r in rows])))
    return len(rows)
