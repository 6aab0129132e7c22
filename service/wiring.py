"""What a domain hands the composition root: its routes, commands, jobs, tables, cron entries and start-up hooks.

Each domain package's `register(wiring)` appends to these lists; the root (`privacy`) builds one Wiring from its
DOMAINS and applies it to the shared layer. The shared layer reads only this: it never imports a domain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from click import Group
    from flask import Flask
    from flask_smorest import Blueprint
    from sqlalchemy.orm import Session

    from service.evidence import EvidenceSection
    from service.pages import PageBlueprint
    from service.runtime import Runtime
    from service.stores.datamap import RetentionLookup
    from service.stores.registry import Registry


@dataclass(frozen=True)
class CronEntry:
    """One line of the RQ cron table: `func` enqueued on `queue` every `interval` seconds.

    `interval` and `job_timeout` may be zero-argument functions: the scheduler reads them when it starts, so a
    setting it alone uses is read by it alone.
    """

    func: Callable[..., Any]
    queue: str
    interval: int | Callable[[], int]
    job_timeout: int | Callable[[], int]
    result_ttl: int

    def options(self) -> dict[str, Any]:
        """The keyword arguments of `rq.cron.register`, settings read now."""
        return {"queue_name": self.queue, "interval": _value(self.interval),
                "job_timeout": _value(self.job_timeout), "result_ttl": self.result_ttl}


def _value(setting: int | Callable[[], int]) -> int:
    return setting() if callable(setting) else setting


@dataclass(frozen=True)
class ReadinessDetail:
    """A detail /readyz shows under `name` but does not check: `read(session)`, or `missing` when the database
    cannot be read (a detail never makes the service not ready)."""

    name: str
    read: Callable[[Session], Any]
    missing: Any = None


@dataclass(frozen=True)
class ErasureCompleted:
    """An erasure request that has just closed (`completed` or `partially_completed`), as the rights-request domain
    hands it to whoever listens: the categories erased in the stores that succeeded, and the request's identity
    fields in clear (for notices to recipients that hold the same person's data; never to be stored in clear)."""

    request_id: str
    app_id: int
    status: str
    categories: frozenset[str]
    identity: dict[str, str]


@dataclass
class Wiring:
    """The domains' contributions, in DOMAINS order."""

    blueprints: list[Blueprint] = field(default_factory=list)  # flask-smorest, registered on the Api
    pages: list[PageBlueprint] = field(default_factory=list)  # web faces (service.pages.blueprint)
    translations: list[str] = field(default_factory=list)  # Babel catalogue folders of those faces
    cli_groups: list[Group] = field(default_factory=list)  # `flask <group> ...`
    job_modules: list[str] = field(default_factory=list)  # imported by the worker before it forks
    model_modules: list[str] = field(default_factory=list)  # declare tables; every process loads them all
    cron: list[CronEntry] = field(default_factory=list)
    on_runtime: list[Callable[[Runtime, Registry], None]] = field(default_factory=list)  # at app start, first
    on_app: list[Callable[[Flask], None]] = field(default_factory=list)  # at app start, last (e.g. middleware)
    readiness: list[ReadinessDetail] = field(default_factory=list)
    # GET /v1/datamap: (session) -> what retention applies to a (store, category); no lookup, no retention shown.
    datamap_lookup: Callable[[Session], RetentionLookup] | None = None
    # Called in the transaction that closes an erasure request (before it commits): (runtime, session, event).
    on_erasure_completed: list[Callable[[Runtime, Session, ErasureCompleted], None]] = field(default_factory=list)
    # The audit evidence pack's sections (`flask evidence export`), in DOMAINS order.
    evidence: list[EvidenceSection] = field(default_factory=list)


_installed = Wiring()


def install(wiring: Wiring) -> None:
    """The composition root hands its Wiring over, so code without Flask (a job) reaches the domains' hooks."""
    global _installed
    _installed = wiring


def installed() -> Wiring:
    """The Wiring the composition root installed (an empty one before it did)."""
    return _installed
