"""Store `subjects` benchmark on PostgreSQL: the sql plugin listing who had records of one category in a time window,
over a table of 1,000,000 rows, beside a hand-written `SELECT DISTINCT` of the same identity columns over the same
window (streamed by a server-side cursor, same batch size) measured in the same run; each in a fresh process with
its own peak memory. Then the keyset pages the plugin does not use (`WHERE (identity) > last ORDER BY identity
LIMIT n`), timed over their first pages, to show why.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Run as `python bench/store_subjects.py`, this file's folder would come first on sys.path and shadow packages of
# the repository root with bench modules of the same name; the root must win.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

import psycopg  # noqa: E402

from bench.consent import ADMIN_URL, fresh_database, libpq  # noqa: E402

DB_NAME = "bench_store_subjects"
NOW = datetime(2026, 11, 28, tzinfo=UTC)
RATIO_TARGET = 1.5
MEMORY_TARGET_MB = 200
# (label, since, until): the last year holds about half the rows and nearly every subject; a week, a few percent.
WINDOWS = {"year": (NOW - timedelta(days=365), NOW), "week": (NOW - timedelta(days=7), NOW)}


def peak_kb() -> int:
    """This process's peak resident memory (VmHWM), in kB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def create_database(rows: int) -> str:
    url = fresh_database(ADMIN_URL, name=DB_NAME)
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        # Five rows per user (rows // 5 users), spread over 700 days, a user's rows far apart in the table.
        conn.execute("""CREATE TABLE events (id bigint PRIMARY KEY, user_id bigint NOT NULL, email text,
                        payload text, created_at timestamptz NOT NULL)""")
        conn.execute("""
            INSERT INTO events
            SELECT g, g %% %(users)s, 'user' || (g %% %(users)s) || '@example.com', md5(g::text),
                   %(now)s::timestamptz - make_interval(days => g %% 700, secs => g %% 86400)
            FROM generate_series(1, %(rows)s) AS g""", {"rows": rows, "users": max(rows // 5, 1), "now": NOW})
        conn.execute("CREATE INDEX ix_events_user_id ON events (user_id)")
        conn.execute("CREATE INDEX ix_events_created_at ON events (created_at)")
        conn.execute("VACUUM ANALYZE events")
    return url


# --- the measured loops, each run in a fresh process so its peak memory is its own ---------------------------

def measure_distinct(url: str, window: str, batch: int) -> dict[str, Any]:
    """The hand-written query, its rows fetched `batch` at a time from a server-side cursor."""
    since, until = WINDOWS[window]
    ready = peak_kb()
    began, subjects = time.monotonic(), 0
    with psycopg.connect(libpq(url)) as conn, conn.cursor(name="baseline") as cur:
        cur.execute("SELECT DISTINCT user_id, email FROM events WHERE created_at >= %s AND created_at < %s",
                    (since, until))
        while rows := cur.fetchmany(batch):
            subjects += len(rows)
    return {"seconds": time.monotonic() - began, "subjects": subjects, "ready_kb": ready, "peak_kb": peak_kb()}


def _store(url: str) -> Any:
    from service.stores import build_registry
    from service.stores.options import StoreContext

    tmp = Path(tempfile.gettempdir())
    return build_registry([{
        "name": "bench", "plugin": "sql", "url": url,
        "tables": [{"table": "events", "category": "events", "identity": {"user_id": "user_id", "email": "email"},
                    "timestamp_column": "created_at"}]}], StoreContext(base_dir=tmp, instance_path=tmp, environ={}))


def measure_plugin(url: str, window: str, batch: int) -> dict[str, Any]:
    """`subjects` iterated to the end, as an assessment job consumes it."""
    since, until = WINDOWS[window]
    registry = _store(url)
    store = registry.get("bench")
    ready = peak_kb()
    began, subjects, batches = time.monotonic(), 0, 0
    for chunk in store.subjects("events", since, until, batch_size=batch):
        subjects += len(chunk)
        batches += 1
    seconds = time.monotonic() - began
    registry.close()
    return {"seconds": seconds, "subjects": subjects, "batches": batches, "ready_kb": ready, "peak_kb": peak_kb()}


def measure_keyset(url: str, window: str, batch: int, pages: int) -> dict[str, Any]:
    """Keyset pages over the identity, `pages` of them: each reads the window again before its LIMIT."""
    since, until = WINDOWS[window]
    began, subjects, last = time.monotonic(), 0, (-1, "")
    with psycopg.connect(libpq(url)) as conn:
        for _ in range(pages):
            rows = conn.execute(
                "SELECT DISTINCT user_id, email FROM events WHERE created_at >= %s AND created_at < %s "
                "AND (user_id, email) > (%s, %s) ORDER BY user_id, email LIMIT %s",
                (since, until, *last, batch)).fetchall()
            subjects += len(rows)
            if len(rows) < batch:
                break
            last = rows[-1]
    return {"seconds": time.monotonic() - began, "subjects": subjects}


def child(kind: str, url: str, window: str, batch: int, pages: int = 0) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", kind, "--url", url, "--window", window, "--batch", str(batch),
           "--pages", str(pages)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the run ---------------------------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> None:
    print(f"database {DB_NAME}: {args.rows:,} rows, {max(args.rows // 5, 1):,} users; batch size {args.batch:,}",
          flush=True)
    started = time.monotonic()
    url = create_database(args.rows)
    print(f"  seeded in {time.monotonic() - started:.1f} s", flush=True)
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for window in WINDOWS:
        results[window] = {"distinct": [], "plugin": []}
        for _ in range(args.repeat):  # alternated, so the machine's other load falls on both alike
            for kind in ("distinct", "plugin"):
                figure = child(kind, url, window, args.batch)
                results[window][kind].append(figure)
                print(f"  {window:<5} {kind:<9} {figure['subjects']:>9,} subjects in {figure['seconds']:.2f} s, "
                      f"peak {figure['peak_kb'] / 1024:.0f} MB", flush=True)
        assert {f["subjects"] for f in results[window]["distinct"] + results[window]["plugin"]} == {
            results[window]["distinct"][0]["subjects"]}, "the plugin and the query disagree"
    keyset = child("keyset", url, "year", args.batch, args.pages)

    print(f"\n{'measurement':<58}{'figure':>10}{'target':>10}  verdict")
    for window, (since, until) in WINDOWS.items():
        hand = min(results[window]["distinct"], key=lambda f: f["seconds"])
        plugin = min(results[window]["plugin"], key=lambda f: f["seconds"])
        ratio = plugin["seconds"] / hand["seconds"]
        days = (until - since).days
        print(f"{f'window of {days} days: subjects':<58}{hand['subjects']:>10,}")
        print(f"{'  hand-written SELECT DISTINCT (best), s':<58}{hand['seconds']:>10.2f}")
        print(f"{'  subjects() iterated fully (best), s':<58}{plugin['seconds']:>10.2f}")
        print(f"{'  subjects() / SELECT DISTINCT':<58}{ratio:>10.3f}{'<= ' + str(RATIO_TARGET):>10}  "
              f"{'ok' if ratio <= RATIO_TARGET else 'MISSED'}")
        peak = max(f["peak_kb"] for f in results[window]["plugin"]) / 1024
        print(f"{'  subjects() process peak memory (VmHWM), MB':<58}{peak:>10.1f}{'< ' + str(MEMORY_TARGET_MB):>10}  "
              f"{'ok' if peak < MEMORY_TARGET_MB else 'MISSED'}")
        print(f"{'    of which before the first batch (imports, engine), MB':<58}"
              f"{max(f['ready_kb'] for f in results[window]['plugin']) / 1024:>10.1f}")
        print(f"{'  SELECT DISTINCT process peak memory (psycopg only), MB':<58}"
              f"{max(f['peak_kb'] for f in results[window]['distinct']) / 1024:>10.1f}")
    per_page = keyset["seconds"] / max(keyset["subjects"] / args.batch, 1)
    year = min(f["seconds"] for f in results["year"]["distinct"])
    estimate = per_page * results["year"]["distinct"][0]["subjects"] / args.batch
    print(f"{f'keyset pages, window of 365 days: first {args.pages}, s per page':<58}{per_page:>10.2f}")
    print(f"{'  all pages (estimated), s':<58}{estimate:>10.1f}")
    print(f"{'  all pages / SELECT DISTINCT':<58}{estimate / year:>10.1f}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000, help="subjects per batch (both)")
    parser.add_argument("--repeat", type=int, default=2, help="measurements of each; the best counts")
    parser.add_argument("--pages", type=int, default=10, help="keyset pages timed")
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    parser.add_argument("--child", choices=("distinct", "plugin", "keyset"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--window", choices=tuple(WINDOWS), default="year", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child == "keyset":
        print(json.dumps(measure_keyset(args.url, args.window, args.batch, args.pages)))
        return 0
    if args.child:
        measure = measure_distinct if args.child == "distinct" else measure_plugin
        print(json.dumps(measure(args.url, args.window, args.batch)))
        return 0
    try:
        run(args)
    finally:
        if args.keep:
            print(f"kept database {DB_NAME}")
        else:
            fresh_database(ADMIN_URL, drop=True, name=DB_NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
