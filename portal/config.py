"""The `[portal]` settings: each app's branding and open-web options (`[portal.apps.<slug>]`), validated once."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from flask import Flask

from service.config import ConfigError, Settings

_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
# Identifiers a person may give on the open web besides the email address the code goes to.
IDENTIFIERS = ("phone", "user_id")


@dataclass(frozen=True)
class Branding:
    name: str | None = None            # default: the app's registered name
    logo_url: str | None = None        # a path on this service or a data: URL: pages load nothing from elsewhere
    primary_colour: str = "#0b5cad"    # white text on it must reach 4.5:1 (WCAG AA)
    privacy_contact: str | None = None  # an email address or URL shown in the footer
    default_jurisdiction: str = "GDPR"  # a jurisdiction of dsar's deadlines table
    identifiers: tuple[str, ...] = ()  # asked on the open web besides email, e.g. ["phone"]
    show_store_names: bool = False     # name internal stores in a request's timeline


@dataclass(frozen=True)
class Options:
    default: Branding
    apps: Mapping[str, Branding]

    def branding(self, slug: str) -> Branding:
        return self.apps.get(slug, self.default)


def _luminance(colour: str) -> float:
    def channel(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast_with_white(colour: str) -> float:
    return 1.05 / (_luminance(colour) + 0.05)


def _branding(section: Mapping[str, Any], where: str, base: Branding) -> Branding:
    known = {f.name for f in fields(Branding)}
    unknown = set(section) - known - {"apps"}
    if unknown:
        raise ConfigError(f"PRIVACY_CONFIG {where}: unknown option(s) {sorted(unknown)}")
    values: dict[str, Any] = {}
    for key in known & set(section):
        value = section[key]
        if key == "show_store_names":
            if not isinstance(value, bool):
                raise ConfigError(f"PRIVACY_CONFIG {where}.{key}: expected true or false")
        elif key == "identifiers":
            if not isinstance(value, list) or any(v not in IDENTIFIERS for v in value):
                raise ConfigError(f"PRIVACY_CONFIG {where}.{key}: expected a list of {list(IDENTIFIERS)}")
            value = tuple(value)
        elif not isinstance(value, str) or not value:
            raise ConfigError(f"PRIVACY_CONFIG {where}.{key}: expected a non-empty string")
        values[key] = value
    colour = values.get("primary_colour", base.primary_colour)
    if not _COLOUR.match(colour):
        raise ConfigError(f"PRIVACY_CONFIG {where}.primary_colour: expected #rrggbb, got {colour!r}")
    if contrast_with_white(colour) < 4.5:
        raise ConfigError(f"PRIVACY_CONFIG {where}.primary_colour: white text on {colour} has a contrast of "
                          f"{contrast_with_white(colour):.2f}:1, under WCAG AA's 4.5:1; choose a darker colour")
    logo = values.get("logo_url")
    local = logo is not None and logo.startswith("/") and not logo.startswith("//")
    if logo is not None and not (local or logo.startswith("data:image/")):
        raise ConfigError(f"PRIVACY_CONFIG {where}.logo_url: a path on this service or a data:image/ URL "
                          "(pages load nothing from another host)")
    jurisdiction = values.get("default_jurisdiction")
    if jurisdiction is not None:
        values["default_jurisdiction"] = jurisdiction.upper()
    return Branding(**{**{f.name: getattr(base, f.name) for f in fields(Branding)}, **values})


def options(settings: Settings) -> Options:
    """`[portal]` with its defaults; read once at start-up (kept in app.extensions["portal"])."""
    section = settings.toml.get("portal", {})
    if not isinstance(section, dict):
        raise ConfigError("PRIVACY_CONFIG [portal]: expected a table")
    default = _branding(section, "[portal]", Branding())
    apps = section.get("apps", {})
    if not isinstance(apps, dict) or any(not isinstance(v, dict) for v in apps.values()):
        raise ConfigError("PRIVACY_CONFIG [portal.apps]: expected a table of tables, one per app slug")
    return Options(default, {slug: _branding(v, f"[portal.apps.{slug}]", default) for slug, v in apps.items()})


def install(app: Flask) -> None:
    from dsar.deadlines import deadlines

    settings = app.config["SETTINGS"]
    found = options(settings)
    known = deadlines(settings.toml)
    for slug, branding in [("", found.default), *found.apps.items()]:
        if branding.default_jurisdiction not in known:
            where = f"[portal.apps.{slug}]" if slug else "[portal]"
            raise ConfigError(f"PRIVACY_CONFIG {where}.default_jurisdiction: {branding.default_jurisdiction!r} is "
                              f"not a jurisdiction of the deadlines table; choose from {sorted(known)}")
    app.extensions["portal"] = found
