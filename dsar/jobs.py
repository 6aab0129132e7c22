"""Rights-request jobs (RQ queue `dsar`, or in-process): one per store task, then the request's completion.

Every job is idempotent: it re-reads its task from the database, skips finished work, and a store's erase or an
export part can be done again without harm. A lease on the task row lets the reconciler take over from a worker
that died; attempts are counted in the database, so retries survive a lost Redis.
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from dsar import exports, notify
from dsar.holds import holds_for_subject
from dsar.models import DsarRequest, DsarTask
from dsar.service import CONSENT_TASK, _now, _tasks, _transition, contact_of, subject_of
from service import audit
from service.runtime import Runtime, runtime
from service.stores import NotApplicable
from service.stores.registry import registry_for

log = logging.getLogger(__name__)
TASK_DONE = frozenset({"done", "not_applicable", "failed"})


def options(rt: Runtime) -> dict[str, Any]:
    """`[dsar]` settings with their defaults."""
    section = rt.settings.toml.get("dsar", {})
    return {
        "attempts": int(section.get("task_attempts", 3)),
        "retry_intervals": list(section.get("retry_intervals", [5, 30])),
        "lease_seconds": int(section.get("lease_seconds", 600)),
        "export_ttl_hours": float(section.get("export_ttl_hours", 72)),
        "keep_consent_proof": bool(section.get("keep_consent_proof", False)),
        "export_dir": Path(section.get("export_dir", rt.settings.instance_path / "exports")),
    }


def enqueue_task(rt: Runtime, task_id: str) -> None:
    opts = options(rt)
    # A fresh job id each time: a re-dispatched task must not collide with a job Redis may still hold.
    rt.queue.enqueue(run_task, task_id, queue="dsar", job_id=f"dsar-{task_id}-{uuid.uuid4().hex[:8]}",
                     retries=opts["attempts"] - 1, retry_intervals=opts["retry_intervals"], timeout=3600)


def export_dir(rt: Runtime, request_id: str) -> Path:
    return options(rt)["export_dir"] / request_id


def run_task(task_id: str) -> None:
    rt = runtime()
    opts = options(rt)
    with rt.db.session() as session:
        task = session.scalar(select(DsarTask).where(DsarTask.id == task_id).with_for_update())
        if task is None or task.state in TASK_DONE:
            return
        req = session.get(DsarRequest, task.request_id)
        if req is None or req.status != "in_progress":
            return
        if task.state == "running" and task.lease_until and task.lease_until > _now():
            return  # another worker holds it; the reconciler comes back when the lease runs out
        task.state, task.attempts, task.lease_until = "running", task.attempts + 1, _now() + timedelta(
            seconds=opts["lease_seconds"])
        attempt, store_name = task.attempts, task.store
        request_id, kind, app_id = req.id, req.type, req.app_id
        identity = subject_of(rt, req)
        export_key = exports.unwrap(rt.keys, req.export_key, req.id) if req.export_key else None
    try:
        counts, kept = _execute(rt, request_id, kind, app_id, store_name, identity, export_key)
        state, error = "done", None
    except NotApplicable:
        counts, kept, state, error = {}, {}, "not_applicable", None
    except Exception as exc:  # noqa: BLE001 - any store failure is recorded on the task
        counts, kept = {}, {}
        error = f"{type(exc).__name__}: {exc}"[:1000]
        state = "failed" if attempt >= opts["attempts"] else "pending"
        log.warning("dsar task %s on store %s failed (attempt %d): %s", task_id, store_name, attempt,
                    type(exc).__name__)
    with rt.db.session() as session:
        task = session.get(DsarTask, task_id)
        task.state, task.lease_until, task.updated_at, task.last_error = state, None, _now(), error
        if state in ("done", "not_applicable"):
            task.counts, task.kept = counts, kept
        audit.record(session, app_id=app_id, actor="system", action=f"dsar.task_{state}", resource_type="dsar_task",
                     resource_id=task_id, details={"request": request_id, "store": store_name, "attempt": attempt,
                                                   "counts": counts})
    if state == "pending":
        raise RuntimeError(f"task {task_id} on {store_name} failed; retrying")  # RQ retries with backoff
    finish(request_id)


def _execute(rt: Runtime, request_id: str, kind: str, app_id: int, store_name: str, identity: dict[str, str],
             export_key: bytes | None) -> tuple[dict[str, int], dict[str, list[str]]]:
    if store_name == CONSENT_TASK:
        return _withdraw_consents(rt, request_id, app_id, identity), {}
    store = registry_for(rt).get(store_name)
    if kind in ("access", "portability"):
        parts = export_dir(rt, request_id) / "parts"
        parts.mkdir(parents=True, exist_ok=True)
        return exports.write_part(parts / f"{store_name}.jsonl.enc", export_key,
                                  f"export:{request_id}:part:{store_name}", store.access(identity)), {}
    with rt.db.sessions() as session:
        holds = [h for h in holds_for_subject(session, rt.keys, app_id=app_id, identity=identity)
                 if h.applies_to(store_name)]
    kept: dict[str, list[str]] = {}
    for hold in holds:
        kept.setdefault(hold.category or "*", []).append(hold.reason)
    if "*" in kept:
        return {}, kept  # the whole store is held for this subject
    return store.erase(identity, exclude_categories=set(kept)), kept


def _withdraw_consents(rt: Runtime, request_id: str, app_id: int, identity: dict[str, str]) -> dict[str, int]:
    from consent import service as consent
    from service.tenancy import App, Principal

    if not identity.get("user_id"):
        raise NotApplicable("consent records are kept by user_id")
    withdrawn = 0
    with rt.db.sessions() as session:
        slug = session.get(App, app_id).slug
        principal = Principal(app_id=app_id, app_slug=slug, key_id=f"dsar-{request_id[:8]}", scopes=frozenset())
        ctx = consent.Context(principal=principal, keys=rt.keys, settings=rt.settings)
        for key in consent.subject_policy_keys(session, app_id, ctx.pseudonym(identity["user_id"])):
            state = consent.status(session, ctx, consent.PolicyCache(0), identity["user_id"], key)
            if any(state["purposes"].values()):  # already all withdrawn: a re-run adds nothing
                consent.withdraw(session, ctx, {"subject_id": identity["user_id"], "policy": key,
                                                "channel": "dsar"})
                withdrawn += 1
    return {"policies_withdrawn": withdrawn}


def finish(request_id: str) -> None:
    """Close the request once every task is final: build the export or the erasure certificate."""
    rt = runtime()
    with rt.db.session() as session:
        req = session.scalar(select(DsarRequest).where(DsarRequest.id == request_id).with_for_update())
        if req is None or req.status != "in_progress":
            return
        tasks = _tasks(session, request_id)
        if not tasks or any(t.state not in TASK_DONE for t in tasks):
            return
        failed = [t.store for t in tasks if t.state == "failed"]
        identity = subject_of(rt, req)
        if req.type in ("access", "portability"):
            _build_export(rt, session, req, tasks, identity)
        elif req.type == "erasure":
            _certify_erasure(rt, session, req, tasks, identity)
        status = "partially_completed" if failed else "completed"
        req.reason = f"failed stores: {', '.join(failed)}" if failed else None
        _transition(session, req, status, "system", req.reason, failed=failed)
        contact = contact_of(rt, req)
        if contact:
            notify.send(session, rt.keys, app_id=req.app_id, request_id=req.id, kind=f"request_{status}",
                        recipient=contact, body=f"Your {req.type} request {req.id} is {status.replace('_', ' ')}.")


def _consent_history(rt: Runtime, session: Any, req: DsarRequest, identity: dict[str, str]) -> list[dict[str, Any]]:
    from consent.models import ConsentEvent

    if not identity.get("user_id"):
        return []
    subject = rt.keys.pseudonyms.subject(req.app_id, identity["user_id"])
    rows = session.scalars(select(ConsentEvent).where(ConsentEvent.app_id == req.app_id,
                                                      ConsentEvent.subject == subject).order_by(ConsentEvent.seq))
    history = []
    for e in rows:
        evidence = None
        if e.evidence is not None:
            evidence = json.loads(rt.keys.fields.decrypt(e.evidence, f"consent_event:{e.id}:evidence"))
        history.append({"id": e.id, "kind": e.kind, "purposes": e.purposes, "gpc": e.gpc, "channel": e.channel,
                        "locale": e.locale, "evidence": evidence, "created_at": e.created_at.isoformat(),
                        "receipt": e.receipt})
    return history


def _build_export(rt: Runtime, session: Any, req: DsarRequest, tasks: list[DsarTask],
                  identity: dict[str, str]) -> None:
    folder = export_dir(rt, req.id)
    folder.mkdir(parents=True, exist_ok=True)
    key = exports.unwrap(rt.keys, req.export_key, req.id)
    done = {t.store: t.counts for t in tasks if t.state == "done"}
    history = _consent_history(rt, session, req, identity)
    summary = {"request": req.id, "type": req.type, "prepared_at": _now().isoformat(), "stores": done,
               "not_applicable": [t.store for t in tasks if t.state == "not_applicable"],
               "failed": [t.store for t in tasks if t.state == "failed"], "consent_events": len(history)}
    archive = folder / "export.zip.enc"
    exports.build_archive(archive, key, req.id, done, folder / "parts", history, summary)
    shutil.rmtree(folder / "parts", ignore_errors=True)
    req.export_path = str(archive)
    req.export_expires_at = _now() + timedelta(hours=options(rt)["export_ttl_hours"])
    audit.record(session, app_id=req.app_id, actor="system", action="dsar.export_ready",
                 resource_type="dsar_request", resource_id=req.id,
                 details={"stores": {s: sum(c.values()) for s, c in done.items()}})


def _certify_erasure(rt: Runtime, session: Any, req: DsarRequest, tasks: list[DsarTask],
                     identity: dict[str, str]) -> None:
    from consent import service as consent

    keep = options(rt)["keep_consent_proof"]
    removed = 0
    if identity.get("user_id") and not keep:
        removed = consent.erase_subject_chain(session, req.app_id,
                                              rt.keys.pseudonyms.subject(req.app_id, identity["user_id"]),
                                              f"dsar:{req.id}")
    req.consent_result = {"consent_events_removed": removed,
                          "kept": "kept as proof of consent (dsar.keep_consent_proof)" if keep else None}
    now = _now()
    claims = {
        "iss": rt.settings.issuer, "iat": int(now.timestamp()), "jti": str(uuid.uuid4()),
        "type": "erasure-certificate", "request": req.id, "jurisdiction": req.jurisdiction,
        "received_at": req.received_at.isoformat(), "completed_at": now.isoformat(),
        "stores": {t.store: {"state": t.state, "erased": t.counts, "kept": t.kept, "error": t.last_error}
                   for t in tasks},
        "consent": req.consent_result,
    }
    req.certificate = rt.keys.signer.sign(claims)
    audit.record(session, app_id=req.app_id, actor="system", action="dsar.erasure_certified",
                 resource_type="dsar_request", resource_id=req.id, details={"jti": claims["jti"]})


def purge_exports() -> int:
    """Destroy exports past their time; returns how many. Run from the scheduler or `flask dsar purge-exports`."""
    rt = runtime()
    purged = 0
    with rt.db.session() as session:
        due = session.scalars(select(DsarRequest).where(DsarRequest.export_path.is_not(None),
                                                        DsarRequest.export_expires_at < _now()))
        for req in due:
            shutil.rmtree(export_dir(rt, req.id), ignore_errors=True)
            req.export_path, req.export_key = None, None
            audit.record(session, app_id=req.app_id, actor="system", action="dsar.export_destroyed",
                         resource_type="dsar_request", resource_id=req.id)
            purged += 1
    return purged


def maintain() -> dict[str, int]:
    """The scheduler's periodic pass: dispatch what the outbox still holds, re-enqueue tasks whose worker is
    gone or whose job Redis lost, and destroy exports past their time."""
    from dsar.service import dispatch, reconcile

    rt = runtime()
    return {"dispatched": dispatch(rt), "reconciled": reconcile(rt), "exports_destroyed": purge_exports()}
