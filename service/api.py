"""The flask-smorest Api and blueprints: one JSON error format for every error, request bodies and query strings
read within limits (service.bodies), and the OpenAPI document's settings."""

from __future__ import annotations

import logging
from importlib.resources import files
from typing import Any

import flask_smorest
from flask import Blueprint, Flask
from flask_smorest import Api as SmorestApi
from flask_smorest.pagination import PaginationParameters
from marshmallow import ValidationError, missing
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import UnicodeConverter

from service import bodies

log = logging.getLogger(__name__)

# The last page a list endpoint serves: (page - 1) * page_size stays far inside a 64-bit integer (a page number
# of 2**63 used to overflow the database's OFFSET and answer 500).
MAX_PAGE = 2**31 - 1


class Parser(FlaskParser):
    """webargs' Flask parser, reading the JSON body Flask parsed (within service.bodies' limits) instead of parsing
    it again with the unbounded standard parser."""

    def _raw_load_json(self, req: Any) -> Any:
        if not is_json_request(req) or not req.get_data(cache=True):
            return missing
        return req.get_json(cache=True)  # a body over a limit, or not JSON, is a 400 saying why


class _PageParser(Parser):
    """Reads flask-smorest's page and page_size, and refuses a page past MAX_PAGE (422 naming `page`)."""

    def parse(self, argmap: Any, req: Any = None, **kwargs: Any) -> Any:
        return super().parse(argmap, req, validate=_page_in_range, **kwargs)


def _page_in_range(params: PaginationParameters) -> None:
    if params.page > MAX_PAGE:
        raise ValidationError({"page": [f"Must be less than or equal to {MAX_PAGE}."]})


class ApiBlueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint with this service's parsers: every blueprint that reads arguments or paginates is
    one (tests/service/test_input.py checks)."""

    ARGUMENTS_PARSER = Parser()
    PAGINATION_ARGUMENTS_PARSER = _PageParser()


class PathText(UnicodeConverter):
    """The default path converter without control characters: a path parameter holding NUL (which PostgreSQL
    cannot compare) or any other control character names nothing, so its URL matches no route (404)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.regex = self.regex.replace("[^/]", r"[^/\x00-\x1f\x7f]", 1)


class Api(SmorestApi):
    def init_app(self, app: Flask, *args: Any, **kwargs: Any) -> None:
        # Before any blueprint adds its rules: a rule takes its converters from the map as it is added.
        app.url_map.converters["default"] = app.url_map.converters["string"] = PathText
        app.request_class = bodies.Request
        app.json = bodies.JSONProvider(app)
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
