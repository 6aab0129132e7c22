"""Notifying data subjects (verification codes, receipt, extensions, outcomes) through a pluggable notifier.

`[dsar] notifier = "module:function"` names it; the default, `dsar.notify:to_outbox`, renders the message's
email and adds it to the shared, encrypted mail outbox (`service.mail`) in the caller's transaction; a job
delivers it once that commits. A notifier is called as `notifier(session, rt, message)` inside the transaction
that caused it: one that talks to a provider directly should tolerate a rollback after it ran.

Every message goes to the request's contact address in the request's locale; every one but the code carries a
fresh single-use link to the request's page in the privacy centre (its token is personal: never logged).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dsar.config import options, resolve
from dsar.fields import contact_of
from dsar.models import DsarRequest
from service import weblinks
from service.db import utcnow
from service.mail import outbox
from service.runtime import Runtime
from service.tenancy import App

log = logging.getLogger(__name__)

# The notices, each an email template of service.mail.
KINDS = ("verification_code", "request_received", "deadline_extended", "request_completed",
         "request_partially_completed", "request_failed", "request_rejected")
# A link lives as long as the export it may lead to, but never less than this: mail can take a while to be read.
MIN_LINK_TTL = timedelta(hours=1)


@dataclass(frozen=True)
class Message:
    app_id: int
    request_id: str
    kind: str        # one of KINDS
    recipient: str   # personal data: never logged
    body: str        # plain-text summary, may hold a code or a link: never logged
    context: Mapping[str, Any] = field(default_factory=dict)  # what the email templates fill in
    locale: str | None = None  # None: MAIL_DEFAULT_LOCALE


Notifier = Callable[[Session, Runtime, Message], None]


def to_outbox(session: Session, rt: Runtime, message: Message) -> None:
    """The default notifier: an encrypted row in the shared mail outbox (it holds an address and maybe a code);
    does not commit, and logs only the row's kind and id."""
    outbox.queue(session, rt, kind=message.kind, recipient=message.recipient,
                 context={"request_id": message.request_id, **message.context}, locale=message.locale,
                 app_id=message.app_id, ref=message.request_id)


def link_ttl(rt: Runtime) -> timedelta:
    return max(timedelta(hours=options(rt.settings).export_ttl_hours), MIN_LINK_TTL)


def request_link(session: Session, rt: Runtime, req: DsarRequest) -> tuple[str, timedelta]:
    """A new single-use link to the request's page in the privacy centre, and how long it lives (added to the
    caller's session)."""
    ttl = link_ttl(rt)
    slug = session.scalar(select(App.slug).where(App.id == req.app_id))
    token, _ = weblinks.mint(session, rt.keys, kind=weblinks.REQUEST, app_id=req.app_id, request_id=req.id,
                             locale=req.locale, ttl=ttl)
    return f"{rt.settings.public_url}/privacy/{slug}/link/{token}", ttl


def send(session: Session, rt: Runtime, req: DsarRequest, kind: str, *, body: str,
         context: Mapping[str, Any] | None = None) -> bool:
    """Tell the request's contact (if it has one) about `kind`, in the caller's transaction. Returns whether a
    message went to the notifier."""
    if kind not in KINDS:
        raise ValueError(f"unknown notice {kind!r}")
    recipient = contact_of(rt, req)
    if not recipient:
        return False
    values: dict[str, Any] = {"request_type": req.type,
                              "app_name": session.scalar(select(App.name).where(App.id == req.app_id)),
                              **(context or {})}
    if kind != "verification_code":
        link, ttl = request_link(session, rt, req)
        values.update(link=link, link_valid_for=ttl)
        body = f"{body}\n{link}"
    if req.export_path is not None and req.export_expires_at is not None:
        values.update(export_ready=True, export_valid_for=max(req.export_expires_at - utcnow(), timedelta(0)))
    resolve(options(rt.settings).notifier)(session, rt, Message(req.app_id, req.id, kind, recipient, body, values,
                                                                req.locale))
    return True
