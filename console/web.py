"""The console's blueprint and what every page of it needs: the signed-in operator (a server-side session named
by a token in the signed cookie) and rendering with the console's layout."""

from __future__ import annotations

import time
from typing import Any

from flask import current_app, g, render_template, request, session

from console import operators
from console.operators import SignedIn
from service.pages import blueprint

blp = blueprint("console", __name__, url_prefix="/console")
# The console's own stylesheet, next to the shared one (the pages' CSP allows no inline style).
blp.static_folder, blp.static_url_path = "static", "/static"
KEY = "console"  # the operator's session token in the signed cookie
SEEN_KEY = "console_seen"  # the minute this browser last used its session
SETUP_KEY = "console_setup"  # the set-up link's hash while an operator sets up their account


def signed_in() -> SignedIn | None:
    """The operator of this browser's session, or None (looked up once per request)."""
    if "console_operator" in g:
        return g.console_operator
    token = session.get(KEY)
    who = None
    if isinstance(token, str):
        with current_app.extensions["db"].session() as s:  # an idle session is ended, a live one renewed
            who = operators.current(s, token)
        if who is None:
            session.pop(KEY, None)
        elif session.get(SEEN_KEY) != int(time.time() // 60):
            # Re-send the cookie (extending its 30 minutes) once a minute of use, not on every response.
            session[SEEN_KEY] = int(time.time() // 60)
    g.console_operator = who
    return who


def start_session(token: str) -> None:
    """Bind this browser to a new operator session; a new CSRF token with it (no fixation of either)."""
    session.pop("csrf_token", None)
    session.pop(SETUP_KEY, None)
    session[KEY] = token
    session.permanent = True


def page(template: str, status: int = 200, **context: Any) -> Any:
    return render_template(template, operator=g.get("console_operator"), **context), status


def page_number() -> int:
    """The `page` query argument of a paged list: 1 when missing or not a sensible page number."""
    raw = request.args.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 100000 else 1
