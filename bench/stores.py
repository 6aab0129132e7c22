"""Store plugin benchmark on PostgreSQL: the sql plugin's expire against a hand-written batched DELETE of the same
rows at the same batch size (same run, same data), the process's peak memory, and one subject's access time.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

import psycopg  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from service.stores import build_registry  # noqa: E402
from service.stores.options import StoreContext  # noqa: E402

ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DB_NAME = "bench_stores"
NOW = datetime.now(UTC).replace(microsecond=0)
CUTOFF = NOW - timedelta(days=365)


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_database(rows: int) -> str:
    with psycopg.connect(libpq(ADMIN_URL), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    url = make_url(ADMIN_URL).set(database=DB_NAME).render_as_string(hide_password=False)
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        # Odd ids are 400-699 days old, even ids 0-299 days: exactly half expire, interleaved through the table.
        conn.execute("""
            CREATE TABLE events_template AS
            SELECT g::bigint AS id, (g %% %(users)s)::bigint AS user_id,
                   'user' || (g %% %(users)s) || '@example.com' AS email,
                   md5(g::text) AS payload,
                   %(now)s::timestamptz - make_interval(days => (g %% 2) * 400 + (g %% 300)) AS created_at
            FROM generate_series(1, %(rows)s) AS g""",
                     {"rows": rows, "users": max(rows // 5, 1), "now": NOW})
        conn.execute("""CREATE TABLE events (id bigint PRIMARY KEY, user_id bigint NOT NULL, email text,
                        payload text, created_at timestamptz NOT NULL)""")
        conn.execute("CREATE INDEX ix_events_user_id ON events (user_id)")
        conn.execute("CREATE INDEX ix_events_created_at ON events (created_at)")
    return url


def reset(url: str) -> None:
    """The same starting state for every run: the table refilled from the template, vacuumed and analysed."""
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        conn.execute("TRUNCATE events")
        conn.execute("INSERT INTO events SELECT * FROM events_template")
        conn.execute("VACUUM ANALYZE events")
        conn.execute("CHECKPOINT")


def hand_written(url: str, batch: int) -> int:
    total = 0
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        while True:
            with conn.transaction():
                done = conn.execute("DELETE FROM events WHERE id IN "
                                    "(SELECT id FROM events WHERE created_at < %s LIMIT %s)", (CUTOFF, batch)).rowcount
            total += done
            if done < batch:
                return total


def timed(run: Callable[[], int]) -> tuple[float, int]:
    start = time.perf_counter()
    count = run()
    return time.perf_counter() - start, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2, help="timed runs of each (the best counts)")
    parser.add_argument("--lookups", type=int, default=300)
    args = parser.parse_args()

    print(f"database {DB_NAME}: {args.rows:,} rows, half older than the cutoff; batch size {args.batch:,}",
          flush=True)
    url = create_database(args.rows)
    registry = build_registry([{
        "name": "bench", "plugin": "sql", "url": url,
        "tables": [{"table": "events", "category": "events", "identity": {"user_id": "user_id", "email": "email"},
                    "timestamp_column": "created_at"}]}],
        StoreContext(base_dir=Path(tempfile.gettempdir()), instance_path=Path(tempfile.gettempdir()), environ={}))
    store = registry.get("bench")
    try:
        hand, plugin = [], []
        for _ in range(args.rounds):
            reset(url)
            seconds, count = timed(lambda: hand_written(url, args.batch))
            hand.append(seconds)
            print(f"  hand-written DELETE: {count:,} rows in {seconds:.2f} s", flush=True)
            reset(url)
            seconds, count = timed(lambda: sum(store.expire("events", CUTOFF, batch_size=args.batch)))
            plugin.append(seconds)
            print(f"  sql plugin expire:   {count:,} rows in {seconds:.2f} s", flush=True)
        reset(url)
        users = max(args.rows // 5, 1)
        lookups = []
        raw = []
        with psycopg.connect(libpq(url)) as conn:
            for i in range(args.lookups):
                uid = str((i * 7919) % users)
                start = time.perf_counter()
                records = list(store.access({"user_id": uid}))
                lookups.append((time.perf_counter() - start) * 1000)
                start = time.perf_counter()
                rows = conn.execute("SELECT * FROM events WHERE user_id = %s ORDER BY id", (int(uid),)).fetchall()
                raw.append((time.perf_counter() - start) * 1000)
                assert len(records) == len(rows) == args.rows // users
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    finally:
        registry.close()
        with psycopg.connect(libpq(ADMIN_URL), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")

    ratio = min(plugin) / min(hand)
    access_ms = statistics.median(lookups)
    print(f"\n{'measurement':<48}{'figure':>12}{'target':>10}  verdict")
    print(f"{'expire ' + format(args.rows // 2, ',') + ' rows (best), s':<48}{min(plugin):>12.2f}")
    print(f"{'hand-written batched DELETE (best), s':<48}{min(hand):>12.2f}")
    print(f"{'expire / hand-written':<48}{ratio:>12.3f}{'<= 1.25':>10}  {'ok' if ratio <= 1.25 else 'MISSED'}")
    print(f"{'peak memory of the process (ru_maxrss), MB':<48}{peak_mb:>12.1f}{'< 150':>10}  "
          f"{'ok' if peak_mb < 150 else 'MISSED'}")
    print(f"{'access, one subject of ' + format(args.rows, ',') + ' (median), ms':<48}{access_ms:>12.2f}"
          f"{'< 5':>10}  {'ok' if access_ms < 5 else 'MISSED'}")
    print(f"{'  p95, ms':<48}{statistics.quantiles(lookups, n=20)[-1]:>12.2f}")
    print(f"{'  raw psycopg query for the same rows (median), ms':<48}{statistics.median(raw):>12.2f}")
    print(f"{'  access / raw query':<48}{access_ms / statistics.median(raw):>12.2f}")


if __name__ == "__main__":
    main()
