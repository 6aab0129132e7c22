"""History: every consent event of the signed-in person, newest first, each with its signed receipt as a readable
page and as the JWS download, and how to check that receipt with the published keys."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from babel.lists import format_list
from babel.units import format_unit
from flask import abort, current_app, request, url_for
from flask_babel import format_datetime, get_locale, gettext
from sqlalchemy import select
from sqlalchemy.orm import Session

from consent import history as consent_history
from consent import policies
from consent.models import ConsentEvent, Policy, PolicyVersion
from portal.consent_pages import context
from portal.web import Person, Site, blp, page, signed_in_page
from service import audit
from service.crypto import KeyMaterial
from service.errors import NotFound
from service.pages import errors

PER_PAGE = 50
MAX_PAGE = 10_000  # far beyond any real history; bounds the offset a URL can ask for
ADDRESS_ORDER = ("streetAddress", "addressLocality", "addressRegion", "postalCode", "addressCountry")
_DURATION = re.compile(r"(\d+)([YMWDHS])")
_UNITS = {"Y": "duration-year", "W": "duration-week", "D": "duration-day", "H": "duration-hour",
          "S": "duration-second"}


@dataclass(frozen=True)
class Found:
    """One of the person's events, with what a page says about its policy."""

    event: ConsentEvent
    policy_key: str
    policy_title: str
    version: str


def find_event(session: Session, keys: KeyMaterial, app_id: int, subject_id: str, event_id: str) -> Found | None:
    """The event `event_id` when it is this subject's in this app; None otherwise (unknown, another subject's or
    another app's: the caller answers all three alike)."""
    if len(event_id) > 36:  # the column's width: longer is unknown, whatever it is
        return None
    subject = keys.pseudonyms.subject(app_id, subject_id)
    row = session.execute(
        select(ConsentEvent, Policy.key, Policy.title, PolicyVersion.version)
        .join(Policy, Policy.id == ConsentEvent.policy_id)
        .join(PolicyVersion, PolicyVersion.id == ConsentEvent.version_id)
        .where(ConsentEvent.id == event_id, ConsentEvent.app_id == app_id, ConsentEvent.subject == subject)).first()
    return None if row is None else Found(*row)


def when(moment: datetime) -> str:
    """A moment in the person's locale."""
    return format_datetime(_aware(moment), "long")


def duration(iso: str | None) -> str | None:
    """An ISO 8601 duration (P2Y, P1Y6M, PT12H) in words of the person's locale; None for anything else (a
    receipt's "until withdrawn")."""
    if not iso or not iso.startswith("P"):
        return None
    date, _, time = iso.partition("T")
    parts = []
    for text, in_time in ((date, False), (time, True)):
        for amount, unit in _DURATION.findall(text):
            name = ("duration-minute" if in_time else "duration-month") if unit == "M" else _UNITS[unit]
            parts.append(format_unit(int(amount), name, length="long", locale=get_locale()))
    return format_list(parts, locale=get_locale()) if parts else iso


def _page_number() -> int | None:
    raw = request.args.get("page", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        return None
    return int(raw)


@blp.get("/<slug>/history")
@signed_in_page
def history(here: Site, who: Person) -> Any:
    number = _page_number()
    if number is None:
        return errors.render(400, gettext("The page number must be a whole number from 1 to %(max)s.",
                                          max=MAX_PAGE))
    db = current_app.extensions["db"]
    with db.sessions() as session:
        known = {p.key: (p.title, [q.key for q in p.purposes]) for p in policies.list_policies(session, here.id)}
        try:
            items, total = consent_history.history(session, context(here, who), who.subject_id or "", None,
                                                   (number - 1) * PER_PAGE, PER_PAGE)
        except NotFound:  # nothing recorded yet
            items, total = [], 0
    if number > 1 and not items:
        abort(404)
    events = []
    for item in items:
        title, order = known.get(item["policy"], (item["policy"], []))
        keys = [k for k in order if k in item["purposes"]] + sorted(set(item["purposes"]) - set(order))
        events.append({**item, "title": title, "when": when(item["created_at"]),
                       "iso": _aware(item["created_at"]).isoformat(),
                       "choices": [(label(key), item["purposes"][key]) for key in keys]})  # in the policy's order
    older = number + 1 if number * PER_PAGE < total else None
    return page("portal/history.html", here, person=who, events=events, total=total, number=number,
                first=(number - 1) * PER_PAGE + 1, last=(number - 1) * PER_PAGE + len(events),
                older=older, newer=number - 1 if number > 1 else None)


@blp.get("/<slug>/receipts/<event_id>")
@signed_in_page
def receipt(here: Site, who: Person, event_id: str) -> Any:
    app = current_app
    with app.extensions["db"].sessions() as session:
        event = find_event(session, app.extensions["keys"], here.id, who.subject_id or "", event_id)
    if event is None:
        abort(404)
    token = event.event.receipt
    try:
        claims = app.extensions["keys"].signer.verify(token)
    except ValueError:
        # Signed by a key no longer in the ring, or altered: say so rather than vouch for its content.
        claims = None
    header, settings = _header(token), app.config["SETTINGS"]
    return page("portal/receipt.html", here, person=who, found=event, token=token, claims=claims,
                purposes=_purposes(claims) if claims else [], kid=header.get("kid"), alg=header.get("alg"),
                when=when(event.event.created_at), iso=_aware(event.event.created_at).isoformat(),
                controller=(claims.get("piiControllers") or [{}])[0] if claims else None,
                address=_address(claims) if claims else "",
                gpc_denied=[label(k) for k in (claims.get("gpc") or {}).get("deniedPurposes", [])] if claims else [],
                jwks_url=f"{settings.public_url}{url_for('web.jwks')}")


@blp.get("/<slug>/receipts/<event_id>.jws")
@signed_in_page
def receipt_jws(here: Site, who: Person, event_id: str) -> Any:
    """The receipt exactly as signed, to keep or to check with any JOSE library."""
    keys = current_app.extensions["keys"]
    with current_app.extensions["db"].session() as session:
        event = find_event(session, keys, here.id, who.subject_id or "", event_id)
        if event is None:
            abort(404)
        actor = f"subject:{keys.pseudonyms.subject(here.id, who.subject_id or '')}"
        audit.record(session, app_id=here.id, actor=actor, action="portal.receipt_downloaded",
                     resource_type="consent_event", resource_id=event.event.id,
                     details={"policy": event.policy_key, "version": event.version})
    response = current_app.response_class(event.event.receipt, mimetype="application/jose")
    response.headers["Content-Disposition"] = f"attachment; filename=receipt-{event.event.id}.jws"
    return response


def _purposes(claims: dict[str, Any]) -> list[dict[str, Any]]:
    """The receipt's purposes with what was chosen for each, as the page lists them."""
    states, bases = claims.get("purposeStates") or {}, claims.get("lawfulBasis") or {}
    retention = claims.get("retention") or {}
    rows = []
    for entry in (claims.get("services") or [{}])[0].get("purposes", []):
        key = entry.get("purposeKey", "")
        rows.append({"key": key, "label": label(key), "description": entry.get("purpose", ""),
                     "state": states.get(key), "basis": bases.get(key), "required": entry.get("primaryPurpose"),
                     "retention": duration(retention.get(key)), "third_party": entry.get("thirdPartyName")})
    return rows


def _address(claims: dict[str, Any]) -> str:
    """The controller's address in reading order (the signed JSON has its keys sorted)."""
    parts = dict(((claims.get("piiControllers") or [{}])[0].get("address")) or {})
    ordered = [parts.pop(k) for k in ADDRESS_ORDER if k in parts] + list(parts.values())
    return ", ".join(str(p) for p in ordered if p)


def label(key: str) -> str:
    """A purpose key as the consent page names it."""
    return key.replace("_", " ").capitalize()


def _aware(moment: datetime) -> datetime:
    # Stored naive (in UTC) on some backends.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _header(token: str) -> dict[str, Any]:
    try:
        head = token.split(".", 1)[0]
        return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except ValueError:
        return {}
