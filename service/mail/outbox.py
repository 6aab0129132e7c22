"""Queueing a message: an encrypted outbox row in the caller's transaction, delivery dispatched after it commits."""

from __future__ import annotations

import logging
import uuid
from email.utils import make_msgid
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from service.mail import delivery
from service.mail.message import ad as _ad
from service.mail.message import read as read  # the outbox's reader, for tests and tools
from service.mail.models import MailMessage
from service.mail.render import default_locale, normalise_locale, render
from service.runtime import Runtime

log = logging.getLogger(__name__)


def queue(session: Session, rt: Runtime, *, kind: str, recipient: str, context: dict[str, Any],
          locale: str | None = None, app_id: int | None = None, ref: str | None = None,
          dispatch: bool = True) -> MailMessage:
    """Render `kind` in `locale` and add its encrypted outbox row to `session`; does not commit. Once the
    caller commits, a delivery job is enqueued for it (and the cron sweep finds it if that enqueue is lost);
    `dispatch=False` leaves that to the caller (`delivery.enqueue_batch` after its commit)."""
    loc = normalise_locale(locale, default=default_locale(rt.settings.env))
    rendered = render(kind, loc, context)
    row_id = str(uuid.uuid4())
    domain = rt.settings.mail_from.rpartition("@")[2] or "localhost"
    enc = rt.keys.fields.encrypt
    row = MailMessage(
        id=row_id, app_id=app_id, ref=ref, kind=kind, locale=loc, state="queued", attempts=0,
        message_id=make_msgid(idstring=row_id.replace("-", ""), domain=domain),
        recipient=enc(recipient.encode(), _ad(row_id, "to")),
        subject=enc(rendered.subject.encode(), _ad(row_id, "subject")),
        text_body=enc(rendered.text.encode(), _ad(row_id, "text")),
        html_body=enc(rendered.html.encode(), _ad(row_id, "html")))
    session.add(row)
    if dispatch:
        _dispatch_after_commit(session, rt, row_id)
    log.info("mail %s queued (%s)", kind, row_id)
    return row


def _dispatch_after_commit(session: Session, rt: Runtime, row_id: str) -> None:
    def dispatch(_session: Session) -> None:
        try:
            delivery.enqueue(rt, row_id)
        except Exception:  # the row is committed: the cron sweep re-dispatches it
            log.warning("mail %s: delivery not enqueued; the sweep will pick it up", row_id, exc_info=True)

    event.listen(session, "after_commit", dispatch, once=True)
