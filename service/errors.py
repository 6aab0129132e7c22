"""Domain errors raised by service modules (callable without Flask) and rendered as JSON errors by the API."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_smorest import abort


class DomainError(Exception):
    status = 400

    def __init__(self, message: str, *, errors: dict[str, Any] | None = None,
                 detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors
        self.detail = detail


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409


class Invalid(DomainError):
    """A request that is well-formed but breaks a rule; `errors` maps the field to its messages."""

    status = 422


def register(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain_error(exc: DomainError) -> Any:
        kwargs: dict[str, Any] = {"message": exc.message}
        if exc.errors:
            kwargs["errors"] = {"json": exc.errors}
        if exc.detail:
            kwargs["detail"] = exc.detail
        try:
            abort(exc.status, **kwargs)
        except Exception as http_exc:  # noqa: BLE001 - re-rendered by the Api's JSON handler
            return app.extensions["api"].handle_http_exception(http_exc)
