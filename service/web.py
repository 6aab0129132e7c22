"""Operational endpoints: liveness, readiness and the well-known documents (JWKS, GPC)."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

blp = Blueprint("web", __name__)

# Date this service's GPC support (and its documentation) last changed, per the GPC spec's `lastUpdate`.
GPC_LAST_UPDATE = date(2026, 11, 25)


@blp.get("/healthz")
def healthz() -> Any:
    return {"status": "ok"}


@blp.get("/readyz")
def readyz() -> Any:
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
    ready = all(v == "ok" for v in checks.values())
    # Shown, not checked: a broken ledger is evidence to act on, not a reason to stop serving.
    last = _last_verification() if checks["database"] == "ok" else None
    return jsonify(status="ready" if ready else "not ready", checks=checks,
                   ledger={"last_verification": last}), 200 if ready else 503


def _last_verification() -> dict[str, Any] | None:
    """The latest ledger verification (time and status), or None when there is none or it cannot be read."""
    from consent.verifications import latest

    try:
        with current_app.extensions["db"].sessions() as session:
            row = latest(session)
    except Exception:  # noqa: BLE001 - readiness never fails on this detail
        return None
    if row is None:
        return None
    return {"id": row.id, "status": row.status, "mode": row.mode, "started_at": row.started_at.isoformat(),
            "finished_at": row.finished_at.isoformat() if row.finished_at else None}


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
