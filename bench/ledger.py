"""Ledger verification benchmark: `consent.ledger.verify` in full over the consent bench's ledger (1,000,000 subjects,
~1.1M events, seeded by bench/consent.py's own seeder), its time and peak memory beside a baseline measured in the
same run: a raw streaming SELECT of the same columns with the same hashing in a plain loop. Then the auditor's
command, `flask --app wsgi ledger verify`, on the untouched ledger and after one row is altered with SQL.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Run as `python bench/ledger.py`, this file's folder would come first on sys.path and shadow packages of the
# repository root with bench modules of the same name; the root must win.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

import psycopg  # noqa: E402

DB_NAME = "bench_ledger"
RATIO_TARGET = 1.5
MEMORY_TARGET_MB = 200


def peak_kb() -> int:
    """This process's peak resident memory (VmHWM), in kB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


# --- the two measured loops, each run in a fresh process so its peak memory is its own ---------------------

def measure_baseline(url: str, batch: int) -> dict[str, Any]:
    """The same columns, streamed by a server-side cursor in the same order, hashed by the same function."""
    from bench.consent import libpq
    from consent.ledger import CONTENT_FIELDS, hash_content

    began, events, mismatched = time.monotonic(), 0, 0
    columns = ", ".join((*CONTENT_FIELDS, "hash"))
    with psycopg.connect(libpq(url)) as conn:
        conn.execute("SET TIME ZONE 'UTC'")  # timestamps as the service reads them: UTC, to the microsecond
        with conn.cursor(name="baseline") as cur:
            cur.itersize = batch
            cur.execute(f"SELECT {columns} FROM consent_events ORDER BY subject, seq")
            for row in cur:
                events += 1
                if hash_content(row[:-1]) != row[-1]:
                    mismatched += 1
    return {"seconds": time.monotonic() - began, "events": events, "breaks": mismatched, "peak_kb": peak_kb()}


def measure_verify(url: str, batch: int) -> dict[str, Any]:
    """`consent.ledger.verify` in full, as the CLI and the scheduled job call it."""
    from consent.ledger import verify
    from service.db import Database

    db = Database(url)
    began = time.monotonic()
    with db.sessions() as session:
        check = verify(session, batch)
        breaks = sum(1 for _ in check)
    seconds = time.monotonic() - began
    db.dispose()
    return {"seconds": seconds, "events": check.events, "chains": check.chains, "breaks": breaks,
            "covered": check.checkpoint.events if check.checkpoint else None, "peak_kb": peak_kb()}


def child(kind: str, url: str, batch: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", kind, "--url", url, "--batch", str(batch)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the auditor's command -------------------------------------------------------------------------------

def flask_verify(env: dict[str, str], *args: str) -> tuple[int, str, float]:
    began = time.monotonic()
    done = subprocess.run([str(Path(sys.executable).parent / "flask"), "--app", "wsgi", "ledger", "verify", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    return done.returncode, (done.stdout + done.stderr).strip(), time.monotonic() - began


def middle_event(url: str) -> str:
    from bench.consent import libpq

    with psycopg.connect(libpq(url)) as conn:
        row = conn.execute("SELECT id FROM consent_events ORDER BY subject, seq OFFSET "
                           "(SELECT count(*) / 2 FROM consent_events) LIMIT 1").fetchone()
    return row[0]


def tamper(url: str, event_id: str) -> None:
    from bench.consent import libpq

    with psycopg.connect(libpq(url)) as conn:
        conn.execute("UPDATE consent_events SET channel = 'tampered' WHERE id = %s", (event_id,))


# --- the run ---------------------------------------------------------------------------------------------

def run(args: argparse.Namespace, work: Path) -> None:
    from bench import consent as bench

    url = bench.fresh_database(args.postgres, name=DB_NAME)
    config = {"DATABASE_URL": url, "INSTANCE_PATH": str(work / "instance")}
    env = {**os.environ, **config, "PRIVACY_ENV": "development",
           # The bench writes nothing while it verifies: its checkpoints may cover events up to the second.
           "LEDGER_CHECKPOINT_LAG_SECONDS": "0"}
    env.pop("REDIS_URL", None)
    env.pop("PRIVACY_CONFIG", None)
    print(f"database {DB_NAME}; seeding {args.subjects:,} subjects", flush=True)
    tenant = bench.setup_tenant(config)
    bench.seed(config, tenant, 0, args.subjects, args.procs)

    # Alternating, so a cache warmed by one loop helps the other as much; each figure is its best of --repeat.
    baselines, verifies = [], []
    for i in range(1, args.repeat + 1):
        baselines.append(child("baseline", url, args.batch))
        print(f"  baseline ({i}): {baselines[-1]['seconds']:.1f} s, {baselines[-1]['events']:,} events, "
              f"peak {baselines[-1]['peak_kb'] / 1024:.0f} MB", flush=True)
        verifies.append(child("verify", url, args.batch))
        print(f"  verify ({i}): {verifies[-1]['seconds']:.1f} s, {verifies[-1]['events']:,} events in "
              f"{verifies[-1]['chains']:,} chains, {verifies[-1]['breaks']} break(s), "
              f"peak {verifies[-1]['peak_kb'] / 1024:.0f} MB", flush=True)
    base = min(baselines, key=lambda m: m["seconds"])
    full = min(verifies, key=lambda m: m["seconds"])

    print("the auditor's command: flask --app wsgi ledger verify", flush=True)
    intact = flask_verify(env)
    print(f"  untouched: exit {intact[0]} in {intact[2]:.0f} s: {intact[1].splitlines()[-1]}", flush=True)
    incremental = flask_verify(env, "--since-checkpoint")
    print(f"  --since-checkpoint, nothing changed: exit {incremental[0]} in {incremental[2]:.0f} s: "
          f"{incremental[1].splitlines()[-1]}", flush=True)
    target = middle_event(url)
    tamper(url, target)
    broken = flask_verify(env)
    named = f"event {target}" in broken[1]
    print(f"  one row altered ({target}): exit {broken[0]} in {broken[2]:.0f} s, names it: {named}: "
          f"{broken[1].splitlines()[0]}", flush=True)
    caught = flask_verify(env, "--since-checkpoint")
    print(f"  --since-checkpoint after it: exit {caught[0]} in {caught[2]:.0f} s "
          "(a stale-hash edit before the checkpoint: the documented limit of incremental mode)", flush=True)

    ratio = full["seconds"] / base["seconds"]
    memory = full["peak_kb"] / 1024
    print(f"\n{base['events']:,} events; batch {args.batch}; best of {args.repeat}; {os.cpu_count()} CPUs\n")
    print(f"{'measurement':<44}{'seconds':>9}{'peak MB':>9}")
    print(f"{'baseline: raw streaming SELECT + hashing':<44}{base['seconds']:>9.1f}{base['peak_kb'] / 1024:>9.0f}")
    print(f"{'consent.ledger.verify (full)':<44}{full['seconds']:>9.1f}{memory:>9.0f}")
    print(f"{'flask ledger verify (full, recorded)':<44}{intact[2]:>9.1f}{'':>9}")
    print(f"{'flask ledger verify --since-checkpoint':<44}{incremental[2]:>9.1f}{'':>9}")
    print("\ntarget                                             figure   target  verdict")
    print(f"{'verify time / baseline time':<48}{ratio:>9.2f}{'<= ' + format(RATIO_TARGET, '.2f'):>9}  "
          f"{'PASS' if ratio <= RATIO_TARGET else 'MISS'}")
    print(f"{'verify peak memory (MB)':<48}{memory:>9.0f}{'< ' + str(MEMORY_TARGET_MB):>9}  "
          f"{'PASS' if memory < MEMORY_TARGET_MB else 'MISS'}")
    exits = (intact[0], broken[0]) == (0, 1) and named and full["breaks"] == base["breaks"] == 0
    print(f"{'CLI exits 0 untouched, 1 naming the altered row':<48}{str(intact[0]) + '/' + str(broken[0]):>9}"
          f"{'0/1':>9}  {'PASS' if exits else 'MISS'}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from bench.consent import ADMIN_URL

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subjects", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=2000, help="events per round trip (both loops)")
    parser.add_argument("--repeat", type=int, default=2, help="measurements of each loop; the best counts")
    parser.add_argument("--procs", type=int, default=os.cpu_count() or 2, help="seeding processes")
    parser.add_argument("--postgres", default=ADMIN_URL, help="an existing database to create the bench one from")
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    parser.add_argument("--child", choices=("baseline", "verify"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        measure = measure_baseline if args.child == "baseline" else measure_verify
        print(json.dumps(measure(args.url, args.batch)))
        return 0
    from bench.consent import fresh_database

    work = Path(tempfile.mkdtemp(prefix="bench-ledger-"))
    try:
        run(args, work)
    finally:
        if args.keep:
            print(f"kept database {DB_NAME}; its key material in {work / 'instance'}")
        else:
            fresh_database(args.postgres, drop=True, name=DB_NAME)
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
