"""Operations console benchmark: the queue's first page filtered by overdue and the overview, for a signed-in
operator, at 100,000 rights requests and 1,000,000 consent subjects (the Procfile's web process on PostgreSQL,
driven by wrk), with /healthz measured in the same run as the baseline."""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import socket
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
# Run as `python bench/console.py`, this file's folder would come first on sys.path and shadow packages of the
# repository root (`console`, `consent`) with bench modules of the same name; the root must win.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

import psycopg  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench import consent as bench  # noqa: E402
from bench.consent import Load, Server  # noqa: E402

DB_NAME = "bench_console"
COOKIE = "privacy_session"
OPERATOR = "bench-agent@example.com"
P99_TARGET_MS = 150.0
QUEUE = "/console/requests?" + urlencode({"overdue": "yes"})
OVERVIEW = "/console/"
HEALTH = "/healthz"
REQUEST_COLUMNS = ("id", "app_id", "type", "status", "jurisdiction", "subject_keys", "subject", "contact",
                   "details", "received_at", "due_at", "extended_at", "extension_reason", "verified_at",
                   "verified_by", "code_attempts", "closed_at", "reason", "locale")
# Shares of a year's requests, roughly as a consumer company sees them.
TYPES = {"access": 35, "erasure": 30, "consent_withdrawal": 10, "portability": 8, "rectification": 7,
         "restriction": 5, "objection": 5}
LAWS = {"GDPR": 50, "CCPA": 25, "UK_GDPR": 10, "PIPL": 10, "LGPD": 5}
OPEN_STATES = {"in_progress": 55, "pending_verification": 25, "verified": 12, "locked": 8}
CLOSED_STATES = {"completed": 85, "rejected": 5, "cancelled": 5, "partially_completed": 4, "failed": 1}

# Every request carries the operator's cookie; 200s are counted, so a page that answers anything else shows.
PAGE_LUA = """
wrk.headers["Cookie"] = os.getenv("BENCH_COOKIE") or ""
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) created = 0 end
function response(status, headers, body)
  if status == 200 then created = created + 1 end
end
"""


# --- the seed -----------------------------------------------------------------------------------------------

def _pick(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


@dataclass
class Seeded:
    requests: int = 0
    open: int = 0
    overdue: int = 0
    seconds: float = 0.0


def seed_requests(config: dict[str, str], app_ids: list[int], count: int, days: int = 730) -> Seeded:
    """`count` requests received over the last `days` days across the apps, COPYed in one transaction. Due dates
    come from dsar's deadlines table; identity, contact and details are sealed by dsar.fields.seal to their row,
    as dsar.service.submit seals them. Requests of the last two months are mostly still open, and some of those
    are overdue; older ones are closed (completed, rejected, cancelled...) within about their period."""
    from dsar.deadlines import deadlines
    from dsar.fields import seal
    from holds.service import identity_keys
    from service.config import load_settings
    from service.crypto import load_key_material
    from service.db import compact_json, utcnow

    settings = load_settings(config)
    rt = SimpleNamespace(keys=load_key_material(settings))  # what dsar.fields.seal reads of a Runtime
    table = deadlines(settings.toml)
    rng, now, found = random.Random(14), utcnow(), Seeded()
    # Oldest first: requests arrive over time, so the table's physical order follows received_at (and roughly
    # due_at), as a real one's does; a range of due dates then sits in neighbouring pages.
    ages = sorted((rng.uniform(0, days * 86400) for _ in range(count)), reverse=True)
    began = time.monotonic()
    with psycopg.connect(bench.libpq(config["DATABASE_URL"])) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY dsar_requests ({', '.join(REQUEST_COLUMNS)}) FROM STDIN") as copy:
            for n, age in enumerate(ages):
                app_id = app_ids[0] if rng.random() < 0.7 else app_ids[1 % len(app_ids)]
                kind, law = _pick(rng, TYPES), _pick(rng, LAWS)
                received = now - timedelta(seconds=age)
                due = table[law].period.after(received)
                recent = now - received < timedelta(days=60)
                is_open = recent and rng.random() < (0.9 if due > now else 0.15)
                state = _pick(rng, OPEN_STATES if is_open else CLOSED_STATES)
                verified = None if state in ("pending_verification", "locked") else \
                    received + timedelta(hours=rng.uniform(0.1, 48))
                if state in ("rejected", "cancelled") and rng.random() < 0.5:
                    verified = None
                closed = None
                if not is_open:
                    closed = min(now, received + (due - received) * rng.uniform(0.05, 1.1))
                    verified = verified and min(verified, closed)
                extended = received + (due - received) / 2 if rng.random() < 0.03 and verified else None
                request_id = str(uuid.uuid4())
                subject = {"user_id": f"user-{n}", "email": f"user{n}@example.com"}
                details = ({"corrections": {"account": {"display_name": f"User {n}"}}}
                           if kind == "rectification" else None)
                copy.write_row([
                    request_id, app_id, kind, state, law, compact_json(identity_keys(rt.keys, app_id, subject)),
                    seal(rt, request_id, "subject", subject), seal(rt, request_id, "contact", subject["email"]),
                    seal(rt, request_id, "details", details) if details else None, received, due, extended,
                    "Complex request: several stores" if extended else None, verified,
                    "key:bench" if verified else None, 0, closed,
                    "identity not confirmed" if state == "rejected" else None, "en"])
                found.requests += 1
                found.open += is_open
                found.overdue += is_open and due < now
    with psycopg.connect(bench.libpq(config["DATABASE_URL"]), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE dsar_requests")
        conn.execute("CHECKPOINT")
    found.seconds = time.monotonic() - began
    return found


def second_app(config: dict[str, str]) -> int:
    from privacy import create_app
    from service.tenancy import create_app_tenant

    app = create_app(config)
    with app.extensions["db"].session() as session:
        app_id = create_app_tenant(session, "bench-two", "Second benchmark app").id
    app.extensions["db"].dispose()
    return app_id


def make_operator(config: dict[str, str]) -> str:
    """An agent for every app, set up by the console's own steps (console.demo.ready_operator): its password."""
    from console.demo import ready_operator
    from privacy import create_app

    app = create_app(config)
    with app.extensions["db"].session() as session:
        ready = ready_operator(session, app.extensions["keys"], OPERATOR, "agent", by="bench")
    app.extensions["db"].dispose()
    return ready.password


# --- signing in over HTTP -------------------------------------------------------------------------------------

def _cookie(response: http.client.HTTPResponse, current: str | None) -> str | None:
    for value in response.headers.get_all("Set-Cookie") or ():
        name, _, rest = value.partition("=")
        if name.strip() == COOKIE:
            return rest.split(";", 1)[0]
    return current


def sign_in(server: Server, email: str, password: str) -> str:
    """The session cookie a browser holds after the sign-in form (CSRF token read from the page)."""
    url = urlsplit(server.base)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80, timeout=10)
    conn.request("GET", "/console/signin")
    response = conn.getresponse()
    page, cookie = response.read().decode(), _cookie(response, None)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    if response.status != 200 or token is None or cookie is None:
        raise RuntimeError(f"the sign-in page answered {response.status} (cookie {'set' if cookie else 'none'})")
    form = urlencode({"csrf_token": token.group(1), "email": email, "password": password, "code": ""})
    conn.request("POST", "/console/signin", body=form, headers={
        "Cookie": f"{COOKIE}={cookie}", "Content-Type": "application/x-www-form-urlencoded"})
    response = conn.getresponse()
    body, cookie = response.read(), _cookie(response, cookie)
    conn.close()
    if response.status != 303:
        raise RuntimeError(f"signing in answered {response.status}: {body[:300]!r}")
    return f"{COOKIE}={cookie}"


def fetch(server: Server, path: str, cookie: str) -> tuple[int, str]:
    url = urlsplit(server.base)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80, timeout=30)
    conn.request("GET", path, headers={"Cookie": cookie})
    response = conn.getresponse()
    body = response.read().decode("utf-8", "replace")
    conn.close()
    return response.status, body


def check_pages(server: Server, cookie: str, conninfo: str) -> dict[str, int]:
    """Both pages answer 200 for the operator, and show what the database holds: the first overdue request (the
    queue sorts by due date) and the overdue count (the overview). Returns each page's size in bytes."""
    with psycopg.connect(conninfo) as conn:
        first, overdue = conn.execute(
            "SELECT (SELECT id FROM dsar_requests WHERE status NOT IN ('completed', 'partially_completed', "
            "'rejected', 'failed', 'cancelled') AND due_at < now() ORDER BY due_at, id LIMIT 1), "
            "(SELECT count(*) FROM dsar_requests WHERE status NOT IN ('completed', 'partially_completed', "
            "'rejected', 'failed', 'cancelled') AND due_at < now())").fetchone()
    sizes = {}
    for path, expect in ((QUEUE, str(first)), (OVERVIEW, f"{overdue:,}")):
        status, body = fetch(server, path, cookie)
        if status != 200:
            raise RuntimeError(f"{path} answered {status}: {body[:300]!r}")
        if expect not in body and expect.replace(",", "") not in body:
            raise RuntimeError(f"{path} does not show {expect!r}")
        sizes[path] = len(body.encode())
    return sizes


# --- where a page's time goes ---------------------------------------------------------------------------------

def breakdown(config: dict[str, str], password: str, rounds: int = 20) -> dict[str, tuple[float, list[Any]]]:
    """Each page rendered in this process (Flask's test client, no HTTP), one at a time: the median time of a
    request, and the median time of each SQL statement it sends (the rest is Python: the session check, Jinja,
    Babel). Shows where the served figures' time goes when one misses its target."""
    import logging

    from sqlalchemy import event

    from privacy import create_app

    app = create_app(config)
    logging.getLogger("privacy.access").setLevel(logging.WARNING)  # a line per request would bury the figures
    engine = app.extensions["db"].engine
    spent: list[tuple[str, float]] = []

    def before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        context.bench_began = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        spent.append((" ".join(statement.split())[:90], time.perf_counter() - context.bench_began))

    client = app.test_client()
    page = client.get("/console/signin").text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    answer = client.post("/console/signin", data={"csrf_token": token.group(1) if token else "", "email": OPERATOR,
                                                  "password": password, "code": ""})
    if answer.status_code != 303:
        raise RuntimeError(f"in-process sign-in answered {answer.status_code}")
    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    found = {}
    for path in (QUEUE, OVERVIEW):
        totals, per_statement = [], {}
        for _ in range(rounds + 3):
            spent.clear()
            began = time.perf_counter()
            if client.get(path).status_code != 200:
                raise RuntimeError(f"in-process {path} did not answer 200")
            totals.append(time.perf_counter() - began)
            for sql, seconds in spent:
                per_statement.setdefault(sql, []).append(seconds)
        statements = sorted(((statistics.median(v[3:] or v), sql) for sql, v in per_statement.items()), reverse=True)
        found[path] = (statistics.median(totals[3:]), statements)
    event.remove(engine, "before_cursor_execute", before)
    event.remove(engine, "after_cursor_execute", after)
    app.extensions["db"].dispose()
    return found


def print_breakdown(found: dict[str, tuple[float, list[Any]]]) -> None:
    print("\nwhere a page's time goes (in this process, one request at a time, medians):")
    for path, (total, statements) in found.items():
        sql = sum(seconds for seconds, _ in statements)
        print(f"  {path}: {1000 * total:.1f} ms, of which SQL {1000 * sql:.1f} ms in {len(statements)} statements, "
              f"the rest ({1000 * (total - sql):.1f} ms) Python: session, Jinja, Babel")
        for seconds, text in statements[:4]:
            print(f"    {1000 * seconds:7.2f} ms  {text}")


# --- the run --------------------------------------------------------------------------------------------------

def report(args: argparse.Namespace, seeded: Seeded, sizes: dict[str, int], rows: list[tuple[str, Load]]) -> None:
    # The healthier of the two baseline figures: a machine that slowed down mid-run cannot flatter a ratio.
    baselines = [load for name, load in rows if name.startswith("baseline")]
    base = min(baselines, key=lambda b: b.p99_ms)
    per_figure = f"{args.duration:g} s" + (f" (median of {args.repeat} windows)" if args.repeat > 1 else "")
    print(f"\nnginx + gunicorn --workers {args.workers} --threads {args.threads} (Procfile web); "
          f"wrk -t{args.wrk_threads} -c{args.connections}; {per_figure} per figure after {args.warmup:g} s warm-up; "
          f"{os.cpu_count()} CPUs; {seeded.requests:,} requests ({seeded.open:,} open, {seeded.overdue:,} overdue), "
          f"{args.subjects:,} consent subjects\n")
    print(f"{'measurement':<36}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'p50/base':>10}{'p99/base':>10}{'200s':>10}"
          f"{'other CPU':>11}")
    for name, load in rows:
        print(f"{name:<36}{load.rps:>9,.0f}{load.p50_ms:>9.2f}{load.p99_ms:>9.2f}{load.p50_ms / base.p50_ms:>10.1f}"
              f"{load.p99_ms / base.p99_ms:>10.1f}{load.created:>10,}{100 * load.other_cpu:>10.0f}%")
    print(f"\npages: queue {sizes[QUEUE]:,} bytes, overview {sizes[OVERVIEW]:,} bytes of HTML")
    print("\ntarget                                             figure   target  verdict")
    for name, load in rows:
        if not name.startswith("baseline"):
            print(f"{name + ' p99 (ms)':<48}{load.p99_ms:>9.2f}{'< 150':>9}  "
                  f"{bench.verdict(load.p99_ms < P99_TARGET_MS)}")
    for name, load in rows:
        if load.errors or load.created < load.requests:
            print(f"\nNOTE: {name}: {load.requests - load.created:,} of {load.requests:,} responses were not 200 "
                  f"(errors {load.errors}): the figure is not of the page it names.")
    busiest = max(load.other_cpu for _, load in rows)
    if busiest > 0.05:
        print(f"\nNOTE: processes outside the benchmark used up to {100 * busiest:.0f}% of the CPU during a figure; "
              "the figures are disturbed: re-run on an idle machine.")


def free_port() -> int:
    """A port nothing listens on now (the kernel's pick): a fixed one may be taken by another run."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def reuse(args: argparse.Namespace) -> tuple[str, list[int]]:
    """The kept database of an earlier run, migrated to head, its requests dropped (they are seeded again);
    its consent ledger and apps stay."""
    from alembic import command

    from service.cli import alembic_config

    with psycopg.connect(bench.libpq(args.postgres), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone() is None:
            raise SystemExit(f"--reuse: no database {DB_NAME}; run once with --keep (a run without it drops it)")
    url = make_url(args.postgres).set(database=DB_NAME).render_as_string(hide_password=False)
    command.upgrade(alembic_config(url), "head")
    with psycopg.connect(bench.libpq(url), autocommit=True) as conn:
        events = conn.execute("SELECT count(*) FROM consent_events").fetchone()[0]
        app_ids = [r[0] for r in conn.execute("SELECT id FROM apps ORDER BY id")]
        conn.execute("TRUNCATE dsar_requests CASCADE")
    print(f"reusing {DB_NAME}: {events:,} consent events, apps {app_ids}", flush=True)
    return url, app_ids


def run(args: argparse.Namespace, work: Path) -> None:
    args.port = args.port or free_port()
    if args.reuse:
        url, app_ids = reuse(args)
        config = {"DATABASE_URL": url, "INSTANCE_PATH": str(work / "instance")}
    else:
        url = bench.fresh_database(args.postgres, name=DB_NAME)
        config = {"DATABASE_URL": url, "INSTANCE_PATH": str(work / "instance")}
    base = f"http://127.0.0.1:{args.port}"
    env = {**os.environ, **config, "PRIVACY_ENV": "development", "PUBLIC_URL": base}
    env.pop("REDIS_URL", None)
    env.pop("PRIVACY_CONFIG", None)
    script = work / "page.lua"
    script.write_text(PAGE_LUA + bench.DONE_LUA)
    conninfo = bench.libpq(url)

    print(f"database {DB_NAME}; nginx + gunicorn (Procfile web) on port {args.port}", flush=True)
    if not args.reuse:
        tenant = bench.setup_tenant(config)
        app_ids = [tenant.app_id, second_app(config)]
        print(f"seeding {args.subjects:,} consent subjects", flush=True)
        bench.seed(config, tenant, 0, args.subjects, args.procs)
    print(f"seeding {args.requests:,} rights requests over 2 apps", flush=True)
    seeded = seed_requests(config, app_ids, args.requests)
    print(f"  {seeded.requests:,} requests ({seeded.open:,} open, {seeded.overdue:,} overdue) in "
          f"{seeded.seconds:.1f} s", flush=True)
    password = make_operator(config)
    log = work / "service.log"
    try:
        with bench.gunicorn("wsgi:app", args.port, args, env, log, HEALTH) as server:
            cookie = sign_in(server, OPERATOR, password)
            sizes = check_pages(server, cookie, conninfo)
            load_env = {"BENCH_COOKIE": cookie}
            rows = []
            for name, path in (("baseline GET /healthz (before)", HEALTH), ("queue GET " + QUEUE, QUEUE),
                               ("overview GET " + OVERVIEW, OVERVIEW), ("baseline GET /healthz (after)", HEALTH)):
                rows.append((name, bench.measure(name, server, path, script, args, load_env, conninfo)))
    except Exception:
        if log.exists():
            print(f"--- the service's log ({log}), last lines:\n" + "\n".join(log.read_text().splitlines()[-40:]))
        raise
    report(args, seeded, sizes, rows)
    print_breakdown(breakdown(config, password))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=100_000, help="rights requests seeded")
    parser.add_argument("--subjects", type=int, default=1_000_000, help="consent subjects seeded (~1.1 events each)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 10,000 requests, 20,000 subjects, 5 s figures after 3 s warm-up")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (as bench/consent.py)")
    parser.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker")
    parser.add_argument("--port", type=int, default=0, help="the web process's port (nginx; default: a free one)")
    parser.add_argument("--reuse", action="store_true",
                        help="use the database a --keep run left (its consent ledger; requests seeded again)")
    # One connection per worker: a page never waits for a free worker, so its latency is the server's time.
    bench.load_options(parser, connections=4)
    args = bench.parse_load_args(parser, argv)
    if args.quick:
        args.requests, args.subjects, args.duration, args.warmup = 10_000, 20_000, 5, 3
    if args.requests < 100 or args.subjects < 1:
        parser.error("need --requests >= 100 and --subjects >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return bench.run_in_workdir(run, args, "bench-console-", None if args.keep or args.reuse else
                                lambda: bench.fresh_database(args.postgres, drop=True, name=DB_NAME))


if __name__ == "__main__":
    sys.exit(main())
