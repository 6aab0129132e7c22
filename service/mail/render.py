"""Renders a message kind in a locale from per-locale Jinja templates: subject, plain text and HTML."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

LOCALES = ("en", "zh_Hans")
KINDS = ("verification_code", "request_received", "deadline_extended", "request_completed", "request_rejected",
         "request_status")
_ENV = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"), undefined=StrictUndefined,
                   autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False))


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def normalise_locale(locale: str | None, default: str = "en") -> str:
    """'zh', 'zh-CN', 'zh_Hans' -> 'zh_Hans'; anything else English-like -> 'en'; unknown -> `default`."""
    tag = (locale or "").replace("-", "_").lower()
    if tag.startswith("zh"):
        return "zh_Hans"
    if tag.startswith("en"):
        return "en"
    return default if default in LOCALES else "en"


def render(kind: str, locale: str, context: dict[str, Any]) -> Rendered:
    if kind not in KINDS:
        raise ValueError(f"unknown mail kind {kind!r}")
    if locale not in LOCALES:
        raise ValueError(f"unknown mail locale {locale!r}")
    base = f"{locale}/{kind}"
    return Rendered(subject=_ENV.get_template(f"{base}.subject.txt").render(context).strip(),
                    text=_ENV.get_template(f"{base}.txt").render(context),
                    html=_ENV.get_template(f"{base}.html").render(context))
