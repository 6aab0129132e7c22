"""The flask-smorest Api and blueprints: one JSON error format for every error, request bodies and query strings
read within limits (service.bodies), the API's response headers, and the OpenAPI document's settings."""

from __future__ import annotations

import logging
from http import HTTPStatus
from importlib.resources import files
from typing import Any

import flask_smorest
from flask import Blueprint, Flask, Response, request
from flask_smorest import Api as SmorestApi
from flask_smorest.error_handler import ErrorSchema as SmorestErrorSchema
from flask_smorest.pagination import PaginationMetadataSchema, PaginationParameters
from marshmallow import ValidationError, fields, missing
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import HTTPException, UnsupportedMediaType
from werkzeug.routing import UnicodeConverter

from service import bodies

log = logging.getLogger(__name__)

# The last page a list endpoint serves: (page - 1) * page_size stays far inside a 64-bit integer (a page number
# of 2**63 used to overflow the database's OFFSET and answer 500).
MAX_PAGE = 2**31 - 1

# Every /v1 response: browsers never sniff a JSON body into something runnable, and nothing on the way (a proxy,
# a browser's cache) keeps a copy of answers that hold personal data. consent.fastpath sends them too.
API_PREFIX = "/v1/"
API_HEADERS = (("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store"))


class Parser(FlaskParser):
    """webargs' Flask parser, reading the JSON body Flask parsed (within service.bodies' limits) instead of parsing
    it again with the unbounded standard parser."""

    def _raw_load_json(self, req: Any) -> Any:
        if not req.get_data(cache=True):
            return missing
        if not is_json_request(req):
            # Read as no body at all, it would answer 422 "missing data" for a body that is there.
            raise UnsupportedMediaType(f"the body must be application/json, not {req.mimetype or 'untyped'}")
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


class ErrorSchema(SmorestErrorSchema):
    """Every error's body (handle_http_exception below), documented as `Error`."""

    detail = fields.Dict(metadata={"description": "Facts about the error, e.g. the limit that was reached"})


METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def error_statuses(operation: dict[str, Any], path_parameters: list[dict[str, Any]]) -> list[int]:
    """The errors this layer answers for an operation, whatever its domain: from its key (401, 403, and 429 past
    its rate limit, service.ratelimit), its path parameters (404), its input (422), its JSON body (400, 413, 415)
    and the database (503). A domain's own (409, 410, ...) fall under `default` unless its route declares them
    with `@blp.alt_response`."""
    statuses = {HTTPStatus.SERVICE_UNAVAILABLE}
    if operation.get("security"):
        statuses |= {HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN, HTTPStatus.TOO_MANY_REQUESTS}
    parameters = [*path_parameters, *operation.get("parameters", [])]
    if any(p.get("in") == "path" for p in parameters):
        statuses.add(HTTPStatus.NOT_FOUND)
    if parameters or "requestBody" in operation:
        statuses.add(HTTPStatus.UNPROCESSABLE_ENTITY)
    if "application/json" in operation.get("requestBody", {}).get("content", {}):
        statuses |= {HTTPStatus.BAD_REQUEST, HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                     HTTPStatus.UNSUPPORTED_MEDIA_TYPE}
    return sorted(statuses)


def link(method: str, path: str, description: str, *, parameters: dict[str, str] | None = None,
         body: dict[str, Any] | None = None) -> dict[str, Any]:
    """An OpenAPI Link object to the operation `method path` (the document's path, `{name}` for a parameter):
    where an identifier in this response (or in its request, `$request.body#/...`) is used next. Clients read
    them as documentation; schemathesis' stateful phase follows them, so it reaches status, history, withdrawal
    and the like with identifiers that exist instead of drawing ones that 404."""
    target = "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method.lower()
    definition: dict[str, Any] = {"operationRef": target, "description": description}
    if parameters:
        definition["parameters"] = parameters
    if body:
        definition["requestBody"] = body
    return definition


def links(status: int, /, **named: dict[str, Any]) -> dict[str, Any]:
    """The links of an operation's `status` response, for `@blp.doc(**links(...))` (merged into the response
    that `@blp.response` documents)."""
    return {"responses": {status: {"links": named}}}  # the status as @blp.response keys it, so the two merge


class Api(SmorestApi):
    ERROR_SCHEMA = ErrorSchema

    def init_app(self, app: Flask, *args: Any, **kwargs: Any) -> None:
        # Before any blueprint adds its rules: a rule takes its converters from the map as it is added.
        app.url_map.converters["default"] = app.url_map.converters["string"] = PathText
        app.request_class = bodies.Request
        app.json = bodies.JSONProvider(app)
        super().init_app(app, *args, **kwargs)
        app.register_blueprint(SWAGGER_UI_ASSETS)
        app.after_request(_api_headers)

    def register_blueprint(self, blp: Any, **options: Any) -> None:
        super().register_blueprint(blp, **options)
        self._complete_document()

    def _complete_document(self) -> None:
        """Declare error_statuses() on every /v1 operation of the document, with the error schema, and the page
        numbers' bound: a pass over the whole document after each blueprint, so a new domain's routes get it
        without a line of their own."""
        for path, item in self.spec._paths.items():
            if not path.startswith(API_PREFIX):
                continue
            for method, operation in item.items():
                if method not in METHODS:
                    continue
                for parameter in operation.get("parameters", []):
                    if parameter.get("in") == "query" and parameter.get("name") == "page":
                        parameter.get("schema", {}).setdefault("maximum", MAX_PAGE)  # _PageParser's bound
                responses = operation.setdefault("responses", {})
                for status in error_statuses(operation, item.get("parameters", [])):
                    if status not in responses and str(status) not in responses:
                        responses[str(status)] = self.spec.components.get_ref("response", status.name)

    def _register_pagination_header(self) -> None:
        # flask-smorest documents X-Pagination with an object schema, which in a header means "k,v,k,v"; the
        # header is a JSON document: OpenAPI says so with `content`.
        self.spec.components.schema("PaginationMetadata", schema=PaginationMetadataSchema)
        self.spec.components.header("PAGINATION", {
            "description": "Pagination metadata: a JSON object (PaginationMetadata) serialised in the header",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PaginationMetadata"}}},
        })

    def handle_http_exception(self, error: HTTPException) -> tuple[dict[str, Any], int, dict[str, str]]:
        payload, code, headers = super().handle_http_exception(error)
        # The exception's own headers (Allow on a 405, as RFC 9110 requires; WWW-Authenticate; Retry-After),
        # less its Content-Type: the body is this JSON.
        headers = {**{k: v for k, v in error.get_headers() if k.lower() != "content-type"}, **(headers or {})}
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


def _api_headers(response: Response) -> Response:
    if request.path.startswith(API_PREFIX):
        for name, value in API_HEADERS:
            response.headers.setdefault(name, value)
    return response


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
