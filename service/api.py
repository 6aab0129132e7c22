"""The flask-smorest Api: one JSON error format for every error, and the OpenAPI document's settings."""

from __future__ import annotations

import logging
from importlib.resources import files
from typing import Any

from flask import Blueprint, Flask
from flask_smorest import Api as SmorestApi
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class Api(SmorestApi):
    def init_app(self, app: Flask, *args: Any, **kwargs: Any) -> None:
        super().init_app(app, *args, **kwargs)
        app.register_blueprint(SWAGGER_UI_ASSETS)

    def handle_http_exception(self, error: HTTPException) -> tuple[dict[str, Any], int, dict[str, str]]:
        payload, code, headers = super().handle_http_exception(error)
        # Every error carries a human-readable message, even when raised without one.
        if "message" not in payload and code == 422 and isinstance(payload.get("errors"), dict):
            fields = [p for where in payload["errors"].values() if isinstance(where, dict)
                      for p in _field_paths(where)]
            payload["message"] = "invalid input: " + ", ".join(fields)
        payload.setdefault("message", error.description or error.name)
        data = getattr(error, "data", None) or {}
        if "detail" in data:
            payload["detail"] = data["detail"]
        original = getattr(error, "original_exception", None)
        if code >= 500 and original is not None:
            # The engine hides bound parameters, so tracebacks carry no personal data.
            log.error("unhandled error", exc_info=original)
        return payload, code, headers


def _field_paths(errors: dict[str, Any], prefix: str = "") -> list[str]:
    """Flatten webargs' {location: {field: [messages] | {nested}}} into 'field.nested' names."""
    paths = []
    for key, value in errors.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            paths.extend(_field_paths(value, name))
        else:
            paths.append(name)
    return paths


SETTINGS = {
    "API_TITLE": "Privacy service",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "/docs",
    # Served by the service itself (SWAGGER_UI_ASSETS): /docs works offline and tells no CDN who reads it.
    "OPENAPI_SWAGGER_UI_URL": "/docs/assets/",
    # Swagger UI would otherwise send the spec's URL to its public online validator for a badge.
    "OPENAPI_SWAGGER_UI_CONFIG": {"validatorUrl": None},
    "API_SPEC_OPTIONS": {
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
        "info": {"description": "Consent, data-subject rights and retention for an ISO/IEC 27701 programme."},
    },
}


# Swagger UI's files as released (swagger-ui-dist), from the flask-swagger-ui package, which tracks its releases;
# only the files are used, /docs itself is flask-smorest's page.
SWAGGER_UI_ASSETS = Blueprint("swagger_ui_assets", __name__, static_folder=str(files("flask_swagger_ui") / "dist"),
                              static_url_path="/docs/assets")
