"""An outbox row's content: decrypted for delivery, and built into a multipart/alternative EmailMessage."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime

from service.crypto import KeyMaterial
from service.mail.models import MailMessage


@dataclass(frozen=True)
class Content:
    recipient: str
    subject: str
    text: str
    html: str


def ad(row_id: str, part: str) -> str:
    """The associated data binding an encrypted part to its row: a part moved to another row does not decrypt."""
    return f"mail:{row_id}:{part}"


def read(keys: KeyMaterial, row: MailMessage) -> Content:
    """The decrypted recipient, subject and bodies of an outbox row (for delivery, or a test)."""
    dec = keys.fields.decrypt
    return Content(recipient=dec(row.recipient, ad(row.id, "to")).decode(),
                   subject=dec(row.subject, ad(row.id, "subject")).decode(),
                   text=dec(row.text_body, ad(row.id, "text")).decode(),
                   html=dec(row.html_body, ad(row.id, "html")).decode())


def build(keys: KeyMaterial, row: MailMessage, sender: str) -> EmailMessage:
    """The multipart/alternative message of a row, with the Message-ID stored on it."""
    content = read(keys, row)
    message = EmailMessage()
    message["From"] = sender
    message["To"] = content.recipient
    message["Subject"] = content.subject
    message["Message-ID"] = row.message_id
    message["Date"] = format_datetime(row.created_at)
    message.set_content(content.text)
    message.add_alternative(content.html, subtype="html")
    message["Content-Language"] = row.locale.replace("_", "-")  # after: set_content clears Content-* headers
    return message
