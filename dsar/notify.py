"""Notifying data subjects: the default notifier writes to the notification outbox a mail relay drains."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from dsar.models import Notification
from service.crypto import KeyMaterial

log = logging.getLogger(__name__)


def send(session: Session, keys: KeyMaterial, *, app_id: int, request_id: str, kind: str, recipient: str,
         body: str) -> None:
    """Queue a message in the outbox (encrypted: it holds an address and maybe a code); log only that it was."""
    note = Notification(app_id=app_id, request_id=request_id, kind=kind,
                        recipient=keys.fields.encrypt(recipient.encode(), f"notification:{request_id}:to"),
                        body=keys.fields.encrypt(body.encode(), f"notification:{request_id}:body"))
    session.add(note)
    log.info("notification %s queued for request %s", kind, request_id)


def read(keys: KeyMaterial, note: Notification) -> tuple[str, str]:
    """Recipient and body of an outbox message, for the relay that delivers it."""
    return (keys.fields.decrypt(note.recipient, f"notification:{note.request_id}:to").decode(),
            keys.fields.decrypt(note.body, f"notification:{note.request_id}:body").decode())
