"""Notifying data subjects (verification codes, extensions, outcomes) through a pluggable notifier.

`[dsar] notifier = "module:function"` names it; the default, `dsar.notify:to_outbox`, renders the message's
email and adds it to the shared, encrypted mail outbox (`service.mail`) in the caller's transaction; a job
delivers it once that commits. A notifier is called as `notifier(session, rt, message)` inside the transaction
that caused it: one that talks to a provider directly should tolerate a rollback after it ran.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from dsar.config import options, resolve
from service.mail import outbox
from service.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    app_id: int
    request_id: str
    kind: str        # verification_code, deadline_extended, request_<state>
    recipient: str   # personal data: never logged
    body: str        # plain-text summary, may hold a code: never logged
    context: Mapping[str, Any] = field(default_factory=dict)  # what the email templates fill in
    locale: str | None = None  # None: MAIL_DEFAULT_LOCALE


Notifier = Callable[[Session, Runtime, Message], None]

# A request's notice kind -> the email template; an outcome without its own template says its status.
_TEMPLATES = {"verification_code": "verification_code", "deadline_extended": "deadline_extended",
              "request_completed": "request_completed", "request_rejected": "request_rejected",
              "request_received": "request_received"}


def to_outbox(session: Session, rt: Runtime, message: Message) -> None:
    """The default notifier: an encrypted row in the shared mail outbox (it holds an address and maybe a code);
    does not commit, and logs only the row's kind and id."""
    outbox.queue(session, rt, kind=_TEMPLATES.get(message.kind, "request_status"), recipient=message.recipient,
                 context={"request_id": message.request_id, **message.context}, locale=message.locale,
                 app_id=message.app_id, ref=message.request_id)


def send(session: Session, rt: Runtime, *, app_id: int, request_id: str, kind: str, recipient: str,
         body: str, context: Mapping[str, Any] | None = None) -> None:
    resolve(options(rt.settings).notifier)(session, rt, Message(app_id, request_id, kind, recipient, body,
                                                                dict(context or {})))
