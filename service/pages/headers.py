"""Security headers of every page: a strict Content-Security-Policy (no inline script or style, nothing from
another host), no sniffing, no framing, no Referer (pages may carry tokens) and no caching of personal pages."""

from __future__ import annotations

from flask import Flask, Response, request

CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; "
       "frame-ancestors 'none'")
STATIC_PREFIX = "/static/"


def install(app: Flask, prefixes: tuple[str, ...]) -> None:
    @app.after_request
    def _page_headers(response: Response) -> Response:
        path = request.path
        if path.startswith(STATIC_PREFIX):
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            return response
        if not any(path == p or path.startswith(p.rstrip("/") + "/") for p in (*prefixes, "/lang")):
            return response
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        # Personal pages are never stored; a view that set its own caching (a stylesheet) keeps it.
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), interest-cohort=()"
        response.vary.add("Cookie")
        response.vary.add("Accept-Language")
        return response
