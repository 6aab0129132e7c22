"""The ledger's write path: append an event (hashed, with its signed receipt and one audit entry) to a subject's
chain, durably on its own; and the one read that precedes it."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, literal, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from consent.context import Context
from consent.evidence import seal
from consent.ledger import content_hash
from consent.models import ConsentEvent, PolicyVersion
from consent.receipts import receipt_claims
from consent.views import PolicyView, VersionRow
from service import audit
from service.audit import AuditEvent
from service.db import Database, RawConnection, compact_json, utcnow
from service.ids import uuid7

CHAIN_RETRIES = 20

Tail = tuple[int, str]  # the (seq, hash) of a chain's last event


@dataclass(slots=True)
class NewEvent:
    """An event as the write path builds and inserts it: plain data with ConsentEvent's columns (a transient ORM
    object cost about 50 µs more per consent, for attribute instrumentation the insert never uses)."""

    id: str
    app_id: int
    policy_id: int
    version_id: int
    subject: str
    seq: int
    kind: str
    purposes: dict[str, bool]
    gpc: bool
    channel: str
    locale: str | None
    evidence: bytes | None
    created_at: datetime
    prev_hash: str | None
    hash: str = ""
    receipt: str = ""


_CHAIN_TAIL = (select(ConsentEvent.seq, ConsentEvent.hash).where(ConsentEvent.subject == bindparam("subject"))
               .order_by(ConsentEvent.seq.desc()).limit(1))
_EVENT_COLUMNS = tuple(ConsentEvent.__table__.columns)

_CURRENT_VERSION = (
    select(PolicyVersion)
    .where(PolicyVersion.policy_id == bindparam("policy_id"), PolicyVersion.effective_at <= bindparam("now"))
    .order_by(PolicyVersion.effective_at.desc(), PolicyVersion.id.desc())
    .limit(1)
)

# The write path's one read: the current version and the subject's chain tail, in one round trip.
_CURRENT_AND_TAIL = (
    select(PolicyVersion.id, PolicyVersion.version, PolicyVersion.effective_at, PolicyVersion.url,
           PolicyVersion.sha256, _CHAIN_TAIL.with_only_columns(ConsentEvent.seq).scalar_subquery(),
           _CHAIN_TAIL.with_only_columns(ConsentEvent.hash).scalar_subquery())
    .where(PolicyVersion.policy_id == bindparam("policy_id"), PolicyVersion.effective_at <= bindparam("now"))
    .order_by(PolicyVersion.effective_at.desc(), PolicyVersion.id.desc())
    .limit(1)
)

# The write path's one write: the event and its audit entry in a single statement, atomic without a
# transaction. PostgreSQL only (a data-modifying CTE).
_APPENDED = (insert(ConsentEvent.__table__)
             .values({c.key: bindparam(c.key, type_=c.type) for c in _EVENT_COLUMNS})
             .returning(ConsentEvent.__table__.c.id).cte("appended"))
_AUDIT = AuditEvent.__table__
_INSERT_AUDITED = insert(_AUDIT).from_select(
    ["at", "app_id", "actor", "action", "resource_type", "resource_id", "details"],
    select(bindparam("audit_at", type_=_AUDIT.c.at.type), bindparam("audit_app_id", type_=_AUDIT.c.app_id.type),
           bindparam("actor", type_=_AUDIT.c.actor.type), bindparam("action", type_=_AUDIT.c.action.type),
           literal("consent_event", _AUDIT.c.resource_type.type), _APPENDED.c.id,
           bindparam("details", type_=_AUDIT.c.details.type)).select_from(_APPENDED))


def current_version(session: Session, policy_id: int, now: datetime) -> VersionRow | None:
    """The policy's version in effect at `now`, from the database (a cached one could be superseded)."""
    version = session.scalars(_CURRENT_VERSION, {"policy_id": policy_id, "now": now}).first()
    return VersionRow.of(version) if version else None


def current_version_and_tail(raw: RawConnection, policy_id: int, subject: str,
                             now: datetime) -> tuple[VersionRow | None, Tail | None]:
    """`current_version` and the subject's chain tail in one round trip (PostgreSQL), for `append_and_commit`."""
    row = raw.first(_CURRENT_AND_TAIL, {"policy_id": policy_id, "now": now, "subject": subject})
    if row is None:
        return None, None
    return VersionRow(*row[:5]), (row[5], row[6]) if row[5] is not None else None


def append_and_commit(db: Database, ctx: Context, policy: PolicyView, version: VersionRow, subject: str,
                      kind: str, purposes: dict[str, bool], *, raw: RawConnection | None = None,
                      tail: Tail | None = None, **fields: Any) -> NewEvent:
    """Append an event to the subject's chain and commit it: the ledger's write is durable on its own.

    With `raw` (PostgreSQL) and the tail read with the version, one unlocked statement does it; on a collision,
    or without `raw`, a unit of work of its own locks the chain, re-reads the tail and inserts, retried on a race.
    """
    if raw is not None:
        event = _append_unlocked(raw, ctx, policy, version, subject, tail, kind, purposes=purposes, **fields)
        if event is not None:
            return event
    for attempt in range(CHAIN_RETRIES):
        try:
            with db.session() as session:
                _lock_chain(session, subject)
                row = session.execute(_CHAIN_TAIL, {"subject": subject}).first()
                event = _new_event(ctx, policy, version, subject, (row.seq, row.hash) if row else None, kind,
                                   purposes=purposes, **fields)
                # A Core insert: the ORM unit of work costs more than the rest of the request on this write path.
                session.execute(insert(ConsentEvent.__table__),
                                [{c.key: getattr(event, c.key) for c in _EVENT_COLUMNS}])
                audit.record(session, app_id=ctx.principal.app_id, actor=ctx.actor, action=_action(kind),
                             resource_type="consent_event", resource_id=event.id,
                             details=_audit_details(policy, version, fields["gpc"]))
            return event
        except IntegrityError:
            if attempt == CHAIN_RETRIES - 1:
                raise
            time.sleep(random.uniform(0, 0.005 * (attempt + 1)))  # noqa: S311 - jitter, not secrecy
    raise AssertionError("unreachable")


def _lock_chain(session: Session, subject: str) -> None:
    """Serialise writers of one subject's chain (only theirs) until commit.

    PostgreSQL gets a transaction-scoped advisory lock on the pseudonym; SQLite serialises all writers itself,
    and the unique (subject, seq) constraint with a retry covers the remaining race.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:s, 0))"), {"s": subject})


def _append_unlocked(raw: RawConnection, ctx: Context, policy: PolicyView, version: VersionRow, subject: str,
                     tail: Tail | None, kind: str, **fields: Any) -> NewEvent | None:
    """Append after the tail read without a lock, in one statement; None when a concurrent writer took the slot.

    The unique (subject, seq) constraint makes this safe: an insert whose tail went stale fails instead of
    forking the chain, and the caller then takes the locked path.
    """
    event = _new_event(ctx, policy, version, subject, tail, kind, **fields)
    params = {c.key: getattr(event, c.key) for c in _EVENT_COLUMNS}
    params["purposes"] = compact_json(event.purposes)
    params.update(audit_at=event.created_at, audit_app_id=event.app_id, actor=ctx.actor, action=_action(kind),
                  details=compact_json(_audit_details(policy, version, fields["gpc"])))
    try:
        raw.execute(_INSERT_AUDITED, params)
    except raw.dialect.loaded_dbapi.IntegrityError:
        return None
    return event


def _new_event(ctx: Context, policy: PolicyView, version: VersionRow, subject: str, tail: Tail | None,
               kind: str, purposes: dict[str, bool], *, gpc: bool, gpc_denied: list[str], channel: str,
               locale: str | None, evidence: dict[str, Any] | None) -> NewEvent:
    """The next event of the subject's chain after `tail` (seq, hash), hashed and with its signed receipt."""
    event_id = uuid7()  # time-ordered: the primary key and the audit index grow at their right edge
    event = NewEvent(
        id=event_id, app_id=ctx.principal.app_id, policy_id=policy.id, version_id=version.id,
        subject=subject, seq=tail[0] + 1 if tail else 1, kind=kind, purposes=purposes, gpc=gpc,
        channel=channel, locale=locale, created_at=utcnow(), prev_hash=tail[1] if tail else None,
        evidence=None if evidence is None else seal(ctx.keys, event_id, evidence),
    )
    event.hash = content_hash(event)
    event.receipt = ctx.keys.signer.sign(receipt_claims(
        event=event, record_hash=event.hash, policy=policy, version=version,
        app_slug=ctx.principal.app_slug, settings=ctx.settings, gpc_denied=gpc_denied, acting_as=ctx.actor,
        locations=ctx.locations))
    return event


def _audit_details(policy: PolicyView, version: VersionRow, gpc: bool) -> dict[str, Any]:
    return {"policy": policy.key, "version": version.version, "gpc": gpc}


def _action(kind: str) -> str:
    return f"consent.{'recorded' if kind == 'consent' else 'withdrawn'}"
