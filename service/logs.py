"""Logging without personal data: access lines name the route template, never the path or query values."""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Flask, g, request

access = logging.getLogger("privacy.access")


def setup(app: Flask) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # Werkzeug's and gunicorn's access lines carry the raw path and query: subject ids would reach the logs.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _log(response: Any) -> Any:
        route = request.url_rule.rule if request.url_rule else "<unmatched>"
        principal = g.get("principal")
        elapsed = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
        access.info("%s %s %s %.1fms key=%s", request.method, route, response.status_code, elapsed,
                    principal.key_id if principal else "-")
        return response
