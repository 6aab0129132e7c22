"""Languages of the pages: English and Simplified Chinese from Babel catalogues, chosen by the person's switch
(remembered in a cookie) or else by Accept-Language."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from babel.support import NullTranslations
from flask import Flask, g, redirect, request
from flask_babel import Babel, get_locale, get_translations

LOCALES = ("en", "zh_Hans")
NAMES = {"en": "English", "zh_Hans": "简体中文"}
COOKIE = "lang"
ONE_YEAR = 365 * 24 * 3600


def normalise(tag: str | None) -> str | None:
    """'zh', 'zh-CN', 'zh-Hans', 'zh_Hans' -> 'zh_Hans'; 'en-GB' -> 'en'; anything else None."""
    tag = (tag or "").replace("-", "_").lower()
    if tag.startswith("zh"):
        return "zh_Hans"
    if tag == "en" or tag.startswith("en_"):
        return "en"
    return None


def select_locale() -> str:
    chosen = normalise(request.cookies.get(COOKIE))
    if chosen:
        return chosen
    for tag, _quality in request.accept_languages:
        found = normalise(tag)
        if found:
            return found
    return "en"


def html_lang() -> str:
    """The page's `lang` attribute (BCP 47)."""
    return "zh-Hans" if str(get_locale()) == "zh_Hans" else "en"


def install(app: Flask, directories: list[str]) -> None:
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = ";".join(directories)
    Babel(app, locale_selector=select_locale)
    # Templates look the catalogue up once per request, not once per string (flask-babel's own callables find
    # the request's context, domain and locale again for each of a page's thirty strings: a fifth of its time).
    # Jinja's newstyle gettext still formats and escapes the result.
    app.jinja_env.install_gettext_callables(_gettext, _ngettext, newstyle=True)
    app.jinja_env.globals.update(html_lang=html_lang, locales=LOCALES, locale_names=NAMES,
                                 current_locale=lambda: str(get_locale()))


def _catalogue() -> NullTranslations:
    found = g.get("page_translations")
    if found is None:
        found = g.page_translations = get_translations()
    return found


def _gettext(message: str) -> str:
    return _catalogue().ugettext(message)


def _ngettext(singular: str, plural: str, number: int) -> str:
    return _catalogue().ungettext(singular, plural, number)


def local_path(target: str | None, fallback: str = "/") -> str:
    """`target` when it is a path on this site (never another host: no open redirect), else `fallback`."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return fallback
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else fallback


def switch() -> Any:
    """POST /lang {lang, next}: remember the choice and go back to the page it was made on."""
    chosen = normalise(request.form.get("lang")) or "en"
    response = redirect(local_path(request.form.get("next")), code=303)
    response.set_cookie(COOKIE, chosen, max_age=ONE_YEAR, httponly=True, samesite="Lax",
                        secure=request.is_secure)
    return response
