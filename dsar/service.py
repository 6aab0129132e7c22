"""Rights-request logic, callable without Flask: intake, verification, deadlines, state changes, dispatch."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from dsar import notify
from dsar.deadlines import deadlines
from dsar.holds import identity_keys
from dsar.models import FINAL, DsarDispatch, DsarRequest, DsarTask
from service import audit
from service.errors import Conflict, DomainError, Invalid, NotFound
from service.runtime import Runtime
from service.stores.registry import registry_for

CODE_TTL = timedelta(minutes=15)
MAX_CODE_ATTEMPTS = 5
STORE_TYPES = frozenset({"access", "portability", "erasure"})
# Tasks that are not a store: consent withdrawal runs as a job too; the others wait for an operator.
CONSENT_TASK = "_consent"
MANUAL_TASK = "_manual"


class Locked(DomainError):
    status = 423


class Gone(DomainError):
    status = 410


class Forbidden(DomainError):
    status = 403


@dataclass(frozen=True)
class Actor:
    app_id: int
    name: str  # "key:<id>", "cli:...", "system"


def _now() -> datetime:
    from service.db import utcnow

    return utcnow()


def _seal(rt: Runtime, value: Any, context: str) -> bytes:
    return rt.keys.fields.encrypt(json.dumps(value, sort_keys=True).encode(), context)


def subject_of(rt: Runtime, req: DsarRequest) -> dict[str, str]:
    return json.loads(rt.keys.fields.decrypt(req.subject, f"dsar_request:{req.id}:subject"))


def contact_of(rt: Runtime, req: DsarRequest) -> str | None:
    if req.contact is None:
        return None
    return json.loads(rt.keys.fields.decrypt(req.contact, f"dsar_request:{req.id}:contact"))


def _transition(session: Session, req: DsarRequest, status: str, actor: str, reason: str | None = None,
                **details: Any) -> None:
    previous, req.status = req.status, status
    if status in FINAL:
        req.closed_at = _now()
    audit.record(session, app_id=req.app_id, actor=actor, action=f"dsar.{status}", resource_type="dsar_request",
                 resource_id=req.id, details={"from": previous, "reason": reason, **details})


def _hash_code(request_id: str, code: str) -> str:
    return hashlib.sha256(f"{request_id}:{code}".encode()).hexdigest()


def _send_code(session: Session, rt: Runtime, req: DsarRequest) -> None:
    code = f"{secrets.randbelow(10**6):06d}"
    req.code_hash, req.code_expires_at, req.code_attempts = _hash_code(req.id, code), _now() + CODE_TTL, 0
    notify.send(session, rt.keys, app_id=req.app_id, request_id=req.id, kind="verification_code",
                recipient=contact_of(rt, req) or "", body=f"Your verification code is {code}. It expires in "
                f"{int(CODE_TTL.total_seconds() // 60)} minutes.")


def submit(session: Session, rt: Runtime, actor: Actor, data: dict[str, Any], *, can_verify: bool) -> DsarRequest:
    """Record a request; start it at once when a `dsar:manage` key vouches for the subject, else send a code."""
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
    request_id = str(uuid.uuid4())
    received = _now()
    req = DsarRequest(
        id=request_id, app_id=actor.app_id, type=data["type"], status="pending_verification",
        jurisdiction=jurisdiction, subject_keys=identity_keys(rt.keys, actor.app_id, subject),
        subject=_seal(rt, subject, f"dsar_request:{request_id}:subject"),
        contact=_seal(rt, data["contact_email"], f"dsar_request:{request_id}:contact")
        if data.get("contact_email") else None,
        details=_seal(rt, data["details"], f"dsar_request:{request_id}:details") if data.get("details") else None,
        received_at=received, due_at=table[jurisdiction].period.after(received), code_attempts=0,
    )
    session.add(req)
    audit.record(session, app_id=actor.app_id, actor=actor.name, action="dsar.received",
                 resource_type="dsar_request", resource_id=request_id,
                 details={"type": req.type, "jurisdiction": jurisdiction, "due_at": req.due_at.isoformat()})
    if data.get("verified"):
        _verified(session, rt, req, actor.name, "verified by the submitting app (dsar:manage)")
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


def verify(session: Session, rt: Runtime, actor: Actor, request_id: str, code: str) -> DsarRequest:
    req = get_request(session, actor.app_id, request_id, lock=True)
    if req.status == "locked":
        raise Locked("too many wrong codes: the request is locked")
    if req.status != "pending_verification":
        raise Conflict(f"the request is {req.status}, not pending verification")
    if req.code_expires_at is None or req.code_expires_at <= _now():
        raise Gone("the code has expired: ask for a new one")
    if not hmac.compare_digest(req.code_hash or "", _hash_code(req.id, code)):
        req.code_attempts += 1
        audit.record(session, app_id=req.app_id, actor=actor.name, action="dsar.verification_failed",
                     resource_type="dsar_request", resource_id=req.id, details={"attempt": req.code_attempts})
        if req.code_attempts >= MAX_CODE_ATTEMPTS:
            _transition(session, req, "locked", actor.name, "too many wrong verification codes")
            session.commit()
            raise Locked("too many wrong codes: the request is locked")
        session.commit()
        raise Invalid("wrong code", errors={"code": [f"wrong code; {MAX_CODE_ATTEMPTS - req.code_attempts} "
                                                     "attempts left"]})
    req.code_hash = None
    _verified(session, rt, req, actor.name, "one-time code")
    return req


def resend_code(session: Session, rt: Runtime, actor: Actor, request_id: str) -> DsarRequest:
    req = get_request(session, actor.app_id, request_id, lock=True)
    if req.status != "pending_verification":
        raise Conflict(f"the request is {req.status}, not pending verification")
    _send_code(session, rt, req)
    audit.record(session, app_id=req.app_id, actor=actor.name, action="dsar.code_sent",
                 resource_type="dsar_request", resource_id=req.id)
    return req


def _verified(session: Session, rt: Runtime, req: DsarRequest, actor: str, method: str) -> None:
    req.verified_at, req.verified_by = _now(), actor
    _transition(session, req, "verified", actor, method)
    if req.type in STORE_TYPES:
        names = [s.name for s in registry_for(rt).stores()]
    elif req.type == "consent_withdrawal":
        names = [CONSENT_TASK]
    else:
        names = [MANUAL_TASK]
    if req.type in ("access", "portability"):
        from dsar.exports import new_key

        req.export_key = new_key(rt.keys, req.id)[1]
    session.flush()
    for name in names:
        task = DsarTask(id=str(uuid.uuid4()), request_id=req.id, store=name, state="pending", attempts=0,
                        counts={}, kept={})
        session.add(task)
        session.flush()
        if name != MANUAL_TASK:
            session.add(DsarDispatch(task_id=task.id))
    _transition(session, req, "in_progress", "system", f"{len(names)} task(s) created")
    if req.type == "restriction":
        from dsar.holds import create_hold

        create_hold(session, rt.keys, app_id=req.app_id, actor=actor, subject=subject_of(rt, req), store=None,
                    category=None, reason=f"restriction of processing (request {req.id})", until=None)


def extend(session: Session, actor: Actor, request_id: str, reason: str, rt: Runtime) -> DsarRequest:
    req = get_request(session, actor.app_id, request_id, lock=True)
    rule = deadlines(rt.settings.toml)[req.jurisdiction]
    if rule.extension is None:
        raise Conflict(f"{req.jurisdiction} allows no extension")
    if req.extended_at is not None:
        raise Conflict("the deadline was already extended once")
    if req.status in FINAL:
        raise Conflict(f"the request is {req.status}")
    old = req.due_at
    req.due_at, req.extended_at, req.extension_reason = rule.extension.after(old), _now(), reason
    audit.record(session, app_id=req.app_id, actor=actor.name, action="dsar.extended", resource_type="dsar_request",
                 resource_id=req.id, details={"from": old.isoformat(), "to": req.due_at.isoformat(),
                                              "reason": reason})
    return req


def reject(session: Session, actor: Actor, request_id: str, reason: str) -> DsarRequest:
    req = get_request(session, actor.app_id, request_id, lock=True)
    if req.status in FINAL:
        raise Conflict(f"the request is already {req.status}")
    _transition(session, req, "rejected", actor.name, reason)
    return req


def cancel(session: Session, actor: Actor, request_id: str, reason: str | None) -> DsarRequest:
    req = get_request(session, actor.app_id, request_id, lock=True)
    if req.status not in ("pending_verification", "verified", "locked"):
        raise Conflict(f"the request is {req.status}: only a request not yet executing can be cancelled")
    _transition(session, req, "cancelled", actor.name, reason)
    return req


def complete_manual(session: Session, actor: Actor, request_id: str, reason: str) -> DsarRequest:
    """An operator closes a rectification, restriction or objection once it is applied."""
    req = get_request(session, actor.app_id, request_id, lock=True)
    tasks = [t for t in _tasks(session, req.id) if t.store == MANUAL_TASK and t.state == "pending"]
    if req.status != "in_progress" or not tasks:
        raise Conflict("the request has no manual task waiting")
    for task in tasks:
        task.state, task.updated_at = "done", _now()
    _transition(session, req, "completed", actor.name, reason)
    return req


def retry_failed(session: Session, actor: Actor, request_id: str) -> DsarRequest:
    req = get_request(session, actor.app_id, request_id, lock=True)
    failed = [t for t in _tasks(session, req.id) if t.state == "failed"]
    if not failed:
        raise Conflict("the request has no failed task")
    for task in failed:
        task.state, task.attempts, task.last_error, task.lease_until = "pending", 0, None, None
        session.add(DsarDispatch(task_id=task.id))
    _transition(session, req, "in_progress", actor.name, f"retry of {len(failed)} failed task(s)",
                stores=[t.store for t in failed])
    return req


def _tasks(session: Session, request_id: str) -> list[DsarTask]:
    return list(session.scalars(select(DsarTask).where(DsarTask.request_id == request_id).order_by(DsarTask.store)))


def view(session: Session, req: DsarRequest) -> dict[str, Any]:
    now = _now()
    return {"id": req.id, "type": req.type, "status": req.status, "jurisdiction": req.jurisdiction,
            "received_at": req.received_at, "due_at": req.due_at, "overdue": req.status not in FINAL
            and req.due_at < now, "extended": req.extended_at is not None, "extension_reason": req.extension_reason,
            "verified_at": req.verified_at, "closed_at": req.closed_at, "reason": req.reason,
            "certificate": req.certificate, "export_ready": req.export_path is not None,
            "consent": req.consent_result,
            "tasks": [{"store": t.store, "state": t.state, "attempts": t.attempts, "counts": t.counts,
                       "kept": t.kept, "last_error": t.last_error} for t in _tasks(session, req.id)]}


def list_requests(session: Session, app_id: int, *, status: str | None, type_: str | None, overdue: bool | None,
                  offset: int, limit: int) -> tuple[list[DsarRequest], int]:
    stmt = select(DsarRequest).where(DsarRequest.app_id == app_id)
    if status:
        stmt = stmt.where(DsarRequest.status == status)
    if type_:
        stmt = stmt.where(DsarRequest.type == type_)
    if overdue is not None:
        late = (DsarRequest.due_at < _now()) & DsarRequest.status.not_in(FINAL)
        stmt = stmt.where(late if overdue else ~late)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(DsarRequest.due_at).offset(offset).limit(limit))
    return list(rows), total


# --- dispatch: the outbox to RQ, and the reconciler -------------------------------------------------------

def dispatch(rt: Runtime) -> int:
    """Enqueue a job for every undispatched outbox row. Safe to run from many processes at once: a row is
    claimed by the UPDATE that marks it, so each is enqueued by one dispatcher (and a job runs twice at worst)."""
    from dsar.jobs import enqueue_task

    sent = 0
    with rt.db.sessions() as session:
        pending = list(session.scalars(select(DsarDispatch).where(DsarDispatch.dispatched_at.is_(None))
                                       .order_by(DsarDispatch.id).limit(1000)))
    for row in pending:
        with rt.db.session() as session:
            claimed = session.execute(update(DsarDispatch).where(DsarDispatch.id == row.id,
                                                                 DsarDispatch.dispatched_at.is_(None))
                                      .values(dispatched_at=_now())).rowcount
        if claimed:
            enqueue_task(rt, row.task_id)
            sent += 1
    return sent


def reconcile(rt: Runtime) -> int:
    """Re-enqueue every unfinished task whose lease is not held: covers jobs lost from Redis (flushed,
    restarted) and workers killed mid-task. Idempotent tasks make a duplicate harmless."""
    from dsar.jobs import enqueue_task

    with rt.db.sessions() as session:
        stmt = (select(DsarTask.id).join(DsarRequest, DsarRequest.id == DsarTask.request_id)
                .where(DsarRequest.status == "in_progress", DsarTask.state.in_(("pending", "running")),
                       DsarTask.store != MANUAL_TASK)
                .where((DsarTask.lease_until.is_(None)) | (DsarTask.lease_until < _now())))
        ids = list(session.scalars(stmt))
    for task_id in ids:
        enqueue_task(rt, task_id)
    return len(ids)


# --- export downloads ------------------------------------------------------------------------------------

TOKEN_TTL = timedelta(minutes=10)


def create_download_token(session: Session, actor: Actor, request_id: str) -> tuple[str, datetime]:
    from dsar.models import DownloadToken

    req = get_request(session, actor.app_id, request_id)
    if req.export_path is None:
        raise Conflict("no export is ready for this request" if req.status not in FINAL
                       else "the export is not available (never built, or destroyed after its time)")
    token = secrets.token_urlsafe(32)
    expires = _now() + TOKEN_TTL
    session.add(DownloadToken(token_hash=hashlib.sha256(token.encode()).hexdigest(), request_id=req.id,
                              expires_at=expires))
    audit.record(session, app_id=req.app_id, actor=actor.name, action="dsar.download_token_issued",
                 resource_type="dsar_request", resource_id=req.id)
    return token, expires


def redeem_download_token(session: Session, rt: Runtime, actor: Actor, request_id: str,
                          token: str) -> tuple[Any, bytes, str]:
    """Burn a token (single use) and return what streams the decrypted archive: (path, key, label)."""
    from pathlib import Path

    from dsar.exports import unwrap
    from dsar.models import DownloadToken

    req = get_request(session, actor.app_id, request_id)
    row = session.scalar(select(DownloadToken).where(
        DownloadToken.token_hash == hashlib.sha256(token.encode()).hexdigest(),
        DownloadToken.request_id == req.id).with_for_update())
    if row is None or row.used_at is not None or row.expires_at <= _now():
        raise Gone("the download token is unknown, used or expired")
    if req.export_path is None:
        raise Gone("the export was destroyed after its time")
    row.used_at = _now()
    audit.record(session, app_id=req.app_id, actor=actor.name, action="dsar.export_downloaded",
                 resource_type="dsar_request", resource_id=req.id)
    return Path(req.export_path), unwrap(rt.keys, req.export_key, req.id), f"export:{req.id}:archive"
