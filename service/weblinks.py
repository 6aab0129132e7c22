"""Single-use links into the web faces: a random token (256 bits) stored only as its hash, exchanged once before it
expires. Apps mint them for signed-in people; emails carry them to open-web requesters."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, LargeBinary, String, delete, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from service.crypto.keys import KeyMaterial
from service.db import Base, utcnow

LINK_TTL = timedelta(minutes=10)
# What a link opens: a signed-in person's privacy centre (app + subject), or one open-web request's page.
SUBJECT, REQUEST = "subject", "request"


class WebLink(Base):
    __tablename__ = "web_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    # The app's own user id, encrypted (it identifies a person); None for a request link.
    subject: Mapped[bytes | None] = mapped_column(LargeBinary)
    request_id: Mapped[str | None] = mapped_column(String(36))
    locale: Mapped[str | None] = mapped_column(String(16))
    return_url: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


@dataclass(frozen=True)
class Opened:
    """What a redeemed link grants."""

    kind: str
    app_id: int
    subject_id: str | None
    request_id: str | None
    locale: str | None
    return_url: str | None


class LinkRefused(Exception):
    """The token is unknown, already used or expired: `reason` is one of those words (shown as a page)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def token_hash(token: str) -> str:
    # A 256-bit random token needs no slow hash: nobody can guess one to test against the stored digest.
    return hashlib.sha256(token.encode()).hexdigest()


def _context(app_id: int) -> str:
    return f"weblink:{app_id}"


def mint(session: Session, keys: KeyMaterial, *, kind: str, app_id: int, subject_id: str | None = None,
         request_id: str | None = None, locale: str | None = None, return_url: str | None = None,
         ttl: timedelta = LINK_TTL, now: datetime | None = None) -> tuple[str, datetime]:
    """A new link's token and expiry; the row is added to `session` (the caller commits)."""
    if kind not in (SUBJECT, REQUEST) or (kind == SUBJECT) != (subject_id is not None) or (
            kind == REQUEST) != (request_id is not None):
        raise ValueError("a subject link names a subject, a request link a request")
    token = secrets.token_urlsafe(32)
    expires = (now or utcnow()) + ttl
    session.add(WebLink(
        token_hash=token_hash(token), kind=kind, app_id=app_id, request_id=request_id, locale=locale,
        return_url=return_url, expires_at=expires,
        subject=None if subject_id is None else keys.fields.encrypt(subject_id.encode(), _context(app_id))))
    return token, expires


def redeem(session: Session, keys: KeyMaterial, token: str, now: datetime | None = None) -> Opened:
    """Use a link once: two concurrent redemptions of one token cannot both succeed (a conditional UPDATE)."""
    now = now or utcnow()
    if not token or len(token) > 128:
        raise LinkRefused("unknown")
    digest = token_hash(token)
    row = session.query(WebLink).filter_by(token_hash=digest).one_or_none()
    if row is None:
        raise LinkRefused("unknown")
    if row.used_at is not None:
        raise LinkRefused("used")
    if row.expires_at <= now:
        raise LinkRefused("expired")
    claimed = session.execute(update(WebLink).where(WebLink.id == row.id, WebLink.used_at.is_(None))
                              .values(used_at=now).execution_options(synchronize_session=False)).rowcount
    if claimed != 1:
        raise LinkRefused("used")
    subject = None if row.subject is None else keys.fields.decrypt(row.subject, _context(row.app_id)).decode()
    return Opened(kind=row.kind, app_id=row.app_id, subject_id=subject, request_id=row.request_id,
                  locale=row.locale, return_url=row.return_url)


def purge(session: Session, now: datetime | None = None, keep: timedelta = timedelta(days=1)) -> int:
    """Delete links expired more than `keep` ago (their rows hold an encrypted subject id for nothing)."""
    return session.execute(delete(WebLink).where(WebLink.expires_at < (now or utcnow()) - keep)).rowcount
