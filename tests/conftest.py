"""Shared fixtures: the app on each real database backend, clean tables per test, tenants and keys."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from privacy import create_app, load_models
from service.cli import alembic_config
from service.db import Base
from service.tenancy import create_app_tenant, create_key

PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = [b for b in os.environ.get("TEST_DATABASES", "sqlite,postgresql").split(",") if b]
# The sql store plugin's third backend: its tests run when this server answers and are skipped otherwise.
MARIADB_ADMIN_URL = os.environ.get("TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


def _admin(admin_url: str, statement: str) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as conn:
            conn.execute(text(statement))
    finally:
        admin.dispose()


@cache
def mariadb_reachable() -> bool:
    try:
        engine = create_engine(MARIADB_ADMIN_URL, connect_args={"connect_timeout": 2})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable here"
        return False


@contextmanager
def scratch_database(name: str, admin_url: str = PG_ADMIN_URL) -> Iterator[str]:
    """An empty database `name` on the server of `admin_url` (PostgreSQL or MariaDB), dropped afterwards, so runs
    on a long-lived machine do not pile databases up. Yields its URL."""
    # FORCE: apps' pools may still hold connections when PostgreSQL drops it.
    drop = f"DROP DATABASE IF EXISTS {name}" + (" WITH (FORCE)" if admin_url.startswith("postgresql") else "")
    _admin(admin_url, drop)
    _admin(admin_url, f"CREATE DATABASE {name}")
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        _admin(admin_url, drop)


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, empty database on each backend; the whole suite runs once per backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'test.sqlite3'}"
        command.upgrade(alembic_config(url), "head")
        yield url
        return
    with scratch_database(f"privacy_test_{os.getpid()}") as url:
        command.upgrade(alembic_config(url), "head")
        yield url


@pytest.fixture(autouse=True)
def _backend_only(request: pytest.FixtureRequest) -> None:
    """Honour the `postgres_only` and `sqlite_only` markers: such a test runs on that backend's pass only."""
    if "database_url" not in request.fixturenames:
        return
    sqlite = request.getfixturevalue("database_url").startswith("sqlite")
    if request.node.get_closest_marker("postgres_only") and sqlite:
        pytest.skip("needs PostgreSQL")
    if request.node.get_closest_marker("sqlite_only") and not sqlite:
        pytest.skip("needs SQLite")


@pytest.fixture(scope="session")
def instance_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("instance")


@pytest.fixture(scope="session")
def base_config(database_url: str, instance_path: Path) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "INSTANCE_PATH": str(instance_path)}


@pytest.fixture(scope="session")
def session_app(base_config: dict[str, str]) -> Iterator[Flask]:
    app = create_app(base_config)
    app.config["TESTING"] = True
    yield app
    app.extensions["db"].dispose()


def _truncate(app: Flask) -> None:
    load_models()
    db = app.extensions["db"]
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    if db.dialect != "postgresql":
        with db.engine.begin() as conn:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))
        return
    # A worker a test SIGKILLed leaves its server backend finishing its statement for a moment, holding locks
    # that TRUNCATE can deadlock with; PostgreSQL then cancels one side. Try again once that statement is done.
    for attempt in range(10):
        try:
            with db.engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            return
        except OperationalError:
            if attempt == 9:
                raise
            time.sleep(0.5)


@pytest.fixture
def app(session_app: Flask) -> Iterator[Flask]:
    yield session_app
    _truncate(session_app)
    session_app.extensions["key_cache"].clear()
    session_app.extensions["policy_cache"].clear()
    session_app.extensions["page_limiter"].reset()  # the pages' rate-limit counts, shared by every test
    if session_app.extensions.get("api_limits") is not None:
        session_app.extensions["api_limits"].reset()  # and the API keys'
    figures = session_app.extensions.get("console_figures")  # the console overview's minute of 90-day figures
    if figures is not None:
        figures[0].clear()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def db_session(app: Flask) -> Iterator[Any]:
    with app.extensions["db"].sessions() as session:
        yield session


@pytest.fixture
def make_key(app: Flask) -> Callable[..., dict[str, str]]:
    """make_key("app-a", "consent:read,admin") -> Authorization headers; creates the app when needed."""

    def make(slug: str, scopes: str) -> dict[str, str]:
        from sqlalchemy import select

        from service.tenancy import App

        with app.extensions["db"].session() as session:
            if session.scalar(select(App.id).where(App.slug == slug)) is None:
                create_app_tenant(session, slug)
            _, secret = create_key(session, slug, frozenset(scopes.split(",")))
        return {"Authorization": f"Bearer {secret}"}

    return make


# --- real Redis and real rq worker processes -------------------------------------------------------------

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
ROOT = Path(__file__).resolve().parent.parent


def procfile_queues() -> tuple[str, ...]:
    """The queues the Procfile's `worker:` line listens on, in its order (RQ's priority), as `rq worker` reads
    them."""
    import shlex

    from rq.cli.workers import worker

    line = next(ln for ln in (ROOT / "Procfile").read_text().splitlines() if ln.startswith("worker:"))
    words = shlex.split(line.partition(":")[2])
    assert words[:2] == ["rq", "worker"], line
    return tuple(worker.make_context("worker", words[2:]).params["queues"])


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database of the real server, empty before and after the test."""
    from redis import Redis

    conn = Redis.from_url(REDIS_URL)
    conn.flushdb()
    yield REDIS_URL
    conn.flushdb()
    conn.close()


@pytest.fixture
def worker_config(base_config: dict[str, str], redis_url: str) -> dict[str, str]:
    """The configuration shared by the app under test and the worker processes it starts."""
    return {**base_config, "REDIS_URL": redis_url}


@pytest.fixture
def rq_app(worker_config: dict[str, str]) -> Iterator[Flask]:
    """The app in its production shape: jobs go to RQ on the real Redis instead of running in-process."""
    app = create_app(worker_config)
    app.config["TESTING"] = True
    yield app
    _truncate(app)
    app.extensions["db"].dispose()


@pytest.fixture
def start_worker(worker_config: dict[str, str]) -> Iterator[Callable[..., Any]]:
    """start_worker("default", "dsar") starts a real `rq worker` process as the Procfile does (its worker class);
    all are killed after the test."""
    import signal
    import subprocess
    import sys

    procs: list[subprocess.Popen[bytes]] = []

    def start(*queues: str, config: dict[str, str] | None = None, burst: bool = False) -> subprocess.Popen[bytes]:
        env = {**os.environ, **worker_config, **(config or {}), "PYTHONPATH": str(ROOT)}
        args = [str(Path(sys.executable).parent / "rq"), "worker", "-w", "privacy.worker.ServiceWorker",
                "--url", env["REDIS_URL"], "--worker-ttl", "30", *(["--burst"] if burst else []),
                *(queues or ("default",))]
        proc = subprocess.Popen(args, cwd=ROOT, env=env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1) -> Any:
    """Poll until `predicate()` is truthy and return its value; fail the test after `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


# --- a PostgreSQL server of the test's own, to stop and restart -------------------------------------------

class ThrowawayPostgres:
    """A PostgreSQL cluster in a temporary directory on a free port, which a test may stop, start and restart
    (never the shared server on 5432). `url` is its database `test`, reachable while the server runs."""

    def __init__(self, bindir: Path, datadir: Path, port: int) -> None:
        self.bindir, self.datadir, self.port = bindir, datadir, port
        self.admin_url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/test"

    def _run(self, tool: str, *args: str) -> None:
        import subprocess

        # initdb and postgres refuse to run as root: the cluster belongs to the `postgres` OS user then.
        user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*user, str(self.bindir / tool), *args], cwd=self.datadir.parent, text=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed: {done.stderr.strip()}")

    def initdb(self) -> None:
        self._run("initdb", "-D", str(self.datadir), "-U", "postgres", "--auth=trust", "--no-sync")
        with (self.datadir / "postgresql.conf").open("a") as conf:  # durability is no concern of a test's server
            conf.write(f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.datadir}'\nfsync = off\nsynchronous_commit = off\n")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.datadir / "server.log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "stop")

    def restart(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "restart")

    @property
    def running(self) -> bool:
        return (self.datadir / "postmaster.pid").exists()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def _throwaway_cluster() -> Iterator[ThrowawayPostgres]:
    import glob
    import shutil
    import tempfile

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        pytest.fail("the fault tests need PostgreSQL's server binaries (/usr/lib/postgresql/*/bin; Debian: postgresql)")
    # Not under pytest's temporary directory: its parents are private to root, and the server runs as postgres.
    top = Path(tempfile.mkdtemp(prefix="throwaway-postgres-"))
    if os.geteuid() == 0:
        shutil.chown(top, "postgres", "postgres")
    cluster = ThrowawayPostgres(Path(found[-1]).parent, top / "data", _free_port())
    try:
        cluster.initdb()
        cluster.start()
        yield cluster
    finally:
        if cluster.running:
            cluster.stop("immediate")
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def throwaway_postgres(_throwaway_cluster: ThrowawayPostgres) -> Iterator[ThrowawayPostgres]:
    """A PostgreSQL server of this test's own (see ThrowawayPostgres), running when the test starts, with an
    empty database `test`; the test may stop, start or restart it."""
    if not _throwaway_cluster.running:
        _throwaway_cluster.start()
    _admin(_throwaway_cluster.admin_url, "DROP DATABASE IF EXISTS test WITH (FORCE)")
    _admin(_throwaway_cluster.admin_url, "CREATE DATABASE test")
    yield _throwaway_cluster
    if not _throwaway_cluster.running:
        _throwaway_cluster.start()


# --- a Redis server of the test's own, to stop and restart ------------------------------------------------

class ThrowawayRedis:
    """A `redis-server` on a free port with no persistence, which a test may stop and start (never the shared
    server on 6379). Stopped, it refuses connections at once, as a crashed Redis does; started again, it is
    empty, as a Redis that lost its data is."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port = folder, port
        self.url = f"redis://127.0.0.1:{port}/0"
        self._proc: Any = None

    def start(self) -> None:
        import shutil
        import subprocess

        from redis import Redis

        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("the outage tests need a redis-server binary (Debian: redis-server)")
        self._proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                       "--appendonly", "no", "--dir", str(self.folder)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        conn = Redis.from_url(self.url, socket_connect_timeout=1)
        try:
            wait_for(lambda: _pings(conn), timeout=10, interval=0.05)
        finally:
            conn.close()

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
            self._proc = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None


def _pings(conn: Any) -> bool:
    try:
        return bool(conn.ping())
    except Exception:  # noqa: BLE001 - not listening yet
        return False


@pytest.fixture
def throwaway_redis(tmp_path: Path) -> Iterator[ThrowawayRedis]:
    """A Redis server of this test's own (see ThrowawayRedis), running when the test starts, stopped after it."""
    server = ThrowawayRedis(tmp_path, _free_port())
    server.start()
    yield server
    server.stop()
