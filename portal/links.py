"""Links into the privacy centre: minted by an app for its signed-in user, opened once by the person."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from service import audit, weblinks
from service.config import Settings
from service.crypto.keys import KeyMaterial
from service.pages.i18n import normalise


def url_for_token(settings: Settings, slug: str, token: str) -> str:
    return f"{settings.public_url}/privacy/{slug}/link/{token}"


def mint_subject_link(session: Session, keys: KeyMaterial, settings: Settings, *, app_id: int, slug: str,
                      actor: str, subject_id: str, return_url: str | None, locale: str | None
                      ) -> tuple[str, datetime]:
    """A single-use sign-in link for one of the app's users (the caller commits)."""
    token, expires = weblinks.mint(session, keys, kind=weblinks.SUBJECT, app_id=app_id, subject_id=subject_id,
                                   return_url=return_url, locale=normalise(locale))
    audit.record(session, app_id=app_id, actor=actor, action="portal.link_minted", resource_type="subject",
                 resource_id=keys.pseudonyms.subject(app_id, subject_id), details={"expires_at": expires.isoformat()})
    return url_for_token(settings, slug, token), expires
