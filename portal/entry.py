"""Ways into the privacy centre: its public front page, the single-use link an app or an email hands out, the
app's colours, and signing out."""

from __future__ import annotations

from typing import Any

from flask import current_app, redirect, request, url_for

from portal.web import blp, page, person, sign_in, sign_out, site
from service import audit, weblinks
from service.pages import limits
from service.pages.i18n import COOKIE, ONE_YEAR


@blp.get("/<slug>/")
def front(slug: str) -> Any:
    here = site(slug)
    who = person(here.id)
    if who is not None and who.signed_in:
        return redirect(url_for("portal.consents", slug=slug), code=303)
    return page("portal/front.html", here, person=who)


@blp.get("/<slug>/link/<token>")
@limits.rate("30 per minute", scope="portal-link", methods=("GET",))
def open_link(slug: str, token: str) -> Any:
    """Exchange the token for a session and leave its URL at once (the token never stays in the address bar,
    and pages send no Referer)."""
    here = site(slug)
    db, keys = current_app.extensions["db"], current_app.extensions["keys"]
    try:
        with db.session() as session:
            opened = weblinks.redeem(session, keys, token)
            if opened.app_id != here.id:
                raise weblinks.LinkRefused("unknown")  # rolled back: another app's link is not used up here
            if opened.subject_id is not None:
                actor = f"subject:{keys.pseudonyms.subject(here.id, opened.subject_id)}"
                resource = ("subject", keys.pseudonyms.subject(here.id, opened.subject_id))
            else:
                actor, resource = "requester", ("dsar_request", opened.request_id or "")
            audit.record(session, app_id=here.id, actor=actor, action="portal.link_opened",
                         resource_type=resource[0], resource_id=resource[1], details={"kind": opened.kind})
    except weblinks.LinkRefused as refused:
        return page("portal/link_refused.html", here, status=404 if refused.reason == "unknown" else 410,
                    reason=refused.reason)
    if opened.kind == weblinks.SUBJECT:
        sign_in(here.id, opened.subject_id, return_url=opened.return_url)
        target = url_for("portal.consents", slug=slug)
    else:
        sign_in(here.id, None, (opened.request_id or "",))
        target = url_for("portal.request_detail", slug=slug, request_id=opened.request_id)
    response = redirect(target, code=303)
    if opened.locale:
        response.set_cookie(COOKIE, opened.locale, max_age=ONE_YEAR, httponly=True, samesite="Lax",
                            secure=request.is_secure)
    return response


@blp.post("/<slug>/signout")
def signout(slug: str) -> Any:
    here = site(slug)
    sign_out()
    return redirect(url_for("portal.front", slug=here.slug), code=303)


@blp.get("/<slug>/brand.css")
def brand(slug: str) -> Any:
    """The app's colour as a stylesheet: the pages' Content-Security-Policy allows no inline style."""
    here = site(slug)
    response = current_app.response_class(f":root {{ --brand: {here.branding.primary_colour}; }}\n",
                                          mimetype="text/css")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
