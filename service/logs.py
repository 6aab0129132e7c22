"""Logging without personal data: access lines name the route template, never the path or query values."""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Flask, g, request

access = logging.getLogger("privacy.access")


def setup(app: Flask) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # No format uses them, and every access line would pay for them (the logging HOWTO's "Optimization" section
    # names these switches). Process and thread ids stay: other formats read them as numbers (gunicorn's
    # "[%(process)d]"), and a record without them fails to format and is lost.
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logMultiprocessing = False
    # Werkzeug's and gunicorn's access lines carry the raw path and query: subject ids would reach the logs.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _log(response: Any) -> Any:
        route = request.url_rule.rule if request.url_rule else "<unmatched>"
        principal = g.get("principal")
        log_access(request.method, route, response.status_code, g.get("started", time.perf_counter()),
                   principal.key_id if principal else None)
        return response


def log_access(method: str, route: str, status: int, started: float, key_id: str | None) -> None:
    """One access line: the route template and the key id, never the path, query or body."""
    access.info("%s %s %s %.1fms key=%s", _printable(method), route, status,
                (time.perf_counter() - started) * 1000, key_id or "-")


def _printable(text: str) -> str:
    """`text` with control characters escaped: a client's bytes can neither break nor forge a log line."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")
