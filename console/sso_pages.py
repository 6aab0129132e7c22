"""Signing in to the console through the company's identity provider (OpenID Connect, Authlib): a link to the
provider, and the callback that turns its verified ID token into a console session."""

from __future__ import annotations

import logging
from typing import Any

from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth
from flask import Flask, abort, current_app, redirect, request, session, url_for
from flask_babel import gettext
from joserfc.errors import JoseError

from console import operators, sso
from console.web import blp, page, start_session
from service.pages import limits
from service.pages.i18n import local_path

log = logging.getLogger(__name__)
EXTENSION = "console_sso"
NEXT_KEY = "console_sso_next"


def install(app: Flask) -> None:
    """Read the OIDC_* settings (a bad one stops the service) and register the provider when they are set."""
    settings = sso.load(app.config["SETTINGS"].env)
    if settings is None:
        return
    oauth = OAuth(app)
    client = oauth.register(
        "console", client_id=settings.client_id, client_secret=settings.client_secret,
        server_metadata_url=f"{settings.issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": settings.scopes, "code_challenge_method": "S256", "default_timeout": 10})
    app.extensions[EXTENSION] = (settings, client)


def provider() -> sso.SsoSettings | None:
    """The provider's settings when single sign-on is on (the sign-in page offers it)."""
    found = current_app.extensions.get(EXTENSION)
    return found[0] if found else None


def _enabled() -> tuple[sso.SsoSettings, Any]:
    found = current_app.extensions.get(EXTENSION)
    if found is None:
        abort(404)
    return found


def _refused(reason: str, status: int) -> Any:
    messages = {
        "provider": gettext("The sign-in through your company account did not complete. Try again."),
        "email": gettext("Your company account has no verified email address."),
        "no_role": gettext("Your company account has no role in the privacy console. Ask an administrator."),
        "mfa": gettext("An administrator must sign in with a second factor at the company's sign-in."),
        "local_account": gettext("A console account with your email address already exists: sign in with its "
                                 "password, or ask an administrator."),
        "disabled": gettext("This account is disabled."),
    }
    return page("console/signin.html", status=status, next="/console/", error=messages[reason], email="",
                sso=provider())


@blp.get("/sso")
@limits.rate("30 per minute", scope="console-sso", methods=("GET",))
def sso_start() -> Any:
    _, client = _enabled()
    target = local_path(request.args.get("next"), "/console/")
    session[NEXT_KEY] = target if target.startswith("/console/") else "/console/"
    try:
        return client.authorize_redirect(url_for("console.sso_callback", _external=True))
    except (AuthlibBaseError, OSError, ValueError) as error:  # the provider's metadata cannot be read
        log.warning("console sso: provider unreachable (%s)", type(error).__name__)
        return _refused("provider", 503)


@blp.get("/sso/callback")
@limits.rate("30 per minute", scope="console-sso-callback", methods=("GET",))
def sso_callback() -> Any:
    settings, client = _enabled()
    try:
        token = client.authorize_access_token()
    except (AuthlibBaseError, JoseError, OSError, ValueError) as error:
        # A wrong state, a refused code, a token whose signature, issuer, audience, nonce or time is wrong.
        log.warning("console sso: sign-in refused (%s)", type(error).__name__)
        return _refused("provider", 401)
    claims = token.get("userinfo")
    if not claims:
        return _refused("provider", 401)
    with current_app.extensions["db"].session() as s:  # refusals are committed: they are evidence too
        try:
            operator = sso.sign_in(s, settings, claims)
        except sso.SsoRefused as refused:
            outcome = refused.reason
        else:
            outcome, session_token = None, operators.open_session(s, operator)
    if outcome is not None:
        return _refused(outcome, 403)
    target = session.pop(NEXT_KEY, "/console/")
    start_session(session_token)
    return redirect(target, code=303)
