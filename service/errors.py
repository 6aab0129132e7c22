"""Domain errors raised by service modules (callable without Flask) and rendered as JSON errors by the API; an
unreachable database rendered as 503 with Retry-After."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from flask_smorest import abort
from sqlalchemy.exc import DBAPIError

from service import db

log = logging.getLogger(__name__)


class DomainError(Exception):
    status = 400

    def __init__(self, message: str, *, errors: dict[str, Any] | None = None,
                 detail: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors
        self.detail = detail
        self.headers = headers  # e.g. Retry-After


class Forbidden(DomainError):
    """The caller may not do this, though it may use the endpoint (e.g. a flag only another scope may set)."""

    status = 403


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409


class Gone(DomainError):
    """What was asked for existed but is no more (an expired code, a destroyed export, a used token)."""

    status = 410


class Locked(DomainError):
    """The resource is locked against this action (e.g. a request locked after too many wrong codes)."""

    status = 423


class TooManyRequests(DomainError):
    """A limit on how often something may be done was reached; give `Retry-After` in `headers`."""

    status = 429


class Invalid(DomainError):
    """A request that is well-formed but breaks a rule; `errors` maps the field to its messages."""

    status = 422


def register(app: Flask) -> None:
    def render(status: int, **kwargs: Any) -> Any:
        try:
            abort(status, **kwargs)
        except Exception as http_exc:  # noqa: BLE001 - re-rendered by the Api's JSON handler
            return app.extensions["api"].handle_http_exception(http_exc)

    @app.errorhandler(DomainError)
    def _domain_error(exc: DomainError) -> Any:
        kwargs: dict[str, Any] = {"message": exc.message}
        if exc.errors:
            kwargs["errors"] = {"json": exc.errors}
        if exc.detail:
            kwargs["detail"] = exc.detail
        if exc.headers:
            kwargs["headers"] = exc.headers
        return render(exc.status, **kwargs)

    def _database_error(exc: Exception) -> Any:
        if not db.unavailable(exc):
            raise exc  # a bug, not an outage: Flask answers 500 and logs it
        # By type only: a message could quote a statement's values.
        log.warning("database unavailable (%s): answered 503",
                    type(exc.orig if isinstance(exc, DBAPIError) else exc).__name__)
        return render(503, message="the database is unavailable; retry shortly",
                      headers={"Retry-After": str(db.RETRY_AFTER_SECONDS)})

    # SQLAlchemy's errors from sessions and engines, and the driver's own from the hot paths' autocommit
    # connections (consent.fastpath hands any failure to the Flask route, which meets it again here).
    app.register_error_handler(DBAPIError, _database_error)
    app.register_error_handler(app.extensions["db"].engine.dialect.loaded_dbapi.Error, _database_error)
