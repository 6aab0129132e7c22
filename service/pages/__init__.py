"""The web layer every face shares (privacy centre, operations console): templates, languages, CSRF, security
headers, rate limits, the signed session cookie and HTML error pages. A face makes its blueprint with
`blueprint()`; the composition root calls `install()` once with all of them."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask

from service.pages import errors, headers, i18n, limits, sessions

HERE = Path(__file__).parent


class PageBlueprint(Blueprint):
    """A Flask blueprint whose views are pages: CSRF-checked forms, security headers, HTML errors."""

    is_pages = True


def blueprint(name: str, import_name: str, url_prefix: str) -> PageBlueprint:
    """A face's blueprint, with its package's `templates/` folder."""
    blp = PageBlueprint(name, import_name, url_prefix=url_prefix, template_folder="templates")
    blp.before_request(sessions.check_csrf)
    return blp


# The shared templates (base layout, error page) and static files (one stylesheet, no fonts, no scripts).
shared = Blueprint("pages", __name__, template_folder="templates", static_folder="static",
                   static_url_path="/static/pages")
shared.add_url_rule("/lang", view_func=i18n.switch, methods=["POST"])
shared.before_request(sessions.check_csrf)
shared.is_pages = True  # type: ignore[attr-defined]


def install(app: Flask, faces: list[Blueprint], translation_dirs: list[str]) -> None:
    """Wire the shared web layer onto `app`, then register each face's blueprint."""
    sessions.install(app)
    i18n.install(app, [str(HERE / "translations"), *translation_dirs])
    app.register_blueprint(shared)
    for face in faces:
        app.register_blueprint(face)
    limits.install(app)
    prefixes = tuple(face.url_prefix for face in faces if face.url_prefix)
    headers.install(app, prefixes)
    errors.install(app, prefixes)
