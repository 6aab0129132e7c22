"""Signing in and out of the console, and an operator's one-time set-up: a password, then an authenticator
(required for admins, optional for others)."""

from __future__ import annotations

import base64
from typing import Any

from flask import current_app, flash, g, redirect, request, session, url_for
from flask_babel import gettext

from console import operators, passwords, sso_pages
from console.auth import READ, require
from console.models import Operator
from console.passwords import MAX_LENGTH, MIN_LENGTH
from console.web import KEY, SETUP_KEY, blp, page, signed_in, start_session
from service.pages import limits
from service.pages.i18n import local_path


def _db() -> Any:
    return current_app.extensions["db"]


def _keys() -> Any:
    return current_app.extensions["keys"]


# --- sign-in and sign-out ----------------------------------------------------------------------------------

def _next() -> str:
    target = local_path(request.values.get("next"), "/console/")
    return target if target.startswith("/console/") or target == "/console" else "/console/"


@blp.get("/signin")
def signin() -> Any:
    if signed_in() is not None:
        return redirect(_next(), code=303)
    return page("console/signin.html", next=_next(), error=None, email="", sso=sso_pages.provider())


@blp.post("/signin")
@limits.rate("20 per minute", scope="console-signin")
@limits.rate("10 per 15 minutes", scope="console-signin-email", key=limits.per_form_field("email"))
def signin_post() -> Any:
    email = (request.form.get("email") or "").strip()[:254]
    with _db().session() as s:  # committed whatever the outcome: failures and locks must count
        found = operators.authenticate(s, _keys(), email, request.form.get("password") or "",
                                       request.form.get("code"))
        token = operators.open_session(s, found) if found is not None else None
    if token is None:
        error = gettext("The email, password or code is not right, or the account is locked. After %(n)s wrong "
                        "attempts an account is locked for %(minutes)s minutes.", n=operators.MAX_FAILURES,
                        minutes=int(operators.LOCK_FOR.total_seconds() // 60))
        return page("console/signin.html", status=401, next=_next(), error=error, email=email,
                    sso=sso_pages.provider())
    start_session(token)
    return redirect(_next(), code=303)


@blp.post("/signout")
def signout() -> Any:
    with _db().session() as s:
        operators.end_session(s, session.get(KEY))
    session.pop(KEY, None)
    g.pop("console_operator", None)
    flash(gettext("You are signed out."), "console")
    return redirect(url_for("console.signin"), code=303)


@blp.get("/account")
@require(READ)
def account() -> Any:
    return page("console/account.html")


@blp.post("/signout-everywhere")
@require(READ)
def signout_everywhere() -> Any:
    who = signed_in()
    assert who is not None
    with _db().session() as s:
        ended = operators.end_all(s, who.id, operators.actor(who.id))
    session.pop(KEY, None)
    flash(gettext("You are signed out on every device (%(n)s sessions ended).", n=ended), "console")
    return redirect(url_for("console.signin"), code=303)


# --- set-up ------------------------------------------------------------------------------------------------

def _setup_operator(s: Any) -> Operator | None:
    token_hash = session.get(SETUP_KEY)
    if not isinstance(token_hash, str):
        return None
    try:
        operator, _ = operators.setup_target(s, token_hash, hashed=True)
    except operators.SetupRefused:
        session.pop(SETUP_KEY, None)
        return None
    return operator


def _refused(reason: str) -> Any:
    return page("console/setup_refused.html", status=404 if reason == "unknown" else 410, reason=reason)


@blp.get("/setup/<token>")
@limits.rate("30 per minute", scope="console-setup-link", methods=("GET",))
def setup_link(token: str) -> Any:
    """Keep the link's hash in the session and leave the token's URL at once (it never stays in the address
    bar); the link is used up only when set-up is complete."""
    with _db().sessions() as s:
        try:
            _, digest = operators.setup_target(s, token)
        except operators.SetupRefused as refused:
            return _refused(refused.reason)
    session.pop(KEY, None)  # whoever was signed in here, set-up is for the link's operator
    session[SETUP_KEY] = digest
    session.permanent = True
    return redirect(url_for("console.setup"), code=303)


def _password_errors(password: str, again: str) -> dict[str, str]:
    problem = None if password else "missing"
    problem = problem or passwords.problem(password)
    messages = {
        "missing": gettext("Choose a password."),
        "short": gettext("Use at least %(n)s characters.", n=MIN_LENGTH),
        "long": gettext("Use at most %(n)s characters.", n=MAX_LENGTH),
        "common": gettext("This password is too common or too easy to guess. Choose another one, for example "
                          "several unrelated words."),
    }
    errors = {"password": messages[problem]} if problem else {}
    if not errors and password != again:
        errors["again"] = gettext("The two passwords are not the same.")
    return errors


@blp.get("/setup")
def setup() -> Any:
    with _db().sessions() as s:
        operator = _setup_operator(s)
    if operator is None:
        return _refused("unknown")
    return page("console/setup.html", who=operator, errors={}, min_length=MIN_LENGTH)


@blp.post("/setup")
@limits.rate("20 per minute", scope="console-setup")
def setup_post() -> Any:
    password, again = request.form.get("password") or "", request.form.get("again") or ""
    with _db().session() as s:
        operator = _setup_operator(s)
        if operator is None:
            return _refused("unknown")
        errors = _password_errors(password, again)
        if not errors:
            operators.choose_password(s, operator, password)
    if errors:
        return page("console/setup.html", status=422, who=operator, errors=errors, min_length=MIN_LENGTH)
    return redirect(url_for("console.setup_totp"), code=303)


def _qr(uri: str) -> str | None:
    """The otpauth URI as an SVG QR code in a data: URI (drawn here: no script, no other host)."""
    import segno

    svg = segno.make(uri, error="m").svg_inline(scale=4, border=2, dark="#000000", light="#ffffff")
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def _totp_page(s: Any, operator: Operator, status: int = 200, error: str | None = None) -> Any:
    secret = operators.pending_secret(_keys(), operator)
    if secret is None:
        secret = operators.start_totp(s, _keys(), operator)
    uri = operators.provisioning_uri(operator, secret)
    grouped = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
    return page("console/setup_totp.html", status=status, who=operator, secret=grouped, uri=uri, qr=_qr(uri),
                required=operators.totp_required(operator), error=error)


@blp.get("/setup/authenticator")
def setup_totp() -> Any:
    with _db().session() as s:  # the secret, made on the first visit, is kept (encrypted) until confirmed
        operator = _setup_operator(s)
        if operator is None:
            return _refused("unknown")
        if operator.password_hash is None:
            return redirect(url_for("console.setup"), code=303)
        return _totp_page(s, operator)


def _finish(s: Any, operator: Operator) -> Any:
    if not operators.finish_setup(s, operator, session.get(SETUP_KEY, "")):
        return _refused("used")
    session.pop(SETUP_KEY, None)
    flash(gettext("Your account is ready. Sign in."), "console")
    return redirect(url_for("console.signin"), code=303)


@blp.post("/setup/authenticator")
@limits.rate("20 per minute", scope="console-setup")
def setup_totp_post() -> Any:
    with _db().session() as s:
        operator = _setup_operator(s)
        if operator is None:
            return _refused("unknown")
        if operator.password_hash is None:
            return redirect(url_for("console.setup"), code=303)
        if not operators.confirm_totp(s, _keys(), operator, request.form.get("code") or ""):
            return _totp_page(s, operator, status=422, error=gettext(
                "That code is not right. Enter the 6 digits your authenticator app shows now."))
        return _finish(s, operator)


@blp.post("/setup/skip")
def setup_skip() -> Any:
    with _db().session() as s:
        operator = _setup_operator(s)
        if operator is None:
            return _refused("unknown")
        if operator.password_hash is None:
            return redirect(url_for("console.setup"), code=303)
        if operators.totp_required(operator):
            return _totp_page(s, operator, status=422, error=gettext(
                "Administrators must use an authenticator app."))
        return _finish(s, operator)
