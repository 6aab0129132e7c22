"""The page an incident notice links to: what happened, what the company has done and what the person can do.
Public behind the campaign's token (anyone holding the email's link), in the notice's language."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, redirect, request, url_for
from flask_babel import get_locale

from incidents import notices
from portal.web import blp, page, person, site
from service.pages import limits
from service.pages.i18n import COOKIE, ONE_YEAR, normalise


@blp.get("/<slug>/notices/<token>")
@limits.rate("60 per minute", scope="portal-notice", methods=("GET",))
def incident_notice(slug: str, token: str) -> Any:
    here = site(slug)
    chosen = normalise(request.args.get("lang"))
    if "lang" in request.args:
        # The email's language becomes the page's (and the centre's) from here on; the address loses the query
        # so that the language switch on the page is not overridden by it.
        response = redirect(url_for("portal.incident_notice", slug=slug, token=token), code=303)
        if chosen:
            response.set_cookie(COOKIE, chosen, max_age=ONE_YEAR, httponly=True, samesite="Lax",
                                secure=request.is_secure)
        return response
    keys = current_app.extensions["keys"]
    with current_app.extensions["db"].sessions() as session:
        campaign = notices.campaign_of(session, keys, here.id, token)
        if campaign is None:
            abort(404)
        view = notices.public_view(session, campaign, str(get_locale()))
    return page("portal/notice.html", here, person=person(here.id), notice=view)
