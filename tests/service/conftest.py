"""Fixtures of the service tests: an empty database on each backend, and the web process as production runs it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from alembic import command
from flask import Flask

from privacy import create_app
from service.cli import alembic_config
from service.tenancy import create_app_tenant, create_key
from tests.conftest import BACKENDS, ROOT, ThrowawayPostgres, scratch_database

PG_POLICY = {"key": "privacy", "title": "Privacy", "purposes": [{"key": "core", "description": "Run the service"}]}


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables on each backend, dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    with scratch_database(f"privacy_empty_{os.getpid()}") as url:
        yield url


def procfile_command(process: str) -> str:
    """The command the Procfile runs for `process`."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == process:
            return command.strip()
    raise AssertionError(f"no {process}: line in the Procfile")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class WebProcess:
    base: str
    port: int
    run_dir: Path  # where the web process keeps its sockets (WEB_RUN_DIR)
    log: Path  # its stdout and stderr
    proc: subprocess.Popen[bytes]

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def web_process(base_config: dict[str, str]) -> Iterator[Callable[..., WebProcess]]:
    """web_process(WEB_CONCURRENCY="2") starts the Procfile's `web:` command as a platform would (a shell, PORT
    set, the repository as working directory) against the test database, and waits until /healthz answers. Each
    one's whole process group is ended after the test."""
    if not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
        pytest.fail("the web process needs nginx: install it (Debian: apt-get install nginx); .ci/run does")
    started: list[WebProcess] = []
    tmp = Path(tempfile.mkdtemp(prefix="web-"))  # short: a unix socket's path has at most 107 bytes
    tmp.chmod(0o755)  # as root, nginx's workers run as nobody

    def start(**env: str) -> WebProcess:
        port = free_port()
        run_dir = tmp / str(port)
        log = tmp / f"{port}.log"
        environ = {**os.environ, **base_config, "PORT": str(port), "WEB_LISTEN": f"127.0.0.1:{port}",
                   "WEB_RUN_DIR": str(run_dir), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}:/usr/sbin",
                   **env}
        environ.pop("REDIS_URL", None)
        with open(log, "wb") as out:
            proc = subprocess.Popen(["bash", "-c", "exec " + procfile_command("web")], cwd=ROOT, env=environ,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        web = WebProcess(f"http://127.0.0.1:{port}", port, run_dir, log, proc)
        started.append(web)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(web.base + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        return web
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the web process did not start:\n{web.output()}")
            time.sleep(0.2)

    yield start
    for web in started:
        for sig in (signal.SIGTERM, signal.SIGKILL):  # then whatever of the group outlived the master
            try:
                os.killpg(web.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                web.proc.wait(20)
            except subprocess.TimeoutExpired:
                continue
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def sweep_headers(client, make_key) -> dict[str, str]:
    """A key holding every scope the OpenAPI document names, so each request gets past authorisation."""
    from tests.service.test_input import _operations, _spec

    scopes = {scope for _, _, op, _ in _operations(_spec(client))
              for requirement in op.get("security", []) for scope in requirement.get("bearerAuth", [])}
    return make_key("app-a", ",".join(sorted(scopes)))


# --- the app on a PostgreSQL server of the test's own (tests.conftest.throwaway_postgres) ---------------------

@pytest.fixture
def pg_app(throwaway_postgres: ThrowawayPostgres, tmp_path: Path) -> Iterator[Flask]:
    """The app on the throwaway server, migrated, not in TESTING mode: an error answers as in production.
    Its keys live in `tmp_path` (INSTANCE_PATH), which a web process started for the test must share."""
    command.upgrade(alembic_config(throwaway_postgres.url), "head")
    app = create_app({"DATABASE_URL": throwaway_postgres.url, "INSTANCE_PATH": str(tmp_path)})
    yield app
    app.extensions["db"].dispose()


@pytest.fixture
def pg_headers(pg_app: Flask) -> dict[str, str]:
    """A key of app-a with every app scope, and the policy `privacy` (purpose `core`) in effect at version 1."""
    with pg_app.extensions["db"].session() as session:
        create_app_tenant(session, "app-a")
        _, secret = create_key(session, "app-a", frozenset({"admin", "consent:read", "consent:write",
                                                             "dsar:submit", "dsar:manage"}))
    headers = {"Authorization": f"Bearer {secret}"}
    client = pg_app.test_client()
    assert client.post("/v1/policies", json=PG_POLICY, headers=headers).status_code == 201
    assert client.post("/v1/policies/privacy/versions", json={"version": "1", "text": "t", "material": True},
                       headers=headers).status_code == 201
    return headers
