"""Privacy policies and their versions: look-up, creation and publication (audited; the caller commits)."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.context import Context
from consent.models import Policy, PolicyVersion, Purpose
from service import audit
from service.db import utcnow
from service.errors import Conflict, Invalid, NotFound


def get_policy(session: Session, app_id: int, key: str) -> Policy:
    policy = session.scalar(select(Policy).where(Policy.app_id == app_id, Policy.key == key))
    if policy is None:
        raise NotFound(f"no policy {key!r}")
    return policy


def sale_purposes(session: Session, app_id: int, policy_key: str) -> list[str]:
    """The keys of the policy's purposes marked as a sale or sharing of personal data."""
    return list(session.scalars(select(Purpose.key).join(Policy, Policy.id == Purpose.policy_id).where(
        Policy.app_id == app_id, Policy.key == policy_key, Purpose.sale_or_sharing.is_(True)).order_by(Purpose.id)))


def list_policies(session: Session, app_id: int) -> list[Policy]:
    return list(session.scalars(select(Policy).where(Policy.app_id == app_id).order_by(Policy.key)))


def create_policy(session: Session, ctx: Context, data: dict[str, Any]) -> Policy:
    app_id = ctx.principal.app_id
    if session.scalar(select(Policy.id).where(Policy.app_id == app_id, Policy.key == data["key"])):
        raise Conflict(f"policy {data['key']!r} already exists", errors={"key": ["already exists"]})
    keys = [p["key"] for p in data["purposes"]]
    if len(set(keys)) != len(keys):
        raise Invalid("purpose keys must be unique", errors={"purposes": ["duplicate purpose key"]})
    for i, p in enumerate(data["purposes"]):
        if p["required"] and p["honors_gpc"]:
            raise Invalid("a required purpose cannot honour GPC: it could never be denied",
                          errors={"purposes": {str(i): {"honors_gpc": ["not allowed on a required purpose"]}}})
        if p["required"] and p.get("sale_or_sharing"):
            raise Invalid("a required purpose cannot be a sale or sharing: an opt-out could never withdraw it",
                          errors={"purposes": {str(i): {"sale_or_sharing": ["not allowed on a required purpose"]}}})
    policy = Policy(app_id=app_id, key=data["key"], title=data["title"],
                    purposes=[Purpose(**p) for p in data["purposes"]], versions=[])
    session.add(policy)
    session.flush()
    audit.record(session, app_id=app_id, actor=ctx.actor, action="policy.created", resource_type="policy",
                 resource_id=str(policy.id), details={"key": policy.key, "purposes": keys})
    return policy


def add_version(session: Session, ctx: Context, policy_key: str, data: dict[str, Any]) -> PolicyVersion:
    policy = get_policy(session, ctx.principal.app_id, policy_key)
    if any(v.version == data["version"] for v in policy.versions):
        raise Conflict(f"version {data['version']!r} already exists", errors={"version": ["already exists"]})
    effective_at = data.get("effective_at") or utcnow()
    if policy.versions and effective_at < policy.versions[-1].effective_at:
        raise Invalid("versions must take effect in order",
                      errors={"effective_at": [f"before the latest version "
                                               f"({policy.versions[-1].effective_at.isoformat()})"]})
    text = data.get("text")
    if text is not None:
        digest = hashlib.sha256(text.encode()).hexdigest()
        if data.get("sha256") and data["sha256"] != digest:
            raise Invalid("sha256 does not match the text", errors={"sha256": ["does not match the text"]})
    else:
        digest = data["sha256"]
    version = PolicyVersion(policy_id=policy.id, version=data["version"], effective_at=effective_at,
                            text=text, url=data.get("url"), sha256=digest, material=data["material"])
    session.add(version)
    session.flush()
    audit.record(session, app_id=ctx.principal.app_id, actor=ctx.actor, action="policy.version_created",
                 resource_type="policy_version", resource_id=str(version.id),
                 details={"policy": policy.key, "version": version.version, "material": version.material,
                          "effective_at": effective_at.isoformat()})
    return version
