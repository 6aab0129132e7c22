"""Apps and API keys in the console (admins): create an app, create a key with scopes (its secret shown once,
never stored) and revoke one, through service.tenancy as `flask apps`/`flask keys` do, audited by operator."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext
from sqlalchemy import func, select

from console.auth import ADMIN, app_filter, require, visible
from console.operators import actor as operator_actor
from console.request_pages import _apps
from console.web import blp, page, page_number, signed_in
from service import audit
from service.db import utcnow
from service.tenancy import (
    APP_SCOPES,
    PLATFORM_SCOPES,
    ApiKey,
    App,
    TenancyError,
    create_app_tenant,
    create_key,
    revoke_key,
)

KEYS_PAGE = 50


def _db() -> Any:
    return current_app.extensions["db"]


def _scopes() -> list[str]:
    """The scopes this operator may grant: company-wide ones only by an admin of every app."""
    return sorted(APP_SCOPES | (PLATFORM_SCOPES if app_filter() is None else frozenset()))


def _render(status: int = 200, errors: dict[str, str] | None = None, values: dict[str, Any] | None = None,
            secret: str | None = None) -> Any:
    number = page_number()
    with _db().sessions() as session:
        apps = _apps(session)
        ids = [a.id for a in apps]
        total = session.scalar(select(func.count()).select_from(ApiKey).where(ApiKey.app_id.in_(ids))) or 0
        keys = list(session.execute(select(ApiKey.key_id, ApiKey.label, ApiKey.scopes, ApiKey.created_at,
                                           ApiKey.revoked_at, ApiKey.expires_at, ApiKey.last_used_at, App.slug)
                                    .join(App, App.id == ApiKey.app_id)
                                    .where(ApiKey.app_id.in_(ids))
                                    .order_by(App.slug, ApiKey.created_at, ApiKey.id)
                                    .offset((number - 1) * KEYS_PAGE).limit(KEYS_PAGE)))
    return page("console/apps.html", status=status, apps=apps, keys=keys, now=utcnow(), scopes=_scopes(),
                errors=errors or {}, values=values or {}, secret=secret, may_create_apps=app_filter() is None,
                number=number, pages=max(1, -(-total // KEYS_PAGE)), total=total)


@blp.get("/apps")
@require(ADMIN)
def apps_page() -> Any:
    return _render()


@blp.post("/apps")
@require(ADMIN)
def app_create() -> Any:
    if app_filter() is not None:
        abort(403)  # an app is company-wide: only an admin of every app creates one
    slug, name = request.form.get("slug", "").strip(), request.form.get("name", "").strip()
    values = {"slug": slug, "name": name}
    if len(name) > 200:
        return _render(422, {"name": gettext("A name holds at most 200 characters.")}, values)
    who = signed_in()
    assert who is not None
    try:
        with _db().session() as session:
            app = create_app_tenant(session, slug, name or None)
            audit.record(session, app_id=app.id, actor=operator_actor(who.id), action="app.created",
                         resource_type="app", resource_id=str(app.id), details={"slug": slug})
    except TenancyError as exc:
        taken = "already exists" in str(exc)
        return _render(422, {"slug": gettext("An app with this slug exists already.") if taken else
                             gettext("Use 2 to 63 lowercase letters, digits or dashes.")}, values)
    flash(gettext("App %(slug)s created.", slug=slug), "console")
    return redirect(url_for("console.apps_page"), code=303)


@blp.post("/keys")
@require(ADMIN)
def key_create() -> Any:
    slug, label = request.form.get("app", ""), request.form.get("label", "").strip()
    chosen = request.form.getlist("scopes")
    values = {"app": slug, "label": label, "scopes": chosen}
    errors: dict[str, str] = {}
    with _db().sessions() as session:
        if slug not in {a.slug for a in _apps(session)}:
            errors["app"] = gettext("Choose one of the listed values.")
    if not chosen or set(chosen) - set(_scopes()):
        errors["scopes"] = gettext("Choose at least one of the listed scopes.")
    if len(label) > 200:
        errors["label"] = gettext("A label holds at most 200 characters.")
    if errors:
        return _render(422, errors, values)
    who = signed_in()
    assert who is not None
    with _db().session() as session:
        row, secret = create_key(session, slug, frozenset(chosen), label or None)
        audit.record(session, app_id=row.app_id, actor=operator_actor(who.id), action="key.created",
                     resource_type="api_key", resource_id=row.key_id, details={"scopes": row.scopes})
    # Shown on this answer only (never stored, never in a redirect or the session).
    return _render(201, secret=secret)


@blp.get("/keys/<key_id>/revoke")
@require(ADMIN)
def key_revoke_confirm(key_id: str) -> Any:
    with _db().sessions() as session:
        row = _key(session, key_id)
        return page("console/key_revoke.html", key=row, errors={}, values={})


def _key(session: Any, key_id: str) -> ApiKey:
    row = session.scalar(select(ApiKey).where(ApiKey.key_id == key_id[:32]))
    if row is None or not visible(row.app_id):
        abort(404)
    return row


@blp.post("/keys/<key_id>/revoke")
@require(ADMIN)
def key_revoke(key_id: str) -> Any:
    reason = request.form.get("reason", "").strip()
    who = signed_in()
    assert who is not None
    if len(reason) > 2000:  # the API takes no reason: one given is kept in the audit entry
        with _db().sessions() as session:
            return page("console/key_revoke.html", status=422, key=_key(session, key_id), values={"reason": reason},
                        errors={"reason": gettext("A reason may hold at most 2,000 characters, without control "
                                                  "characters.")})
    with _db().session() as session:
        row = _key(session, key_id)
        already = row.revoked_at is not None
        revoke_key(session, row.key_id)
        if not already:
            audit.record(session, app_id=row.app_id, actor=operator_actor(who.id), action="key.revoked",
                         resource_type="api_key", resource_id=row.key_id,
                         details={"reason": reason} if reason else {})
    flash(gettext("The key %(key)s is revoked.", key=key_id), "console")
    return redirect(url_for("console.apps_page"), code=303)
