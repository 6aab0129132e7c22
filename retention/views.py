"""Policies as the API, the CLI and the data map show them: the current version and the last run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from retention import policies
from retention.models import RetentionPolicy, RetentionPolicyVersion
from retention.runs import last_runs


def policy_view(session: Session, policy: RetentionPolicy, last: dict[int, Any] | None = None) -> dict[str, Any]:
    version = policies.current(session, policy)
    if last is None:
        last = last_runs(session)
    return {"key": policy.key, "store": policy.store, "category": policy.category, "origin": policy.origin,
            "enabled": policy.enabled, "version": policy.version, "retain_for": version.retain_for,
            "action": version.action, "basis": version.basis, "schedule": version.schedule,
            "created_at": policy.created_at, "updated_at": policy.updated_at, "last_run": last.get(policy.id)}


def datamap_lookup(session: Session) -> Callable[[str, str], dict[str, Any] | None]:
    """For GET /v1/datamap: (store, category) -> its enabled policy and last run, or None."""
    rows = session.execute(select(RetentionPolicy, RetentionPolicyVersion).join(
        RetentionPolicyVersion, (RetentionPolicyVersion.policy_id == RetentionPolicy.id)
        & (RetentionPolicyVersion.version == RetentionPolicy.version)).where(RetentionPolicy.enabled.is_(True)))
    last = last_runs(session)
    found = {(p.store, p.category): {"policy": p.key, "version": p.version, "retain_for": v.retain_for,
                                     "action": v.action, "schedule": v.schedule, "origin": p.origin,
                                     "last_run": _jsonable(last.get(p.id))} for p, v in rows}
    return lambda store, category: found.get((store, category))


def _jsonable(last: dict[str, Any] | None) -> dict[str, Any] | None:
    if last is None:
        return None
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in last.items()}
