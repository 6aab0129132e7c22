"""Where a consent record's web-process CPU goes: `POST /v1/consents` through the whole WSGI app (the recording
fast path) against the same request sent to the Flask route, in one process on PostgreSQL, alternating rounds.

CPU time of this process only (`time.process_time`), so other load on the machine moves it far less than
throughput; PostgreSQL's own work is the same for both paths and is not in it. The throughput figure under the
Procfile's web process is bench/consent.py's `record`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this file's folder would shadow the repository's `consent` package with bench/consent.py.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

from werkzeug.test import Client  # noqa: E402

from bench import consent as bench  # noqa: E402

DB_NAME = "bench_record_path"
# Flask's reading of a media type with a parameter is the reference, so the fast path leaves it to the route.
VIA_ROUTE = "application/json; charset=utf-8"


def body(run: str, n: int) -> bytes:
    return json.dumps({
        "subject_id": f"rec-{run}-{n}", "policy": bench.POLICY, "version": bench.VERSION,
        "purposes": {"essential": True, "analytics": n % 2 == 0, "marketing": False}, "channel": "web",
        "locale": "en-GB", "evidence": {"ip": "198.51.100.7", "user_agent": "bench"}}).encode()


def cpu_per_record(client: Client, secret: str, content_type: str, run: str, n: int) -> float:
    """Microseconds of this process's CPU per 201, over n records of new subjects."""
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": content_type}
    started = time.process_time()
    for i in range(n):
        r = client.post("/v1/consents", data=body(run, i), headers=headers)
        if r.status_code != 201:
            raise SystemExit(f"{content_type}: {r.status_code} {r.get_data(as_text=True)[:200]}")
    return (time.process_time() - started) / n * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=2000, help="records per round and path")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds; the median counts")
    parser.add_argument("--postgres", default=bench.ADMIN_URL)
    args = parser.parse_args(argv)
    from privacy import create_app

    url = bench.fresh_database(args.postgres, name=DB_NAME)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-record-") as work:
            config = {"DATABASE_URL": url, "INSTANCE_PATH": str(Path(work) / "instance")}
            tenant = bench.setup_tenant(config)
            app = create_app(config)
            client = Client(app)
            # The access lines are still formatted and written, as in production, but not onto the terminal.
            sink = open(os.devnull, "w")  # closed with the process
            for handler in logging.getLogger().handlers:
                if isinstance(handler, logging.StreamHandler):
                    handler.setStream(sink)
            # Warm-up: the key verified and cached (the fast path needs that), imports and statements prepared.
            for content_type in (VIA_ROUTE, "application/json"):
                cpu_per_record(client, tenant.secret, content_type, f"warm-{content_type[-5:]}", 200)
            fast, route = [], []
            for r in range(args.rounds):
                route.append(cpu_per_record(client, tenant.secret, VIA_ROUTE, f"route-{r}", args.records))
                fast.append(cpu_per_record(client, tenant.secret, "application/json", f"fast-{r}", args.records))
                print(f"  round {r + 1}: route {route[-1]:,.0f} µs, fast path {fast[-1]:,.0f} µs", flush=True)
            app.extensions["db"].dispose()
    finally:
        bench.fresh_database(args.postgres, drop=True, name=DB_NAME)
    f, t = statistics.median(fast), statistics.median(route)
    print(f"\nweb-process CPU per consent record, median of {args.rounds} rounds of {args.records:,}:")
    print(f"  through the Flask route     {t:8,.0f} µs")
    print(f"  through consent.fastrecord  {f:8,.0f} µs   ratio {f / t:.2f} (saves {t - f:,.0f} µs per record)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
