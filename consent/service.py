"""Consent logic, callable without Flask: policies, versions, recording, withdrawal, status and history."""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, literal, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from consent.ledger import content_hash
from consent.models import ConsentEvent, Policy, PolicyVersion, Purpose
from consent.receipts import receipt_claims
from service import audit
from service.audit import AuditEvent
from service.config import Settings
from service.crypto import KeyMaterial
from service.db import RawConnection, compact_json, utcnow
from service.errors import Conflict, Invalid, NotFound
from service.ids import uuid7
from service.tenancy import Principal

CHAIN_RETRIES = 20


@dataclass(frozen=True)
class Context:
    """What a consent operation needs besides the session: the caller, the keys and the settings."""

    principal: Principal
    keys: KeyMaterial
    settings: Settings

    @property
    def actor(self) -> str:
        return f"key:{self.principal.key_id}"

    def pseudonym(self, subject_id: str) -> str:
        return self.keys.pseudonyms.subject(self.principal.app_id, subject_id)


# --- policies -------------------------------------------------------------------------------------------

def get_policy(session: Session, app_id: int, key: str) -> Policy:
    policy = session.scalar(select(Policy).where(Policy.app_id == app_id, Policy.key == key))
    if policy is None:
        raise NotFound(f"no policy {key!r}")
    return policy


def list_policies(session: Session, app_id: int) -> list[Policy]:
    return list(session.scalars(select(Policy).where(Policy.app_id == app_id).order_by(Policy.key)))


def create_policy(session: Session, ctx: Context, data: dict[str, Any]) -> Policy:
    app_id = ctx.principal.app_id
    if session.scalar(select(Policy.id).where(Policy.app_id == app_id, Policy.key == data["key"])):
        raise Conflict(f"policy {data['key']!r} already exists", errors={"key": ["already exists"]})
    keys = [p["key"] for p in data["purposes"]]
    if len(set(keys)) != len(keys):
        raise Invalid("purpose keys must be unique", errors={"purposes": ["duplicate purpose key"]})
    for i, p in enumerate(data["purposes"]):
        if p["required"] and p["honors_gpc"]:
            raise Invalid("a required purpose cannot honour GPC: it could never be denied",
                          errors={"purposes": {str(i): {"honors_gpc": ["not allowed on a required purpose"]}}})
    policy = Policy(app_id=app_id, key=data["key"], title=data["title"],
                    purposes=[Purpose(**p) for p in data["purposes"]], versions=[])
    session.add(policy)
    session.flush()
    audit.record(session, app_id=app_id, actor=ctx.actor, action="policy.created", resource_type="policy",
                 resource_id=str(policy.id), details={"key": policy.key, "purposes": keys})
    return policy


def add_version(session: Session, ctx: Context, policy_key: str, data: dict[str, Any]) -> PolicyVersion:
    policy = get_policy(session, ctx.principal.app_id, policy_key)
    if any(v.version == data["version"] for v in policy.versions):
        raise Conflict(f"version {data['version']!r} already exists", errors={"version": ["already exists"]})
    effective_at = data.get("effective_at") or utcnow()
    if policy.versions and effective_at < policy.versions[-1].effective_at:
        raise Invalid("versions must take effect in order",
                      errors={"effective_at": [f"before the latest version "
                                               f"({policy.versions[-1].effective_at.isoformat()})"]})
    text = data.get("text")
    if text is not None:
        digest = hashlib.sha256(text.encode()).hexdigest()
        if data.get("sha256") and data["sha256"] != digest:
            raise Invalid("sha256 does not match the text", errors={"sha256": ["does not match the text"]})
    else:
        digest = data["sha256"]
    version = PolicyVersion(policy_id=policy.id, version=data["version"], effective_at=effective_at,
                            text=text, url=data.get("url"), sha256=digest, material=data["material"])
    session.add(version)
    session.flush()
    audit.record(session, app_id=ctx.principal.app_id, actor=ctx.actor, action="policy.version_created",
                 resource_type="policy_version", resource_id=str(version.id),
                 details={"policy": policy.key, "version": version.version, "material": version.material,
                          "effective_at": effective_at.isoformat()})
    return version


def current_version(versions: list[PolicyVersion] | tuple[Any, ...], now: datetime) -> Any | None:
    """The latest version in effect at `now` (versions are ordered by effective time)."""
    effective = [v for v in versions if v.effective_at <= now]
    return effective[-1] if effective else None


# --- status (the hot path) ------------------------------------------------------------------------------

@dataclass(frozen=True)
class VersionView:
    id: int
    version: str
    effective_at: datetime
    material: bool


@dataclass(frozen=True)
class PurposeView:
    key: str
    description: str
    required: bool
    honors_gpc: bool
    lawful_basis: str
    retention: str | None
    pii_categories: tuple[str, ...]
    third_party: str | None


@dataclass(frozen=True)
class PolicyView:
    """A policy as the consent paths need it, cached between requests.

    Purposes never change once a policy exists; versions do, so writes look up the current version afresh.
    """

    id: int
    key: str
    purposes: tuple[PurposeView, ...]
    versions: tuple[VersionView, ...]

    @property
    def required(self) -> frozenset[str]:
        return frozenset(p.key for p in self.purposes if p.required)

    @classmethod
    def of(cls, policy: Policy) -> "PolicyView":
        return cls(
            id=policy.id, key=policy.key,
            purposes=tuple(PurposeView(p.key, p.description, p.required, p.honors_gpc, p.lawful_basis, p.retention,
                                       tuple(p.pii_categories), p.third_party) for p in policy.purposes),
            versions=tuple(VersionView(v.id, v.version, v.effective_at, v.material) for v in policy.versions),
        )


class PolicyCache:
    """Per-process cache of policy views with a short TTL; writes in this process invalidate at once.

    `sessions` opens a session on a miss when the caller has none: the hot paths then create no session at all.
    """

    def __init__(self, ttl: float, sessions: Callable[[], Session] | None = None) -> None:
        self.ttl = ttl
        self.sessions = sessions
        self._entries: dict[tuple[int, str], tuple[float, PolicyView]] = {}

    def get(self, session: Session | None, app_id: int, key: str) -> PolicyView:
        hit = self._entries.get((app_id, key))
        if hit and hit[0] > time.monotonic():
            return hit[1]
        if session is None:
            if self.sessions is None:
                raise TypeError("PolicyCache.get needs a session or a session factory")
            with self.sessions() as own:
                return self.get(own, app_id, key)
        view = PolicyView.of(get_policy(session, app_id, key))
        if self.ttl > 0:
            self._entries[(app_id, key)] = (time.monotonic() + self.ttl, view)
        return view

    def invalidate(self, app_id: int, key: str) -> None:
        self._entries.pop((app_id, key), None)

    def clear(self) -> None:
        self._entries.clear()


# Built once: the hot path then only binds parameters to an already-compiled statement.
_LATEST_EVENT = (
    select(ConsentEvent.version_id, ConsentEvent.kind, ConsentEvent.purposes)
    .where(ConsentEvent.policy_id == bindparam("policy_id"), ConsentEvent.subject == bindparam("subject"))
    .order_by(ConsentEvent.seq.desc())
    .limit(1)
)


@dataclass(frozen=True)
class LatestEvent:
    version_id: int
    kind: str
    purposes: dict[str, bool]


def _latest_event(session: Session | None, raw: RawConnection | None, policy_id: int,
                  subject: str) -> LatestEvent | None:
    """The subject's latest event for the policy: through `raw` (autocommit, no transaction) on the hot path."""
    params = {"policy_id": policy_id, "subject": subject}
    if raw is not None:
        row = raw.first(_LATEST_EVENT, params)
    elif session is not None:
        row = session.execute(_LATEST_EVENT, params).first()
    else:
        raise TypeError("status needs a session or a raw connection")
    if row is None:
        return None
    purposes = json.loads(row[2]) if isinstance(row[2], str | bytes) else row[2]
    return LatestEvent(row[0], row[1], purposes)


def status(session: Session | None, ctx: Context, cache: PolicyCache, subject_id: str, policy_key: str,
           now: datetime | None = None, reader: RawConnection | None = None) -> dict[str, Any]:
    """Does this subject need to (re)consent to the policy's current version, and why.

    `reader` (autocommit, outside any transaction) serves the one query of the hot path; default: the session.
    Without a session, policy metadata comes from the cache (which opens its own session on a miss).
    """
    view = cache.get(session, ctx.principal.app_id, policy_key)
    now = now or utcnow()
    current = current_version(view.versions, now)
    if current is None:
        raise Conflict(f"policy {policy_key!r} has no version in effect yet")
    last = _latest_event(session, reader, view.id, ctx.pseudonym(subject_id))
    result: dict[str, Any] = {"consent_required": False, "reason": None, "current_version": current.version,
                              "consented_version": None, "purposes": {}}
    if last is None:
        result.update(consent_required=True, reason="no_consent")
        return result
    consented = next(v for v in view.versions if v.id == last.version_id)
    result["consented_version"] = consented.version
    result["purposes"] = last.purposes
    withdrawn_required = any(not last.purposes.get(key, False) for key in view.required)
    if last.kind == "withdrawal" and (withdrawn_required or not any(last.purposes.values())):
        result.update(consent_required=True, reason="withdrawn")
    elif any(v.material and (consented.effective_at, consented.id) < (v.effective_at, v.id)
             for v in view.versions if v.effective_at <= now):
        result.update(consent_required=True, reason="new_version")
    return result


# --- recording and withdrawal ---------------------------------------------------------------------------

def _lock_chain(session: Session, subject: str) -> None:
    """Serialise writers of one subject's chain (only theirs) until commit.

    PostgreSQL gets a transaction-scoped advisory lock on the pseudonym; SQLite serialises all writers itself,
    and the unique (subject, seq) constraint with a retry covers the remaining race.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:s, 0))"), {"s": subject})


_CHAIN_TAIL = (select(ConsentEvent.seq, ConsentEvent.hash).where(ConsentEvent.subject == bindparam("subject"))
               .order_by(ConsentEvent.seq.desc()).limit(1))
_EVENT_COLUMNS = tuple(ConsentEvent.__table__.columns)

_CURRENT_VERSION = (
    select(PolicyVersion)
    .where(PolicyVersion.policy_id == bindparam("policy_id"), PolicyVersion.effective_at <= bindparam("now"))
    .order_by(PolicyVersion.effective_at.desc(), PolicyVersion.id.desc())
    .limit(1)
)


@dataclass(frozen=True)
class VersionRow:
    """The policy version a consent is recorded against, as the receipt needs it."""

    id: int
    version: str
    effective_at: datetime
    url: str | None
    sha256: str


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


def _new_event(ctx: Context, policy: PolicyView, version: VersionRow, subject: str, tail: tuple[int, str] | None,
               kind: str, purposes: dict[str, bool], *, gpc: bool, gpc_denied: list[str], channel: str,
               locale: str | None, evidence: dict[str, Any] | None) -> ConsentEvent:
    """The next event of the subject's chain after `tail` (seq, hash), hashed and with its signed receipt."""
    event_id = uuid7()  # time-ordered: the primary key and the audit index grow at their right edge
    event = ConsentEvent(
        id=event_id, app_id=ctx.principal.app_id, policy_id=policy.id, version_id=version.id,
        subject=subject, seq=tail[0] + 1 if tail else 1, kind=kind, purposes=purposes, gpc=gpc,
        channel=channel, locale=locale, created_at=utcnow(), prev_hash=tail[1] if tail else None,
        evidence=None if evidence is None else ctx.keys.fields.encrypt(
            json.dumps(evidence, sort_keys=True).encode(), f"consent_event:{event_id}:evidence"),
    )
    event.hash = content_hash(event)
    event.receipt = ctx.keys.signer.sign(receipt_claims(
        event=event, record_hash=event.hash, policy=policy, version=version,
        app_slug=ctx.principal.app_slug, settings=ctx.settings, gpc_denied=gpc_denied))
    return event


def _audit_details(policy: PolicyView, version: VersionRow, gpc: bool) -> dict[str, Any]:
    return {"policy": policy.key, "version": version.version, "gpc": gpc}


def _action(kind: str) -> str:
    return f"consent.{'recorded' if kind == 'consent' else 'withdrawn'}"


def _append_unlocked(raw: RawConnection, ctx: Context, policy: PolicyView, version: VersionRow, subject: str,
                     tail: tuple[int, str] | None, kind: str, **fields: Any) -> ConsentEvent | None:
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


def _append(session: Session, ctx: Context, policy: PolicyView, version: VersionRow, subject: str,
            kind: str, purposes: dict[str, bool], *, raw: RawConnection | None = None,
            tail: tuple[int, str] | None = None, **fields: Any) -> ConsentEvent:
    """Append an event to the subject's chain and commit.

    With `raw` (PostgreSQL) and the tail read with the version, one unlocked statement does it; on a collision,
    or without `raw`, the chain is locked, the tail re-read and the insert retried.
    """
    if raw is not None:
        event = _append_unlocked(raw, ctx, policy, version, subject, tail, kind, purposes=purposes, **fields)
        if event is not None:
            return event
    for attempt in range(CHAIN_RETRIES):
        _lock_chain(session, subject)
        row = session.execute(_CHAIN_TAIL, {"subject": subject}).first()
        event = _new_event(ctx, policy, version, subject, (row.seq, row.hash) if row else None, kind,
                           purposes=purposes, **fields)
        try:
            # A Core insert: the ORM unit of work costs more than the rest of the request on this write path.
            session.execute(insert(ConsentEvent.__table__), [{c.key: getattr(event, c.key) for c in _EVENT_COLUMNS}])
            audit.record(session, app_id=ctx.principal.app_id, actor=ctx.actor, action=_action(kind),
                         resource_type="consent_event", resource_id=event.id,
                         details=_audit_details(policy, version, fields["gpc"]))
            session.commit()
            return event
        except IntegrityError:
            session.rollback()
            if attempt == CHAIN_RETRIES - 1:
                raise
            time.sleep(random.uniform(0, 0.005 * (attempt + 1)))  # noqa: S311 - jitter, not secrecy
    raise AssertionError("unreachable")


def _version_row(version: PolicyVersion) -> VersionRow:
    return VersionRow(version.id, version.version, version.effective_at, version.url, version.sha256)


def record_consent(session: Session, ctx: Context, data: dict[str, Any], gpc_header: bool = False,
                   cache: PolicyCache | None = None, raw: RawConnection | None = None) -> ConsentEvent:
    """Record consent to the current version. With `raw` on PostgreSQL: one read and one write round trip."""
    policy = (cache or PolicyCache(0)).get(session, ctx.principal.app_id, data["policy"])
    subject = ctx.pseudonym(data["subject_id"])
    # Always the current version from the database: a cached one could accept consent to a superseded text.
    params = {"policy_id": policy.id, "now": utcnow()}
    current: VersionRow | None
    tail = None
    if raw is not None and raw.dialect.name == "postgresql":
        row = raw.first(_CURRENT_AND_TAIL, {**params, "subject": subject})
        current = VersionRow(*row[:5]) if row else None
        tail = (row[5], row[6]) if row and row[5] is not None else None
    else:
        raw = None
        orm_version = session.scalars(_CURRENT_VERSION, params).first()
        current = _version_row(orm_version) if orm_version else None
    if current is None:
        raise Conflict(f"policy {policy.key!r} has no version in effect yet")
    if data["version"] != current.version:
        raise Conflict(f"version {data['version']!r} is not the current version of {policy.key!r}",
                       detail={"current_version": current.version})
    answers: dict[str, bool] = data["purposes"]
    known = {p.key: p for p in policy.purposes}
    errors: dict[str, list[str]] = {}
    for key in answers:
        if key not in known:
            errors[key] = ["the policy has no such purpose"]
    for key, purpose in known.items():
        if purpose.required and not answers.get(key, False):
            errors[key] = ["required purpose: consent cannot be refused or left out"]
    if errors:
        raise Invalid("invalid purposes", errors={"purposes": errors})
    gpc = bool(data.get("gpc")) or gpc_header
    state = {key: bool(answers.get(key, False)) for key in known}
    gpc_denied = []
    if gpc:
        # A Global Privacy Control signal is a valid opt-out: it wins over the app's toggles.
        for key, purpose in known.items():
            if purpose.honors_gpc:
                state[key] = False
                gpc_denied.append(key)
    evidence = {k: str(v) for k, v in (data.get("evidence") or {}).items() if v is not None} or None
    return _append(session, ctx, policy, current, subject, "consent", state, raw=raw, tail=tail,
                   gpc=gpc, gpc_denied=gpc_denied, channel=data["channel"], locale=data.get("locale"),
                   evidence=evidence)


def withdraw(session: Session, ctx: Context, data: dict[str, Any],
             cache: PolicyCache | None = None) -> ConsentEvent:
    policy = (cache or PolicyCache(0)).get(session, ctx.principal.app_id, data["policy"])
    subject = ctx.pseudonym(data["subject_id"])
    last = session.scalar(
        select(ConsentEvent).where(ConsentEvent.policy_id == policy.id, ConsentEvent.subject == subject)
        .order_by(ConsentEvent.seq.desc()).limit(1))
    if last is None:
        raise NotFound("no consent recorded for this subject and policy")
    keys = data.get("purposes")
    if keys is None:
        keys = list(last.purposes)
    unknown = [k for k in keys if k not in last.purposes]
    if unknown:
        raise Invalid("invalid purposes", errors={"purposes": {k: ["the policy has no such purpose"]
                                                                for k in unknown}})
    state = {**last.purposes, **{k: False for k in keys}}
    version = _version_row(session.get(PolicyVersion, last.version_id))
    return _append(session, ctx, policy, version, subject, "withdrawal", state, gpc=False, gpc_denied=[],
                   channel=data.get("channel") or last.channel, locale=last.locale, evidence=None)


# --- history --------------------------------------------------------------------------------------------

def history(session: Session, ctx: Context, subject_id: str, policy_key: str | None,
            offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """The subject's events, newest first, with evidence decrypted for the app that supplied it."""
    stmt = select(ConsentEvent, Policy.key, PolicyVersion.version).join(
        Policy, Policy.id == ConsentEvent.policy_id).join(PolicyVersion, PolicyVersion.id == ConsentEvent.version_id)
    stmt = stmt.where(ConsentEvent.subject == ctx.pseudonym(subject_id),
                      ConsentEvent.app_id == ctx.principal.app_id)
    if policy_key is not None:
        stmt = stmt.where(Policy.key == policy_key)
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    if not total:
        raise NotFound("no consent recorded for this subject")
    rows = session.execute(stmt.order_by(ConsentEvent.seq.desc()).offset(offset).limit(limit)).all()
    items = []
    for event, key, version in rows:
        evidence = None
        if event.evidence is not None:
            evidence = json.loads(ctx.keys.fields.decrypt(event.evidence, f"consent_event:{event.id}:evidence"))
        items.append({"id": event.id, "kind": event.kind, "policy": key, "version": version,
                      "purposes": event.purposes, "gpc": event.gpc, "channel": event.channel,
                      "locale": event.locale, "evidence": evidence, "created_at": event.created_at,
                      "receipt": event.receipt})
    return items, total


# --- for rights requests ----------------------------------------------------------------------------------

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
