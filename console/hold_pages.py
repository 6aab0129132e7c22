"""Legal holds in the console: each app's holds (paginated), a new hold on a subject, a store or a category, and
the release of a hold with a reason, all through holds.service as the API does (checked by its schemas)."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext
from marshmallow import ValidationError

from console.auth import READ, REQUESTS, require, visible
from console.operators import actor as operator_actor
from console.request_pages import _apps
from console.web import blp, page, page_number, signed_in
from holds import service as holds
from holds.schemas import HoldIn
from service.errors import DomainError
from service.schemas import ReasonIn

PAGE_SIZE = 25


def _db() -> Any:
    return current_app.extensions["db"]


def chosen_app(apps: list[Any], slug: str | None) -> Any:
    """The app of `slug` among those the operator sees (404 for any other), or the first of them."""
    if not apps:
        abort(404)
    if not slug:
        return apps[0]
    for app in apps:
        if app.slug == slug:
            return app
    abort(404)


def _list(app_slug: str | None, *, status: int = 200, errors: dict[str, str] | None = None,
          values: dict[str, str] | None = None) -> Any:
    number = page_number()
    with _db().sessions() as session:
        apps = _apps(session)
        app = chosen_app(apps, app_slug)
        rows, total = holds.list_holds(session, app.id, offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    pages = max(1, -(-total // PAGE_SIZE))
    return page("console/holds.html", status=status, apps=apps, app=app, rows=rows, total=total, number=number,
                pages=pages, errors=errors or {}, values=values or {})


@blp.get("/holds")
@require(READ)
def holds_list() -> Any:
    return _list(request.args.get("app"))


def hold_form_errors(form: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The form checked with the API's HoldIn; errors per field in the operator's language."""
    raw: dict[str, Any] = {"reason": form.get("reason", "").replace("\r\n", "\n").strip()}
    email = form.get("email", "").strip()
    if email:
        raw["subject"] = {"email": email}
    for name in ("store", "category"):
        if form.get(name, "").strip():
            raw[name] = form[name].strip()
    if form.get("until", "").strip():
        raw["until"] = form["until"].strip() + "T00:00:00+00:00"
    texts = {"subject": gettext("Enter a valid email address."),
             "store": gettext("A store name holds at most 100 characters."),
             "category": gettext("A category holds at most 100 characters."),
             "reason": gettext("Give a reason of 3 to 2,000 characters, without control characters."),
             "until": gettext("Enter a date as YYYY-MM-DD.")}
    try:
        return HoldIn().load(raw), {}
    except ValidationError as exc:
        fields = exc.messages if isinstance(exc.messages, dict) else {}
        return {}, {("email" if k == "subject" else k): texts.get(k, gettext("Check this field.")) for k in fields}


@blp.post("/holds")
@require(REQUESTS)
def hold_create() -> Any:
    form = {k: request.form.get(k, "") for k in ("app", "email", "store", "category", "reason", "until")}
    data, errors = hold_form_errors(form)
    if not errors and not (data.get("subject") or data.get("store") or data.get("category")):
        errors["email"] = gettext("Name a subject, a store or a category to hold.")
    if errors:
        return _list(form["app"], status=422, errors=errors, values=form)
    who = signed_in()
    assert who is not None
    try:
        with _db().session() as session:
            app = chosen_app(_apps(session), form["app"])
            holds.create_hold(session, current_app.extensions["keys"], app_id=app.id, actor=operator_actor(who.id),
                              subject=data.get("subject"), store=data.get("store"), category=data.get("category"),
                              reason=data["reason"], until=data.get("until"))
    except DomainError as exc:
        field = next(iter(exc.errors or {"reason": None}))
        return _list(form["app"], status=exc.status, values=form,
                     errors={"email" if field == "subject" else field: gettext("This cannot be done now: %(why)s",
                                                                               why=exc.message)})
    flash(gettext("The hold is in force."), "console")
    return redirect(url_for("console.holds_list", app=form["app"] or None), code=303)


def _hold(session: Any, hold_id: str) -> Any:
    from holds.models import LegalHold

    hold = session.get(LegalHold, hold_id[:36])
    if hold is None or not visible(hold.app_id):
        abort(404)
    return hold


@blp.get("/holds/<hold_id>/release")
@require(REQUESTS)
def hold_release_confirm(hold_id: str) -> Any:
    with _db().sessions() as session:
        hold = _hold(session, hold_id)
        return page("console/hold_release.html", hold=hold, errors={}, values={}, refused=None)


@blp.post("/holds/<hold_id>/release")
@require(REQUESTS)
def hold_release(hold_id: str) -> Any:
    reason = request.form.get("reason", "").replace("\r\n", "\n").strip()
    who = signed_in()
    assert who is not None
    try:
        data = ReasonIn().load({"reason": reason})
    except ValidationError:
        with _db().sessions() as session:
            return page("console/hold_release.html", status=422, hold=_hold(session, hold_id),
                        values={"reason": reason},
                        errors={"reason": gettext("Give a reason of 3 to 2,000 characters, without control "
                                                  "characters.")}, refused=None)
    try:
        with _db().session() as session:
            hold = _hold(session, hold_id)
            slug = next(a.slug for a in _apps(session) if a.id == hold.app_id)
            holds.release_hold(session, app_id=hold.app_id, hold_id=hold.id, actor=operator_actor(who.id),
                               reason=data["reason"])
    except DomainError as exc:  # released meanwhile by someone else: said, nothing overwritten
        with _db().sessions() as session:
            return page("console/hold_release.html", status=exc.status, hold=_hold(session, hold_id),
                        values={"reason": reason}, errors={},
                        refused=gettext("This cannot be done now: %(why)s", why=exc.message))
    flash(gettext("The hold is released."), "console")
    return redirect(url_for("console.holds_list", app=slug), code=303)
