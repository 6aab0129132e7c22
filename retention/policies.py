"""Retention policies, callable without Flask: create, update (a new version), disable, list, and the checks
against the store registry that every path (API, config, CLI) shares."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from retention.models import RetentionPolicy, RetentionPolicyVersion
from retention.periods import DEFAULT_SCHEDULE, check_schedule, parse_duration
from service import audit
from service.db import utcnow
from service.errors import Conflict, Invalid, NotFound

FIELDS = ("retain_for", "action", "basis", "schedule")


@dataclass(frozen=True)
class Actor:
    """Who changes retention: "key:<key id>" (with the key's app), "cli:<command>", "config" or "system"."""

    name: str
    app_id: int | None = None


def store_actions(store: Any, category: str) -> set[str]:
    """What expiring `category` does in this store: plugins may say (`expire_actions`); otherwise delete."""
    actions = getattr(store, "expire_actions", None)
    return set(actions(category)) if callable(actions) else {"delete"}


def check_target(stores: Any, store: str, category: str, action: str) -> None:
    """422 naming the field when the store or category is not registered, or the action is not what the store
    does (the store's declaration decides how; the policy decides when)."""
    if store not in stores:
        raise Invalid(f"no store named {store!r}", errors={"store": [f"not a registered store: {store!r}"]})
    described = stores.get(store).describe()
    if category not in described.categories:
        raise Invalid(f"store {store!r} holds no category {category!r}",
                      errors={"category": [f"{store!r} holds {sorted(described.categories)}"]})
    actions = store_actions(stores.get(store), category)
    if action not in actions:
        raise Invalid(f"store {store!r} does not {action} {category!r} records",
                      errors={"action": [f"expiring {category!r} in {store!r} does {' and '.join(sorted(actions))}"]})


def default_key(store: str, category: str) -> str:
    return re.sub(r"[^a-z0-9_.-]", "-", f"{store}.{category}".lower())[:100]


def get_policy(session: Session, key: str) -> RetentionPolicy:
    policy = session.scalar(select(RetentionPolicy).where(RetentionPolicy.key == key))
    if policy is None:
        raise NotFound(f"no retention policy {key!r}")
    return policy


def current(session: Session, policy: RetentionPolicy) -> RetentionPolicyVersion:
    version = session.scalar(select(RetentionPolicyVersion).where(
        RetentionPolicyVersion.policy_id == policy.id, RetentionPolicyVersion.version == policy.version))
    assert version is not None, "a policy always has its current version"
    return version


def versions(session: Session, key: str) -> list[RetentionPolicyVersion]:
    policy = get_policy(session, key)
    return list(session.scalars(select(RetentionPolicyVersion).where(RetentionPolicyVersion.policy_id == policy.id)
                                .order_by(RetentionPolicyVersion.version.desc())))


def list_policies(session: Session, *, store: str | None = None, category: str | None = None,
                  enabled: bool | None = None) -> list[RetentionPolicy]:
    stmt = select(RetentionPolicy).order_by(RetentionPolicy.key)
    if store is not None:
        stmt = stmt.where(RetentionPolicy.store == store)
    if category is not None:
        stmt = stmt.where(RetentionPolicy.category == category)
    if enabled is not None:
        stmt = stmt.where(RetentionPolicy.enabled == enabled)
    return list(session.scalars(stmt))


def _check_free(session: Session, store: str, category: str, key: str) -> None:
    other = session.scalar(select(RetentionPolicy.key).where(
        RetentionPolicy.store == store, RetentionPolicy.category == category, RetentionPolicy.enabled.is_(True),
        RetentionPolicy.key != key))
    if other is not None:
        raise Conflict(f"policy {other!r} already governs {store}/{category}; update or disable it",
                       errors={"category": [f"already governed by policy {other!r}"]})


def normalise(data: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: data[k] for k in FIELDS if data.get(k) is not None}
    if "retain_for" in out:
        try:
            parse_duration(out["retain_for"])
        except ValueError as exc:
            raise Invalid(f"retain_for: {exc}", errors={"retain_for": [str(exc)]}) from None
    if "schedule" in out:
        try:
            out["schedule"] = check_schedule(out["schedule"])
        except ValueError as exc:
            raise Invalid(f"schedule: {exc}", errors={"schedule": [str(exc)]}) from None
    return out


def create_policy(session: Session, stores: Any, actor: Actor, data: Mapping[str, Any],
                  origin: str = "api") -> RetentionPolicy:
    fields = {"action": "delete", "schedule": DEFAULT_SCHEDULE, **normalise(data)}
    store, category = data["store"], data["category"]
    check_target(stores, store, category, fields["action"])
    key = data.get("key") or default_key(store, category)
    if session.scalar(select(RetentionPolicy.id).where(RetentionPolicy.key == key)) is not None:
        raise Conflict(f"retention policy {key!r} already exists", errors={"key": ["already exists"]})
    _check_free(session, store, category, key)
    policy = RetentionPolicy(key=key, store=store, category=category, origin=origin, enabled=True, version=1)
    session.add(policy)
    session.flush()
    session.add(RetentionPolicyVersion(policy_id=policy.id, version=1, created_by=actor.name, **fields))
    session.flush()
    audit.record(session, app_id=actor.app_id, actor=actor.name, action="retention.policy_created",
                 resource_type="retention_policy", resource_id=key,
                 details={"store": store, "category": category, "version": 1, "origin": origin, **_public(fields)})
    return policy


def _public(fields: Mapping[str, Any]) -> dict[str, Any]:
    # The basis is free text: it stays in the policy record, not in the audit trail.
    return {k: v for k, v in fields.items() if k != "basis"}


def _guard_origin(policy: RetentionPolicy, origin: str) -> None:
    if policy.origin == "config" and origin != "config":
        raise Conflict(f"policy {policy.key!r} is declared in PRIVACY_CONFIG ([[retention]]); change it there",
                       errors={"key": ["declared in the configuration file"]})


def update_policy(session: Session, stores: Any, actor: Actor, key: str, data: Mapping[str, Any],
                  origin: str = "api") -> tuple[RetentionPolicy, bool]:
    """Apply changed fields as a new version (the old one stays); returns the policy and whether it changed."""
    policy = get_policy(session, key)
    _guard_origin(policy, origin)
    old = current(session, policy)
    fields = {k: getattr(old, k) for k in FIELDS} | normalise(data)
    if fields == {k: getattr(old, k) for k in FIELDS}:
        return policy, False
    check_target(stores, policy.store, policy.category, fields["action"])
    policy.version += 1
    policy.updated_at = utcnow()
    session.add(RetentionPolicyVersion(policy_id=policy.id, version=policy.version, created_by=actor.name,
                                       **fields))
    session.flush()
    changed = sorted(k for k in FIELDS if fields[k] != getattr(old, k))
    audit.record(session, app_id=actor.app_id, actor=actor.name, action="retention.policy_updated",
                 resource_type="retention_policy", resource_id=key,
                 details={"version": policy.version, "changed": changed, **_public(fields)})
    return policy, True


def set_enabled(session: Session, actor: Actor, key: str, enabled: bool, origin: str = "api") -> RetentionPolicy:
    policy = get_policy(session, key)
    _guard_origin(policy, origin)
    if policy.enabled == enabled:
        return policy
    if enabled:
        _check_free(session, policy.store, policy.category, key)
    policy.enabled = enabled
    policy.updated_at = utcnow()
    audit.record(session, app_id=actor.app_id, actor=actor.name,
                 action="retention.policy_enabled" if enabled else "retention.policy_disabled",
                 resource_type="retention_policy", resource_id=key, details={"version": policy.version})
    return policy
