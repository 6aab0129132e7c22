"""My consents: each policy's current version and purposes with a switch; saving records a consent event through
consent.record, as the API does (same ledger, same receipts), on the privacy centre's channel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import abort, current_app, flash, redirect, request, url_for
from flask_babel import get_locale, gettext
from sqlalchemy import bindparam, select

from consent import policies, record, status
from consent.context import Context
from consent.models import Policy, PolicyVersion
from consent.views import current_version
from portal.web import CHANNEL, Person, Site, blp, page, signed_in_page
from service.db import utcnow
from service.errors import Conflict, Invalid, NotFound
from service.tenancy import Principal


@dataclass(frozen=True)
class PolicyState:
    key: str
    title: str
    version: str
    text: str | None
    url: str | None
    purposes: list[Any]
    chosen: dict[str, bool]
    required: bool  # the person must (re)accept this version
    reason: str | None  # no_consent, new_version, withdrawn


def context(here: Site, who: Person) -> Context:
    """The consent operations' context for this person: the app's, acting as the subject (by pseudonym)."""
    keys = current_app.extensions["keys"]
    return Context(principal=Principal(app_id=here.id, app_slug=here.slug, key_id="privacy-centre",
                                       scopes=frozenset({"consent:read", "consent:write"})),
                   keys=keys, settings=current_app.config["SETTINGS"],
                   acting_as=f"subject:{keys.pseudonyms.subject(here.id, who.subject_id or '')}",
                   locations=current_app.extensions["stores"].locations())


# The app's policies in key order: titles only, the rest (purposes, versions) comes from the policy cache.
_TITLES = select(Policy.key, Policy.title).where(Policy.app_id == bindparam("app_id")).order_by(Policy.key)


def _states(here: Site, who: Person) -> list[PolicyState]:
    """Each policy in effect with the person's choices: one transaction of two statements plus one per policy
    (purposes and versions from the per-process policy cache, which this process's writes invalidate)."""
    db, cache = current_app.extensions["db"], current_app.extensions["policy_cache"]
    ctx, now = context(here, who), utcnow()
    states = []
    with db.sessions() as session:
        views = [(title, cache.get(session, here.id, key)) for key, title in session.execute(
            _TITLES, {"app_id": here.id})]
        current = {view.key: current_version(view.versions, now) for _, view in views}
        ids = [v.id for v in current.values() if v is not None]
        texts = {row.id: row for row in session.execute(
            select(PolicyVersion.id, PolicyVersion.text, PolicyVersion.url).where(PolicyVersion.id.in_(ids)))
        } if ids else {}
        for title, view in views:
            version = current[view.key]
            if version is None:
                continue  # nothing in effect yet: nothing to decide on
            answer = status.status(session, ctx, cache, who.subject_id or "", view.key, now)
            states.append(PolicyState(view.key, title, version.version, texts[version.id].text,
                                      texts[version.id].url, list(view.purposes), answer["purposes"] or {},
                                      answer["consent_required"], answer["reason"]))
    return states


@blp.get("/<slug>/consents")
@signed_in_page
def consents(here: Site, who: Person) -> Any:
    return page("portal/consents.html", here, person=who, states=_states(here, who), errors={})


@blp.post("/<slug>/consents/<policy_key>")
@signed_in_page
def save_consents(here: Site, who: Person, policy_key: str) -> Any:
    db = current_app.extensions["db"]
    with db.sessions() as session:
        try:
            known = policies.get_policy(session, here.id, policy_key)
        except NotFound:
            abort(404)  # the error handler renders the page (error.html needs its status)
        required = {p.key for p in known.purposes if p.required}
    answers = {key: True for key in request.form.getlist("purpose")} | {key: True for key in required}
    data = {"policy": policy_key, "version": request.form.get("version", ""), "subject_id": who.subject_id,
            "purposes": answers, "channel": CHANNEL, "locale": str(get_locale())}
    try:
        event = record.record_consent(db, context(here, who), data, request.headers.get("Sec-GPC") == "1",
                                      current_app.extensions["policy_cache"])
    except (Conflict, Invalid):
        # The version changed while the page was open, or the form was altered: show the current state again.
        errors = {policy_key: gettext("This policy changed while the page was open. Review it and save again.")}
        return page("portal/consents.html", here, status=409, person=who, states=_states(here, who), errors=errors)
    flash(gettext("Your choices are saved. Receipt %(id)s.", id=event.id), "saved")
    return redirect(url_for("portal.consents", slug=here.slug) + f"#policy-{policy_key}", code=303)
