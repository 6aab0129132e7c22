"""Erasure fan-out: when an erasure request completes, each processor that receives any of the erased categories is
told, by a signed webhook or an email through the outbox, and must acknowledge.

One `ErasureNotice` row per request and processor (a unique pair: a replayed completion adds nothing). States:
webhook `pending` (due at `next_attempt_at`) -> `sending` (claimed, with a lease) -> `acknowledged` (the receiver
answered 2xx) | `pending` again (backoff) | `failed` (attempts used up); email `sent` (queued in the mail outbox,
which retries delivery) -> `acknowledged` (the processor opened its link with POST). The database is the source of
truth: the sweep re-enqueues due `pending` rows and takes back `sending` rows whose worker died.

The message holds what the processor needs to find the person, no more: the request's identity fields (it already
holds the person's data under them), the erased categories it receives, the request id and the completion time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event as orm_event
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from governance.models import ErasureNotice, Processor
from governance.processors import erasure_secret
from service import audit
from service.config import env_int
from service.db import utcnow
from service.errors import NotFound
from service.mail.models import MailMessage
from service.runtime import Runtime, runtime
from service.wiring import ErasureCompleted

log = logging.getLogger(__name__)

QUEUE = "default"
SIGNATURE, TIMESTAMP, NOTICE = "X-Privacy-Signature", "X-Privacy-Timestamp", "X-Privacy-Notice"


def options(env: Any) -> tuple[int, int, int]:
    """GOVERNANCE_ERASURE_ATTEMPTS (webhook tries, default 8), GOVERNANCE_ERASURE_RETRY_SECONDS (first backoff,
    doubled each time, default 60), GOVERNANCE_ERASURE_LEASE_SECONDS (a claimed send's lease, default 120)."""
    return (env_int(env, "GOVERNANCE_ERASURE_ATTEMPTS", 8, minimum=1),
            env_int(env, "GOVERNANCE_ERASURE_RETRY_SECONDS", 60),
            env_int(env, "GOVERNANCE_ERASURE_LEASE_SECONDS", 120, minimum=1))


def ack_days(env: Any) -> int:
    """GOVERNANCE_ERASURE_ACK_DAYS: after how many days an unacknowledged notice is a finding (default 7)."""
    return env_int(env, "GOVERNANCE_ERASURE_ACK_DAYS", 7, minimum=1)


def _ad(notice_id: str) -> str:
    return f"governance_erasure_notice:{notice_id}:payload"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`v1=` and the hex HMAC-SHA256 of "<timestamp>." + body: the timestamp is signed too, so a captured message
    cannot be replayed later under a fresh one."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def on_erasure_completed(rt: Runtime, session: Session, event: ErasureCompleted) -> list[ErasureNotice]:
    """The hook: a notice per processor with an erasure contact that receives any erased category, in the
    caller's transaction (email queued in the outbox; webhooks enqueued once it commits). Idempotent."""
    made = []
    known = set(session.scalars(select(ErasureNotice.processor_key)
                                .where(ErasureNotice.request_id == event.request_id)))
    for processor in session.scalars(select(Processor).order_by(Processor.key)):
        shared = sorted(set(processor.categories) & event.categories)
        if not shared or processor.key in known or not (processor.erasure_webhook or processor.erasure_email):
            continue
        made.append(_notice(rt, session, event, processor, shared))
    if any(n.channel == "webhook" for n in made):
        ids = [n.id for n in made if n.channel == "webhook"]
        orm_event.listen(session, "after_commit", lambda _s: _enqueue_all(rt, ids), once=True)
    return made


def _notice(rt: Runtime, session: Session, event: ErasureCompleted, processor: Processor,
            shared: list[str]) -> ErasureNotice:
    notice_id = str(uuid.uuid4())
    now = utcnow()
    message = {"type": "erasure_notice", "notice": notice_id, "request": event.request_id,
               "completed_at": now.isoformat(), "categories": shared, "subject": event.identity}
    notice = ErasureNotice(id=notice_id, request_id=event.request_id, app_id=event.app_id,
                           processor_key=processor.key, categories=shared, state="pending", attempts=0,
                           next_attempt_at=now, created_at=now,
                           payload=rt.keys.fields.encrypt(json.dumps(message).encode(), _ad(notice_id)))
    if processor.erasure_webhook:
        notice.channel = "webhook"
    else:
        from service.mail import outbox

        token = secrets.token_urlsafe(32)
        notice.channel, notice.state, notice.sent_at = "email", "sent", now
        notice.ack_token_sha256 = _token_hash(token)
        mail = outbox.queue(session, rt, kind="processor_erasure", recipient=processor.erasure_email or "",
                            locale="en", app_id=event.app_id, ref=notice_id, context={
                                "processor_name": processor.name, "request_id": event.request_id,
                                "categories": shared, "identity": sorted(event.identity.items()),
                                "ack_url": f"{rt.settings.public_url}/governance/erasure-acks/{token}"})
        notice.mail_id = mail.id
    session.add(notice)
    _audit(session, notice, "governance.erasure_notice_created", categories=shared)
    return notice


def _audit(session: Session, notice: ErasureNotice, action: str, **details: Any) -> None:
    # The request's id is the resource: an auditor follows one erasure to every processor; no identity here.
    audit.record(session, app_id=notice.app_id, actor="system", action=action, resource_type="dsar_request",
                 resource_id=notice.request_id,
                 details={"notice": notice.id, "processor": notice.processor_key, "channel": notice.channel,
                          "state": notice.state, "attempts": notice.attempts, **details})


def _enqueue_all(rt: Runtime, ids: list[str]) -> None:
    for notice_id in ids:
        try:
            enqueue(rt, notice_id)
        except Exception:  # committed: the sweep re-dispatches it
            log.warning("erasure notice %s: not enqueued; the sweep will pick it up", notice_id, exc_info=True)


def enqueue(rt: Runtime, notice_id: str) -> None:
    rt.queue.enqueue(deliver, notice_id, queue=QUEUE, timeout=300)


def deliver(notice_id: str) -> str:
    """The job: attempt a webhook notice while it is due now; returns its state. Each step commits on its own;
    a notice that is not `pending` and due is left alone (idempotent)."""
    rt = runtime()
    while attempt(rt, notice_id):
        pass
    with rt.db.session() as session:
        return session.scalar(select(ErasureNotice.state).where(ErasureNotice.id == notice_id)) or "missing"


def _post(url: str, secret: str, notice_id: str, body: bytes) -> None:
    timestamp = int(utcnow().timestamp())
    request = urllib.request.Request(url, data=body, method="POST", headers={  # noqa: S310 - the register's URL
        "Content-Type": "application/json", NOTICE: notice_id, TIMESTAMP: str(timestamp),
        SIGNATURE: sign(secret, timestamp, body)})
    with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 - the register's URL
        response.read(1024)  # a 2xx is the acknowledgement; the answer's body is not kept


def _reason(exc: Exception) -> str:
    # Never the answer's body nor the URL (which may carry a token): the status or the error's kind.
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return f"URLError: {type(exc.reason).__name__}"
    return type(exc).__name__


def attempt(rt: Runtime, notice_id: str) -> bool:
    """One attempt at a due `pending` webhook notice: claim it (`sending`, attempts + 1, committed), POST, commit
    the outcome. Returns True when it failed and is due again at once (zero backoff)."""
    max_attempts, retry_seconds, lease_seconds = options(rt.settings.env)
    now = utcnow()
    with rt.db.session() as session:
        claimed = session.execute(
            update(ErasureNotice)
            .where(ErasureNotice.id == notice_id, ErasureNotice.channel == "webhook",
                   ErasureNotice.state == "pending", ErasureNotice.next_attempt_at <= now)
            .values(state="sending", attempts=ErasureNotice.attempts + 1,
                    lease_until=now + timedelta(seconds=lease_seconds))).rowcount
        if not claimed:
            return False
        notice = session.get(ErasureNotice, notice_id)
        processor = session.scalar(select(Processor).where(Processor.key == notice.processor_key))
        number = notice.attempts
        url = processor.erasure_webhook if processor else None
        secret = erasure_secret(rt, processor) if processor else None
        body = rt.keys.fields.decrypt(notice.payload, _ad(notice_id))
    error = None
    if not url or not secret:
        error = "processor has no erasure webhook any more"
    else:
        try:
            _post(url, secret, notice_id, body)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            error = _reason(exc)
    with rt.db.session() as session:
        notice = session.scalar(select(ErasureNotice).where(ErasureNotice.id == notice_id,
                                                            ErasureNotice.state == "sending",
                                                            ErasureNotice.attempts == number).with_for_update())
        if notice is None:  # the lease lapsed and the sweep took it back
            return False
        notice.lease_until = None
        if error is None:
            notice.state, notice.sent_at, notice.acknowledged_at, notice.last_error = \
                "acknowledged", utcnow(), utcnow(), None
            _audit(session, notice, "governance.erasure_notice_acknowledged", by="webhook 2xx")
            return False
        gave_up = number >= max_attempts
        notice.state, notice.last_error = ("failed" if gave_up else "pending"), error
        notice.next_attempt_at = utcnow() + timedelta(seconds=retry_seconds * 2 ** (number - 1))
        _audit(session, notice, "governance.erasure_notice_failed" if gave_up else "governance.erasure_notice_retry",
               error=error)
    log.warning("erasure notice %s attempt %d failed (%s)%s", notice_id, number, error, "; gave up" if gave_up else "")
    return not gave_up and retry_seconds == 0


def sweep(rt: Runtime) -> dict[str, int]:
    """Take back `sending` notices past their lease (their worker died: sent again, the receiver dedupes by the
    notice id) and enqueue every due `pending` one (Redis lost the job, or a backoff elapsed). Commits."""
    now = utcnow()
    with rt.db.session() as session:
        stale = session.execute(update(ErasureNotice)
                                .where(ErasureNotice.state == "sending", ErasureNotice.lease_until < now)
                                .values(state="pending", lease_until=None)).rowcount
        due = list(session.scalars(select(ErasureNotice.id).where(ErasureNotice.state == "pending",
                                                                   ErasureNotice.next_attempt_at <= now)))
    for notice_id in due:
        enqueue(rt, notice_id)
    return {"taken_back": stale, "enqueued": len(due)}


def acknowledge(session: Session, token: str) -> ErasureNotice:
    """The processor's acknowledgement through its link (email notices). Idempotent; the caller commits."""
    notice = session.scalar(select(ErasureNotice).where(ErasureNotice.ack_token_sha256 == _token_hash(token))
                            .with_for_update())
    if notice is None:
        raise NotFound("no erasure notice for this link")
    if notice.state != "acknowledged":
        notice.state, notice.acknowledged_at = "acknowledged", utcnow()
        _audit(session, notice, "governance.erasure_notice_acknowledged", by="link")
    return notice


def notices_of(session: Session, request_id: str) -> list[dict[str, Any]]:
    """The request's notices as the API shows them, with each email's outbox state (one query)."""
    rows = session.execute(select(ErasureNotice, MailMessage.state)
                           .outerjoin(MailMessage, MailMessage.id == ErasureNotice.mail_id)
                           .where(ErasureNotice.request_id == request_id)
                           .order_by(ErasureNotice.processor_key)).all()
    return [view(notice, mail_state) for notice, mail_state in rows]


def view(notice: ErasureNotice, mail_state: str | None = None) -> dict[str, Any]:
    """A notice as the API shows it (never the payload nor the token). `mail_state`: the email's outbox row
    (queued, sending, sent, failed, unconfirmed), so a `sent` notice whose email bounced shows it."""
    return {"id": notice.id, "processor": notice.processor_key, "channel": notice.channel,
            "categories": list(notice.categories), "state": notice.state, "attempts": notice.attempts,
            "last_error": notice.last_error, "mail_state": mail_state, "created_at": notice.created_at,
            "sent_at": notice.sent_at, "acknowledged_at": notice.acknowledged_at}


def unacknowledged(session: Session, older_than: datetime) -> list[ErasureNotice]:
    """Notices created before `older_than` and still not acknowledged (findings)."""
    return list(session.scalars(select(ErasureNotice).where(ErasureNotice.state != "acknowledged",
                                                            ErasureNotice.created_at < older_than)
                                .order_by(ErasureNotice.created_at)))
