"""Notifying data subjects (verification codes, extensions, outcomes) through a pluggable notifier.

`[dsar] notifier = "module:function"` names it; the default, `dsar.notify:to_outbox`, writes the message to the
encrypted `notifications` outbox in the caller's transaction (a mail relay drains it) and logs only that a
message of that kind was queued. A notifier is called as `notifier(session, keys, message)` inside the
transaction that caused it: one that talks to a provider directly should tolerate a rollback after it ran.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from dsar.config import options, resolve
from dsar.models import Notification
from service.crypto import KeyMaterial
from service.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    app_id: int
    request_id: str
    kind: str        # verification_code, deadline_extended, request_<state>
    recipient: str   # personal data: never logged
    body: str        # may hold a code: never logged


Notifier = Callable[[Session, KeyMaterial, Message], None]


def to_outbox(session: Session, keys: KeyMaterial, message: Message) -> None:
    """The default notifier: an encrypted outbox row (it holds an address and maybe a code); a log line that a
    message was queued, without either."""
    session.add(Notification(
        app_id=message.app_id, request_id=message.request_id, kind=message.kind,
        recipient=keys.fields.encrypt(message.recipient.encode(), f"notification:{message.request_id}:to"),
        body=keys.fields.encrypt(message.body.encode(), f"notification:{message.request_id}:body")))
    log.info("notification %s queued for request %s", message.kind, message.request_id)


def send(session: Session, rt: Runtime, *, app_id: int, request_id: str, kind: str, recipient: str,
         body: str) -> None:
    resolve(options(rt.settings).notifier)(session, rt.keys, Message(app_id, request_id, kind, recipient, body))


def read(keys: KeyMaterial, note: Notification) -> tuple[str, str]:
    """Recipient and body of an outbox message, for the relay that delivers it."""
    return (keys.fields.decrypt(note.recipient, f"notification:{note.request_id}:to").decode(),
            keys.fields.decrypt(note.body, f"notification:{note.request_id}:body").decode())
