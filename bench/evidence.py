"""The audit evidence pack for a year on PostgreSQL: 1,000,000 consent events, 100,000 rights requests and 1,000
retention runs; `flask evidence export` timed and its peak memory (max RSS of the process) measured, with the bare
`ledger verify` over the same data as the baseline of the same run. Targets: under 2 minutes and under 300 MB."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

import psycopg  # noqa: E402

from bench import consent as bench  # noqa: E402
from bench.console import second_app, seed_requests  # noqa: E402

DB_NAME = "bench_evidence"
SECONDS_TARGET, MB_TARGET = 120.0, 300.0
CERTIFICATE = "eyJhbGciOiJFZERTQSJ9." + "x" * 900 + ".sig"  # a destruction certificate's size, not a real one


def seed_runs(url: str, count: int) -> None:
    """`count` finished retention runs over the last year, each with a certificate."""
    from service.db import utcnow

    now = utcnow()
    with psycopg.connect(bench.libpq(url)) as conn, conn.cursor() as cur:
        with cur.copy("COPY retention_runs (id, dry_run, trigger, requested_by, state, as_of, created_at, "
                      "started_at, finished_at, attempts, certificate, certificate_sha256) FROM STDIN") as copy:
            for n in range(count):
                at = now - timedelta(days=364 * n / count)
                copy.write_row([str(uuid.uuid4()), False, "schedule", "scheduler", "completed", at, at, at,
                                at + timedelta(seconds=30), 1, CERTIFICATE, "0" * 64])


def timed(args: list[str], env: dict[str, str], log: Path) -> tuple[float, float, str]:
    """Run a command; (seconds, its own max RSS in MB from wait4, its output's last line)."""
    began = time.monotonic()
    with log.open("w") as err:
        proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True)
        out = proc.stdout.read() if proc.stdout else ""
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - began
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"{' '.join(args)} failed:\n{log.read_text()[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, (out.strip().splitlines() or [""])[-1]


def run(args: argparse.Namespace, work: Path) -> None:
    url = bench.fresh_database(args.postgres, name=DB_NAME)
    config = {"DATABASE_URL": url, "INSTANCE_PATH": str(work / "instance")}
    env = {**os.environ, **config, "PRIVACY_ENV": "development"}
    env.pop("REDIS_URL", None)
    env.pop("PRIVACY_CONFIG", None)
    tenant = bench.setup_tenant(config)
    app_ids = [tenant.app_id, second_app(config)]
    print(f"seeding {args.subjects:,} consent subjects", flush=True)
    bench.seed(config, tenant, 0, args.subjects, args.procs)
    print(f"seeding {args.requests:,} rights requests over a year", flush=True)
    seed_requests(config, app_ids, args.requests, days=365)
    seed_runs(url, args.runs)
    counts = bench.ledger_counts(url, "1970-01-01")
    flask = [str(Path(sys.executable).parent / "flask"), "--app", "wsgi"]
    base_s, base_mb, base_out = timed([*flask, "ledger", "verify"], env, work / "verify.log")
    from service.db import utcnow

    today = utcnow().date()
    pack = work / "pack.zip"
    exp_s, exp_mb, _ = timed([*flask, "evidence", "export", "--from", str(today - timedelta(days=365)),
                              "--to", str(today), "--out", str(pack)], env, work / "export.log")
    ver_s, ver_mb, ver_out = timed([*flask, "evidence", "verify", str(pack)], env, work / "check.log")
    print(f"\n{counts['rows']:,} consent events, {args.requests:,} requests, {args.runs:,} runs; "
          f"pack {pack.stat().st_size / 1e6:.1f} MB")
    print(f"{'':28} {'seconds':>9} {'max RSS MB':>11} {'x baseline':>11}")
    print(f"{'ledger verify (baseline)':28} {base_s:9.1f} {base_mb:11.0f} {1.0:11.2f}   {base_out}")
    print(f"{'evidence export':28} {exp_s:9.1f} {exp_mb:11.0f} {exp_s / base_s:11.2f}   "
          f"{'PASS' if exp_s < SECONDS_TARGET and exp_mb < MB_TARGET else 'MISS'} "
          f"(< {SECONDS_TARGET:.0f} s, < {MB_TARGET:.0f} MB)")
    print(f"{'evidence verify':28} {ver_s:9.1f} {ver_mb:11.0f} {ver_s / base_s:11.2f}   {ver_out}")
    if not args.keep:
        bench.fresh_database(args.postgres, drop=True, name=DB_NAME)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subjects", type=int, default=910_000, help="consent subjects (~1.1 events each)")
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=1_000)
    parser.add_argument("--procs", type=int, default=2, help="seeding processes")
    parser.add_argument("--postgres", default=bench.ADMIN_URL)
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-evidence-") as work:
        run(args, Path(work))
    return 0


if __name__ == "__main__":
    sys.exit(main())
