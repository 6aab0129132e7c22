"""Background jobs: RQ on Redis in production, in-process execution in the embedded default.

Both queues take the same call, so domain code never knows which one runs its jobs. Jobs must be idempotent:
the database is the source of truth and any job may run twice (a retry, a re-dispatch after Redis lost it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from service.config import Settings

log = logging.getLogger(__name__)


class InProcessQueue:
    """Runs each job at once in the calling process: the embedded default needs no Redis and no worker.

    Each job runs inside `scope()`: the runtime that built this queue makes itself the one its jobs find.
    """

    redis = None

    def __init__(self, scope: Callable[[], AbstractContextManager[Any]]) -> None:
        self.scope = scope

    def enqueue(self, func: Callable[..., Any], *args: Any, queue: str = "default", job_id: str | None = None,
                retries: int = 0, retry_intervals: Sequence[int] = (), timeout: int | None = None,
                **kwargs: Any) -> None:
        with self.scope():
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


def make_queue(settings: Settings, scope: Callable[[], AbstractContextManager[Any]]) -> InProcessQueue | RQQueue:
    """RQ when REDIS_URL is set, else in-process jobs run inside `scope()`."""
    return RQQueue(settings.redis_url) if settings.redis_url else InProcessQueue(scope)

