"""The Procfile's scheduler (`python -m privacy.scheduler`): RQ's cron scheduler on `privacy.cron`'s table, kept
running through a Redis outage.

`rq cron` exits at its loop's first Redis error, and started again while Redis is still down it exits at once: a
platform that restarts crashed processes with growing delays would leave the maintenance passes stopped long
after Redis is back, and with them the dispatch of what the outbox kept meanwhile. This loop waits and starts the
same scheduler again instead; entries that came due during the outage run at its first tick.
"""

from __future__ import annotations

import argparse
import logging
import os
import time

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq.cron import CronScheduler
from rq.exceptions import StopRequested

log = logging.getLogger("privacy.scheduler")

FIRST_WAIT, MAX_WAIT = 1.0, 15.0  # seconds between starts while Redis stays down (doubling)


def run(url: str, table: str = "privacy.cron") -> None:
    """Run the cron scheduler of `table` on the Redis at `url` until a signal stops it."""
    connection = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10)
    scheduler = CronScheduler(connection=connection)
    scheduler.load_config_from_file(table)  # once: the table's module registers its entries when first imported
    wait = FIRST_WAIT
    while True:
        started = time.monotonic()
        try:
            scheduler.start()  # returns when a signal stops it, having registered its death
            return
        except (RedisConnectionError, RedisTimeoutError) as exc:
            if time.monotonic() - started > MAX_WAIT:
                wait = FIRST_WAIT  # it ran a while: a new outage, not the same one
            log.warning("scheduler: Redis unreachable (%s); starting again in %.0f s", type(exc).__name__, wait)
        try:
            time.sleep(wait)  # the scheduler's signal handlers stay installed: SIGTERM ends the wait
        except (StopRequested, KeyboardInterrupt):
            return
        wait = min(wait * 2, MAX_WAIT)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m privacy.scheduler", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("REDIS_URL"), help="Redis URL (default: REDIS_URL)")
    args = parser.parse_args()
    if not args.url:
        parser.error("no Redis: set REDIS_URL or give --url")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    run(args.url)


if __name__ == "__main__":
    main()
