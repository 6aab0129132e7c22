"""Cross-origin calls to the API, off unless an app lists its web origins (`[cors.apps.<slug>] origins = [...]`):
a browser page on a listed origin may call the API with that app's key; nothing else gets a CORS header.

flask-cors allows origins per route, not per caller; here the caller's app (its key) decides, so it is these few
lines. No `*`, no credentials: the API is authenticated by a bearer key in a header, never by cookies.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, g, request

from service.config import ConfigError

PREFIX = "/v1/"
METHODS = "GET, POST, PATCH, PUT, DELETE"
HEADERS = "Authorization, Content-Type, Idempotency-Key, Sec-GPC, Accept-Language"
EXPOSED = "X-Pagination, Retry-After, Location, Idempotency-Replayed"
MAX_AGE = "600"


def _origin(slug: str, value: Any) -> str:
    parts = urlsplit(value) if isinstance(value, str) else None
    local = parts is not None and parts.hostname in {"localhost", "127.0.0.1"}
    if (parts is None or parts.scheme not in {"https", "http"} or (parts.scheme == "http" and not local)
            or not parts.netloc or parts.path not in ("", "/") or parts.query or parts.fragment):
        raise ConfigError(f"PRIVACY_CONFIG [cors.apps.{slug}].origins: {value!r} is not an origin such as "
                          "https://app.example.com (http only for localhost)")
    return f"{parts.scheme}://{parts.netloc}".lower()


def load(toml: Mapping[str, Any]) -> Mapping[str, frozenset[str]]:
    """The origins of each app (by slug); empty when CORS is not configured."""
    section = toml.get("cors", {})
    apps = section.get("apps", {}) if isinstance(section, dict) else None
    if not isinstance(apps, dict) or set(section) - {"apps"}:
        raise ConfigError("PRIVACY_CONFIG [cors]: expected only [cors.apps.<slug>] tables with `origins`")
    out: dict[str, frozenset[str]] = {}
    for slug, entry in apps.items():
        origins = entry.get("origins") if isinstance(entry, dict) else None
        if not isinstance(origins, list) or not origins or set(entry) != {"origins"}:
            raise ConfigError(f"PRIVACY_CONFIG [cors.apps.{slug}]: expected origins = [\"https://...\"]")
        out[slug] = frozenset(_origin(slug, o) for o in origins)
    return MappingProxyType(out)


def install(app: Flask) -> None:
    """Answer preflights for listed origins and mark responses to a listed origin's own app."""
    allowed = load(app.config["SETTINGS"].toml)
    if not allowed:
        return
    anyone = frozenset().union(*allowed.values())
    app.extensions["cors_origins"] = allowed

    @app.before_request
    def _preflight() -> Any:
        origin = (request.headers.get("Origin") or "").lower()
        if (request.method == "OPTIONS" and request.path.startswith(PREFIX) and origin in anyone
                and request.headers.get("Access-Control-Request-Method")):
            # The preflight carries no key, so it cannot tell the app: any listed origin passes it, and the
            # real response is shared only with its own app's origins.
            return "", 204, {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Methods": METHODS,
                             "Access-Control-Allow-Headers": HEADERS, "Access-Control-Max-Age": MAX_AGE,
                             "Vary": "Origin"}
        return None

    @app.after_request
    def _mark(response: Any) -> Any:
        origin = (request.headers.get("Origin") or "").lower()
        if not origin or not request.path.startswith(PREFIX):
            return response
        response.vary.add("Origin")
        principal = g.get("principal")
        if principal is not None and origin in allowed.get(principal.app_slug, ()):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = EXPOSED
        return response
