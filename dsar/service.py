"""Rights-request logic, callable without Flask: intake, verification, deadlines, operator actions, flags, views.

Execution (the outbox and the jobs) is in dsar.outbox and dsar.jobs; closing a request in dsar.completion; the
periodic pass in dsar.maintenance.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from dsar import notify
from dsar.agents.hook import changed as drp_changed
from dsar.completion import close_if_done
from dsar.config import options
from dsar.deadlines import deadlines
from dsar.fields import seal, subject_of
from dsar.models import CONSENT_TASK, FINAL, MANUAL_TASK, DownloadToken, DsarDispatch, DsarRequest, DsarTask
from dsar.states import tasks_of, transition
from holds.service import create_hold, get_hold, identity_keys, release_hold
from service import audit
from service.db import utcnow
from service.errors import Conflict, DomainError, Forbidden, Gone, Invalid, Locked, NotFound, TooManyRequests
from service.mail.render import LOCALES, default_locale, match_locale
from service.runtime import Runtime
from service.stores.registry import registry_for

MAX_CODE_ATTEMPTS = 5  # wrong codes per request, across resends, before it locks
RESEND_WINDOW = 3600  # seconds: resends are counted per request over the last hour
STORE_TYPES = frozenset({"access", "portability", "erasure"})
FLAG_TYPES = frozenset({"restriction", "objection"})


@dataclass(frozen=True)
class Actor:
    app_id: int
    name: str  # "key:<id>", "cli:...", "system"


# --- intake and verification -----------------------------------------------------------------------------

def _hash_code(rt: Runtime, req: DsarRequest, code: str) -> str:
    # Keyed (HMAC with the pseudonym key): a 6-digit code's plain hash would fall to a million guesses offline.
    return rt.keys.pseudonyms.subject(req.app_id, f"dsar-code\x00{req.id}\x00{code}")


def _send_code(session: Session, rt: Runtime, req: DsarRequest) -> None:
    # The wrong-guess count is the request's, not the code's: a new code does not reset it, or resending would
    # give a guesser five more tries each time.
    ttl = options(rt.settings).code_ttl
    code = f"{secrets.randbelow(10**6):06d}"
    req.code_hash, req.code_expires_at = _hash_code(rt, req, code), utcnow() + ttl
    minutes = int(ttl.total_seconds() // 60)
    notify.send(session, rt, req, "verification_code",
                body=f"Your verification code is {code}. It expires in {minutes} minutes.",
                context={"code": code, "minutes": minutes})


def _check_details(kind: str, details: dict[str, Any] | None) -> None:
    if kind == "consent_withdrawal" and details not in (None, {}, {"scope": "sale_or_sharing"}):
        raise Invalid("a consent withdrawal takes no details but its scope", errors={"details": [
            'omit it (every consent), or give {"scope": "sale_or_sharing"} (an opt-out of sale or sharing)']})
    if kind != "rectification":
        return
    corrections = (details or {}).get("corrections")
    if not isinstance(corrections, dict) or not corrections or not all(
            isinstance(c, str) and isinstance(f, dict) and f for c, f in corrections.items()):
        raise Invalid("a rectification needs the corrections", errors={"details": [
            'give {"corrections": {"<category>": {"<field>": <new value>, ...}, ...}}']})


def request_locale(rt: Runtime, tag: str | None) -> str:
    """The language of a request's emails: `tag` (en, zh_Hans or a BCP 47 tag such as zh-CN) or, when none is
    given, MAIL_DEFAULT_LOCALE. Invalid naming `locale` for a tag of another language or none at all."""
    if tag is None:
        return default_locale(rt.settings.env)
    locale = match_locale(tag)
    if locale is None:
        raise Invalid("unsupported locale", errors={"locale": [f"choose from {list(LOCALES)} or a BCP 47 tag of "
                                                                "those languages (e.g. zh-CN, en-GB)"]})
    return locale


def submit(session: Session, rt: Runtime, actor: Actor, data: dict[str, Any], *, can_verify: bool,
           method: str = "verified by the submitting app (dsar:manage)") -> DsarRequest:
    """Record a request; start it at once when a `dsar:manage` key vouches for the subject (`method` says how, in
    the audit trail), else send a code. Its emails are written in `data["locale"]` (optional:
    MAIL_DEFAULT_LOCALE)."""
    table = deadlines(rt.settings.toml)
    jurisdiction = data["jurisdiction"].upper()
    if jurisdiction not in table:
        raise Invalid("unknown jurisdiction", errors={"jurisdiction": [f"choose from {sorted(table)}"]})
    subject = {k: v for k, v in data["subject"].items() if v}
    if not subject:
        raise Invalid("the subject needs an identity", errors={"subject": ["give user_id, email or phone"]})
    if data.get("verified") and not can_verify:
        raise Forbidden("only a key with dsar:manage may mark a request verified")
    if not data.get("verified") and not data.get("contact_email"):
        raise Invalid("a verification code must be sent somewhere",
                      errors={"contact_email": ["required unless the request is marked verified"]})
    _check_details(data["type"], data.get("details"))
    locale = request_locale(rt, data.get("locale"))
    request_id = str(uuid.uuid4())
    received = utcnow()
    req = DsarRequest(
        id=request_id, app_id=actor.app_id, type=data["type"], status="pending_verification",
        jurisdiction=jurisdiction, subject_keys=identity_keys(rt.keys, actor.app_id, subject),
        subject=seal(rt, request_id, "subject", subject),
        contact=seal(rt, request_id, "contact", data["contact_email"]) if data.get("contact_email") else None,
        details=seal(rt, request_id, "details", data["details"]) if data.get("details") else None,
        received_at=received, due_at=table[jurisdiction].period.after(received), code_attempts=0, locale=locale,
    )
    session.add(req)
    audit.record(session, app_id=actor.app_id, actor=actor.name, action="dsar.received",
                 resource_type="dsar_request", resource_id=request_id,
                 details={"type": req.type, "jurisdiction": jurisdiction, "due_at": req.due_at.isoformat()})
    if data.get("verified"):
        _verified(session, rt, req, actor.name, method)
    else:
        _send_code(session, rt, req)
    return req


def get_request(session: Session, app_id: int, request_id: str, *, lock: bool = False) -> DsarRequest:
    stmt = select(DsarRequest).where(DsarRequest.id == request_id)
    if lock:
        stmt = stmt.with_for_update()
    req = session.scalar(stmt)
    if req is None or req.app_id != app_id:
        raise NotFound(f"no request {request_id!r}")
    return req


def verify(session: Session, rt: Runtime, actor: Actor, request_id: str, code: str) -> DomainError | None:
    """Check the one-time code: None when it matches (the request starts, in the caller's transaction).

    A wrong code is counted (the fifth locks the request) and the error to answer is returned, not raised: the
    caller commits its unit of work first and then answers it, so the count stands. Refusals that change
    nothing (locked, not pending, expired) are raised as usual.
    """
    req = get_request(session, actor.app_id, request_id, lock=True)
    if req.status == "locked":
        raise Locked("too many wrong codes: the request is locked")
    if req.status != "pending_verification":
        raise Conflict(f"the request is {req.status}, not pending verification")
    if req.code_expires_at is None or req.code_expires_at <= utcnow():
        raise Gone("the code has expired: ask for a new one")
    if not hmac.compare_digest(req.code_hash or "", _hash_code(rt, req, code)):
        req.code_attempts += 1
        audit.record(session, app_id=req.app_id, actor=actor.name, action="dsar.verification_failed",
                     resource_type="dsar_request", resource_id=req.id, details={"attempt": req.code_attempts})
        if req.code_attempts >= MAX_CODE_ATTEMPTS:
            req.code_hash = None
            transition(session, req, "locked", actor.name, "too many wrong verification codes")
            return Locked("too many wrong codes: the request is locked")
        return Invalid("wrong code", errors={"code": [f"wrong code; {MAX_CODE_ATTEMPTS - req.code_attempts} "
                                                      "attempts left"]})
    req.code_hash = None
    _verified(session, rt, req, actor.name, "one-time code")
    return None


def resend_code(session: Session, rt: Runtime, actor: Actor, request_id: str) -> DsarRequest:
    """Send a new code; at most `[dsar] code_resends_per_hour` per request in any hour (TooManyRequests with
    the seconds until the next one is allowed)."""
    req = get_request(session, actor.app_id, request_id, lock=True)
    if req.status != "pending_verification":
        raise Conflict(f"the request is {req.status}, not pending verification")
    now = int(utcnow().timestamp())
    recent = [t for t in req.code_resent_at or [] if t > now - RESEND_WINDOW]
    limit = options(rt.settings).code_resends_per_hour
    if len(recent) >= limit:
        wait = (min(recent) + RESEND_WINDOW - now) if recent else RESEND_WINDOW
        raise TooManyRequests(f"a new code was resent {len(recent)} time(s) in the last hour, the most allowed: "
                              f"resend again in {wait} s", detail={"retry_after": wait},
                              headers={"Retry-After": str(wait)})
    req.code_resent_at = [*recent, now]
    _send_code(session, rt, req)
    audit.record(session, app_id=req.app_id, actor=actor.name, action="dsar.code_sent",
                 resource_type="dsar_request", resource_id=req.id)
    return req


def _plan(rt: Runtime, req: DsarRequest) -> list[tuple[str, str | None]]:
    """The request's tasks: (store or pseudo-store, note for an operator)."""
    registry = registry_for(rt)
    if req.type in STORE_TYPES:
        return [(s.name, None) for s in registry.stores()]
    if req.type == "consent_withdrawal":
        return [(CONSENT_TASK, None)]
    if req.type == "rectification":
        from dsar.fields import details_of

        wanted = set(details_of(rt, req)["corrections"])
        holding = [s for s in registry.stores() if wanted & set(s.describe().categories)]
        tasks: list[tuple[str, str | None]] = [(s.name, None) for s in holding if callable(getattr(s, "rectify",
                                                                                                   None))]
        manual = sorted(s.name for s in holding if not callable(getattr(s, "rectify", None)))
        unknown = sorted(wanted - {c for s in registry.stores() for c in s.describe().categories})
        if manual or unknown or not tasks:
            where = ", ".join(manual) or "no store supports updates"
            tasks.append((MANUAL_TASK, f"apply the corrections by hand in: {where}"
                          + (f"; categories no store declares: {', '.join(unknown)}" if unknown else "")))
        return tasks
    if req.type == "restriction":
        return [(MANUAL_TASK, "processing restricted (legal hold on the subject and a flag apps look up): "
                 "complete once every processing system honours it; lift it when the restriction ends")]
    return [(MANUAL_TASK, "objection recorded (a flag apps look up): complete once the processing objected to "
             "has stopped; lift it if the objection is overridden")]


def _verified(session: Session, rt: Runtime, req: DsarRequest, actor: str, method: str) -> None:
    """Verification starts execution: tasks and their outbox rows are written in the caller's transaction."""
    req.verified_at, req.verified_by = utcnow(), actor
    if req.type in ("access", "portability"):
        from dsar.exports import new_key

        req.export_key = new_key(rt.keys, req.id)[1]  # before the transition's flush: written with it
    transition(session, req, "verified", actor, method)
    plan = _plan(rt, req)
    # Every task in one statement, then every outbox row in one (they refer to the tasks; no relationship tells
    # the ORM's flush to order them).
    tasks = [DsarTask(id=str(uuid.uuid4()), request_id=req.id, store=name, state="pending", attempts=0, counts={},
                      kept={}, note=note) for name, note in plan]
    session.add_all(tasks)
    session.flush()
    session.add_all(DsarDispatch(task_id=task.id) for task in tasks if task.store != MANUAL_TASK)
    if req.type == "restriction":
        hold = create_hold(session, rt.keys, app_id=req.app_id, actor=actor, subject=subject_of(rt, req),
                           store=None, category=None, reason=f"restriction of processing (request {req.id})",
                           until=None)
        req.hold_id = hold.id
    transition(session, req, "in_progress", "system", f"{len(plan)} task(s) created")
    notify.send(session, rt, req, "request_received",
                body=f"We received your {req.type} request {req.id}; we will answer by {req.due_at.date()}.",
                context={"due": req.due_at})


# --- operator actions ------------------------------------------------------------------------------------

def extend(session: Session, rt: Runtime, actor: Actor, request_id: str, reason: str) -> DsarRequest:
    """Apply the jurisdiction's extension once, within the first period, and tell the subject why."""
    req = get_request(session, actor.app_id, request_id, lock=True)
    rule = deadlines(rt.settings.toml)[req.jurisdiction]
    if rule.extension is None:
        raise Conflict(f"{req.jurisdiction} allows no extension")
    if req.extended_at is not None:
        raise Conflict("the deadline was already extended once")
    if req.status in FINAL:
        raise Conflict(f"the request is {req.status}")
    if req.due_at <= utcnow():
        raise Conflict("an extension must be decided (and the subject told) within the first period")
    old = req.due_at
    req.due_at, req.extended_at, req.extension_reason = rule.extension.after(old), utcnow(), reason
    audit.record(session, app_id=req.app_id, actor=actor.name, action="dsar.extended", resource_type="dsar_request",
                 resource_id=req.id, details={"from": old.isoformat(), "to": req.due_at.isoformat(),
                                              "reason": reason})
    drp_changed(session, req.id)  # an agent is told the new expected_by
    notify.send(session, rt, req, "deadline_extended",
                body=f"We need more time for your {req.type} request {req.id}: we will answer by "
                f"{req.due_at.date().isoformat()}. Reason: {reason}",
                context={"due": req.due_at, "reason": reason})
    return req


def reject(session: Session, rt: Runtime, actor: Actor, request_id: str, reason: str) -> DsarRequest:
    """Refuse the request with a reason, which the subject is told (with how to contest it)."""
    req = get_request(session, actor.app_id, request_id, lock=True)
    if req.status in FINAL:
        raise Conflict(f"the request is already {req.status}")
    transition(session, req, "rejected", actor.name, reason)
    notify.send(session, rt, req, "request_rejected", body=f"Your {req.type} request {req.id} was rejected. "
                f"Reason: {reason}", context={"reason": reason})
    return req


def cancel(session: Session, actor: Actor, request_id: str, reason: str | None) -> DsarRequest:
    req = get_request(session, actor.app_id, request_id, lock=True)
    if req.status not in ("pending_verification", "verified", "locked"):
        raise Conflict(f"the request is {req.status}: only a request not yet executing can be cancelled")
    transition(session, req, "cancelled", actor.name, reason)
    return req


def complete_manual(session: Session, rt: Runtime, actor: Actor, request_id: str, reason: str) -> DsarRequest:
    """An operator marks the manual part of a rectification, restriction or objection done."""
    req = get_request(session, actor.app_id, request_id, lock=True)
    manual = [t for t in tasks_of(session, req.id) if t.store == MANUAL_TASK and t.state == "pending"]
    if req.status != "in_progress" or not manual:
        raise Conflict("the request has no manual task waiting")
    for task in manual:
        task.state, task.updated_at = "done", utcnow()
    audit.record(session, app_id=req.app_id, actor=actor.name, action="dsar.manual_task_done",
                 resource_type="dsar_request", resource_id=req.id, details={"reason": reason})
    session.flush()
    close_if_done(rt, session, req, actor=actor.name, reason=reason)  # or later, when automatic tasks end
    return req


def retry_failed(session: Session, actor: Actor, request_id: str) -> DsarRequest:
    req = get_request(session, actor.app_id, request_id, lock=True)
    failed = [t for t in tasks_of(session, req.id) if t.state == "failed"]
    if not failed:
        raise Conflict("the request has no failed task")
    for task in failed:
        # A fresh run budget; no older run is alive to be confused by the reused numbers (the task failed only
        # once its last run ended).
        task.state, task.attempts, task.last_error, task.lease_until = "pending", 0, None, None
        session.add(DsarDispatch(task_id=task.id))
    req.closed_at = None
    transition(session, req, "in_progress", actor.name, f"retry of {len(failed)} failed task(s)",
               stores=[t.store for t in failed])
    return req


def lift(session: Session, rt: Runtime, actor: Actor, request_id: str, reason: str) -> DsarRequest:
    """End a restriction or objection: its flag stops, and a restriction's legal hold is released."""
    req = get_request(session, actor.app_id, request_id, lock=True)
    if req.type not in FLAG_TYPES or req.status not in ("in_progress", "completed"):
        raise Conflict("only a restriction or objection in force can be lifted")
    if req.lifted_at is not None:
        raise Conflict("already lifted")
    req.lifted_at, req.lifted_by, req.lift_reason = utcnow(), actor.name, reason
    if req.hold_id and get_hold(session, req.app_id, req.hold_id).released_at is None:
        release_hold(session, app_id=req.app_id, hold_id=req.hold_id, actor=actor.name, reason=reason)
    audit.record(session, app_id=req.app_id, actor=actor.name, action="dsar.lifted", resource_type="dsar_request",
                 resource_id=req.id, details={"reason": reason})
    return req


def flags_for(session: Session, rt: Runtime, app_id: int, subject: dict[str, str]) -> dict[str, Any]:
    """Restrictions and objections in force for a subject (matched by any of its identities' pseudonyms)."""
    mine = set(identity_keys(rt.keys, app_id, {k: v for k, v in subject.items() if v}))
    if not mine:
        raise Invalid("the subject needs an identity", errors={"subject": ["give user_id, email or phone"]})
    rows = session.scalars(select(DsarRequest).where(
        DsarRequest.app_id == app_id, DsarRequest.type.in_(FLAG_TYPES), DsarRequest.lifted_at.is_(None),
        DsarRequest.status.in_(("in_progress", "completed"))).order_by(DsarRequest.verified_at))
    flags = [{"type": r.type, "request_id": r.id, "since": r.verified_at} for r in rows
             if mine.intersection(r.subject_keys)]
    return {"restricted": any(f["type"] == "restriction" for f in flags),
            "objected": any(f["type"] == "objection" for f in flags), "flags": flags}


# --- reading ---------------------------------------------------------------------------------------------

def view(session: Session, req: DsarRequest) -> dict[str, Any]:
    now = utcnow()
    return {"id": req.id, "type": req.type, "status": req.status, "jurisdiction": req.jurisdiction,
            "received_at": req.received_at, "due_at": req.due_at, "overdue": req.status not in FINAL
            and req.due_at < now, "extended": req.extended_at is not None, "extension_reason": req.extension_reason,
            "verified_at": req.verified_at, "closed_at": req.closed_at, "reason": req.reason,
            "certificate": req.certificate, "export_ready": req.export_path is not None,
            "export_expires_at": req.export_expires_at if req.export_path else None,
            "consent": req.consent_result, "lifted_at": req.lifted_at, "lift_reason": req.lift_reason,
            "locale": req.locale,
            "tasks": [{"store": t.store, "state": t.state, "attempts": t.attempts, "counts": t.counts,
                       "kept": t.kept, "note": t.note, "last_error": t.last_error}
                      for t in tasks_of(session, req.id)]}


def list_requests(session: Session, app_id: int, *, status: str | None, type_: str | None, overdue: bool | None,
                  offset: int, limit: int) -> tuple[list[DsarRequest], int]:
    stmt = select(DsarRequest).where(DsarRequest.app_id == app_id)
    if status:
        stmt = stmt.where(DsarRequest.status == status)
    if type_:
        stmt = stmt.where(DsarRequest.type == type_)
    if overdue is not None:
        late = (DsarRequest.due_at < utcnow()) & DsarRequest.status.not_in(FINAL)
        stmt = stmt.where(late if overdue else ~late)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(DsarRequest.due_at, DsarRequest.id).offset(offset).limit(limit))
    return list(rows), total


# --- export downloads ------------------------------------------------------------------------------------

def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()  # 256 random bits: a plain hash cannot be reversed


def create_download_token(session: Session, rt: Runtime, actor: Actor, request_id: str) -> tuple[str, datetime]:
    req = get_request(session, actor.app_id, request_id)
    if req.export_path is None:
        raise Conflict("no export is ready for this request" if req.status not in FINAL
                       else "the export is not available (never built, or destroyed after its time)")
    token = secrets.token_urlsafe(32)
    expires = utcnow() + options(rt.settings).token_ttl
    session.add(DownloadToken(token_hash=_token_hash(token), request_id=req.id, expires_at=expires))
    audit.record(session, app_id=req.app_id, actor=actor.name, action="dsar.download_token_issued",
                 resource_type="dsar_request", resource_id=req.id)
    return token, expires


def redeem_download_token(session: Session, rt: Runtime, actor: Actor, request_id: str,
                          token: str) -> tuple[Any, bytes, str]:
    """Burn a token (single use) and return what streams the decrypted archive: (path, key, label)."""
    from pathlib import Path

    from dsar.exports import unwrap

    req = get_request(session, actor.app_id, request_id)
    if req.export_path is None:
        raise Gone("the export was destroyed after its time")
    now = utcnow()
    burnt = session.execute(update(DownloadToken).where(
        DownloadToken.token_hash == _token_hash(token), DownloadToken.request_id == req.id,
        DownloadToken.used_at.is_(None), DownloadToken.expires_at > now).values(used_at=now)).rowcount
    if not burnt:  # one UPDATE: two concurrent downloads cannot both use the token
        raise Gone("the download token is unknown, used or expired")
    audit.record(session, app_id=req.app_id, actor=actor.name, action="dsar.export_downloaded",
                 resource_type="dsar_request", resource_id=req.id)
    return Path(req.export_path), unwrap(rt.keys, req.export_key, req.id), f"export:{req.id}:archive"
