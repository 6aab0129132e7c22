"""Errors on pages are pages: the status, a sentence in the person's language and a way back, never a stack trace
or the API's JSON. Elsewhere the handlers already registered (the API's JSON) answer as before."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, render_template, request
from werkzeug.exceptions import HTTPException

from service.errors import DomainError


def on_page(prefixes: tuple[str, ...]) -> bool:
    blueprint = request.blueprint
    if blueprint is not None:
        return bool(getattr(current_app.blueprints.get(blueprint), "is_pages", False))
    return any(request.path == p or request.path.startswith(p.rstrip("/") + "/") for p in prefixes)


def retry_after() -> int | None:
    """Seconds until the limit just hit lets this client through again."""
    limiter = current_app.extensions.get("page_limiter")
    limit = limiter.current_limit if limiter is not None else None
    return None if limit is None else max(1, int(limit.reset_at - time.time()))


def render(status: int, message: str | None = None, headers: dict[str, str] | None = None) -> Any:
    wait = retry_after() if status == 429 else None
    response = current_app.make_response(
        (render_template("pages/error.html", status=status, message=message, retry_after=wait), status))
    for name, value in (headers or {}).items():
        response.headers[name] = value
    if wait is not None:
        response.headers["Retry-After"] = str(wait)
    return response


def install(app: Flask, prefixes: tuple[str, ...]) -> None:
    spec = app.error_handler_spec[None][None]

    def wrap(cls: type[Exception], page: Callable[[Any], Any]) -> None:
        previous = spec.get(cls)

        def handler(exc: Any) -> Any:
            if on_page(prefixes):
                return page(exc)
            return previous(exc) if previous is not None else exc

        app.register_error_handler(cls, handler)

    # A DomainError's message is written for API clients; pages show their own sentence for each status.
    wrap(DomainError, lambda exc: render(exc.status, headers=exc.headers))
    wrap(HTTPException, lambda exc: exc if exc.code is None or exc.code < 400 else render(
        exc.code, headers={k: v for k, v in exc.get_headers() if k.lower() == "allow"}))
    # The database's outage handlers answer 503 with Retry-After (or re-raise a bug): the page keeps both.
    for cls in [c for c in spec if isinstance(c, type) and not issubclass(c, (DomainError, HTTPException))]:
        previous = spec[cls]

        def outage(exc: Any, previous: Callable[[Any], Any] = previous) -> Any:
            answer = previous(exc)
            if on_page(prefixes) and getattr(answer, "status_code", None) == 503:
                return render(503, headers={"Retry-After": answer.headers.get("Retry-After", "5")})
            return answer

        app.register_error_handler(cls, outage)
