"""What a notice campaign tells each person: the page of the privacy centre a notice links to (a token per
campaign, no personal data in it or on the page) and the language each person gets the notice in."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.orm import Session

from consent.history import latest_locales
from incidents.models import Campaign, Incident
from service.crypto import KeyMaterial
from service.mail.render import match_locale

# Campaign message keys (incidents.schemas) and the pages' locales.
PAGE_LOCALE = {"en": "en", "zh": "zh_Hans"}
MESSAGE_KEY = {page: key for key, page in PAGE_LOCALE.items()}


def _mac(keys: KeyMaterial, app_id: int, campaign_id: str) -> str:
    secret = keys.pseudonyms.derive("incident-notice-link")
    return hmac.new(secret, f"{app_id}\x00{campaign_id}".encode(), hashlib.sha256).hexdigest()[:32]


def token(keys: KeyMaterial, app_id: int, campaign_id: str) -> str:
    """The page's token: the campaign and a MAC bound to the app, so that nobody can reach a page by guessing or
    another app's address, and the same link serves every person of the campaign (it says nothing about them)."""
    return f"{campaign_id}.{_mac(keys, app_id, campaign_id)}"


def page_url(public_url: str, slug: str, keys: KeyMaterial, app_id: int, campaign_id: str, message_key: str) -> str:
    return f"{public_url}/privacy/{slug}/notices/{token(keys, app_id, campaign_id)}?lang={PAGE_LOCALE[message_key]}"


def campaign_of(session: Session, keys: KeyMaterial, app_id: int, token_: str) -> Campaign | None:
    """The sent (not dry-run) campaign of this app the token names, or None."""
    campaign_id, _, mac = token_.partition(".")
    if len(campaign_id) != 36 or not hmac.compare_digest(mac, _mac(keys, app_id, campaign_id)):
        return None
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or campaign.dry_run:
        return None
    incident = session.get(Incident, campaign.incident_id)
    return campaign if incident is not None and incident.app_id == app_id else None


def public_view(session: Session, campaign: Campaign, page_locale: str) -> dict[str, Any]:
    """What the page shows: the message the privacy team wrote in the page's language (else the campaign's
    first), and the incident's facts that Art. 34(2) asks to tell people; nothing internal (no description,
    no stores, no counts)."""
    incident = session.get(Incident, campaign.incident_id)
    assert incident is not None
    key = MESSAGE_KEY.get(page_locale)
    message = campaign.messages.get(key) if key else None
    if message is None:
        key = "en" if "en" in campaign.messages else sorted(campaign.messages)[0]
        message = campaign.messages[key]
    return {"reference": incident.id, "subject": message["subject"], "text": message["text"],
            "language": PAGE_LOCALE[key], "discovered_at": incident.discovered_at,
            "categories": sorted({s["category"] for s in incident.scope}),
            "consequences": incident.consequences, "measures": incident.measures,
            "state": incident.state, "sent_at": campaign.started_at or campaign.created_at}


def languages(session: Session, keys: KeyMaterial, app_id: int, user_ids: Mapping[int, Iterable[str]],
              messages: Mapping[str, Any]) -> dict[int, str]:
    """Each person's message key: the language they last gave the app's consent in, when the campaign has a
    message in it; else the campaign's default (English when given, else its first). `user_ids` maps a person
    to the app's user ids found for them."""
    default = "en" if "en" in messages else sorted(messages)[0]
    pseudonyms = {p: [keys.pseudonyms.subject(app_id, u) for u in ids] for p, ids in user_ids.items()}
    known = latest_locales(session, app_id, {s for ps in pseudonyms.values() for s in ps})
    chosen: dict[int, str] = {}
    for person, subjects in pseudonyms.items():
        chosen[person] = default
        for subject in subjects:
            key = MESSAGE_KEY.get(match_locale(known.get(subject)) or "")
            if key in messages:
                chosen[person] = key
                break
    return chosen
