"""Closing a request once its tasks are final: its state, the export archive or the erasure certificate (with the
consent records' fate), and the notice to the subject."""

from __future__ import annotations

import logging
import shutil
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dsar import exports, notify
from dsar.config import BULK_QUEUE, export_dir, options
from dsar.fields import subject_of
from dsar.models import TASK_FINAL, DsarRequest, DsarTask
from dsar.states import tasks_of, transition
from service import audit
from service.db import utcnow
from service.runtime import Runtime, runtime
from service.stores.registry import registry_for
from service.wiring import ErasureCompleted, installed

log = logging.getLogger(__name__)


def close_job_id(request_id: str) -> str:
    return f"dsar-close-{request_id}"


def close_request(rt: Runtime, request_id: str, *, bulk_lane: bool = False, skip_locked: bool = False) -> None:
    """Close the request if every task is final (export or certificate, state, notice), in a transaction of its
    own: commits. Idempotent; called by a task's job once it ends, by the reconciler, and by the close job.

    Outside the bulk lane (`bulk_lane`), an export of more than `[dsar] bulk_export_records` records is not
    assembled here: a `dsar_bulk` job (close_job) does it, so store tasks waiting on `dsar` go first.
    `skip_locked`: leave a request whose row another transaction holds (PostgreSQL; SQLite has no row locks).
    """
    hand_over = False
    with rt.db.session() as session:
        req = session.scalar(select(DsarRequest).where(DsarRequest.id == request_id)
                             .with_for_update(skip_locked=skip_locked))
        if req is not None and req.status == "in_progress":
            tasks = tasks_of(session, req.id)
            if not bulk_lane and _large_export(rt, req, tasks):
                hand_over = True  # enqueued once this transaction has let the row go, for the job to lock it
            else:
                close_if_done(rt, session, req, tasks=tasks)
    if hand_over:
        _hand_to_bulk_lane(rt, request_id)
    from dsar.agents.status import sync_dirty

    sync_dirty(rt)  # an agent's request that closed is called back now, not at the next sweep


def close_job(request_id: str) -> None:
    """The job (queue `dsar_bulk`) that closes a request whose export is too large to assemble on `dsar`. A run
    that finds the request locked leaves it: another run is closing it, or the reconciler comes back."""
    close_request(runtime(), request_id, bulk_lane=True, skip_locked=True)


def _large_export(rt: Runtime, req: DsarRequest, tasks: list[DsarTask]) -> bool:
    """Whether the request's export is ready to assemble and too large for the `dsar` queue. Never in-process:
    there the closing is the caller's own work, with no queue to be held back."""
    if rt.queue.redis is None or req.type not in ("access", "portability"):
        return False
    if not tasks or any(t.state not in TASK_FINAL for t in tasks):
        return False
    records = sum(n for t in tasks if t.state == "done" for n in t.counts.values())
    return records > options(rt.settings).bulk_export_records


def _hand_to_bulk_lane(rt: Runtime, request_id: str) -> None:
    """Enqueue the close job; never raises (Redis refusing it leaves the request to the reconciler)."""
    try:
        rt.queue.enqueue(close_job, request_id, queue=BULK_QUEUE, job_id=close_job_id(request_id),
                         timeout=6 * 3600)
    except Exception as exc:  # noqa: BLE001 - the reconciler hands it over again
        log.warning("dsar request %s: the close job was not enqueued (%s); the maintenance pass tries again",
                    request_id, type(exc).__name__)


def close_if_done(rt: Runtime, session: Session, req: DsarRequest, *, actor: str = "system",
                  reason: str | None = None, tasks: list[DsarTask] | None = None) -> bool:
    """If every task is final, close the request: `completed`, `partially_completed` naming the failed stores, or
    `failed` when nothing succeeded. Call with the request row locked. Returns whether it closed.

    An export the folder refuses (full, read-only) leaves the request open with the reason in `reason` (audited
    once per reason as `dsar.export_failed`) and the previous archive, if any, as it was; the reconciler, which
    closes every open request whose tasks are final, builds it again at each maintenance pass until it fits.
    """
    tasks = tasks_of(session, req.id) if tasks is None else tasks
    if not tasks or any(t.state not in TASK_FINAL for t in tasks):
        return False
    failed = [t.store for t in tasks if t.state == "failed"]
    if not failed:
        status = "completed"
    elif any(t.state == "done" for t in tasks):
        status = "partially_completed"
    else:
        status = "failed"
    if status != "failed":
        identity = subject_of(rt, req)
        if req.type in ("access", "portability"):
            try:
                # Parts stay while a retry of a failed store may rebuild the archive; purging removes them.
                _build_export(rt, session, req, tasks, identity, keep_parts=status != "completed")
            except exports.ExportNotWritten as exc:
                _export_failed(session, req, str(exc))
                return False
        elif req.type == "erasure":
            _certify_erasure(rt, session, req, tasks, identity)
            _announce_erasure(rt, session, req, status, tasks, identity)
    req.reason = f"failed stores: {', '.join(failed)}" if failed else None
    transition(session, req, status, actor, req.reason or reason or "every task finished", failed=failed)
    notify.send(session, rt, req, f"request_{status}",
                body=f"Your {req.type} request {req.id} is {status.replace('_', ' ')}.", context={"status": status})
    return True


def _export_failed(session: Session, req: DsarRequest, reason: str) -> None:
    """Keep the request open, saying why its export is missing (audited when the reason is new)."""
    log.warning("dsar request %s: export not written (%s); the maintenance pass tries again", req.id, reason)
    if req.reason != reason:
        req.reason = reason
        audit.record(session, app_id=req.app_id, actor="system", action="dsar.export_failed",
                     resource_type="dsar_request", resource_id=req.id, details={"reason": reason})


def _announce_erasure(rt: Runtime, session: Session, req: DsarRequest, status: str, tasks: list[DsarTask],
                      identity: dict[str, str]) -> None:
    """Tell the listeners (governance's processor fan-out) in this transaction: it commits with the closing."""
    categories = frozenset(c for t in tasks if t.state == "done" for c in t.counts)
    event = ErasureCompleted(request_id=req.id, app_id=req.app_id, status=status, categories=categories,
                             identity=dict(identity))
    for hook in installed().on_erasure_completed:
        hook(rt, session, event)


def consent_history(rt: Runtime, session: Session, app_id: int, identity: dict[str, str]) -> list[dict[str, Any]]:
    """The subject's consent ledger entries, oldest first, as consent's history shows them (evidence decrypted,
    signed receipts), times in ISO 8601."""
    from consent.history import subject_events

    if not identity.get("user_id"):
        return []
    return [{**e, "created_at": e["created_at"].isoformat()}
            for e in subject_events(session, rt.keys, app_id, identity["user_id"])]


def _build_export(rt: Runtime, session: Session, req: DsarRequest, tasks: list[DsarTask], identity: dict[str, str],
                  *, keep_parts: bool) -> None:
    folder = export_dir(rt.settings, req.id)
    key = exports.unwrap(rt.keys, req.export_key, req.id)
    done = {t.store: t.counts for t in tasks if t.state == "done"}
    history = consent_history(rt, session, req.app_id, identity)
    summary = {"request": req.id, "type": req.type, "prepared_at": utcnow().isoformat(), "stores": done,
               "not_applicable": [t.store for t in tasks if t.state == "not_applicable"],
               "failed": [t.store for t in tasks if t.state == "failed"], "consent_events": len(history)}
    archive = folder / "export.zip.enc"
    exports.build_archive(archive, key, req.id, done, folder / "parts", history, summary)
    if not keep_parts:
        shutil.rmtree(folder / "parts", ignore_errors=True)
    req.export_path = str(archive)
    req.export_expires_at = utcnow() + timedelta(hours=options(rt.settings).export_ttl_hours)
    audit.record(session, app_id=req.app_id, actor="system", action="dsar.export_ready",
                 resource_type="dsar_request", resource_id=req.id,
                 details={"stores": {s: sum(c.values()) for s, c in done.items()}})


def _erase_consent(rt: Runtime, session: Session, req: DsarRequest, identity: dict[str, str]) -> dict[str, Any]:
    """Remove the subject's consent records except those kept as proof (`[dsar] keep_consent_proof`)."""
    from consent.history import erase_subject_chain, subject_policy_keys

    previous = req.consent_result or {}
    if not identity.get("user_id"):
        return {"consent_events_removed": 0, "kept_policies": [], "note": "no user_id: no consent records"}
    opts = options(rt.settings)
    subject = rt.keys.pseudonyms.subject(req.app_id, identity["user_id"])
    policies = subject_policy_keys(session, req.app_id, subject)
    kept = [p for p in policies if opts.keeps_consent_of(p)]
    removed = 0
    if len(kept) < len(policies):
        removed = erase_subject_chain(session, req.app_id, subject, f"dsar:{req.id}", keep_policies=kept)
    return {"consent_events_removed": removed + previous.get("consent_events_removed", 0),
            "kept_policies": sorted(set(kept) | set(previous.get("kept_policies", []))),
            "note": "kept as proof of consent ([dsar] keep_consent_proof)" if kept else None}


def _store_result(rt: Runtime, task: DsarTask) -> dict[str, Any]:
    """Per store: erased and anonymised counts per category (as the store reports its erase actions), kept."""
    erased, anonymised = dict(task.counts), {}
    store = registry_for(rt).get(task.store) if task.store in registry_for(rt) else None
    actions = getattr(store, "expire_actions", None)
    if actions is not None:
        for category in list(erased):
            if "anonymize" in actions(category):
                anonymised[category] = erased.pop(category)
    return {"state": task.state, "erased": erased, "anonymised": anonymised, "kept": task.kept,
            "note": task.note, "error": task.last_error}


def _certify_erasure(rt: Runtime, session: Session, req: DsarRequest, tasks: list[DsarTask],
                     identity: dict[str, str]) -> None:
    req.consent_result = _erase_consent(rt, session, req, identity)
    now = utcnow()
    claims = {
        "iss": rt.settings.issuer, "iat": int(now.timestamp()), "jti": str(uuid.uuid4()),
        "type": "erasure-certificate", "request": req.id, "jurisdiction": req.jurisdiction,
        "received_at": req.received_at.isoformat(), "completed_at": now.isoformat(),
        "stores": {t.store: _store_result(rt, t) for t in tasks},
        "consent": req.consent_result,
    }
    req.certificate = rt.keys.signer.sign(claims)
    audit.record(session, app_id=req.app_id, actor="system", action="dsar.erasure_certified",
                 resource_type="dsar_request", resource_id=req.id, details={"jti": claims["jti"]})
