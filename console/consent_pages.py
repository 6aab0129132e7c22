"""Consent in the console: each app's policies and their versions, publishing a new version (material or not)
through consent.policies.add_version with the API's VersionIn, and the consent rates per purpose by week
(granted, denied, withdrawn) with the share of events carrying GPC, from the daily counts consent.counts keeps
plus the events not yet folded into them."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any

from flask import Response, abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext
from marshmallow import ValidationError
from sqlalchemy.orm import Session

from consent import counts, policies
from consent.context import Context
from consent.models import Policy
from consent.schemas import VersionIn
from console.auth import ADMIN, READ, require
from console.hold_pages import chosen_app
from console.operators import actor as operator_actor
from console.request_pages import _apps
from console.web import blp, page, signed_in
from service.db import utcnow
from service.errors import DomainError, NotFound
from service.tenancy import Principal

WEEKS = 12


def _db() -> Any:
    return current_app.extensions["db"]


def rates(session: Session, policy_id: int, since: datetime) -> dict[str, Any]:
    """Per week and purpose: events granting, denying and withdrawing it; per week: events and those with GPC.
    From the daily counts consent.counts keeps, plus the events not yet folded into them."""
    return counts.rates(session, policy_id, since)


def _policy(session: Session, app_id: int, key: str | None) -> Policy | None:
    found = policies.list_policies(session, app_id)
    if not key:
        return found[0] if found else None
    for p in found:
        if p.key == key:
            return p
    abort(404)


@blp.get("/consent")
@require(READ)
def consent_page(status: int = 200, errors: dict[str, str] | None = None, values: dict[str, str] | None = None) -> Any:
    with _db().sessions() as session:
        apps = _apps(session)
        app = chosen_app(apps, request.values.get("app"))
        all_policies = policies.list_policies(session, app.id)
        policy = _policy(session, app.id, request.values.get("policy"))
        numbers = rates(session, policy.id, utcnow() - timedelta(weeks=WEEKS)) if policy else None
        versions = list(policy.versions) if policy else []
        purposes = [p.key for p in policy.purposes] if policy else []
    return page("console/consent.html", status=status, apps=apps, app=app, policies=all_policies, policy=policy,
                versions=versions, purposes=purposes, numbers=numbers, weeks=WEEKS, errors=errors or {},
                values=values or {})


@blp.get("/consent/rates.csv")
@require(READ)
def consent_csv() -> Any:
    with _db().sessions() as session:
        app = chosen_app(_apps(session), request.args.get("app"))
        policy = _policy(session, app.id, request.args.get("policy"))
        if policy is None:
            abort(404)
        numbers = rates(session, policy.id, utcnow() - timedelta(weeks=WEEKS))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(("week", "purpose", "granted", "denied", "withdrawn"))
    for row in numbers["purposes"]:
        writer.writerow((row["week"], row["purpose"], row["granted"], row["denied"], row["withdrawn"]))
    writer.writerow(())
    writer.writerow(("week", "events", "gpc"))
    for row in numbers["weeks"]:
        writer.writerow((row["week"], row["events"], row["gpc"]))
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="consent-rates.csv"'})


VERSION_TEXTS = {
    "version": lambda: gettext("Give a version name of at most 50 characters."),
    "text": lambda: gettext("Give the policy's text, or its address and SHA-256."),
    "url": lambda: gettext("Enter an http or https address."),
    "sha256": lambda: gettext("Enter the 64 hexadecimal digits of the text's SHA-256."),
    "effective_at": lambda: gettext("Versions take effect in order: not before the latest one."),
    "material": lambda: gettext("Say whether the change is material."),
}


@blp.post("/consent/versions")
@require(ADMIN)
def version_publish() -> Any:
    """A new version of a policy; material ones ask every subject again (the privacy centre shows it)."""
    form = {k: request.form.get(k, "").replace("\r\n", "\n").strip() for k in
            ("app", "policy", "version", "text", "url", "sha256", "material")}
    raw: dict[str, Any] = {k: form[k] for k in ("version", "text", "url", "sha256") if form[k]}
    raw["material"] = {"yes": True, "no": False}.get(form["material"], form["material"])
    who = signed_in()
    assert who is not None
    try:
        data = VersionIn().load(raw)
        with _db().session() as session:
            app = chosen_app(_apps(session), form["app"])
            _policy(session, app.id, form["policy"] or "-")
            ctx = Context(principal=Principal(app.id, app.slug, "console", frozenset({"consent:write"})),
                          keys=current_app.extensions["keys"], settings=current_app.config["SETTINGS"],
                          acting_as=operator_actor(who.id))
            version = policies.add_version(session, ctx, form["policy"], data)
            name = version.version
    except NotFound:
        abort(404)
    except (ValidationError, DomainError) as exc:
        fields = exc.messages if isinstance(exc, ValidationError) else (exc.errors or {"version": None})
        errors = {k: VERSION_TEXTS[k]() for k in (fields if isinstance(fields, dict) else {}) if k in VERSION_TEXTS}
        if isinstance(exc, DomainError) and "version" in errors:
            errors["version"] = gettext("This cannot be done now: %(why)s", why=exc.message)
        return consent_page(status=422 if isinstance(exc, ValidationError) else exc.status,
                            errors=errors or {"version": gettext("Check this field.")}, values=form)
    flash(gettext("Version %(version)s is published.", version=name), "console")
    return redirect(url_for("console.consent_page", app=form["app"], policy=form["policy"]), code=303)
