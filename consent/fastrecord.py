"""Consent recording answered beneath Flask: `POST /v1/consents` through the route's own schema and service function.

Flask's request context, webargs and flask-smorest's response handling cost about as much CPU as recording itself
(bench/README.md). Only a request that can go no other way than the route's success is answered here; for anything
else (another media type, an Origin, a body or answer the schema refuses, a domain error) the body is put back and the
Flask route answers, and owns every error response, as consent.fastpath does for the status check.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from marshmallow import ValidationError

from consent import record, schemas
from consent.context import Context
from consent.routes import record_consent
from service.api import API_HEADERS
from service.bodies import loads
from service.errors import DomainError
from service.logs import log_access

log = logging.getLogger(__name__)

ROUTE = PATH = "/v1/consents"
SCOPE: str = record_consent.required_scope  # type: ignore[attr-defined]
_HEADERS = [("Content-Type", "application/json"), *API_HEADERS]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def install(app: Flask) -> None:
    """Put the recording fast path in front of `app`; it reads the policy cache consent.fastpath.install makes."""
    app.wsgi_app = RecordFastPath(app, app.wsgi_app)


class RecordFastPath:
    """WSGI middleware; the route in consent.routes stays the reference, the docs and the error responses."""

    def __init__(self, app: Flask, wsgi_app: WSGIApp) -> None:
        self.app = app
        self.next = wsgi_app
        self.schema_in = schemas.ConsentIn()
        self.schema_out = schemas.ConsentOut()
        self.max_length = app.config["SETTINGS"].max_content_length

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST":
            return self.next(environ, start_response)
        started = time.perf_counter()
        answer = self._answer(environ)
        if answer is None:
            return self.next(environ, start_response)
        body, key_id, limited = answer
        start_response("201 CREATED", [*_HEADERS, *limited, ("Content-Length", str(len(body)))])
        log_access("POST", ROUTE, 201, started, key_id)
        return [body]

    def _answer(self, environ: dict[str, Any]) -> tuple[bytes, str, list[tuple[str, str]]] | None:
        if environ.get("CONTENT_TYPE") != "application/json" or "HTTP_ORIGIN" in environ:
            # Other media types (415, charset parameters) and browsers' cross-origin calls are Flask's to decide.
            return None
        ext = self.app.extensions
        principal = ext["key_cache"].lookup(environ.get("HTTP_AUTHORIZATION", ""))
        if principal is None or not principal.has(SCOPE):
            return None
        data = self._body(environ)
        if data is None:
            return None
        limited: list[tuple[str, str]] = []
        limits = ext.get("api_limits")
        if limits is not None:
            # The route's own per-key counter (service.ratelimit), as consent.fastpath counts: past the limit the
            # route answers the 429; a request handed on below is counted again there, which only errors pay.
            decision = limits.hit(principal.key_id, SCOPE)
            if decision is not None:
                if not decision.allowed:
                    return None
                limited = decision.headers(time.time())
        ext["key_usage"].seen(principal)
        ctx = Context(principal=principal, keys=ext["keys"], settings=self.app.config["SETTINGS"],
                      locations=ext["stores"].locations())
        try:
            event = record.record_consent(ext["db"], ctx, data, environ.get("HTTP_SEC_GPC") == "1",
                                          ext["policy_cache"])
        except Exception as exc:  # noqa: BLE001 - the route answers, or reports, every failure
            # Domain errors are raised before the write, so the route's second look is the same check. Anything
            # else (a lost connection) is as ambiguous here as to any client, and the route's attempt is its retry;
            # the chain's unique (subject, seq) keeps a retry from forking it. Named by type only: no personal data.
            if not isinstance(exc, DomainError):
                log.warning("record fast path failed (%s); the Flask route answers", type(exc).__name__)
            return None
        dumped = self.schema_out.dump({
            "id": event.id, "kind": event.kind, "policy": data["policy"], "version": data["version"],
            "purposes": event.purposes, "gpc": event.gpc, "created_at": event.created_at, "receipt": event.receipt})
        # What flask-smorest's jsonify writes outside debug mode (the app's provider, compact): the same bytes.
        return (self.app.json.dumps(dumped, separators=(",", ":")) + "\n").encode(), principal.key_id, limited

    def _body(self, environ: dict[str, Any]) -> dict[str, Any] | None:
        """The body loaded by the route's schema, or None with the body put back for Flask to read."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            return None  # chunked or missing: Werkzeug's handling is the reference
        if not 0 < length <= self.max_length:
            return None
        raw = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(raw)  # whatever happens next, Flask can read the same bytes
        if len(raw) != length:
            return None
        try:
            return self.schema_in.load(loads(raw))
        except (ValueError, ValidationError, TypeError):
            # ValueError covers bodies.BodyError and malformed JSON; TypeError a top level that is not an object.
            return None
