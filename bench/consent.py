"""Consent API benchmark: status checks and consent recording over HTTP (the Procfile's web process, nginx in front
of gunicorn, on PostgreSQL, driven by wrk), each figure printed as a ratio to a bare Flask endpoint measured in the
same run under the same web process settings.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Run as `python bench/consent.py`, this file's folder comes first on sys.path and would shadow the `consent`
# package with this very module; the repository root must win.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

import psycopg  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DB_NAME = "bench_consent"
SLUG, POLICY, VERSION = "bench", "app", "1"
PURPOSES = [
    {"key": "essential", "description": "Run the service you signed up for", "required": True,
     "honors_gpc": False, "lawful_basis": "contract", "retention": "P2Y", "pii_categories": ["account"],
     "third_party": None},
    {"key": "analytics", "description": "Measure how the app is used", "required": False, "honors_gpc": True,
     "lawful_basis": "consent", "retention": "P180D", "pii_categories": ["usage"], "third_party": None},
    {"key": "marketing", "description": "Tailored offers by e-mail", "required": False, "honors_gpc": True,
     "lawful_basis": "consent", "retention": None, "pii_categories": ["contact", "usage"],
     "third_party": "Example Ads B.V."},
]
EVENT_COLUMNS = ("id", "app_id", "policy_id", "version_id", "subject", "seq", "kind", "purposes", "gpc",
                 "channel", "locale", "evidence", "created_at", "prev_hash", "hash", "receipt")
AUDIT_COLUMNS = ("at", "app_id", "actor", "action", "resource_type", "resource_id", "details")
CHUNK = 5_000
WITHDRAW_EVERY = 10  # one seeded subject in ten also withdrew marketing, so chains of two exist too

STATUS_LUA = """
local n = tonumber(os.getenv("BENCH_SUBJECTS"))
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")
local threads, counter = {}, 0
function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end
function init(args)
  math.randomseed(os.time() * 1000 + id * 7919)
end
function request()
  return wrk.format("GET", "/v1/consents/status?policy=%(policy)s&subject_id=user-" .. math.random(0, n - 1))
end
"""

RECORD_LUA = """
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")
wrk.headers["Content-Type"] = "application/json"
local run = os.getenv("BENCH_RUN")
local threads, counter = {}, 0
function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end
function init(args)
  sent, created = 0, 0
end
function request()
  sent = sent + 1
  local body = '{"subject_id":"post-' .. run .. '-' .. id .. '-' .. sent .. '","policy":"%(policy)s",' ..
    '"version":"%(version)s","purposes":{"essential":true,"analytics":' .. tostring(sent %% 2 == 0) ..
    ',"marketing":false},"channel":"web","locale":"en-GB",' ..
    '"evidence":{"ip":"198.51.100.7","user_agent":"wrk/4.1 bench"}}'
  return wrk.format(nil, nil, nil, body)
end
function response(status, headers, body)
  if status == 201 then created = created + 1 end
end
"""

DONE_LUA = """
function done(summary, latency, requests)
  local created = 0
  for _, t in ipairs(threads) do created = created + (t:get("created") or 0) end
  local e = summary.errors
  io.write(string.format('BENCH {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"created":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout, created))
end
"""

PING_LUA = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
"""


# --- the database and its seed ---------------------------------------------------------------------------

def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def fresh_database(admin_url: str, drop: bool = False, name: str = DB_NAME) -> str:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if not drop:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


@dataclass(frozen=True)
class Tenant:
    app_id: int
    key_id: str
    secret: str


def setup_tenant(config: dict[str, str]) -> Tenant:
    """Migrate, then create the app, a read/write key, the policy and its current version via the service."""
    from alembic import command

    from consent.context import Context
    from consent.policies import add_version, create_policy
    from privacy import create_app
    from service.cli import alembic_config
    from service.tenancy import create_app_tenant, create_key

    command.upgrade(alembic_config(config["DATABASE_URL"]), "head")
    app = create_app(config)  # also generates the key material under INSTANCE_PATH, once
    db = app.extensions["db"]
    with db.session() as session:
        tenant = create_app_tenant(session, SLUG, "Benchmark app")
        row, secret = create_key(session, SLUG, frozenset({"consent:read", "consent:write"}), "bench")
        ctx = Context(principal=_principal(tenant.id, row.key_id), keys=app.extensions["keys"],
                      settings=app.config["SETTINGS"])
        create_policy(session, ctx, {"key": POLICY, "title": "Benchmark app privacy policy",
                                     "purposes": PURPOSES})
        add_version(session, ctx, POLICY, {"version": VERSION, "effective_at": None, "url": None,
                                           "sha256": None, "material": True,
                                           "text": "We process your data as described here."})
        app_id, key_id = tenant.id, row.key_id
    db.dispose()
    return Tenant(app_id, key_id, secret)


def _principal(app_id: int, key_id: str) -> Any:
    from service.tenancy import Principal

    return Principal(app_id=app_id, app_slug=SLUG, key_id=key_id,
                     scopes=frozenset({"consent:read", "consent:write"}))


_seeder: dict[str, Any] = {}


def _seed_init(config: dict[str, str], app_id: int, key_id: str) -> None:
    """Per seeding process: the same key material and policy objects the service would use."""
    from consent.policies import get_policy
    from consent.views import PolicyView
    from service.config import load_settings
    from service.crypto import load_key_material
    from service.db import Database

    settings = load_settings(config)
    db = Database(settings.database_url)
    with db.sessions() as session:
        orm_policy = get_policy(session, app_id, POLICY)
        version = next(v for v in orm_policy.versions if v.version == VERSION)
        policy = PolicyView.of(orm_policy)  # what consent.chain.append_and_commit signs receipts from
    db.dispose()
    _seeder.update(settings=settings, keys=load_key_material(settings), policy=policy, version=version,
                   app_id=app_id, actor=f"key:{key_id}", conninfo=libpq(settings.database_url))


def _events(n: int) -> Iterator[Any]:
    """Subject user-<n>'s events, built exactly as consent.chain.append_and_commit builds them."""
    from consent.ledger import content_hash
    from consent.models import ConsentEvent
    from consent.receipts import receipt_claims
    from service.db import utcnow
    from service.ids import uuid7

    s = _seeder
    subject = s["keys"].pseudonyms.subject(s["app_id"], f"user-{n}")
    states = [{"essential": True, "analytics": n % 2 == 0, "marketing": n % 3 == 0}]
    if n % WITHDRAW_EVERY == 0:
        states.append({**states[0], "marketing": False})
    prev = None
    for seq, purposes in enumerate(states, start=1):
        kind = "consent" if seq == 1 else "withdrawal"
        event = ConsentEvent(
            id=uuid7(), app_id=s["app_id"], policy_id=s["policy"].id, version_id=s["version"].id,
            subject=subject, seq=seq, kind=kind, purposes=purposes, gpc=False, channel="web", locale="en-GB",
            evidence=None, created_at=utcnow(), prev_hash=prev.hash if prev else None)
        event.hash = content_hash(event)
        event.receipt = s["keys"].signer.sign(receipt_claims(
            event=event, record_hash=event.hash, policy=s["policy"], version=s["version"], app_slug=SLUG,
            settings=s["settings"], gpc_denied=[]))
        yield event
        prev = event


def _seed_chunk(bounds: tuple[int, int]) -> tuple[int, int]:
    """COPY one chunk of subjects (their events and audit entries) in one transaction."""
    from service.db import compact_json

    s = _seeder
    events = [e for n in range(*bounds) for e in _events(n)]
    with psycopg.connect(s["conninfo"]) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY consent_events ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as copy:
            for e in events:
                copy.write_row([compact_json(e.purposes) if c == "purposes" else getattr(e, c)
                                for c in EVENT_COLUMNS])
        with cur.copy(f"COPY audit_events ({', '.join(AUDIT_COLUMNS)}) FROM STDIN") as copy:
            for e in events:
                action = "consent.recorded" if e.kind == "consent" else "consent.withdrawn"
                copy.write_row([e.created_at, e.app_id, s["actor"], action, "consent_event", e.id,
                                compact_json({"policy": POLICY, "version": VERSION, "gpc": False})])
    return bounds[1] - bounds[0], len(events)


def seed(config: dict[str, str], tenant: Tenant, start: int, stop: int, procs: int) -> None:
    chunks = [(a, min(a + CHUNK, stop)) for a in range(start, stop, CHUNK)]
    began, subjects, events = time.monotonic(), start, 0
    ctx = multiprocessing.get_context("spawn")  # no inherited engines or sockets
    with ctx.Pool(procs, initializer=_seed_init, initargs=(config, tenant.app_id, tenant.key_id)) as pool:
        for done, (count, written) in enumerate(pool.imap_unordered(_seed_chunk, chunks), start=1):
            subjects, events = subjects + count, events + written
            if done % 20 == 0 or done == len(chunks):
                print(f"  {subjects:>9,} subjects seeded ({events:,} events, "
                      f"{events / (time.monotonic() - began):,.0f} events/s)", flush=True)
    with psycopg.connect(libpq(config["DATABASE_URL"]), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE consent_events")
        conn.execute("VACUUM ANALYZE audit_events")
        # The seed's deferred writes would otherwise land in the next figure: a checkpoint triggered by its WAL
        # spreads over the following minutes, and every first write to a page meanwhile logs the full page.
        conn.execute("CHECKPOINT")


def ledger_counts(url: str, since: Any) -> dict[str, int]:
    with psycopg.connect(libpq(url)) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT subject), count(*) FILTER (WHERE seq <> 1) "
            "FROM consent_events WHERE created_at >= %s", (since,)).fetchone()
        audited = conn.execute(
            "SELECT count(*) FROM audit_events WHERE action = 'consent.recorded' AND at >= %s", (since,)).fetchone()
    return {"rows": row[0], "subjects": row[1], "chained": row[2], "audited": audited[0]}


def verify_ledger(config: dict[str, str]) -> tuple[int, str | None, float]:
    """consent.ledger.verify over the whole table: (breaks, first break, seconds)."""
    from consent.ledger import verify
    from service.db import Database

    db = Database(config["DATABASE_URL"])
    began, breaks, first = time.monotonic(), 0, None
    with db.sessions() as session:
        for found in verify(session):
            breaks += 1
            first = first or str(found)
    db.dispose()
    return breaks, first, time.monotonic() - began


# --- servers and load ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Server:
    base: str
    pgids: tuple[int, ...]  # gunicorn's process group and nginx's


@contextmanager
def gunicorn(target: str, port: int, args: argparse.Namespace, env: dict[str, str], log: Path,
             ready_path: str) -> Iterator[Server]:
    """Serve `target` as the Procfile's web process serves wsgi:app (nginx in front of gunicorn, gunicorn.conf.py),
    with the bench's worker settings if any, in its own process group; the whole group is ended on the way out."""
    # The bench's --workers/--threads where it has them (this one always does); otherwise gunicorn.conf.py's own.
    sizing = [word for name in ("workers", "threads") if getattr(args, name, None) is not None
              for word in (f"--{name}", str(getattr(args, name)))]
    cmd = [*web_command(target), *sizing, "--log-level", "warning"]
    run_dir = Path(tempfile.gettempdir()) / f"bench-web-{port}"
    env = {**env, "PORT": str(port), "WEB_LISTEN": f"127.0.0.1:{port}", "WEB_RUN_DIR": str(run_dir)}
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=out, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + ready_path, timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn {target} did not start; see {log}") from None
                time.sleep(0.2)
        yield Server(base, (proc.pid, int((run_dir / "nginx.pid").read_text())))
    finally:
        _end_group(proc)


def web_command(target: str) -> list[str]:
    """The Procfile's `web:` command with `target` for its app: the bench measures what production runs."""
    line = next(x for x in (ROOT / "Procfile").read_text().splitlines() if x.startswith("web:"))
    words = shlex.split(line.removeprefix("web:"))
    words[0] = str(Path(sys.executable).parent / words[0])  # this virtualenv's gunicorn
    return [target if w == "wsgi:app" else w for w in words]


def _end_group(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


TICK = os.sysconf("SC_CLK_TCK")


def _proc_ticks(pid: int) -> tuple[int, int]:
    """(process group, user+system ticks) of a process, or (-1, 0) when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return -1, 0
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[2]), int(fields[11]) + int(fields[12])


def _proc_sample(pid: int) -> tuple[int, int, int] | None:
    """(process group, user+system ticks, start time) of a process, or None when it is gone. The start time tells
    a process from a later one that was given the same pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[2]), int(fields[11]) + int(fields[12]), int(fields[19])


def _is_postgres(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "postgres"
    except OSError:
        return False


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) ticks over all CPUs."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def _kernel_ticks() -> tuple[int, int]:
    """(irq + softirq, steal) ticks over all CPUs. Steal is charged to no process; an interrupt, in tick-based
    accounting, to the process it interrupted too, so its share overlaps the parts."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return values[5] + values[6], values[7]


# The parts of the machine a figure's CPU is split into, as the report names them. nginx runs in its own process
# group, one of the server's `pgids`, and counts as the server's.
CPU_PARTS = {"server": "gunicorn+nginx", "backends": "PostgreSQL backends", "postgres": "other PostgreSQL",
             "wrk": "wrk", "rest": "rest of machine"}
CPU_COLUMNS = {"server": "gunicorn+nginx", "backends": "PG backends", "postgres": "PG other", "wrk": "wrk",
               "rest": "rest"}


@dataclass(frozen=True)
class CpuSplit:
    """CPU seconds by part of the machine (`CPU_PARTS`) over a figure's windows, and shares of the machine's time."""

    seconds: dict[str, float]
    busy: float  # of all CPUs' time
    steal: float  # of all CPUs' time: the hypervisor ran someone else; inside "rest of machine"
    irq: float  # of all CPUs' time: interrupts and softirqs (loopback TCP among them), spread over the parts

    def per_request_ms(self, requests: int) -> dict[str, float]:
        return {part: 1e3 * s / max(1, requests) for part, s in self.seconds.items()}

    def line(self, requests: int, unit: str) -> str:
        ms = self.per_request_ms(requests)
        return (f"  CPU per {unit}: " + ", ".join(f"{CPU_PARTS[part]} {v:.2f} ms" for part, v in ms.items())
                + f" (machine busy {100 * self.busy:.0f}%, of which steal {100 * self.steal:.0f}%, "
                f"irq {100 * self.irq:.0f}%)")


class OtherCpu:
    """The share of the machine's CPU that processes outside this benchmark used while a figure ran:
    busy time minus the server's process groups, wrk and the PostgreSQL backends serving the bench database.
    Also the whole split (`CpuSplit`): those three, the rest of PostgreSQL (postmaster, walwriter, checkpointer,
    background writer), and the rest of the machine, so a figure's CPU per request can be read by process."""

    def __init__(self, pgids: tuple[int, ...], conninfo: str | None) -> None:
        self.pgids, self.conninfo = pgids, conninfo

    def _sample(self) -> dict[int, tuple[str | None, int, int]]:
        """Every process as (its part of `CPU_PARTS`, or None for the rest of the machine; ticks; start time)."""
        backends: set[int] = set()
        elsewhere: set[int] = set()
        if self.conninfo:
            with psycopg.connect(self.conninfo, autocommit=True) as conn:
                # Autovacuum workers on the bench database count as its backends: the bench's writes call them.
                # Another database's backends are other work and stay in the rest of the machine (their WAL,
                # though, is written by the same walwriter and checkpointer and cannot be told apart). This
                # sampling connection is the bench's overhead, not the figure's: rest of the machine too.
                for pid, ours in conn.execute(
                        "SELECT pid, datname = current_database() FROM pg_stat_activity WHERE datname IS NOT NULL"):
                    (backends if ours else elsewhere).add(pid)
                elsewhere.add(conn.info.backend_pid)
                backends.discard(conn.info.backend_pid)
        sample: dict[int, tuple[str | None, int, int]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            found = _proc_sample(pid)
            if found is None:
                continue
            pgid, ticks, start = found
            part = ("server" if pgid in self.pgids else "backends" if pid in backends
                    else "postgres" if pid not in elsewhere and _is_postgres(pid) else None)
            sample[pid] = (part, ticks, start)
        return sample

    def __enter__(self) -> OtherCpu:
        self.before = self._sample()
        self.children = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.machine = _machine_ticks()
        self.kernel = _kernel_ticks()
        return self

    def __exit__(self, *exc: object) -> None:
        busy, total = (b - a for a, b in zip(self.machine, _machine_ticks(), strict=True))
        irq, steal = (b - a for a, b in zip(self.kernel, _kernel_ticks(), strict=True))
        after = self._sample()
        ticks = dict.fromkeys(CPU_PARTS, 0.0)
        for pid, (part, used, start) in after.items():
            if part is None:
                continue
            # The parts are those of the end: a backend connecting under load may not have had its database yet
            # at the start. A process that started during the figure (a pool connection opened under load, a
            # respawned worker) counts from 0. One that ended before the end is lost with its ticks, uncounted
            # and left in the rest of the machine: rare, since the server's pool keeps its connections and
            # gunicorn its workers.
            was = self.before.get(pid)
            ticks[part] += used - (was[1] if was is not None and was[2] == start else 0)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        ticks["wrk"] = (children.ru_utime + children.ru_stime - self.children.ru_utime - self.children.ru_stime) * TICK
        # The "other" share keeps its meaning from before the split, so runs stay comparable: the rest of
        # PostgreSQL, though mostly the bench's doing, is in it.
        ours = ticks["server"] + ticks["backends"] + ticks["wrk"]
        self.share = max(0.0, (busy - ours) / total) if total else 0.0
        # The machine's busy ticks less the parts: the bench's own process, other work, steal. Ticks are sampled
        # per process, so within a few ticks of noise this can come out slightly below zero.
        ticks["rest"] = busy - sum(ticks.values())
        self.split = CpuSplit({part: t / TICK for part, t in ticks.items()}, busy / total if total else 0.0,
                              steal / total if total else 0.0, irq / total if total else 0.0)


@dataclass(frozen=True)
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: dict[str, int]
    created: int
    other_cpu: float = 0.0
    cpu: CpuSplit | None = None  # over all the windows, as `requests` is


def wrk(url: str, script: Path, seconds: float, args: argparse.Namespace, env: dict[str, str]) -> Load:
    cmd = [args.wrk, f"-t{args.wrk_threads}", f"-c{args.connections}", f"-d{max(1, round(seconds))}s",
           "--timeout", "5s", "--latency", "-s", str(script), url]
    done = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, check=True,
                          timeout=seconds + 60)
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")
    data = json.loads(line[len("BENCH "):])
    errors = {k: data[k] for k in ("connect", "read", "write", "status", "timeout") if data[k]}
    return Load(rps=data["requests"] / (data["duration_us"] / 1e6), p50_ms=data["p50_us"] / 1000,
                p99_ms=data["p99_us"] / 1000, requests=data["requests"], errors=errors, created=data["created"])


def median_window(loads: list[Load]) -> Load:
    """The window of median throughput, with its latencies; requests, 201s and errors summed over all windows."""
    errors: dict[str, int] = {}
    for load in loads:
        for kind, count in load.errors.items():
            errors[kind] = errors.get(kind, 0) + count
    middle = sorted(loads, key=lambda load: load.rps)[len(loads) // 2]
    return dataclasses.replace(middle, requests=sum(load.requests for load in loads), errors=errors,
                               created=sum(load.created for load in loads))


def windows(url: str, script: Path, args: argparse.Namespace, env: dict[str, str], pgids: tuple[int, ...],
            conninfo: str | None, runs: list[dict[str, str]] | None = None) -> Load:
    """`--repeat` measured windows after the warm-up, as one figure (`median_window`); `runs` gives each window
    its own environment."""
    with OtherCpu(pgids, conninfo) as other:
        loads = [wrk(url, script, args.duration, args, {**env, **(runs[i] if runs else {})})
                 for i in range(args.repeat)]
    return dataclasses.replace(median_window(loads), other_cpu=other.share, cpu=other.split)


def _windows_note(args: argparse.Namespace) -> str:
    return f", median of {args.repeat} windows" if args.repeat > 1 else ""


def measure(name: str, server: Server, path: str, script: Path, args: argparse.Namespace, env: dict[str, str],
            conninfo: str | None = None, cpu_unit: str | None = None) -> Load:
    """Warm up, then the figure; with `cpu_unit`, also its CPU split per request (named so)."""
    wrk(server.base + path, script, args.warmup, args, env)
    load = windows(server.base + path, script, args, env, server.pgids, conninfo)
    note = f", errors {load.errors}" if load.errors else ""
    print(f"  {name}: {load.rps:,.0f} req/s, p50 {load.p50_ms:.2f} ms, p99 {load.p99_ms:.2f} ms "
          f"({load.requests:,} requests{note}{_windows_note(args)}; other processes {100 * load.other_cpu:.0f}% "
          "CPU)", flush=True)
    if cpu_unit and load.cpu:
        print(load.cpu.line(load.requests, cpu_unit), flush=True)
    return load


# --- the run ---------------------------------------------------------------------------------------------

def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(args: argparse.Namespace, bares: list[Load], smalls: list[Load], large: Load, record: Load,
           integrity: str) -> None:
    # The higher bare figure is the baseline: a machine that slowed down mid-run cannot flatter a ratio.
    bare = max(bares, key=lambda b: b.rps)
    rows = [("bare GET /ping (before)", bares[0]), ("bare GET /ping (after)", bares[1]),
            *((f"status @ {args.small:,} subjects ({i})", small) for i, small in enumerate(smalls, start=1)),
            (f"status @ {args.subjects:,} subjects", large),
            ("record POST /v1/consents", record)]
    per_figure = f"{args.duration:g} s" + (f" (median of {args.repeat} windows)" if args.repeat > 1 else "")
    print(f"\nnginx + gunicorn --workers {args.workers} --threads {args.threads} (Procfile web); "
          f"wrk -t{args.wrk_threads} -c{args.connections}; {per_figure} per figure after {args.warmup:g} s warm-up; "
          f"{os.cpu_count()} CPUs\n")
    print(f"{'measurement':<34}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'rps ratio':>11}{'other CPU':>11}")
    for name, load in rows:
        print(f"{name:<34}{load.rps:>10,.0f}{load.p50_ms:>9.2f}{load.p99_ms:>9.2f}{load.rps / bare.rps:>11.3f}"
              f"{100 * load.other_cpu:>10.0f}%")
    cpu_split_table(bares[1], record)
    status_ratio, record_ratio = large.rps / bare.rps, record.rps / bare.rps
    p99_growth = large.p99_ms / min(small.p99_ms for small in smalls)
    print("\ntarget                                             figure   target  verdict")
    print(f"{'status throughput @ ' + format(args.subjects, ',') + ' / bare':<48}{status_ratio:>9.3f}"
          f"{'>= 0.50':>9}  {verdict(status_ratio >= 0.5)}")
    print(f"{'status p99 @ ' + format(args.subjects, ',') + ' / lower p99 @ ' + format(args.small, ','):<48}"
          f"{p99_growth:>9.3f}{'<= 1.30':>9}  {verdict(p99_growth <= 1.3)}")
    print(f"{'record throughput / bare':<48}{record_ratio:>9.3f}{'>= 0.25':>9}  {verdict(record_ratio >= 0.25)}")
    print(f"{'record integrity':<48}{integrity}")
    busiest = max(load.other_cpu for _, load in rows)
    if busiest > 0.05:
        print(f"\nNOTE: processes outside the benchmark used up to {100 * busiest:.0f}% of the CPU during a figure; "
              "the figures are disturbed: re-run on an idle machine.")
    # The same endpoint measured twice: what the "other CPU" column cannot see from inside the VM (a host that
    # changed speed, a neighbour's load) shows as a spread here, and every ratio carries it.
    spread = 1 - min(b.rps for b in bares) / bare.rps
    if spread > 0.10:
        print(f"\nNOTE: the two bare figures differ by {100 * spread:.0f}%: the baseline moved during the run "
              "and the ratios are that uncertain. Re-run, and compare runs.")


def cpu_split_table(bare: Load, record: Load) -> None:
    """CPU ms per request by part of the machine, bare against record: what recording costs beyond serving HTTP.
    The bare figure measured after recording, the nearer one in time."""
    if bare.cpu is None or record.cpu is None:
        return
    ping, consent = bare.cpu.per_request_ms(bare.requests), record.cpu.per_request_ms(record.requests)
    rows = [("bare GET /ping (after)", ping, f"{100 * bare.cpu.busy:>6.0f}%"),
            ("record POST /v1/consents", consent, f"{100 * record.cpu.busy:>6.0f}%"),
            ("record - bare", {part: consent[part] - ping[part] for part in CPU_PARTS}, "")]
    widths = {part: max(8, len(label) + 2) for part, label in CPU_COLUMNS.items()}
    print(f"\n{'CPU ms per request':<34}" + "".join(f"{CPU_COLUMNS[p]:>{w}}" for p, w in widths.items())
          + f"{'total':>9}{'busy':>7}")
    for name, ms, busy in rows:
        print(f"{name:<34}" + "".join(f"{ms[p]:>{w}.3f}" for p, w in widths.items())
              + f"{sum(ms.values()):>9.3f}{busy}")


def run(args: argparse.Namespace, work: Path) -> None:
    url = fresh_database(args.postgres)
    config = {"DATABASE_URL": url, "INSTANCE_PATH": str(work / "instance")}
    env = {**os.environ, **config, "PRIVACY_ENV": "development"}
    env.pop("REDIS_URL", None)
    env.pop("PRIVACY_CONFIG", None)
    env.pop("RATELIMIT_REDIS_URL", None)
    # Per-key rate limits (service.ratelimit) on, as the service ships, but set far above the load: every request
    # pays the count and none is refused. In each worker's memory unless --limits-redis names a Redis.
    limits = work / "limits.toml"
    limits.write_text('[ratelimit]\nenabled = false\n' if args.limits == "off" else
                      '[ratelimit]\ndefault = "1000000000 per minute"\n')
    env["PRIVACY_CONFIG"] = str(limits)
    if args.limits == "on" and args.limits_redis:
        env["RATELIMIT_REDIS_URL"] = args.limits_redis
    scripts = {}
    for name, body in (("ping", PING_LUA), ("status", STATUS_LUA % {"policy": POLICY}),
                       ("record", RECORD_LUA % {"policy": POLICY, "version": VERSION})):
        scripts[name] = work / f"{name}.lua"
        scripts[name].write_text(body + DONE_LUA)

    print(f"database {DB_NAME}; nginx + gunicorn --workers {args.workers} --threads {args.threads} (Procfile web); "
          f"rate limits {args.limits}"
          f"{' in ' + args.limits_redis if args.limits == 'on' and args.limits_redis else ''}", flush=True)
    tenant = setup_tenant(config)
    load_env = {"BENCH_KEY": tenant.secret}
    conninfo = libpq(url)

    bares = [measure_bare(args, env, work, scripts["ping"], "bare (before)", conninfo)]
    print(f"seeding {args.small:,} subjects", flush=True)
    seed(config, tenant, 0, args.small, args.procs)
    with gunicorn("wsgi:app", args.port + 1, args, env, work / "service.log", "/healthz") as server:
        # Twice: one stall in a single window would inflate p99 at the small size and flatter the growth ratio,
        # so the growth is taken against the lower of the two.
        smalls = [measure(f"status @ {args.small:,} ({i})", server, "", scripts["status"], args,
                          {**load_env, "BENCH_SUBJECTS": str(args.small)}, conninfo) for i in (1, 2)]
        print(f"seeding up to {args.subjects:,} subjects", flush=True)
        seed(config, tenant, args.small, args.subjects, args.procs)
        large = measure(f"status @ {args.subjects:,}", server, "", scripts["status"], args,
                        {**load_env, "BENCH_SUBJECTS": str(args.subjects)}, conninfo)
        record, since = measure_record(server, scripts["record"], args, load_env, conninfo)
    bares.append(measure_bare(args, env, work, scripts["ping"], "bare (after)", conninfo))
    integrity = check_integrity(config, since, record, args.connections * args.repeat)
    report(args, bares, smalls, large, record, integrity)


def measure_bare(args: argparse.Namespace, env: dict[str, str], work: Path, script: Path, name: str,
                 conninfo: str) -> Load:
    # The bench database only to tell PostgreSQL's own processes from other databases' backends: the bare app
    # has none of its own.
    with gunicorn("bench.bare_app:app", args.port, args, env, work / "bare.log", "/ping") as server:
        return measure(name, server, "/ping", script, args, {}, conninfo, cpu_unit="ping")


def measure_record(server: Server, script: Path, args: argparse.Namespace, env: dict[str, str],
                   conninfo: str) -> tuple[Load, Any]:
    """Warm up, then record; returns the load and the time before which no measured row can have been written."""
    from service.db import utcnow

    wrk(server.base + "/v1/consents", script, args.warmup, args, {**env, "BENCH_RUN": "warm"})
    time.sleep(1)  # let requests cut off by the end of the warm-up finish before drawing the line
    since = utcnow()
    # A run name per window: the subjects are new in every window, so a second row for one is a duplicate.
    record = windows(server.base + "/v1/consents", script, args, env, server.pgids, conninfo,
                     [{"BENCH_RUN": f"run{i}"} for i in range(args.repeat)])
    time.sleep(1)
    note = f", errors {record.errors}" if record.errors else ""
    print(f"  record: {record.rps:,.0f} req/s, p50 {record.p50_ms:.2f} ms, p99 {record.p99_ms:.2f} ms "
          f"({record.requests:,} requests, {record.created:,} answered 201{note}{_windows_note(args)}; "
          f"other processes {100 * record.other_cpu:.0f}% CPU)", flush=True)
    if record.cpu:
        print(record.cpu.line(record.requests, "consent"), flush=True)
    return record, since


def check_integrity(config: dict[str, str], since: Any, record: Load, connections: int) -> str:
    """Rows against 201s. Every request carries a new subject, so a subject with two rows is a duplicate;
    a 201 without a row is lost. Each wrk window stops with up to one request per connection still in flight:
    the server completes those without wrk counting the 201, so up to `connections` (summed over the windows)
    extra rows are expected."""
    counts = ledger_counts(config["DATABASE_URL"], since)
    lost = max(0, record.created - counts["rows"])
    duplicated = counts["rows"] - counts["subjects"]
    unanswered = max(0, counts["subjects"] - record.created)
    print(f"  rows added {counts['rows']:,} ({counts['subjects']:,} subjects, {counts['audited']:,} audited, "
          f"{counts['chained']} with seq > 1); 201 responses {record.created:,}", flush=True)
    print("verifying the ledger (consent.ledger.verify)", flush=True)
    try:
        breaks, first, seconds = verify_ledger(config)
        print(f"  {breaks} break(s) in {seconds:.0f} s{': ' + first if first else ''}", flush=True)
        ledger = "intact" if breaks == 0 else f"{breaks} break(s), first {first}"
    except Exception as exc:  # noqa: BLE001 - the figures are still worth printing; the failure is reported
        ledger = f"NOT VERIFIED ({type(exc).__name__}: {str(exc)[:80]})"
        print(f"  verification failed: {exc!r}", flush=True)
    parts = [f"lost: {lost}", f"duplicated: {duplicated + counts['chained']}", f"ledger: {ledger}"]
    if unanswered:
        flag = "" if unanswered <= connections else f" > {connections} connections: UNEXPLAINED"
        parts.append(f"in flight at cut-off: {unanswered}{flag}")
    if counts["rows"] != counts["audited"]:
        parts.append(f"unaudited: {counts['rows'] - counts['audited']}")
    return ", ".join(parts)


def load_options(parser: argparse.ArgumentParser, connections: int) -> None:
    """The options every load benchmark shares (bench/consent.py, portal.py, console.py): measured windows, wrk,
    seeding processes and the database."""
    parser.add_argument("--duration", type=float, default=10, help="seconds per measured figure")
    # A service worker's third full garbage collection (60-160 ms) comes some 7 s into load, once its heap has
    # grown with first use; a shorter warm-up puts that one-off pause into the first status figure's p99.
    parser.add_argument("--warmup", type=float, default=10, help="seconds of load before each figure")
    parser.add_argument("--repeat", type=int, default=1,
                        help="measured windows per figure; the figure is the window of median throughput")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--connections", type=int, default=connections)
    parser.add_argument("--procs", type=int, default=os.cpu_count() or 2, help="seeding processes")
    parser.add_argument("--postgres", default=ADMIN_URL, help="an existing database to create the bench one from")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "/usr/bin/wrk")
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")


def parse_load_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse, with the checks of `load_options` made before minutes of seeding, not after."""
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if not os.access(args.wrk, os.X_OK):
        parser.error(f"no wrk at {args.wrk}: install it (Debian: apt-get install wrk) or pass --wrk")
    return args


def run_in_workdir(run: Callable[[argparse.Namespace, Path], Any], args: argparse.Namespace, prefix: str,
                   drop_database: Callable[[], Any] | None) -> int:
    """Run a benchmark in a scratch folder, removed afterwards with the bench database (`drop_database`)."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        run(args, work)
    finally:
        if drop_database is not None:
            drop_database()
        shutil.rmtree(work, ignore_errors=True)
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subjects", type=int, default=1_000_000, help="subjects for the large status figure")
    parser.add_argument("--small", type=int, default=1_000, help="subjects for the small status figure")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (both apps)")
    parser.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker (both apps)")
    parser.add_argument("--port", type=int, default=8931, help="bare app port; the service uses the next")
    parser.add_argument("--limits", choices=("on", "off"), default="on",
                        help="per-key rate limits (counted on every request, set too high to refuse any)")
    parser.add_argument("--limits-redis", metavar="URL",
                        help="count the limits in this Redis (as production does) instead of each worker's memory")
    load_options(parser, connections=8)
    args = parse_load_args(parser, argv)
    if not 0 < args.small < args.subjects:
        parser.error("need 0 < --small < --subjects")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_in_workdir(run, args, "bench-consent-",
                          None if args.keep else lambda: fresh_database(args.postgres, drop=True))


if __name__ == "__main__":
    sys.exit(main())
