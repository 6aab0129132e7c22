"""The `[incidents]` settings of the TOML config (clock overrides are read by incidents.clocks), validated: a bad
value raises ConfigError naming it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from incidents import clocks
from service.config import ConfigError, Settings


@dataclass(frozen=True)
class Options:
    batch_size: int = 1000        # identities per batch asked of a store's subjects()
    lease_seconds: int = 120      # an assessment run's lease; renewed at every batch
    subjects_kept_days: int = 365  # the affected-subject lists are destroyed this long after the incident closes


def _int(section: Mapping[str, Any], name: str, default: int, minimum: int) -> int:
    value = section.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"PRIVACY_CONFIG [incidents].{name}: expected an integer >= {minimum}, got {value!r}")
    return value


def options(settings: Settings) -> Options:
    """`[incidents]` with its defaults; cheap, so read where needed."""
    section = settings.toml.get("incidents", {})
    if not isinstance(section, dict):
        raise ConfigError("PRIVACY_CONFIG [incidents]: expected a table")
    unknown = set(section) - set(Options.__dataclass_fields__) - {"clocks", "holidays"}
    if unknown:
        raise ConfigError(f"PRIVACY_CONFIG [incidents]: unknown option(s) {sorted(unknown)}")
    d = Options()
    return Options(batch_size=_int(section, "batch_size", d.batch_size, 1),
                   lease_seconds=_int(section, "lease_seconds", d.lease_seconds, 1),
                   subjects_kept_days=_int(section, "subjects_kept_days", d.subjects_kept_days, 0))


def check(rt: Any, stores: Any) -> None:
    """Start-up: the options and the clock overrides are read once, so a bad one stops the service."""
    options(rt.settings)
    clocks.table(rt.settings.toml)
