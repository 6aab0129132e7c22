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


@dataclass
class Runtime:
    settings: Settings
    db: Database
    keys: KeyMaterial
    queue: Any
    stores: Any = None


def build_runtime(settings: Settings) -> Runtime:
    from service.db import load_models
    from service.jobs import make_queue

    load_models()  # a worker imports only its job's module; the ORM needs every table's mapping

    rt = Runtime(settings=settings, db=Database(settings.database_url), keys=load_key_material(settings),
                 queue=make_queue(settings))
    if rt.queue.redis is None:
        rt.queue.runtime = rt
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
