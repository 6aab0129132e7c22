"""Status callbacks: each change of an agent's request is a row of the `drp_callbacks` outbox, POSTed (the Exercise
Status object as JSON) to the request's `status_callback` by a job, with retries and backoff; the sweep
re-enqueues due rows Redis lost and takes back rows whose worker died. Only the newest status of a request is
worth sending: an older row still waiting is superseded when a newer one is queued."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from datetime import timedelta
from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from dsar.agents.models import Callback, DrpRequest
from dsar.agents.options import drp_options
from service import audit
from service.db import utcnow
from service.runtime import Runtime, runtime

log = logging.getLogger(__name__)
QUEUE = "dsar"


def _ad(callback_id: int) -> str:
    return f"drp_callback:{callback_id}:payload"


def queue(session: Session, rt: Runtime, drp: DrpRequest, status: dict[str, Any]) -> Callback | None:
    """Add the callback of `status` to the caller's transaction (none without a `status_callback`); its job is
    enqueued once that commits."""
    if not drp.status_callback:
        return None
    session.execute(update(Callback).where(Callback.drp_request_id == drp.id, Callback.state == "pending")
                    .values(state="superseded"))
    row = Callback(drp_request_id=drp.id, payload=b"", state="pending", attempts=0, next_attempt_at=utcnow())
    session.add(row)
    session.flush()
    row.payload = rt.keys.fields.encrypt(json.dumps(status).encode(), _ad(row.id))
    audit.record(session, app_id=drp.app_id, actor="system", action="drp.callback_queued",
                 resource_type="drp_request", resource_id=drp.id,
                 details={"callback": row.id, "status": status["status"], "reason": status.get("reason")})
    callback_id = row.id
    event.listen(session, "after_commit", lambda _s: _enqueue_quietly(rt, callback_id), once=True)
    return row


def _enqueue_quietly(rt: Runtime, callback_id: int) -> None:
    try:
        enqueue(rt, callback_id)
    except Exception:  # committed: the sweep re-enqueues it
        log.warning("drp callback %s: not enqueued; the sweep will pick it up", callback_id, exc_info=True)


def enqueue(rt: Runtime, callback_id: int) -> None:
    rt.queue.enqueue(deliver, callback_id, queue=QUEUE, timeout=300)


def deliver(callback_id: int) -> str:
    """The job: attempt a due callback (again at once while a zero backoff allows); returns its state."""
    rt = runtime()
    while attempt(rt, callback_id):
        pass
    with rt.db.session() as session:
        return session.scalar(select(Callback.state).where(Callback.id == callback_id)) or "missing"


def _reason(exc: Exception) -> str:
    # Never the answer's body nor the URL: the status or the error's kind.
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return f"URLError: {type(exc.reason).__name__}"
    return type(exc).__name__


def _post(url: str, body: bytes) -> None:
    request = urllib.request.Request(url, data=body, method="POST",  # noqa: S310 - the agent's signed URL
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310
        response.read(1024)  # the spec: the body of the callback's answer is discarded


def attempt(rt: Runtime, callback_id: int) -> bool:
    """One attempt: claim (`sending`, attempts + 1, a lease; committed), POST, commit the outcome (a 2xx is
    `delivered`). Returns True when it failed and is due again at once."""
    opts = drp_options(rt.settings.env)
    now = utcnow()
    with rt.db.session() as session:
        claimed = session.execute(
            update(Callback).where(Callback.id == callback_id, Callback.state == "pending",
                                   Callback.next_attempt_at <= now)
            .values(state="sending", attempts=Callback.attempts + 1,
                    lease_until=now + timedelta(seconds=opts.callback_lease))).rowcount
        if not claimed:
            return False
        row = session.get(Callback, callback_id)
        assert row is not None
        url = session.scalar(select(DrpRequest.status_callback).where(DrpRequest.id == row.drp_request_id))
        number, drp_id = row.attempts, row.drp_request_id
        body = rt.keys.fields.decrypt(row.payload, _ad(callback_id))
    error = None
    try:
        _post(url or "", body)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        error = _reason(exc)
    with rt.db.session() as session:
        row = session.scalar(select(Callback).where(Callback.id == callback_id, Callback.state == "sending",
                                                    Callback.attempts == number).with_for_update())
        if row is None:  # the lease lapsed and the sweep took it back
            return False
        app_id = session.scalar(select(DrpRequest.app_id).where(DrpRequest.id == drp_id))
        row.lease_until = None
        if error is None:
            row.state, row.delivered_at, row.last_error = "delivered", utcnow(), None
            audit.record(session, app_id=app_id, actor="system", action="drp.callback_delivered",
                         resource_type="drp_request", resource_id=drp_id,
                         details={"callback": callback_id, "attempt": number})
            return False
        gave_up = number >= opts.callback_attempts
        row.state, row.last_error = ("failed" if gave_up else "pending"), error
        row.next_attempt_at = utcnow() + timedelta(seconds=opts.callback_retry * 2 ** (number - 1))
        audit.record(session, app_id=app_id, actor="system",
                     action="drp.callback_failed" if gave_up else "drp.callback_retry",
                     resource_type="drp_request", resource_id=drp_id,
                     details={"callback": callback_id, "attempt": number, "error": error})
    log.warning("drp callback %s attempt %d failed (%s)%s", callback_id, number, error,
                "; gave up" if gave_up else "")
    return not gave_up and opts.callback_retry == 0


def sweep(rt: Runtime) -> dict[str, int]:
    """Take back `sending` rows past their lease (their worker died: sent again; the agent gets the same status
    twice at worst) and enqueue every due `pending` one (Redis lost the job, or a backoff elapsed). Commits."""
    now = utcnow()
    with rt.db.session() as session:
        stale = session.execute(update(Callback).where(Callback.state == "sending", Callback.lease_until < now)
                                .values(state="pending", lease_until=None)).rowcount
        due = list(session.scalars(select(Callback.id).where(Callback.state == "pending",
                                                             Callback.next_attempt_at <= now)))
    for callback_id in due:
        _enqueue_quietly(rt, callback_id)
    return {"callbacks_taken_back": stale, "callbacks_enqueued": len(due)}
