"""The pages' signed session cookie and CSRF check: HttpOnly, SameSite=Lax, Secure over https, idle expiry."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFProtect

IDLE = timedelta(minutes=30)
csrf = CSRFProtect()


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, marked Secure whenever this request came over https (behind the proxy too)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"] or request.is_secure)


def install(app: Flask) -> None:
    keys = app.extensions["keys"]
    # Derived from the pseudonym key, so every web process signs alike without one more secret to distribute.
    app.secret_key = keys.pseudonyms.derive("flask-session-cookie")
    app.config.update(
        SESSION_COOKIE_NAME="privacy_session", SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
        # Not re-signed and re-sent on every response (a tenth of a page's time): a face marks its session
        # modified when its idle clock moves (the privacy centre: at most once a minute), which extends it.
        PERMANENT_SESSION_LIFETIME=IDLE, SESSION_REFRESH_EACH_REQUEST=False,
        # Forms are checked only on the pages' blueprints (check_csrf): the JSON API authenticates by key.
        WTF_CSRF_CHECK_DEFAULT=False,
        # The strict https check compares the Referer, which pages never send (Referrer-Policy: no-referrer);
        # the token bound to the SameSite session is the protection.
        WTF_CSRF_SSL_STRICT=False,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session, which expires when idle
    )
    app.session_interface = _SessionInterface()
    csrf.init_app(app)


def check_csrf() -> Any:
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()
    return None
