"""Rights requests in the privacy centre: make one (vouched for by the app when signed in, confirmed by an emailed
code on the open web), follow it (status, due date, what happens next, timeline) and download a finished export."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Response, abort, current_app, flash, redirect, request, stream_with_context, url_for
from flask_babel import get_locale, gettext, ngettext
from marshmallow import Schema, ValidationError, validate
from sqlalchemy import String, cast, select
from sqlalchemy.orm import Session

from dsar import service as dsar
from dsar.config import options as dsar_options
from dsar.deadlines import deadlines
from dsar.exports import decrypt_chunks
from dsar.models import CONSENT_TASK, FINAL, MANUAL_TASK, TYPES, DsarRequest
from dsar.outbox import dispatch
from dsar.states import tasks_of
from holds.service import identity_keys
from portal.web import Person, Site, blp, page, person, remember_request, site
from service.crypto import KeyMaterial
from service.errors import Conflict, Gone, Invalid, Locked, NotFound, TooManyRequests
from service.fields import Email, Text
from service.pages import limits
from service.runtime import Runtime
from service.stores.registry import registry_for

UNSURE = "unsure"  # a rectification whose category the person does not know: an operator applies it by hand
_CODE = re.compile(r"^[0-9]{6}$")
LIST_LIMIT = 100  # requests listed for one person, newest first

class RequestForm(Schema):
    """The request form's fields, bounded as the API's are; a failing field gets the page's own sentence."""

    type = Text(30, required=True, validate=validate.OneOf(TYPES))
    jurisdiction = Text(20, required=True)
    email = Email(load_default=None)
    phone = Text(30, load_default=None, validate=validate.Regexp(r"^\+?[0-9 ()-]{5,30}$"))
    user_id = Text(255, load_default=None)
    category = Text(100, load_default=None)
    item = Text(200, load_default=None)
    value = Text(1000, load_default=None, multiline=True)


FIELDS = tuple(RequestForm().fields)


def _rt() -> Runtime:
    return current_app.extensions["runtime"]


def _actor(here: Site, who: Person | None) -> dsar.Actor:
    """The audit trail's name for the person: the subject's pseudonym when signed in, else `requester`."""
    if who is not None and who.signed_in:
        pseudonym = current_app.extensions["keys"].pseudonyms.subject(here.id, who.subject_id or "")
        return dsar.Actor(here.id, f"subject:{pseudonym}")
    return dsar.Actor(here.id, "requester")


# --- words shown for the request's types, states and laws -------------------------------------------------

def words() -> dict[str, dict[str, str]]:
    """Plain-language names of types, states and jurisdictions, in the page's language."""
    return {
        "types": {
            "access": gettext("Get a copy of my data"),
            "portability": gettext("Move my data to another service"),
            "erasure": gettext("Delete my data"),
            "rectification": gettext("Correct my data"),
            "restriction": gettext("Limit how my data is used"),
            "objection": gettext("Object to how my data is used"),
            "consent_withdrawal": gettext("Withdraw all my consents"),
        },
        "hints": {
            "access": gettext("We send you a file with the personal data we hold about you."),
            "portability": gettext("A machine-readable file of the data you gave us, to take to another service."),
            "erasure": gettext("We delete your personal data, except what the law requires us to keep."),
            "rectification": gettext("Tell us what is wrong and what it should say."),
            "restriction": gettext("We keep your data but stop using it until the matter is settled."),
            "objection": gettext("We stop using your data for the purposes you object to, unless the law "
                                 "gives us overriding reasons."),
            "consent_withdrawal": gettext("We record that you no longer agree to any optional use of your data."),
        },
        "states": {
            "pending_verification": gettext("Waiting for your code"),
            "verified": gettext("Confirmed"),
            "in_progress": gettext("In progress"),
            "completed": gettext("Completed"),
            "partially_completed": gettext("Partly completed"),
            "rejected": gettext("Declined"),
            "failed": gettext("Could not be completed"),
            "cancelled": gettext("Cancelled"),
            "locked": gettext("Locked"),
        },
        "laws": {
            "GDPR": gettext("European Union and EEA (GDPR)"),
            "UK_GDPR": gettext("United Kingdom (UK GDPR)"),
            "CCPA": gettext("California (CCPA)"),
            "CPRA": gettext("California, as amended in 2020 (CPRA)"),
            "VCDPA": gettext("Virginia (VCDPA)"),
            "LGPD": gettext("Brazil (LGPD)"),
            "PIPL": gettext("China (PIPL)"),
            "PIPEDA": gettext("Canada (PIPEDA)"),
        },
    }


def _jurisdictions() -> list[str]:
    return sorted(deadlines(current_app.config["SETTINGS"].toml))


def default_jurisdiction(here: Site) -> str:
    """The app's configured default (checked against the deadlines table at start-up)."""
    return here.branding.default_jurisdiction


def _categories() -> list[str]:
    """The data categories the app's stores declare: what a correction may name."""
    return sorted({c for s in registry_for(_rt()).stores() for c in s.describe().categories})


# --- which requests a session may see ---------------------------------------------------------------------

def subject_requests(session: Session, keys: KeyMaterial, app_id: int, subject_id: str,
                     limit: int = LIST_LIMIT) -> list[DsarRequest]:
    """The app's requests whose identity includes this user id, newest first (matched by keyed pseudonym)."""
    [key] = identity_keys(keys, app_id, {"user_id": subject_id})
    # The JSON list as text narrows the rows portably (SQLite and PostgreSQL); the exact test is in Python.
    rows = session.scalars(select(DsarRequest).where(
        DsarRequest.app_id == app_id, cast(DsarRequest.subject_keys, String).contains(key))
        .order_by(DsarRequest.received_at.desc()).limit(limit))
    return [r for r in rows if key in (r.subject_keys or [])]


def _mine(session: Session, here: Site, who: Person | None, req: DsarRequest) -> bool:
    if who is None or req.app_id != here.id:
        return False
    if req.id in who.request_ids:
        return True
    if not who.signed_in:
        return False
    [key] = identity_keys(current_app.extensions["keys"], here.id, {"user_id": who.subject_id or ""})
    return key in (req.subject_keys or [])


def _owned(session: Session, here: Site, who: Person | None, request_id: str) -> DsarRequest:
    """The request if this session may see it; otherwise 404, the same page as for an id that does not exist."""
    try:
        req = dsar.get_request(session, here.id, request_id)
    except NotFound:
        req = None
    if req is None or not _mine(session, here, who, req):
        abort(404)
    return req


def _identity_key() -> str:
    """The per-identity rate-limit key of a submission: the signed-in subject, else the email address (hashed:
    the limiter's store holds no personal data)."""
    here = site((request.view_args or {}).get("slug", ""))
    who = person(here.id)
    if who is not None and who.signed_in:
        return hashlib.sha256(f"subject\x00{here.id}\x00{who.subject_id}".encode()).hexdigest()
    return limits.per_form_field("email")()


def _request_key() -> str:
    """The per-request rate-limit key of code entry: the request the code is for."""
    here = site((request.view_args or {}).get("slug", ""))
    return hashlib.sha256(f"{here.id}\x00{_pending_id(person(here.id))}".encode()).hexdigest()


# --- make a request ----------------------------------------------------------------------------------------

def _messages(here: Site) -> dict[str, str]:
    return {
        "type": gettext("Choose what you would like us to do."),
        "jurisdiction": gettext("Choose where you live from the list."),
        "email": gettext("Enter your email address, like name@example.com."),
        "phone": gettext("Enter a phone number using digits, spaces and brackets, with + at the start if "
                         "you like."),
        "user_id": gettext("Enter your user ID in %(app)s, at most 255 characters.", app=here.name),
        "category": gettext("Choose the kind of data from the list."),
        "item": gettext("Say which of your details is wrong (at most 200 characters)."),
        "value": gettext("Say what it should be instead (at most 1000 characters)."),
    }


def _check(here: Site, who: Person | None, values: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The form's values as dsar.submit takes them, or the fields in error with their sentences."""
    signed_in = who is not None and who.signed_in
    asked = {"email", *here.branding.identifiers} if not signed_in else {"email"}
    given = {k: v for k, v in values.items() if v and (k not in ("phone", "user_id") or k in asked)}
    messages = _messages(here)
    try:
        form = RequestForm().load(given)
    except ValidationError as exc:
        return {}, {name: messages.get(name, messages["type"]) for name in exc.messages}
    errors: dict[str, str] = {}
    if form["jurisdiction"].upper() not in _jurisdictions():
        errors["jurisdiction"] = messages["jurisdiction"]
    if not signed_in and not form["email"]:
        errors["email"] = messages["email"]
    details = None
    if form["type"] == "rectification":
        category = form["category"] or UNSURE
        if category != UNSURE and category not in _categories():
            errors["category"] = messages["category"]
        if not form["item"]:
            errors["item"] = messages["item"]
        if not form["value"]:
            errors["value"] = messages["value"]
        details = {"corrections": {category: {form["item"] or "": form["value"] or ""}}}
    if errors:
        return {}, errors
    if signed_in:
        subject = {"user_id": who.subject_id}  # type: ignore[union-attr]
    else:
        # The emailed code proves the email address and nothing else: a phone number or user id typed beside it
        # could be anyone's, so the stores are searched by the email alone. The other identifiers go to the
        # privacy team as claims to check by hand (they see them with the request).
        subject = {"email": form["email"]}
        claimed = {k: form[k] for k in ("phone", "user_id") if k in asked and form.get(k)}
        if claimed:
            details = {**(details or {}), "claimed_identifiers": claimed}
    data = {"type": form["type"], "jurisdiction": form["jurisdiction"], "subject": subject,
            "contact_email": form["email"], "details": details, "verified": signed_in,
            "locale": str(get_locale())}
    return data, {}


def _form(here: Site, who: Person | None, values: dict[str, str], errors: dict[str, str],
          status: int = 200) -> Any:
    return page("portal/request_new.html", here, status=status, person=who, values=values, errors=errors,
                words=words(), types=TYPES, jurisdictions=_jurisdictions(),
                chosen_jurisdiction=values.get("jurisdiction") or default_jurisdiction(here),
                categories=_categories(), unsure=UNSURE)


@blp.route("/<slug>/request", methods=["GET", "POST"])
@limits.rate("30 per hour", scope="portal-submit")
@limits.rate("5 per hour", scope="portal-submit-identity", key=_identity_key)
def new_request(slug: str) -> Any:
    here = site(slug)
    who = person(here.id)
    if request.method == "GET":
        return _form(here, who, {"type": request.args.get("type", "")}, {})
    values = {name: (request.form.get(name) or "").strip() for name in FIELDS}
    data, errors = _check(here, who, values)
    if errors:
        return _form(here, who, values, errors, status=422)
    rt, signed_in = _rt(), who is not None and who.signed_in
    try:
        with rt.db.session() as session:
            # Submission never looks the identity up in any store: an identity that matches nothing gets
            # exactly the same answer as one that matches.
            request_id = dsar.submit(session, rt, _actor(here, who), data, can_verify=signed_in).id
    except Invalid as refused:
        messages = _messages(here)
        fields = {k if k in messages else "type" for k in (refused.errors or {"type": []})}
        return _form(here, who, values, {k: messages[k] for k in fields}, status=422)
    if signed_in:
        dispatch(rt)  # committed: the tasks go to the queue now (the maintenance pass catches a miss)
        flash(gettext("Your request has been sent. We have started work on it."), "request")
        return redirect(url_for("portal.request_detail", slug=slug, request_id=request_id), code=303)
    remember_request(here.id, request_id)
    return redirect(url_for("portal.verify_request", slug=slug), code=303)


# --- confirm it with the emailed code ----------------------------------------------------------------------

def _pending_id(who: Person | None) -> str:
    """The request the code is for: the form's, the address's, else the one this session made last."""
    chosen = request.form.get("request") if request.method == "POST" else request.args.get("request")
    if chosen:
        return chosen
    return who.request_ids[-1] if who is not None and who.request_ids else ""


def _verify_page(here: Site, who: Person | None, req: DsarRequest, *, error: str | None = None,
                 notice: str | None = None, status: int = 200) -> Any:
    minutes = int(dsar_options(_rt().settings).code_ttl.total_seconds() // 60)
    return page("portal/request_verify.html", here, status=status, person=who, req=req, error=error,
                notice=notice, minutes=minutes, words=words())


def _locked_page(here: Site, who: Person | None, req: DsarRequest) -> Any:
    return page("portal/request_locked.html", here, status=423, person=who, req=req, words=words())


def _pending(rt: Runtime, here: Site, who: Person | None) -> DsarRequest | Any:
    """The request this session is to enter a code for, or the page to show instead (locked, or already past
    verification)."""
    with rt.db.sessions() as session:
        req = _owned(session, here, who, _pending_id(who))
    if req.status == "locked":
        return _locked_page(here, who, req)
    if req.status != "pending_verification":
        return redirect(url_for("portal.request_detail", slug=here.slug, request_id=req.id), code=303)
    return req


@blp.route("/<slug>/verify", methods=["GET", "POST"])
@limits.rate("60 per hour", scope="portal-code")
@limits.rate("10 per 15 minutes", scope="portal-code-request", key=_request_key)
def verify_request(slug: str) -> Any:
    here = site(slug)
    who = person(here.id)
    rt = _rt()
    req = _pending(rt, here, who)
    if not isinstance(req, DsarRequest):
        return req  # locked, or no longer waiting for a code
    if request.method == "GET":
        return _verify_page(here, who, req)
    code = re.sub(r"\s", "", request.form.get("code") or "")
    if not _CODE.match(code):
        return _verify_page(here, who, req, status=422,
                            error=gettext("Enter the 6-digit code from the email we sent you."))
    try:
        with rt.db.session() as session:
            refused = dsar.verify(session, rt, _actor(here, who), req.id, code)
    except Locked:
        return _locked_page(here, who, req)
    except Conflict:  # confirmed meanwhile (another tab) or closed
        return redirect(url_for("portal.request_detail", slug=slug, request_id=req.id), code=303)
    except Gone:
        return _verify_page(here, who, req, status=422,
                            error=gettext("This code has expired. Ask for a new code below."))
    if isinstance(refused, Locked):
        return _locked_page(here, who, req)
    if refused is not None:  # a wrong code: counted and committed before we answer
        with rt.db.sessions() as session:
            left = dsar.MAX_CODE_ATTEMPTS - dsar.get_request(session, here.id, req.id).code_attempts
        return _verify_page(here, who, req, status=422, error=ngettext(
            "That code is not right. You can try %(num)d more time.",
            "That code is not right. You can try %(num)d more times.", left))
    dispatch(rt)
    remember_request(here.id, req.id)
    flash(gettext("Thank you. Your request is confirmed and we have started work on it."), "request")
    return redirect(url_for("portal.request_detail", slug=slug, request_id=req.id), code=303)


@blp.post("/<slug>/verify/resend")
@limits.rate("10 per hour", scope="portal-resend")
def resend_code(slug: str) -> Any:
    here = site(slug)
    who = person(here.id)
    rt = _rt()
    req = _pending(rt, here, who)
    if not isinstance(req, DsarRequest):
        return req  # locked, or no longer waiting for a code
    try:
        with rt.db.session() as session:
            dsar.resend_code(session, rt, _actor(here, who), req.id)
    except TooManyRequests as limited:
        wait = int((limited.detail or {}).get("retry_after", 3600))
        response = current_app.make_response(_verify_page(
            here, who, req, status=429, notice=ngettext(
                "We have sent as many new codes as we can for now. Please wait %(num)d minute and try again.",
                "We have sent as many new codes as we can for now. Please wait %(num)d minutes and try again.",
                max(1, (wait + 59) // 60))))
        response.headers["Retry-After"] = str(wait)
        return response
    except Conflict:
        return redirect(url_for("portal.request_detail", slug=slug, request_id=req.id), code=303)
    flash(gettext("We sent a new code. Codes sent before it no longer work."), "code")
    return redirect(url_for("portal.verify_request", slug=slug, request=req.id), code=303)


# --- follow it ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    label: str
    when: datetime | None
    state: str  # done, pending, failed


def _task_label(store: str, index: int, total: int, show_names: bool) -> str:
    if store == MANUAL_TASK:
        return gettext("Review by our privacy team")
    if store == CONSENT_TASK:
        return gettext("Your consent records")
    if show_names:
        return store
    return gettext("Our system %(n)s of %(total)s", n=index, total=total)


def timeline(session: Session, here: Site, req: DsarRequest) -> list[Step]:
    """Received, confirmed, each part done, closed: internal store names only when the app's config allows."""
    names = words()["states"]
    steps = [Step(gettext("We received your request"), req.received_at, "done")]
    if req.status == "locked":
        steps.append(Step(gettext("Locked after too many wrong codes"), None, "failed"))
    else:
        steps.append(Step(gettext("Your identity was confirmed"), req.verified_at,
                          "done" if req.verified_at else "pending"))
    if req.extended_at is not None:
        steps.append(Step(gettext("We extended the time we need"), req.extended_at, "done"))
    tasks = tasks_of(session, req.id)
    stores = [t for t in tasks if t.store not in (MANUAL_TASK, CONSENT_TASK)]
    for task in tasks:
        index = stores.index(task) + 1 if task in stores else 0
        label = _task_label(task.store, index, len(stores), here.branding.show_store_names)
        if task.state in ("done", "not_applicable"):
            steps.append(Step(label, task.updated_at, "done"))
        elif task.state == "failed":
            steps.append(Step(label, task.updated_at, "failed"))
        else:
            steps.append(Step(label, None, "pending"))
    if req.status in FINAL:
        steps.append(Step(gettext("Closed: %(status)s", status=names[req.status]), req.closed_at,
                          "failed" if req.status in ("failed", "rejected") else "done"))
    return steps


def _visible(session: Session, here: Site, who: Person) -> list[DsarRequest]:
    found: dict[str, DsarRequest] = {}
    if who.signed_in:
        found = {r.id: r for r in subject_requests(session, current_app.extensions["keys"], here.id,
                                                   who.subject_id or "")}
    for request_id in who.request_ids:
        if request_id not in found:
            row = session.get(DsarRequest, request_id)
            if row is not None and row.app_id == here.id:
                found[row.id] = row
    return sorted(found.values(), key=lambda r: r.received_at, reverse=True)


@blp.get("/<slug>/requests")
def my_requests(slug: str) -> Any:
    here = site(slug)
    who = person(here.id)
    if who is None:
        return redirect(url_for("portal.front", slug=slug), code=303)
    with _rt().db.sessions() as session:
        rows = [dsar.view(session, r) for r in _visible(session, here, who)]
    return page("portal/requests.html", here, person=who, requests=rows, words=words())


@blp.get("/<slug>/requests/<request_id>")
def request_detail(slug: str, request_id: str) -> Any:
    here = site(slug)
    who = person(here.id)
    with _rt().db.sessions() as session:
        req = _owned(session, here, who, request_id)
        shown, steps = dsar.view(session, req), timeline(session, here, req)
    downloadable = (shown["type"] in ("access", "portability") and shown["export_ready"]
                    and shown["status"] in FINAL)
    return page("portal/request_detail.html", here, person=who, req=shown, steps=steps, words=words(),
                downloadable=downloadable)


@blp.post("/<slug>/requests/<request_id>/download")
@limits.rate("20 per hour", scope="portal-download")
def download_export(slug: str, request_id: str) -> Any:
    """Mint the request's single-use export token and spend it at once: the archive streams to this person."""
    here = site(slug)
    who = person(here.id)
    rt = _rt()
    with rt.db.sessions() as session:
        _owned(session, here, who, request_id)
    actor = _actor(here, who)
    try:
        with rt.db.session() as session:
            token, _ = dsar.create_download_token(session, rt, actor, request_id)
        with rt.db.session() as session:
            path, key, label = dsar.redeem_download_token(session, rt, actor, request_id, token)
    except (Conflict, Gone):
        flash(gettext("Your data can no longer be downloaded: it is kept for a limited time only. You can "
                      "make a new request."), "download")
        return redirect(url_for("portal.request_detail", slug=slug, request_id=request_id), code=303)
    return Response(stream_with_context(decrypt_chunks(path, key, label)), mimetype="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="my-data-{request_id}.zip"',
                             "Cache-Control": "no-store"})
