"""The Procfile's worker class: `rq worker -w privacy.worker.ServiceWorker ...`.

It forks a work horse per job, as RQ does, but the horse starts with the domains' job modules imported and the
process runtime built, instead of doing both for every job.
"""

from __future__ import annotations

import importlib
import logging
import time
import uuid
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Worker
from rq.exceptions import StopRequested

from privacy import load_models, wiring
from service.runtime import Runtime, runtime
from service.stores.registry import BUILTINS, registry_for

log = logging.getLogger(__name__)

FIRST_WAIT, MAX_WAIT = 1.0, 15.0  # seconds between looks at a Redis that is down (doubling)


def preload() -> Runtime | None:
    """Import every table and the job modules the domains declare, then build the process runtime and its stores,
    in a worker before it forks.

    Returns the runtime, or None when it cannot be built now (the database or the key files are not there
    yet): each work horse then builds its own, as a plain `rq worker` does, and reports the error in its job.
    """
    # A job's module imports only the tables it uses; the ORM needs every table's mapping.
    load_models()
    # A work horse imports what its job needs; importing these before forking spares every job that (about
    # 0.3 s of imports each).
    for name in wiring().job_modules:
        importlib.import_module(name)
    try:
        rt = runtime()
    except Exception as exc:  # noqa: BLE001 - the worker still starts; jobs report the error themselves
        log.warning("worker: runtime not preloaded (%s); each job builds its own", type(exc).__name__)
        return None
    try:
        stores = registry_for(rt)
    except Exception as exc:  # noqa: BLE001 - an unreachable store fails the jobs that need it, as before
        log.warning("worker: stores not preloaded (%s); each job builds them", type(exc).__name__)
    else:
        if not all(_fork_safe(store) for store in stores):
            # A third-party plugin may hold connections a forked child must not share: built per job instead.
            rt.stores = None
            stores.close()
    # The parent keeps no connection open: each work horse opens its own.
    for engine in _engines(rt):
        engine.dispose()
    return rt


def _fork_safe(store: Any) -> bool:
    """The built-in plugins survive a fork: `sql` engines are disposed in the child, redis-py notices the fork,
    and `files` holds nothing open."""
    return BUILTINS.get(getattr(store, "plugin", None), "").partition(":")[0] == type(store).__module__


def _engines(rt: Runtime) -> list[Any]:
    stores = list(rt.stores) if rt.stores is not None else []
    return [rt.db.engine, *(store.engine for store in stores if getattr(store, "plugin", None) == "sql")]


def after_fork(rt: Runtime | None) -> None:
    """In a work horse: drop the connection pools inherited from the worker, without closing their
    connections (they belong to the parent)."""
    if rt is None:
        return
    for engine in _engines(rt):
        engine.dispose(close=False)


class ServiceWorker(Worker):
    """`rq worker -w privacy.worker.ServiceWorker`: the runtime built once, before the work horses fork."""

    _runtime: Runtime | None = None

    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        self._runtime = preload()
        super().bootstrap(*args, **kwargs)

    def main_work_horse(self, *args: Any, **kwargs: Any) -> None:
        after_fork(self._runtime)
        super().main_work_horse(*args, **kwargs)

    def work(self, burst: bool = False, *args: Any, **kwargs: Any) -> bool:
        """RQ's loop, started again when it ended on a lost Redis.

        RQ waits for Redis only while it waits for a job: a Redis error anywhere else (after a job, in its
        maintenance, while a job runs) ends the loop, and its teardown fails on the same error. The process then
        exited, and the jobs the outbox and the scheduler send once Redis is back had no worker. This waits for
        Redis and starts the loop again under a new name (the old one may still look alive in Redis)."""
        while True:
            try:
                return super().work(burst, *args, **kwargs)
            except (RedisConnectionError, RedisTimeoutError) as exc:
                log.warning("worker %s: Redis lost (%s); waiting for it", self.name, type(exc).__name__)
            if burst or self._stop_requested or not self._wait_for_redis():
                return False
            self.name = uuid.uuid4().hex

    def _wait_for_redis(self) -> bool:
        """Wait until Redis answers; False when a signal asked the worker to stop meanwhile."""
        wait = FIRST_WAIT
        while True:
            try:
                time.sleep(wait)
                if self._stop_requested:
                    return False
                self.connection.ping()
                return True
            except (RedisConnectionError, RedisTimeoutError):
                wait = min(wait * 2, MAX_WAIT)
            except (StopRequested, KeyboardInterrupt):
                return False
