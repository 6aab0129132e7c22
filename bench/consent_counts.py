"""Consent rates benchmark: the console's old query (every event's purposes expanded in SQL) against
consent.counts.rates() after a fold, and the fold itself, at 1,000,000 events spread over 12 weeks on PostgreSQL."""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this file's folder would shadow the repository's `consent` package with bench/consent.py.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

import psycopg  # noqa: E402

from bench import consent as bench  # noqa: E402

DB_NAME = "bench_consent_counts"
# Rows made in SQL, not through the recording path: the figures are about counting, so hashes and receipts are
# placeholders. Ids are UUIDv7-shaped from each event's time, as uuid7() makes them.
SEED = """
INSERT INTO consent_events (id, app_id, policy_id, version_id, subject, seq, kind, purposes, gpc, channel,
                            locale, created_at, hash, receipt)
SELECT substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-7' || substr(r, 1, 3) || '-8' || substr(r, 4, 3) || '-'
       || substr(r, 7, 12), %(app)s, %(policy)s, %(version)s, 'subject-' || i, 1,
       CASE WHEN i %% 10 = 0 THEN 'withdrawal' ELSE 'consent' END,
       json_build_object('essential', true, 'analytics', i %% 2 = 0, 'marketing', i %% 3 = 0), i %% 7 = 0, 'web',
       'en-GB', ts, r || r, 'placeholder'
FROM (SELECT i, md5(i::text) AS r, ts,
             lpad(to_hex((extract(epoch FROM ts) * 1000)::bigint), 12, '0') AS h
      FROM (SELECT i, now() - (%(n)s - i) * interval '7344 milliseconds' AS ts
            FROM generate_series(%(start)s, %(n)s) AS i) t) s
"""


def timed(fn, rounds: int) -> tuple[float, object]:
    took, result = [], None
    for _ in range(rounds):
        began = time.perf_counter()
        result = fn()
        took.append((time.perf_counter() - began) * 1000)
    return statistics.median(took), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", default=bench.ADMIN_URL)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    from consent import counts
    from consent.models import ConsentEvent
    from service.db import Database, utcnow

    url = bench.fresh_database(args.postgres, name=DB_NAME)
    with tempfile.TemporaryDirectory() as work:
        tenant = bench.setup_tenant({"DATABASE_URL": url, "INSTANCE_PATH": work})
    with psycopg.connect(bench.libpq(url), autocommit=True) as conn:
        policy, version = conn.execute("SELECT policy_id, id FROM policy_versions").fetchone()
        began = time.perf_counter()
        conn.execute(SEED, {"app": tenant.app_id, "policy": policy, "version": version, "n": args.events,
                            "start": 1})
        conn.execute("VACUUM ANALYZE consent_events")
        print(f"seeded {args.events:,} events over 85 days in {time.perf_counter() - began:.1f} s", flush=True)

    db = Database(url)
    since = utcnow() - timedelta(weeks=12)

    def old() -> object:
        with db.session() as session:
            return counts.direct(session, ConsentEvent.policy_id == policy, ConsentEvent.created_at >= since)

    def new() -> object:
        with db.session() as session:
            return counts.rates(session, policy, since)

    old_ms, _ = timed(old, args.rounds)
    print(f"old query (purposes expanded over every event): {old_ms:,.0f} ms (median of {args.rounds})")
    began = time.perf_counter()
    done = counts.fold(db)
    fold_s = time.perf_counter() - began
    print(f"fold of {done.events:,} events in {done.batches} batches: {fold_s:.1f} s "
          f"({done.events / fold_s:,.0f} events/s)")
    with psycopg.connect(bench.libpq(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE consent_counts")
        rows = conn.execute("SELECT count(*) FROM consent_counts").fetchone()[0]
        tail = conn.execute("SELECT count(*) FROM consent_events WHERE id > "
                            "(SELECT last_id FROM consent_count_marks)").fetchone()[0]
    new_ms, _ = timed(new, args.rounds)
    print(f"rates() after the fold ({rows:,} count rows, {tail:,} events in the tail): {new_ms:,.1f} ms "
          f"(median of {args.rounds})")
    assert new() == new() and _same(old, new)
    with psycopg.connect(bench.libpq(url), autocommit=True) as conn:  # a minute's worth of new events
        conn.execute(SEED.replace("interval '7344 milliseconds'", "interval '6 milliseconds'"),
                     {"app": tenant.app_id, "policy": policy, "version": version, "n": args.events + 10_000,
                      "start": args.events + 1})
    began = time.perf_counter()
    done = counts.fold(db, lag=timedelta(0))  # the last minute's events are past any horizon here
    print(f"incremental fold of {done.events:,} new events: {(time.perf_counter() - began) * 1000:,.0f} ms")
    db.dispose()
    bench.fresh_database(args.postgres, drop=True, name=DB_NAME)
    return 0


def _same(old, new) -> bool:
    """rates() equals the old query's numbers (its rows unordered)."""
    totals, purposes = old()
    got = new()
    weeks = {r["week"]: [r["events"], r["gpc"]] for r in got["weeks"]}
    by = {(r["week"], r["purpose"]): [r["granted"], r["denied"], r["withdrawn"]] for r in got["purposes"]}
    if weeks != totals or by != purposes:
        raise SystemExit("rates() differs from the old query")
    return True


if __name__ == "__main__":
    raise SystemExit(main())
