"""Retention benchmark on PostgreSQL: a full run destroying 1,000,000 expired rows of 2,000,000, requested through
the API and executed by a real rq worker, against the faster of two hand-written batched DELETEs of the same rows
by key at the same batch size in the same run (and, for reference, a DELETE by physical row address); and the
worker's peak memory.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

import psycopg  # noqa: E402
from alembic import command  # noqa: E402
from redis import Redis  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench import workers  # noqa: E402

ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")
SERVICE_DB, STORE_DB = "bench_retention", "bench_retention_store"
RETAIN_FOR = "P365D"


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def fresh_database(name: str) -> str:
    with psycopg.connect(libpq(ADMIN_URL), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_database(name: str) -> None:
    with psycopg.connect(libpq(ADMIN_URL), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def create_store(url: str, rows: int) -> None:
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        # Odd ids are 400-699 days old, even ids 0-299 days: exactly half expire, interleaved through the table.
        conn.execute("""
            CREATE TABLE events_template AS
            SELECT g::bigint AS id, (g %% %(users)s)::bigint AS user_id, md5(g::text) AS payload,
                   now() - make_interval(days => (g %% 2) * 400 + (g %% 300)) AS created_at
            FROM generate_series(1, %(rows)s) AS g""", {"rows": rows, "users": max(rows // 5, 1)})
        conn.execute("""CREATE TABLE events (id bigint PRIMARY KEY, user_id bigint NOT NULL, payload text,
                        created_at timestamptz NOT NULL)""")
        conn.execute("CREATE INDEX ix_events_user_id ON events (user_id)")
        conn.execute("CREATE INDEX ix_events_created_at ON events (created_at)")


def reset(url: str) -> None:
    """The same starting state for every run: the table refilled from the template, vacuumed and analysed."""
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        conn.execute("TRUNCATE events")
        conn.execute("INSERT INTO events SELECT * FROM events_template")
        conn.execute("VACUUM ANALYZE events")
        conn.execute("CHECKPOINT")


# The hand-written batched DELETEs, each one transaction per batch of the same rows. `in` and `keys` find the rows
# by their key, as the service must (its certificate names keys): `in` is the textbook statement, `keys` selects a
# batch's keys and deletes exactly those (the shape the service's PostgreSQL path uses, and on this table the
# faster of the two). The baseline is whichever is faster. `ctid` deletes by physical row address, the fastest
# DELETE PostgreSQL offers, which knows nothing of keys: a reference.
HAND_WRITTEN = {
    "in": ["DELETE FROM events WHERE id IN (SELECT id FROM events WHERE created_at < %(cutoff)s LIMIT %(batch)s)"],
    "keys": ["SELECT array_agg(id)::text FROM (SELECT id FROM events WHERE created_at < %(cutoff)s "
             "LIMIT %(batch)s) AS chosen",
             "DELETE FROM events WHERE id = ANY(%(keys)s::bigint[]) AND created_at < %(cutoff)s"],
    "ctid": ["DELETE FROM events WHERE ctid = ANY(ARRAY(SELECT ctid FROM events WHERE created_at < %(cutoff)s "
             "LIMIT %(batch)s))"],
}
BY_KEY = ("in", "keys")


def hand_written(url: str, batch: int, form: str) -> tuple[float, int]:
    """What a DBA would write: batches of one transaction each until one comes back short."""
    total = 0
    start = time.perf_counter()
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        cutoff = conn.execute(f"SELECT now() - interval '{RETAIN_FOR[1:-1]} days'").fetchone()[0]
        params = {"cutoff": cutoff, "batch": batch}
        while True:
            with conn.transaction():
                if form == "keys":
                    keys = conn.execute(HAND_WRITTEN[form][0], params).fetchone()[0]
                    done = conn.execute(HAND_WRITTEN[form][1], {**params, "keys": keys}).rowcount if keys else 0
                else:
                    done = conn.execute(HAND_WRITTEN[form][0], params).rowcount
            total += done
            if done < batch:
                return time.perf_counter() - start, total


def service_run(client, headers: dict[str, str]) -> tuple[float, int, dict]:
    """POST the run, wait until the worker reports it finished; its time runs from the request to the end."""
    start = datetime.now().astimezone()
    r = client.post("/v1/retention/runs", json={"policy": "events"}, headers=headers)
    assert r.status_code == 202, r.json
    while True:
        time.sleep(0.25)  # the run's own timestamps give the time: polling more often would only load the database
        report = client.get(f"/v1/retention/runs/{r.json['id']}", headers=headers).json
        if report["state"] in ("succeeded", "failed"):
            assert report["state"] == "succeeded", report
            finished = datetime.fromisoformat(report["finished_at"])
            return (finished - start).total_seconds(), report["steps"][0]["count"], report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--batch", default="1000,5000",
                        help="rows per batch (RETENTION_BATCH_SIZE), comma-separated to compare several")
    parser.add_argument("--rounds", type=int, default=2, help="timed runs of each (the best counts)")
    args = parser.parse_args()

    sizes = [int(b) for b in args.batch.split(",")]
    print(f"store database {STORE_DB}: {args.rows:,} rows, half older than {RETAIN_FOR}; batch sizes {sizes}",
          flush=True)
    service_url, store_url = fresh_database(SERVICE_DB), fresh_database(STORE_DB)
    create_store(store_url, args.rows)
    instance = Path(tempfile.mkdtemp(prefix="bench-retention-"))
    config = instance / "privacy.toml"
    config.write_text("""
[[stores]]
name = "events-db"
plugin = "sql"
url_env = "BENCH_STORE_URL"
  [[stores.tables]]
  table = "events"
  category = "events"
  identity = { user_id = "user_id" }
  timestamp_column = "created_at"
""")
    env = {"DATABASE_URL": service_url, "INSTANCE_PATH": str(instance), "PRIVACY_CONFIG": str(config),
           "REDIS_URL": REDIS_URL, "BENCH_STORE_URL": store_url}
    Redis.from_url(REDIS_URL).flushdb()
    import logging

    from privacy import create_app
    from service.cli import alembic_config
    from service.tenancy import create_app_tenant, create_key

    command.upgrade(alembic_config(service_url), "head")
    app = create_app(env)
    logging.getLogger("privacy.access").setLevel(logging.WARNING)
    with app.extensions["db"].session() as session:
        create_app_tenant(session, "bench")
        _, secret = create_key(session, "bench", frozenset({"platform:retention"}))
    headers = {"Authorization": f"Bearer {secret}"}
    client = app.test_client()
    r = client.post("/v1/retention/policies", headers=headers, json={
        "key": "events", "store": "events-db", "category": "events", "retain_for": RETAIN_FOR,
        "basis": "benchmark"})
    assert r.status_code == 201, r.json
    results = {}
    try:
        for batch in sizes:
            worker_env = {**os.environ, **env, "PYTHONPATH": str(ROOT), "RETENTION_BATCH_SIZE": str(batch)}
            print(f"batch size {batch:,}", flush=True)
            results[batch] = rounds(args.rounds, store_url, batch, worker_env, client, headers)
        worker_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    finally:
        app.extensions["stores"].close()
        app.extensions["db"].dispose()
        drop_database(SERVICE_DB)
        drop_database(STORE_DB)
        Redis.from_url(REDIS_URL).flushdb()

    print(f"\n{'measurement':<60}{'figure':>10}{'target':>10}  verdict")
    for batch, (hand, service) in results.items():
        best = {form: min(times) for form, times in hand.items()}
        baseline = min(BY_KEY, key=best.__getitem__)
        ratio = min(service) / best[baseline]
        print(f"{f'batch {batch:,}: run of {args.rows // 2:,} expired rows (best), s':<60}{min(service):>10.2f}")
        for form in HAND_WRITTEN:
            label = f"batch {batch:,}: hand-written DELETE, {form} (best), s"
            print(f"{label:<60}{best[form]:>10.2f}" + ("   the baseline" if form == baseline else ""))
        print(f"{f'batch {batch:,}: run / hand-written ({baseline})':<60}{ratio:>10.3f}{'<= 1.3':>10}  "
              f"{'ok' if ratio <= 1.3 else 'MISSED'}")
        print(f"{f'batch {batch:,}:   run / hand-written (ctid)':<60}{min(service) / best['ctid']:>10.3f}"
              "   (reference: physical row addresses, no keys)")
    print(f"{'peak memory of the worker (ru_maxrss), MB':<60}{worker_mb:>10.1f}{'< 200':>10}  "
          f"{'ok' if worker_mb < 200 else 'MISSED'}")


def rounds(count: int, store_url: str, batch: int, worker_env: dict[str, str], client,
           headers: dict[str, str]) -> tuple[dict[str, list[float]], list[float]]:
    hand: dict[str, list[float]] = {form: [] for form in HAND_WRITTEN}
    service = []
    for _ in range(count):
        for form in HAND_WRITTEN:
            reset(store_url)
            seconds, rows = hand_written(store_url, batch, form)
            hand[form].append(seconds)
            print(f"  hand-written DELETE, {form + ':':<6}  {rows:,} rows in {seconds:.2f} s", flush=True)
        reset(store_url)
        worker = workers.start(workers.procfile_command(REDIS_URL), worker_env, REDIS_URL)  # as production runs it
        seconds, rows, report = service_run(client, headers)
        workers.stop(worker, timeout=60)
        service.append(seconds)
        step = report["steps"][0]
        phases = {name: (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds() for name, a, b in (
            ("queue and start-up", report["created_at"], report["started_at"]),
            ("expire", step["started_at"], step["finished_at"]),
            ("certificate", step["finished_at"], report["finished_at"]))}
        print(f"  API + worker run:            {rows:,} rows in {seconds:.2f} s ({step['batch_count']:,} batches; "
              + ", ".join(f"{k} {v:.2f} s" for k, v in phases.items()) + ")", flush=True)
    return hand, service


if __name__ == "__main__":
    main()
