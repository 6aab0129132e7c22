"""The Exercise Status object of an agent's request, derived from its rights request, and the sync that records
each change and queues its status callback. Imports nothing that imports dsar.states (it is called after them)."""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dsar.agents import callbacks
from dsar.agents.models import DrpRequest
from dsar.agents.options import PREFIX
from dsar.models import DownloadToken, DsarRequest, DsarTask
from service import audit
from service.db import utcnow
from service.runtime import Runtime
from service.tenancy import App

log = logging.getLogger(__name__)

STATUSES = ("open", "in_progress", "fulfilled", "revoked", "denied", "expired")
REASONS = ("need_user_verification", "suspected_fraud", "insuf_verification", "no_match", "claim_not_covered",
           "outside_jurisdiction", "too_many_requests", "other")
DENIALS = REASONS[1:]
FINAL = frozenset({"fulfilled", "revoked", "denied", "expired"})


def _ts(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _unseal(rt: Runtime, drp: DrpRequest, field: str, blob: bytes | None) -> str | None:
    return None if blob is None else rt.keys.fields.decrypt(blob, f"drp_request:{drp.id}:{field}").decode()


def seal(rt: Runtime, drp_id: str, field: str, value: str) -> bytes:
    return rt.keys.fields.encrypt(value.encode(), f"drp_request:{drp_id}:{field}")


def results_url(rt: Runtime, drp: DrpRequest, token: str) -> str:
    return f"{rt.settings.public_url}{PREFIX}/v1/data-rights-request/{drp.id}/results?token={token}"


def _tasks(session: Session, request_id: str) -> list[DsarTask]:
    return list(session.scalars(select(DsarTask).where(DsarTask.request_id == request_id)))


def derive(session: Session, rt: Runtime, drp: DrpRequest, req: DsarRequest | None,
           now: datetime | None = None) -> dict[str, Any]:
    """The status object now: `status`, `reason`, `processing_details`, `expected_by`, the URLs and
    `expires_at`, from the rights request's state (docs/drp.md has the table)."""
    now = now or utcnow()
    out: dict[str, Any] = {"request_id": drp.id, "received_at": _ts(drp.received_at),
                           "agent_request_id": drp.agent_request_id}
    status, reason, details = drp.status, drp.reason, drp.details
    if req is not None:
        out["expected_by"] = _ts(req.due_at)
        if req.extended_at is not None:
            details = f"the deadline was extended: {req.extension_reason}"
        if drp.revoked_at is not None and req.status == "cancelled":
            status, reason, details = "revoked", None, None
        elif req.status == "pending_verification":
            status, reason = "in_progress", "need_user_verification"
            out["user_verification_url"] = _unseal(rt, drp, "verification_link", drp.verification_link)
            out["expires_at"] = _ts(drp.verify_until)
            details = details or "we emailed the person a code: they confirm it at user_verification_url"
        elif req.status in ("verified", "in_progress"):
            status, reason = "in_progress", None
        elif req.status == "locked":
            status, reason, details = "denied", "insuf_verification", "too many wrong verification codes"
        elif req.status in ("rejected", "cancelled"):
            status, reason, details = "denied", drp.reason or "other", drp.details or req.reason
        elif req.status == "failed":
            status, reason, details = "denied", "other", "the request could not be carried out"
        else:  # completed, partially_completed
            tasks = _tasks(session, req.id)
            if tasks and all(t.state == "not_applicable" for t in tasks):
                status, reason = "denied", "no_match"
                details = "no record of ours can be found by the identity given"
            else:
                status, reason = "fulfilled", None
                if req.status == "partially_completed":
                    details = "some of our systems could not be processed: " + (req.reason or "")
                if req.type == "access":
                    expires = req.export_expires_at
                    out["expires_at"] = _ts(expires)
                    if req.export_path is None or (expires is not None and expires <= now):
                        status, details = "expired", "the results were deleted after their time"
                    elif drp.results_token is not None:
                        out["results_url"] = results_url(rt, drp, _unseal(rt, drp, "results", drp.results_token)
                                                         or "")
    out.update(status=status, reason=reason, processing_details=details)
    return {k: v for k, v in out.items() if v is not None}


def _mint_results(session: Session, rt: Runtime, drp: DrpRequest, req: DsarRequest) -> None:
    """A download token for the agent, valid as long as the export (dsar's single-use download tokens)."""
    if drp.results_token is not None or req.export_path is None or req.export_expires_at is None:
        return
    token = secrets.token_urlsafe(32)
    session.add(DownloadToken(token_hash=hashlib.sha256(token.encode()).hexdigest(), request_id=req.id,
                              expires_at=req.export_expires_at))
    drp.results_token = seal(rt, drp.id, "results", token)
    audit.record(session, app_id=req.app_id, actor="system", action="dsar.download_token_issued",
                 resource_type="dsar_request", resource_id=req.id, details={"for": "drp agent"})


def sync(session: Session, rt: Runtime, drp: DrpRequest, *, notify: bool = True) -> dict[str, Any]:
    """Recompute the status object (call with the row locked); when it changed since the last one recorded,
    record it (audited) and queue its callback. Returns it. The caller commits."""
    req = session.get(DsarRequest, drp.dsar_request_id) if drp.dsar_request_id else None
    if req is not None and req.type == "access" and req.status in ("completed", "partially_completed"):
        _mint_results(session, rt, drp, req)
    drp.dirty = False
    status = derive(session, rt, drp, req)
    if status != drp.last:
        previous = (drp.last or {}).get("status")
        drp.last, drp.current = status, status["status"]
        audit.record(session, app_id=drp.app_id, actor="system", action="drp.status_changed",
                     resource_type="drp_request", resource_id=drp.id,
                     details={"from": previous, "to": status["status"], "reason": status.get("reason")})
        if notify:
            callbacks.queue(session, rt, drp, status)
    return status


def sync_dirty(rt: Runtime, limit: int = 500) -> int:
    """Sync every request whose rights request changed since (each in its own transaction: commits). Called after
    the commits of rights-request work and by the sweep; cheap when nothing changed (one indexed query)."""
    with rt.db.sessions() as session:
        ids = list(session.scalars(select(DrpRequest.id).where(DrpRequest.dirty.is_(True)).limit(limit)))
    for drp_id in ids:
        sync_one(rt, drp_id)
    return len(ids)


def sync_one(rt: Runtime, drp_id: str) -> None:
    with rt.db.session() as session:
        drp = session.scalar(select(DrpRequest).where(DrpRequest.id == drp_id).with_for_update())
        if drp is not None:
            sync(session, rt, drp)


def app_slug(session: Session, app_id: int) -> str:
    return session.scalar(select(App.slug).where(App.id == app_id)) or ""
