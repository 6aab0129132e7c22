"""Operational endpoints: liveness, readiness and the well-known documents (JWKS, GPC)."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from service.wiring import ReadinessDetail

blp = Blueprint("web", __name__)

# Date this service's GPC support (and its documentation) last changed, per the GPC spec's `lastUpdate`.
GPC_LAST_UPDATE = date(2026, 11, 25)


@blp.get("/healthz")
def healthz() -> Any:
    return {"status": "ok"}


@blp.get("/readyz")
def readyz() -> Any:
    """Ready (200) while the database answers: without it nothing works. Redis and the user-data stores are
    checked and named in `down` when they fail, but leave the process ready ("degraded", 200): without Redis the
    API still records consent and accepts rights requests (their jobs wait in the database's outbox), and a store
    that is down only delays the tasks on it. Failing readiness for them would take every web process out of the
    load balancer at once, for a dependency they share."""
    checks: dict[str, str] = {}
    try:
        with current_app.extensions["db"].engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure as not ready
        checks["database"] = f"error: {type(exc).__name__}"
    queue = current_app.extensions["queue"]
    if queue.redis is not None:
        try:
            queue.ping()
            checks["redis"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["redis"] = f"error: {type(exc).__name__}"
    for name, status in current_app.extensions["stores"].health().items():
        checks[f"store:{name}"] = status
    down = [name for name, status in checks.items() if status != "ok"]
    ready = checks["database"] == "ok"
    # Shown, not checked: e.g. a broken ledger is evidence to act on, not a reason to stop serving.
    details = {detail.name: _read(detail) if ready else detail.missing
               for detail in current_app.extensions["wiring"].readiness}
    status = "not ready" if not ready else "degraded" if down else "ready"
    return jsonify(status=status, checks=checks, down=down, **details), 200 if ready else 503


def _read(detail: ReadinessDetail) -> Any:
    try:
        with current_app.extensions["db"].session() as session:
            return detail.read(session)
    except Exception:  # noqa: BLE001 - readiness never fails on a detail
        return detail.missing


@blp.get("/.well-known/jwks.json")
def jwks() -> Any:
    response = jsonify(current_app.extensions["keys"].signer.jwks())
    response.cache_control.max_age = 300
    response.cache_control.public = True
    return response


@blp.get("/.well-known/gpc.json")
def gpc() -> Any:
    response = jsonify(gpc=True, lastUpdate=GPC_LAST_UPDATE.isoformat())
    response.cache_control.max_age = 86400
    return response
