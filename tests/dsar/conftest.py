"""DSAR fixtures: the app on the whole demo estate (SQL, files, Redis) with fast retries, seeded people."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from privacy import create_app
from service.stores import demo
from tests.conftest import ROOT, _truncate

SEED, PEOPLE = 11, 6
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ALL = "dsar:submit,dsar:manage,consent:read,consent:write,admin"


def write_config(tmp_path: Path, extra: str = "", estate: str = "estate-redis.toml") -> str:
    path = tmp_path / "privacy.toml"
    path.write_text(
        f'include_stores = ["{ROOT / "examples" / estate}"]\n'
        "[dsar]\ntask_attempts = 2\nretry_intervals = [0]\nlease_seconds = 2\nexport_ttl_hours = 1\n"
        + extra)
    return str(path)


@pytest.fixture
def dsar_config(worker_config: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {**worker_config, "PRIVACY_CONFIG": write_config(tmp_path)}


def _app(config: dict[str, str]) -> Iterator[Flask]:
    app = create_app(config)
    app.config["TESTING"] = True
    if demo.SQL_STORE in app.extensions["stores"]:
        demo.seed(app.extensions["stores"], PEOPLE, seed_value=SEED, now=NOW)
    yield app
    _truncate(app)
    app.extensions["stores"].close()
    app.extensions["db"].dispose()


@pytest.fixture
def dsar_app(dsar_config: dict[str, str]) -> Iterator[Flask]:
    """The app with jobs on RQ (real Redis): nothing runs until a worker starts."""
    yield from _app(dsar_config)


@pytest.fixture
def inline_app(base_config: dict[str, str], tmp_path: Path) -> Iterator[Flask]:
    """The embedded default: no REDIS_URL, jobs in-process, on the SQL and files stores."""
    yield from _app({**base_config, "REDIS_URL": "", "PRIVACY_CONFIG": write_config(tmp_path, estate="estate.toml")})


@pytest.fixture
def inline_app_with(base_config: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """inline_app_with(extra_toml): the embedded default with more configuration (stores, [dsar] options)."""
    made: list[Iterator[Flask]] = []

    def make(extra: str, estate: str = "estate.toml") -> Flask:
        apps = _app({**base_config, "REDIS_URL": "", "PRIVACY_CONFIG": write_config(tmp_path, extra, estate)})
        made.append(apps)
        return next(apps)

    yield make
    for apps in made:
        next(apps, None)


def kill_with_horse(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL an rq worker and its work horse, as a crash would: RQ puts the horse in its own process group,
    so killing the worker's group alone leaves the job running."""
    pids, todo = [], [proc.pid]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        with contextlib.suppress(OSError):
            todo += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=10)


def person(user_id: int) -> Any:
    return next(p for p in demo.people(PEOPLE, SEED, NOW.replace(microsecond=0)) if p.user["id"] == user_id)


@pytest.fixture
def key_for() -> Callable[..., dict[str, str]]:
    """Headers with a key of `scopes` for the app under test (tenant "mi-home")."""

    def make(app: Flask, scopes: str = ALL) -> dict[str, str]:
        from service.tenancy import App, create_app_tenant, create_key

        with app.extensions["db"].session() as session:
            from sqlalchemy import select

            if session.scalar(select(App.id).where(App.slug == "mi-home")) is None:
                create_app_tenant(session, "mi-home")
            _, secret = create_key(session, "mi-home", frozenset(scopes.split(",")))
        return {"Authorization": f"Bearer {secret}"}

    return make


@pytest.fixture
def dsar_worker(start_worker: Callable[..., Any], dsar_config: dict[str, str]) -> Callable[[], Any]:
    """Start a real `rq worker` on the `dsar` and `dsar_bulk` queues with the app's configuration."""
    return lambda: start_worker("dsar", "dsar_bulk", config=dsar_config)
