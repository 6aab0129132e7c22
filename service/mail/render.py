"""Renders a message kind in a locale: one set of Jinja templates in English (`{% trans %}`), the locale's Babel
catalogue (`translations/<locale>/LC_MESSAGES/messages.mo`) and babel.dates for dates and durations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_timedelta
from babel.support import Translations
from babel.units import format_unit
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

LOCALES = ("en", "zh_Hans")
KINDS = ("verification_code", "request_received", "deadline_extended", "request_completed",
         "request_partially_completed", "request_failed", "request_rejected", "notice")
# Messages to companies (processors), not to people: English only, outside the catalogue (no {% trans %}).
COMPANY_KINDS = ("processor_erasure",)
TEMPLATES = Path(__file__).parent / "templates"
TRANSLATIONS = Path(__file__).parent / "translations"
# What a template may leave out of its context (StrictUndefined catches everything else).
OPTIONAL = {"link": None, "link_valid_for": None, "request_type": None, "app_name": None, "export_ready": False,
            "export_valid_for": None}


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def match_locale(tag: str | None) -> str | None:
    """A BCP 47 tag or locale id to one of LOCALES: 'zh', 'zh-CN', 'zh_Hans' -> 'zh_Hans'; 'en-GB' -> 'en'; a
    malformed tag or another language -> None."""
    if not tag or len(tag) > 35:
        return None
    try:
        language = Locale.parse(tag.replace("_", "-"), sep="-").language
    except (ValueError, TypeError, UnknownLocaleError):
        return None
    return {"zh": "zh_Hans", "en": "en"}.get(language)


def normalise_locale(locale: str | None, default: str = "en") -> str:
    """`match_locale`, or `default` (itself one of LOCALES, else 'en') when the tag names no locale we have."""
    return match_locale(locale) or (default if default in LOCALES else "en")


def default_locale(env: Mapping[str, str]) -> str:
    """MAIL_DEFAULT_LOCALE (a locale or BCP 47 tag), 'en' when unset or unknown."""
    return normalise_locale(env.get("MAIL_DEFAULT_LOCALE"), "en")


def _day(value: date | datetime | str, locale: str) -> str:
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    if isinstance(value, datetime):
        value = value.date()  # deadlines are kept in UTC: the UTC day
    return format_date(value, format="long", locale=locale)


def _duration(value: timedelta, locale: str) -> str:
    return format_timedelta(value, locale=locale)  # to the nearest unit: "3 days", "3天"


def _minutes(value: int, locale: str) -> str:
    return format_unit(value, "duration-minute", length="long", locale=locale)  # exact, CLDR's plural forms


@cache
def environment(locale: str) -> Environment:
    """The Jinja environment of one locale (its catalogue installed, its date filters); built once."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined,
                      autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
                      extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
    # English is the source language: no catalogue, the msgids are the text.
    env.install_gettext_translations(Translations.load(str(TRANSLATIONS), [locale]), newstyle=True)
    env.filters["day"] = lambda value: _day(value, locale)
    env.filters["duration"] = lambda value: _duration(value, locale)
    env.filters["minutes"] = lambda value: _minutes(value, locale)
    env.globals["html_lang"] = locale.replace("_", "-")
    return env


def render(kind: str, locale: str, context: Mapping[str, Any]) -> Rendered:
    """Subject, text and HTML of `kind` in `locale` (one of LOCALES). The context of the request notices:
    `request_id`, `request_type`, `app_name`, `link` and `link_valid_for` (a timedelta) for all but the code;
    `code` and `minutes` (the code), `due` (received, extended), `reason` (extended, rejected), `export_ready`
    and `export_valid_for` (completed, partially completed). `notice` is a message whose text the sender wrote
    in the locale (`notice_subject`, `notice_text`, a notice to many people) and `notice_link` (its page), with
    `request_id` as its reference.
    COMPANY_KINDS have their own context (see each template) and are written in English whatever the locale."""
    if kind not in KINDS + COMPANY_KINDS:
        raise ValueError(f"unknown mail kind {kind!r}")
    if locale not in LOCALES:
        raise ValueError(f"unknown mail locale {locale!r}")
    env = environment(locale)
    values = {**OPTIONAL, **context}
    subject = " ".join(env.get_template(f"{kind}.subject.txt").render(values).split())
    return Rendered(subject=subject, text=env.get_template(f"{kind}.txt").render(values),
                    html=env.get_template(f"{kind}.html").render({**values, "subject": subject}))
