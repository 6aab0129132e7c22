"""Draining the mail outbox: per row claim (a lease), send, record; retries with backoff; a sweep for lost jobs.

A row's states: `queued` (due at `next_attempt_at`) -> `sending` (committed, with its attempt number, before the
SMTP transaction starts) -> `sent` (Message-ID and time) | `queued` again (a transient refusal kept, retried with
backoff) | `failed` (a permanent 5xx refusal, or attempts used up). A row still `sending` after its lease lapsed
belongs to a worker that died mid-transaction: the server may have accepted it, so it becomes `unconfirmed` and is
never resent automatically (at most once: a duplicate code or notice is worse than one a person can ask for again).
"""

from __future__ import annotations

import logging
import smtplib
from datetime import timedelta

from sqlalchemy import func, select, update

from service.config import env_int
from service.db import utcnow
from service.mail.message import build, read
from service.mail.models import MailMessage
from service.mail.transport import Transport, session_of, transport_for
from service.runtime import Runtime, runtime

log = logging.getLogger(__name__)

QUEUE = "default"


def _opts(rt: Runtime) -> tuple[int, int, int]:
    env = rt.settings.env
    return (env_int(env, "MAIL_MAX_ATTEMPTS", 5, minimum=1), env_int(env, "MAIL_RETRY_SECONDS", 60),
            env_int(env, "MAIL_LEASE_SECONDS", 300, minimum=1))


def enqueue(rt: Runtime, row_id: str) -> None:
    """Enqueue delivery of one row (idempotent: the job claims the row or finds nothing to do)."""
    rt.queue.enqueue(deliver, row_id, queue=QUEUE, timeout=600)


def enqueue_batch(rt: Runtime, row_ids: list[str]) -> None:
    """Enqueue one job delivering `row_ids` over one SMTP connection (a campaign's batch); each row is still
    claimed, sent and recorded on its own, so the batch is as idempotent as single jobs."""
    if row_ids:
        rt.queue.enqueue(deliver_batch, row_ids, queue=QUEUE, timeout=600)


def deliver_batch(row_ids: list[str]) -> dict[str, int]:
    """The batch job: each row as `deliver` does, through one connection; returns the count per final state."""
    rt = runtime()
    with session_of(transport_for(rt.settings)) as transport:
        for row_id in row_ids:
            while attempt(rt, transport, row_id):
                pass
    with rt.db.session() as session:
        rows = session.execute(select(MailMessage.state, func.count()).where(MailMessage.id.in_(row_ids))
                               .group_by(MailMessage.state))
        return {state: count for state, count in rows}


def deliver(row_id: str) -> str:
    """The job: attempt the row while it is due now; returns its state. Each step commits on its own."""
    rt = runtime()
    transport = transport_for(rt.settings)
    while attempt(rt, transport, row_id):
        pass
    with rt.db.session() as session:
        state = session.scalar(select(MailMessage.state).where(MailMessage.id == row_id))
    return state or "missing"


def _reason(exc: Exception, recipient: str) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(exc.recipients.values()))
        reason = f"recipient refused: {code} {text.decode(errors='replace')}"
    elif isinstance(exc, smtplib.SMTPResponseException):
        error = exc.smtp_error
        reason = f"{exc.smtp_code} {error.decode(errors='replace') if isinstance(error, bytes) else error}"
    else:
        reason = f"{type(exc).__name__}: {exc}"
    return reason.replace(recipient, "<recipient>")[:1000]  # servers echo the address; keep it out


def _permanent(exc: Exception) -> bool:
    """A 5xx reply (RFC 5321 4.2.1: "permanent negative completion") is not retried: the same message to the same
    address would be refused again, and retries only delay the `failed` the sender needs to see. 4xx replies,
    dropped connections and timeouts are transient."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    return isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code >= 500


def attempt(rt: Runtime, transport: Transport, row_id: str) -> bool:
    """One attempt at a due `queued` row: claim and commit `sending`, send, commit the outcome. Returns True
    when the row failed and is due again at once (a zero backoff), so the caller tries again."""
    max_attempts, retry_seconds, lease_seconds = _opts(rt)
    now = utcnow()
    with rt.db.session() as session:
        claimed = session.execute(
            update(MailMessage)
            .where(MailMessage.id == row_id, MailMessage.state == "queued", MailMessage.next_attempt_at <= now)
            .values(state="sending", attempts=MailMessage.attempts + 1,
                    lease_until=now + timedelta(seconds=lease_seconds))).rowcount
        if not claimed:
            return False
        row = session.get(MailMessage, row_id)
        assert row is not None
        number, message = row.attempts, build(rt.keys, row, rt.settings.mail_from)
        recipient = read(rt.keys, row).recipient
    try:
        transport.send(message)
    except (smtplib.SMTPException, OSError) as exc:
        reason = _reason(exc, recipient)
        gave_up = number >= max_attempts or _permanent(exc)
        due = utcnow() + timedelta(seconds=retry_seconds * 2 ** (number - 1))
        with rt.db.session() as session:
            session.execute(
                update(MailMessage).where(MailMessage.id == row_id, MailMessage.state == "sending",
                                          MailMessage.attempts == number)
                .values(state="failed" if gave_up else "queued", next_attempt_at=due, lease_until=None,
                        last_error=reason))
        log.warning("mail %s attempt %d failed (%s)%s", row_id, number, reason, "; gave up" if gave_up else "")
        return not gave_up and retry_seconds == 0
    with rt.db.session() as session:
        session.execute(
            update(MailMessage).where(MailMessage.id == row_id, MailMessage.state == "sending",
                                      MailMessage.attempts == number)
            .values(state="sent", sent_at=utcnow(), lease_until=None, last_error=None))
    log.info("mail %s sent as %s", row_id, message["Message-ID"])
    return False


def sweep() -> dict[str, int]:
    """The cron job: rows left `sending` past their lease become `unconfirmed` (not resent); due `queued` rows
    are enqueued again (Redis lost the job, or a backoff elapsed). Idempotent; commits."""
    rt = runtime()
    now = utcnow()
    with rt.db.session() as session:
        stale = session.execute(
            update(MailMessage).where(MailMessage.state == "sending", MailMessage.lease_until < now)
            .values(state="unconfirmed", lease_until=None,
                    last_error="worker stopped during the SMTP transaction: possibly delivered, not resent")
        ).rowcount
        due = list(session.scalars(select(MailMessage.id).where(MailMessage.state == "queued",
                                                                 MailMessage.next_attempt_at <= now)))
    for row_id in due:
        enqueue(rt, row_id)
    if stale:
        log.warning("mail: %d message(s) possibly delivered by a worker that stopped; marked unconfirmed", stale)
    return {"unconfirmed": stale, "enqueued": len(due)}
