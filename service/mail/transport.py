"""Transports: SMTP (smtplib, SMTP_URL) or, in development, one .eml file per message under instance/mail/."""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from service.config import Settings

log = logging.getLogger(__name__)


class Transport(Protocol):
    def send(self, message: EmailMessage) -> None:
        """Hand the message over; raise on any refusal (the caller records the reason and retries)."""


@dataclass(frozen=True)
class SmtpTransport:
    host: str
    port: int
    implicit_tls: bool
    starttls: bool
    username: str | None
    password: str | None
    timeout: float = 30.0

    @classmethod
    def from_url(cls, url: str) -> SmtpTransport:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        tls = parts.scheme == "smtps"
        return cls(host=parts.hostname or "localhost", port=parts.port or (465 if tls else 25), implicit_tls=tls,
                   starttls=query.get("starttls", ["0"])[0] in {"1", "true", "yes"},
                   username=unquote(parts.username) if parts.username else None,
                   password=unquote(parts.password) if parts.password else None)

    def connect(self) -> smtplib.SMTP:
        """An open, greeted (and, as configured, encrypted and logged-in) SMTP session."""
        # Only when TLS is used: loading the CA bundle costs more than a local SMTP transaction.
        context = ssl.create_default_context() if self.implicit_tls or self.starttls else None
        smtp: smtplib.SMTP
        if self.implicit_tls:
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.starttls:
                smtp.starttls(context=context)
            if self.username:
                smtp.login(self.username, self.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, message: EmailMessage) -> None:
        with self.connect() as smtp:
            # send_message raises SMTPRecipientsRefused when every recipient is refused (ours is one).
            smtp.send_message(message)


class SmtpConnection:
    """One SMTP session for many messages (a batch of notices): a refused recipient leaves it usable (smtplib
    resets the transaction); any other error closes it, and the next message opens a new one."""

    def __init__(self, transport: SmtpTransport) -> None:
        self._transport = transport
        self._smtp: smtplib.SMTP | None = None

    def send(self, message: EmailMessage) -> None:
        if self._smtp is None:
            self._smtp = self._transport.connect()
        try:
            self._smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused:
            raise
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._smtp is not None:
            smtp, self._smtp = self._smtp, None
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()


@dataclass(frozen=True)
class FileTransport:
    """Development default: writes `<instance>/mail/<id>.eml` and logs the path, never the address or body."""

    directory: Path

    def send(self, message: EmailMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = str(message["Message-ID"]).strip("<>").split("@")[0]
        path = self.directory / f"{name}.eml"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(bytes(message))
        tmp.replace(path)  # a reader never sees half a message
        log.info("mail written to %s", path)


@contextmanager
def session_of(transport: Transport) -> Iterator[Transport]:
    """`transport` for several messages in a row: SMTP keeps one connection open until the block ends."""
    if not isinstance(transport, SmtpTransport):
        yield transport
        return
    connection = SmtpConnection(transport)
    try:
        yield connection
    finally:
        connection.close()


def transport_for(settings: Settings) -> Transport:
    if settings.smtp_url:
        return SmtpTransport.from_url(settings.smtp_url)
    return FileTransport(settings.instance_path / "mail")
