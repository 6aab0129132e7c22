"""The Procfile's worker class: `rq worker -w privacy.worker.ServiceWorker ...`.

It runs jobs in its own process (RQ's SimpleWorker), with the domains' job modules imported and the process runtime
built once: a fork per job and the work horse's start cost more than most jobs (docs/architecture.md, Workers).
"""

from __future__ import annotations

import importlib
import logging
import time
import uuid
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import SimpleWorker
from rq.exceptions import StopRequested
from sqlalchemy.orm import configure_mappers

from privacy import load_models, wiring
from service.runtime import Runtime, runtime
from service.stores.registry import registry_for

log = logging.getLogger(__name__)

FIRST_WAIT, MAX_WAIT = 1.0, 15.0  # seconds between looks at a Redis that is down (doubling)


def preload() -> Runtime | None:
    """Import every table and the job modules the domains declare, then build the process runtime and its stores,
    before the worker takes its first job.

    Returns the runtime, or None when it cannot be built now (the database or the key files are not there
    yet): the first job then builds it, and reports the error if it still cannot.
    """
    # A job's module imports only the tables it uses; the ORM needs every table's mapping.
    load_models()
    # A job imports what it needs; importing these first keeps that cost (about 0.3 s) out of the first jobs.
    for name in wiring().job_modules:
        importlib.import_module(name)
    # The ORM configures its mappers at the first query (about 0.1 s): here, not inside the first job.
    configure_mappers()
    try:
        rt = runtime()
    except Exception as exc:  # noqa: BLE001 - the worker still starts; jobs report the error themselves
        log.warning("worker: runtime not preloaded (%s); each job builds its own", type(exc).__name__)
        return None
    try:
        registry_for(rt)  # kept on the runtime: every job of this process uses the same stores
    except Exception as exc:  # noqa: BLE001 - an unreachable store fails the jobs that need it, as before
        log.warning("worker: stores not preloaded (%s); each job builds them", type(exc).__name__)
    return rt


class ServiceWorker(SimpleWorker):
    """`rq worker -w privacy.worker.ServiceWorker`: jobs run in this process, on a runtime built once.

    A job's timeout still holds (RQ's death penalty is SIGALRM in this, the main, thread). What a fork gave and
    this does not: a job that crashes the interpreter or exhausts memory takes the worker with it; the process
    manager starts it again and the reconcilers re-dispatch the job from the database (every job is resumable).
    `--max-jobs` recycles a worker after that many jobs, bounding what a slow leak can grow to.
    """

    _runtime: Runtime | None = None

    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        self._runtime = preload()
        super().bootstrap(*args, **kwargs)

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
