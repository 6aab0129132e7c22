"""Background jobs: RQ on Redis in production, in-process execution in the embedded default.

Both queues take the same call, so domain code never knows which one runs its jobs. Jobs must be idempotent:
the database is the source of truth and any job may run twice (a retry, a re-dispatch after Redis lost it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from service.config import Settings

log = logging.getLogger(__name__)


class InProcessQueue:
    """Runs each job at once in the calling process: the embedded default needs no Redis and no worker."""

    redis = None

    def __init__(self) -> None:
        self.runtime: Any = None  # set by build_runtime; the jobs run against it

    def enqueue(self, func: Callable[..., Any], *args: Any, queue: str = "default", job_id: str | None = None,
                retries: int = 0, retry_intervals: Sequence[int] = (), timeout: int | None = None,
                **kwargs: Any) -> None:
        from service.runtime import use_runtime

        with use_runtime(self.runtime):
            for attempt in range(retries + 1):
                try:
                    func(*args, **kwargs)
                    return
                except Exception:
                    # No sleeping between attempts here: this runs in the caller's request or command.
                    log.warning("in-process job %s failed (attempt %d of %d)", func.__name__, attempt + 1,
                                retries + 1)
                    if attempt == retries:
                        raise

    def ping(self) -> bool:
        return True


class RQQueue:
    """Enqueues onto named RQ queues; workers started from the Procfile execute the jobs."""

    def __init__(self, url: str) -> None:
        from redis import Redis

        self.redis = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)

    def enqueue(self, func: Callable[..., Any], *args: Any, queue: str = "default", job_id: str | None = None,
                retries: int = 0, retry_intervals: Sequence[int] = (), timeout: int | None = None,
                **kwargs: Any) -> None:
        from rq import Queue, Retry

        retry = Retry(max=retries, interval=list(retry_intervals) or 0) if retries else None
        Queue(queue, connection=self.redis).enqueue_call(func, args=args, kwargs=kwargs, job_id=job_id,
                                                         retry=retry, timeout=timeout)

    def ping(self) -> bool:
        return bool(self.redis.ping())


def make_queue(settings: Settings) -> InProcessQueue | RQQueue:
    return RQQueue(settings.redis_url) if settings.redis_url else InProcessQueue()


# --- the Procfile's worker --------------------------------------------------------------------------------

# The modules whose functions RQ jobs call. A work horse imports what its job needs; importing these in the
# worker before it forks spares every job that (about 0.3 s of imports each).
JOB_MODULES = ("retention.jobs", "dsar.jobs")


def preload() -> Any:
    """Import the job modules and build the process runtime and its stores, in a worker before it forks.

    Returns the runtime, or None when it cannot be built now (the database or the key files are not there
    yet): each work horse then builds its own, as a plain `rq worker` does, and reports the error in its job.
    """
    import importlib

    from service.runtime import runtime
    from service.stores.registry import registry_for

    for name in JOB_MODULES:
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
    from service.stores.registry import BUILTINS

    return BUILTINS.get(getattr(store, "plugin", None), "").partition(":")[0] == type(store).__module__


def _engines(rt: Any) -> list[Any]:
    stores = list(rt.stores) if rt.stores is not None else []
    return [rt.db.engine, *(store.engine for store in stores if getattr(store, "plugin", None) == "sql")]


def after_fork(rt: Any) -> None:
    """In a work horse: drop the connection pools inherited from the worker, without closing their
    connections (they belong to the parent)."""
    if rt is None:
        return
    for engine in _engines(rt):
        engine.dispose(close=False)


def _worker_class() -> type:
    from rq import Worker

    class ServiceWorker(Worker):
        """`rq worker -w service.jobs.ServiceWorker`: forks a work horse per job, as RQ does, but the horse
        starts with the service imported and its runtime built, instead of doing both for every job."""

        _runtime: Any = None

        def bootstrap(self, *args: Any, **kwargs: Any) -> None:
            self._runtime = preload()
            super().bootstrap(*args, **kwargs)

        def main_work_horse(self, *args: Any, **kwargs: Any) -> None:
            after_fork(self._runtime)
            super().main_work_horse(*args, **kwargs)

    ServiceWorker.__module__, ServiceWorker.__qualname__ = __name__, "ServiceWorker"
    return ServiceWorker


def __getattr__(name: str) -> Any:
    # RQ is imported only by processes that use it: the web app and the embedded default never need it.
    if name == "ServiceWorker":
        cls = _worker_class()
        globals()[name] = cls
        return cls
    raise AttributeError(name)
