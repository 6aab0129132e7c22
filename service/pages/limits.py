"""Rate limits on the public pages (Flask-Limiter): in Redis when REDIS_URL is set, so every web process counts
together, and in memory otherwise. A face marks a view with `rate(...)`; `install`, called once the views are
registered, applies the marks with this app's own limiter (one per app: a limiter holds its storage)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Rate:
    limit: str  # e.g. "10 per minute"
    scope: str  # counts are kept per scope and key
    key: Callable[[], str]
    methods: tuple[str, ...]


def per_ip() -> str:
    return get_remote_address() or "unknown"


def per_form_field(*names: str) -> Callable[[], str]:
    """A key from form fields (e.g. an email address), hashed: the limiter's store never holds personal data."""

    def key() -> str:
        value = "\x00".join((request.form.get(n) or "").strip().lower() for n in names)
        return hashlib.sha256(value.encode()).hexdigest()

    return key


def rate(limit: str, scope: str, key: Callable[[], str] = per_ip, methods: tuple[str, ...] = ("POST",)
         ) -> Callable[[F], F]:
    """Mark a page view with a limit; several marks may stack (e.g. per IP and per identity)."""

    def mark(func: F) -> F:
        func.page_rates = [*getattr(func, "page_rates", []), Rate(limit, scope, key, methods)]  # type: ignore
        return func

    return mark


def install(app: Flask) -> None:
    settings = app.config["SETTINGS"]
    limiter = Limiter(per_ip, storage_uri=settings.redis_url or "memory://", headers_enabled=True,
                      # A Redis outage must not take the pages down with it: limits are skipped meanwhile.
                      swallow_errors=True, in_memory_fallback_enabled=True, strategy="moving-window",
                      key_prefix="privacy-pages")
    limiter.init_app(app)
    app.extensions["page_limiter"] = limiter
    _apply(app, limiter)


def _apply(app: Flask, limiter: Limiter) -> None:
    for endpoint, view in list(app.view_functions.items()):
        rates = getattr(view, "page_rates", None)
        if not rates:
            continue
        wrapped = view
        for r in rates:
            wrapped = limiter.limit(r.limit, key_func=r.key, scope=r.scope, methods=list(r.methods))(wrapped)
        app.view_functions[endpoint] = wrapped


def reset(app: Flask) -> None:
    """Forget every count (tests share one app across tests)."""
    app.extensions["page_limiter"].reset()
