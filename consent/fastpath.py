"""The status check answered beneath Flask: the call every product app makes at every start.

Flask's request context, webargs and the response schema cost twice the lookup itself (docs/architecture.md).
Only a request certain to succeed is answered here (a cached key with the scope, exactly the two valid query
parameters, a policy in effect); anything else goes on to the Flask route, which owns every error response.
Flask's request hooks do not run for an answer given here: the access line is written by the same function.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from flask import Flask
from marshmallow import ValidationError

from consent import schemas
from consent.cache import PolicyCache
from consent.context import Context
from consent.routes import consent_status
from consent.status import status_raw
from service.api import API_HEADERS
from service.errors import DomainError
from service.logs import log_access

log = logging.getLogger(__name__)

ROUTE = PATH = "/v1/consents/status"  # no path parameters: the access line names the path itself
SCOPE: str = consent_status.required_scope  # type: ignore[attr-defined]
_HEADERS = [("Content-Type", "application/json"), *API_HEADERS]  # the headers every /v1 answer has

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def install(app: Flask) -> None:
    """Put the fast path in front of `app`; the policy cache it reads is the one the routes use."""
    app.extensions.setdefault("policy_cache", PolicyCache(app.config["SETTINGS"].cache_ttl_seconds,
                                                          app.extensions["db"].sessions))
    app.wsgi_app = StatusFastPath(app, app.wsgi_app)


class StatusFastPath:
    """WSGI middleware in front of the Flask app; the route in consent.routes stays the reference and the docs."""

    def __init__(self, app: Flask, wsgi_app: WSGIApp) -> None:
        self.app = app
        self.next = wsgi_app
        self.schema = schemas.StatusQuery()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "GET" or "HTTP_ORIGIN" in environ:
            # A browser's cross-origin call goes through Flask, where its CORS headers are decided (service.cors).
            return self.next(environ, start_response)
        started = time.perf_counter()
        answer = self._answer(environ)
        if answer is None:
            return self.next(environ, start_response)
        body, key_id, limited = answer
        start_response("200 OK", [*_HEADERS, *limited, ("Content-Length", str(len(body)))])
        log_access("GET", ROUTE, 200, started, key_id)
        return [body]

    def _answer(self, environ: dict[str, Any]) -> tuple[bytes, str, list[tuple[str, str]]] | None:
        ext = self.app.extensions
        principal = ext["key_cache"].lookup(environ.get("HTTP_AUTHORIZATION", ""))
        if principal is None or not principal.has(SCOPE):
            return None
        ext["key_usage"].seen(principal)
        args = self._args(environ.get("QUERY_STRING", ""))
        if args is None:
            return None
        limited: list[tuple[str, str]] = []
        limits = ext.get("api_limits")
        if limits is not None:
            # The route's own counter (service.ratelimit), one round trip to its store. Past the limit the route
            # answers, as it does every error (its 429 counts once more on a counter already spent); a request
            # handed on below for another reason is counted again there, which only errors pay.
            decision = limits.hit(principal.key_id, SCOPE)
            if decision is not None:
                if not decision.allowed:
                    return None
                limited = decision.headers(time.time())
        ctx = Context(principal=principal, keys=ext["keys"], settings=self.app.config["SETTINGS"])
        cache = ext["policy_cache"]
        try:
            with ext["db"].autocommit() as reader:
                state = status_raw(reader, ctx, cache, args["subject_id"], args["policy"])
        except DomainError:
            return None  # a 404 or 409: the route renders it
        except Exception as exc:  # noqa: BLE001 - the route answers, or reports, every failure
            # Named by type only: a message could carry query values. Logged so a broken fast path cannot hide.
            log.warning("status fast path failed (%s); the Flask route answers", type(exc).__name__)
            return None
        return json.dumps(state, separators=(",", ":")).encode(), principal.key_id, limited

    def _args(self, query: str) -> dict[str, str] | None:
        if not query.isascii():  # raw (unescaped) bytes: Werkzeug's decoding of those is the reference
            return None
        pairs = parse_qsl(query, keep_blank_values=True)
        args = dict(pairs)
        if len(pairs) != len(args) or args.keys() != self.schema.fields.keys():
            return None  # repeated or extra parameters: how the route reads those is the reference
        try:
            return self.schema.load(args)  # the route's own schema: the same validation, hooks included
        except ValidationError:
            return None
