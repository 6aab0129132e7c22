"""Background jobs: RQ on Redis in production, in-process execution in the embedded default."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from service.config import Settings

log = logging.getLogger(__name__)


class InProcessQueue:
    """Runs each job at once in the calling process: the embedded default needs no Redis and no worker."""

    redis = None

    def __init__(self) -> None:
        self.runtime: Any = None  # set by build_runtime; the jobs run against it

    def enqueue(self, func: Callable[..., Any], *args: Any, queue: str = "default",
                job_id: str | None = None, **kwargs: Any) -> None:
        from service.runtime import use_runtime

        with use_runtime(self.runtime):
            func(*args, **kwargs)

    def ping(self) -> bool:
        return True


class RQQueue:
    """Enqueues onto named RQ queues; workers started from the Procfile execute the jobs."""

    def __init__(self, url: str) -> None:
        from redis import Redis

        self.redis = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)

    def enqueue(self, func: Callable[..., Any], *args: Any, queue: str = "default",
                job_id: str | None = None, **kwargs: Any) -> None:
        from rq import Queue

        Queue(queue, connection=self.redis).enqueue(func, *args, job_id=job_id, kwargs=kwargs)

    def ping(self) -> bool:
        return bool(self.redis.ping())


def make_queue(settings: Settings) -> InProcessQueue | RQQueue:
    return RQQueue(settings.redis_url) if settings.redis_url else InProcessQueue()
