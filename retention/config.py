"""Policies declared in the TOML file (`[[retention]]`), synced into the database at start-up, and retention's
settings from the environment (`options`), read with the other settings and checked at start-up."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError, OperationalError

from retention import policies
from retention.models import RetentionPolicy
from retention.periods import DEFAULT_SCHEDULE
from service.config import ConfigError, Settings, env_int
from service.errors import DomainError

log = logging.getLogger(__name__)
CONFIG = policies.Actor("config")
_OPTIONS = {"key", "store", "category", "retain_for", "action", "basis", "schedule"}


@dataclass(frozen=True)
class Options:
    """Retention's environment variables (the web process, the worker and the scheduler read the same ones)."""

    batch_size: int = 1000     # RETENTION_BATCH_SIZE: records per batch (per statement, per journal row)
    lease_seconds: int = 120   # RETENTION_LEASE_SECONDS: a run's lease without renewal; renewed at every batch
    tick_seconds: int = 60     # RETENTION_TICK_SECONDS: how often the scheduler looks for due policies


def options(settings: Settings) -> Options:
    """Retention's settings, from the variables `settings` were read from; ConfigError names a bad one. Cheap, so
    read where needed; `load` checks them at start-up."""
    d = Options()
    return Options(batch_size=env_int(settings.env, "RETENTION_BATCH_SIZE", d.batch_size, minimum=1),
                   lease_seconds=env_int(settings.env, "RETENTION_LEASE_SECONDS", d.lease_seconds, minimum=1),
                   tick_seconds=env_int(settings.env, "RETENTION_TICK_SECONDS", d.tick_seconds, minimum=1))


def tick_seconds(settings: Settings) -> int:
    """How often the scheduler's tick runs (the cron table's interval for retention.jobs.run_due_policies)."""
    return options(settings).tick_seconds


def declared(toml: Mapping[str, Any], stores: Any) -> list[dict[str, Any]]:
    """The `[[retention]]` entries, checked; ConfigError names the entry and the option."""
    entries = toml.get("retention", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError("retention: expected [[retention]] tables")
    out, keys = [], set()
    for i, entry in enumerate(entries):
        where = f"retention[{i}]"
        unknown = sorted(set(entry) - _OPTIONS)
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}: unknown option (known: {sorted(_OPTIONS)})")
        for option in ("store", "category", "retain_for", "basis"):
            if not isinstance(entry.get(option), str) or not entry[option]:
                raise ConfigError(f"{where}.{option}: missing (required), a non-empty string")
        data = {"action": "delete", "schedule": DEFAULT_SCHEDULE, **entry}
        data["key"] = entry.get("key") or policies.default_key(data["store"], data["category"])
        if data["key"] in keys:
            raise ConfigError(f"{where}.key: {data['key']!r} is declared twice")
        keys.add(data["key"])
        if data["action"] not in ("delete", "anonymize"):
            raise ConfigError(f"{where}.action: expected delete or anonymize, got {data['action']!r}")
        try:
            normalised = policies.normalise(data)
            policies.check_target(stores, data["store"], data["category"], data["action"])
        except DomainError as exc:
            field = next(iter(exc.errors or {"key": None}))
            raise ConfigError(f"{where}.{field}: {exc.message}") from None
        out.append({**data, **normalised})
    return out


def sync(db: Any, stores: Any, entries: list[dict[str, Any]]) -> None:
    """Make the database say what the file says: create, version, re-enable, and disable the config policies
    the file no longer declares. Safe to run from several processes starting at once. Takes the Database and
    commits: a start-up step with no caller's transaction, retried when another process syncs the same policy."""
    try:
        migrated = inspect(db.engine).has_table("retention_policies")
    except OperationalError as exc:
        # The service starts without its database as it did before retention; the next start-up syncs.
        log.warning("retention policies not synced: the database is unreachable (%s)", type(exc).__name__)
        return
    if not migrated:
        log.warning("retention policies not synced: the database is not migrated yet")
        return
    for attempt in range(3):
        try:
            with db.session() as session:
                _sync(session, stores, entries)
            return
        except DomainError as exc:
            raise ConfigError(f"retention: {exc.message}") from None
        except IntegrityError:
            # Another process synced the same policy at the same moment: read again and converge.
            if attempt == 2:
                raise


def _sync(session: Any, stores: Any, entries: list[dict[str, Any]]) -> None:
    wanted = {e["key"]: e for e in entries}
    for key, entry in wanted.items():
        policy = session.scalar(select(RetentionPolicy).where(RetentionPolicy.key == key))
        if policy is None:
            policies.create_policy(session, stores, CONFIG, entry, origin="config")
            continue
        if (policy.store, policy.category) != (entry["store"], entry["category"]):
            raise ConfigError(f"retention[{list(wanted).index(key)}].key: policy {key!r} governs "
                              f"{policy.store}/{policy.category}; give the new target another key")
        if policy.origin != "config":
            policy.origin = "config"  # the file now owns it
        policies.update_policy(session, stores, CONFIG, key, entry, origin="config")
        policies.set_enabled(session, CONFIG, key, True, origin="config")
    for policy in session.scalars(select(RetentionPolicy).where(RetentionPolicy.origin == "config",
                                                                RetentionPolicy.enabled.is_(True))):
        if policy.key not in wanted:
            policies.set_enabled(session, CONFIG, policy.key, False, origin="config")


def load(rt: Any, stores: Any) -> None:
    """Start-up: check retention's settings and the declared policies (a bad one stops the service), and sync
    the policies."""
    options(rt.settings)
    entries = declared(rt.settings.toml, stores)
    sync(rt.db, stores, entries)
