"""The `[dsar]` settings of the TOML config, validated once (a bad value raises ConfigError naming it)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from service.config import ConfigError, Settings

# The queues of rights-request jobs, in the order the Procfile's worker takes them: a worker takes a waiting `dsar`
# job (store tasks, maintenance) before any `dsar_bulk` job (tasks of bulk stores, assembly of large exports), so
# one request's heavy work does not hold another's small store tasks back (docs/architecture.md, Queues).
QUEUE, BULK_QUEUE = "dsar", "dsar_bulk"


@dataclass(frozen=True)
class Options:
    task_attempts: int = 3            # runs of a store task before it is marked failed
    retry_intervals: tuple[int, ...] = (5, 30)  # seconds between RQ retries (needs `rq worker --with-scheduler`)
    lease_seconds: int = 60           # a running task's lease; its job renews it every third of that
    export_ttl_hours: float = 72      # exports are destroyed this long after they are ready
    download_token_minutes: float = 10
    code_ttl_minutes: float = 15      # a verification code's life
    code_resends_per_hour: int = 3    # new codes a request may be sent per hour after the first (then 429)
    # Consent records kept as proof on erasure: false (none), true (all), or a list of policy keys.
    keep_consent_proof: bool | tuple[str, ...] = False
    export_dir: Path | None = None    # default: <instance>/exports
    notifier: str = "dsar.notify:to_outbox"  # module:function sending verification codes and notices
    bulk_stores: tuple[str, ...] = ()  # stores whose tasks run on the `dsar_bulk` queue (large or slow ones)
    bulk_export_records: int = 10_000  # an export of more records is assembled by a `dsar_bulk` job

    @property
    def code_ttl(self) -> timedelta:
        return timedelta(minutes=self.code_ttl_minutes)

    @property
    def token_ttl(self) -> timedelta:
        return timedelta(minutes=self.download_token_minutes)

    def keeps_consent_of(self, policy_key: str) -> bool:
        if isinstance(self.keep_consent_proof, bool):
            return self.keep_consent_proof
        return policy_key in self.keep_consent_proof


def resolve(target: str) -> Callable[..., Any]:
    """The function a `module:function` setting names (`[dsar] notifier`)."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def export_dir(settings: Settings, request_id: str) -> Path:
    """The folder of a request's export: its parts while stores answer, then the archive."""
    return options(settings).export_dir / request_id  # type: ignore[operator]


def _number(section: Mapping[str, Any], name: str, default: float, minimum: float, integer: bool) -> Any:
    value = section.get(name, default)
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or value < minimum:
        raise ConfigError(f"PRIVACY_CONFIG [dsar].{name}: expected {'an integer' if integer else 'a number'} "
                          f">= {minimum}, got {value!r}")
    return value


def options(settings: Settings) -> Options:
    """`[dsar]` with its defaults; cheap, so read where needed. `[dsar.deadlines]` is checked by dsar.deadlines."""
    section = settings.toml.get("dsar", {})
    if not isinstance(section, dict):
        raise ConfigError("PRIVACY_CONFIG [dsar]: expected a table")
    unknown = set(section) - set(Options.__dataclass_fields__) - {"deadlines"}
    if unknown:
        raise ConfigError(f"PRIVACY_CONFIG [dsar]: unknown option(s) {sorted(unknown)}")
    d = Options()
    intervals = section.get("retry_intervals", list(d.retry_intervals))
    if not isinstance(intervals, list) or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0
                                                  for i in intervals):
        raise ConfigError(f"PRIVACY_CONFIG [dsar].retry_intervals: expected a list of seconds, got {intervals!r}")
    keep = section.get("keep_consent_proof", d.keep_consent_proof)
    if isinstance(keep, list) and all(isinstance(k, str) and k for k in keep):
        keep = tuple(keep)
    elif not isinstance(keep, bool):
        raise ConfigError("PRIVACY_CONFIG [dsar].keep_consent_proof: expected true, false or a list of policy "
                          f"keys, got {keep!r}")
    export_dir = section.get("export_dir")
    if export_dir is not None and (not isinstance(export_dir, str) or not export_dir):
        raise ConfigError(f"PRIVACY_CONFIG [dsar].export_dir: expected a path, got {export_dir!r}")
    notifier = section.get("notifier", d.notifier)
    if not isinstance(notifier, str) or ":" not in notifier:
        raise ConfigError(f"PRIVACY_CONFIG [dsar].notifier: expected module:function, got {notifier!r}")
    try:
        resolve(notifier)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"PRIVACY_CONFIG [dsar].notifier: cannot load {notifier!r}: {exc}") from None
    bulk = section.get("bulk_stores", [])
    if not isinstance(bulk, list) or not all(isinstance(b, str) and b for b in bulk):
        raise ConfigError(f"PRIVACY_CONFIG [dsar].bulk_stores: expected a list of store names, got {bulk!r}")
    return Options(
        task_attempts=_number(section, "task_attempts", d.task_attempts, 1, True),
        retry_intervals=tuple(intervals),
        lease_seconds=_number(section, "lease_seconds", d.lease_seconds, 1, True),
        export_ttl_hours=_number(section, "export_ttl_hours", d.export_ttl_hours, 0, False),
        download_token_minutes=_number(section, "download_token_minutes", d.download_token_minutes, 0.1, False),
        code_ttl_minutes=_number(section, "code_ttl_minutes", d.code_ttl_minutes, 1, False),
        code_resends_per_hour=_number(section, "code_resends_per_hour", d.code_resends_per_hour, 0, True),
        keep_consent_proof=keep,
        export_dir=Path(export_dir) if export_dir else settings.instance_path / "exports",
        notifier=notifier,
        bulk_stores=tuple(bulk),
        bulk_export_records=_number(section, "bulk_export_records", d.bulk_export_records, 0, True),
    )

