"""The privacy centre's blueprint and what every page of it needs: the app a URL names, the person's session
(bound to one app, and to one subject or to the requests they verified) and rendering with the app's branding."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from flask import abort, current_app, g, redirect, render_template, session, url_for
from sqlalchemy import select

from portal.config import Branding
from service.pages import blueprint
from service.pages.sessions import IDLE
from service.tenancy import App

blp = blueprint("portal", __name__, url_prefix="/privacy")
KEY = "privacy"  # the person's part of the signed session cookie
CHANNEL = "privacy-centre"  # consent events recorded here
MAX_REQUESTS = 20  # request ids one open-web session keeps (oldest dropped)


@dataclass(frozen=True)
class Site:
    """The app a page belongs to, with its branding."""

    id: int
    slug: str
    name: str
    branding: Branding


@dataclass(frozen=True)
class Person:
    """Who the session is: a signed-in subject of the app (`subject_id`), or an open-web requester who may see
    `request_ids` only."""

    app_id: int
    subject_id: str | None
    request_ids: tuple[str, ...]
    return_url: str | None = None  # the app's page the person came from

    @property
    def signed_in(self) -> bool:
        return self.subject_id is not None


def site(slug: str) -> Site:
    """The app `slug` names, or 404 (the same page for an unknown app as for anything else not found)."""
    cached = g.get("portal_site")
    if cached is not None and cached.slug == slug:
        return cached
    known: dict[str, tuple[float, Site]] = current_app.extensions.setdefault("portal_sites", {})
    hit = known.get(slug)
    if hit is not None and hit[0] > time.monotonic():
        g.portal_site = hit[1]
        return hit[1]
    with current_app.extensions["db"].sessions() as s:
        row = s.execute(select(App.id, App.slug, App.name).where(App.slug == slug)).first()
    if row is None:
        abort(404)
    branding = current_app.extensions["portal"].branding(row.slug)
    g.portal_site = Site(row.id, row.slug, branding.name or row.name, branding)
    # An app's id and slug never change; its name rarely: every page need not ask the database again.
    known[slug] = (time.monotonic() + current_app.config["SETTINGS"].cache_ttl_seconds, g.portal_site)
    return g.portal_site


def _context(app_id: int) -> str:
    return f"portal-session:{app_id}"


def sign_in(app_id: int, subject_id: str | None, request_ids: tuple[str, ...] = (),
            return_url: str | None = None) -> None:
    """Start a fresh privacy-centre session for this app (whatever it held before is dropped: a new token, a new
    person). The rest of the cookie (an operator's console session, the CSRF secret) is not the portal's to end."""
    session.pop(KEY, None)
    keys = current_app.extensions["keys"]
    # The subject id is the app's own user id: kept encrypted even inside the signed (not secret) cookie.
    sealed = None if subject_id is None else base64.urlsafe_b64encode(
        keys.fields.encrypt(subject_id.encode(), _context(app_id))).decode()
    session[KEY] = {"a": app_id, "s": sealed, "r": list(request_ids[-MAX_REQUESTS:]), "t": int(time.time()),
                    "u": return_url}
    session.permanent = True


def person(app_id: int) -> Person | None:
    """The person of this session on this app, or None (another app's session, none, or idle too long)."""
    data = session.get(KEY)
    if not isinstance(data, dict) or data.get("a") != app_id:
        return None
    now = int(time.time())
    if now - int(data.get("t", 0)) > IDLE.total_seconds():
        session.pop(KEY, None)
        return None
    if now - int(data["t"]) > 60:  # refreshing the timestamp rewrites the cookie: once a minute is enough
        data["t"] = now
        session.modified = True
    subject = None
    if data.get("s"):
        subject = current_app.extensions["keys"].fields.decrypt(
            base64.urlsafe_b64decode(data["s"]), _context(app_id)).decode()
    return Person(app_id, subject, tuple(data.get("r") or ()), data.get("u"))


def remember_request(app_id: int, request_id: str) -> None:
    """Let this session see a request it just submitted or verified (open web), starting one when needed."""
    data = session.get(KEY)
    if not isinstance(data, dict) or data.get("a") != app_id:
        sign_in(app_id, None, (request_id,))
        return
    ids = [r for r in data.get("r") or [] if r != request_id] + [request_id]
    data["r"], data["t"] = ids[-MAX_REQUESTS:], int(time.time())
    session.modified = True


def sign_out() -> None:
    session.pop(KEY, None)


def page(template: str, site_: Site, status: int = 200, **context: Any) -> Any:
    """Render a privacy-centre page with the app's branding."""
    return render_template(template, site=site_, person=context.pop("person", None), **context), status


def signed_in_page(view: Callable[..., Any]) -> Callable[..., Any]:
    """A page only a signed-in person sees: called as `view(here, who, **url values)`; anyone else (no session,
    another app's, idle too long, an open-web visitor) is sent to the app's front page."""

    @wraps(view)
    def guarded(slug: str, **values: Any) -> Any:
        here = site(slug)
        who = person(here.id)
        if who is None or not who.signed_in:
            return redirect(url_for("portal.front", slug=slug), code=303)
        return view(here, who, **values)

    return guarded
