"""The process's shared services (settings, database, keys, queue, stores) for web, jobs and the CLI alike."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from service.config import Settings, load_settings
from service.crypto import KeyMaterial, load_key_material
from service.db import Database
from service.jobs import make_queue


@dataclass
class Runtime:
    settings: Settings
    db: Database
    keys: KeyMaterial
    queue: Any
    stores: Any = None


def build_runtime(settings: Settings) -> Runtime:
    """The runtime of `settings`. Every table's model must be imported first (the composition root's
    `load_models`): a process that runs jobs imports only the modules its jobs need, and the ORM maps them all."""
    rt = Runtime(settings=settings, db=Database(settings.database_url), keys=load_key_material(settings),
                 queue=None)
    rt.queue = make_queue(settings, lambda: use_runtime(rt))  # in-process jobs run against this runtime
    return rt


_current: ContextVar[Runtime | None] = ContextVar("runtime", default=None)
_process: Runtime | None = None


def runtime() -> Runtime:
    """The runtime a job or command runs in: the one in use (in-process jobs), else one built from the env.

    An RQ worker process builds its runtime once from its environment, like the web process does.
    """
    global _process
    current = _current.get()
    if current is not None:
        return current
    if _process is None:
        _process = build_runtime(load_settings())
    return _process


@contextmanager
def use_runtime(rt: Runtime) -> Iterator[Runtime]:
    token = _current.set(rt)
    try:
        yield rt
    finally:
        _current.reset(token)
