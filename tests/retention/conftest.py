"""Retention fixtures: the app over the whole demo estate (sql on the backend under test, files, and sessions in
the real Redis), seeded people, policies, and real rq workers on a Redis database of retention's own."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from redis import Redis

from privacy import create_app
from service.stores import demo
from service.stores.registry import DEMO_ESTATE
from tests.conftest import _truncate, scratch_database

# Other suites flush their Redis databases; retention's workers and sessions store use one of their own.
RETENTION_REDIS_URL = os.environ.get("TEST_RETENTION_REDIS_URL", "redis://127.0.0.1:6379/11")
PEOPLE, SEED = 40, 5151
MANAGE = "platform:retention"

ESTATE_TOML = f"""
include_stores = ["{DEMO_ESTATE}"]

[[stores]]
name = "sessions"
plugin = "redis"
url_env = "RETENTION_SESSIONS_URL"
prefix = "cloudphotos:"

  [[stores.keys]]
  template = "session:{{user_id}}:*"
  category = "sessions"
  timestamp_field = "created_at"

  [[stores.keys]]
  template = "searches:{{user_id}}"
  category = "search_history"
"""


def write_config(folder: Path, extra: str = "") -> Path:
    path = folder / "privacy.toml"
    path.write_text(ESTATE_TOML + extra)
    return path


@pytest.fixture(scope="session")
def estate_env(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The estate's configuration; on the PostgreSQL backend its sql store is a PostgreSQL database too."""
    env = {"PRIVACY_CONFIG": str(write_config(tmp_path_factory.mktemp("retention-config"))),
           "RETENTION_SESSIONS_URL": RETENTION_REDIS_URL}
    if not database_url.startswith("postgresql"):
        yield env
        return
    with scratch_database(f"retention_estate_{os.getpid()}") as url:
        yield {**env, "DEMO_PHOTOS_DATABASE_URL": url}


@pytest.fixture
def redis_url() -> Iterator[str]:
    """Overrides the shared fixture: retention's own Redis database, empty before and after the test."""
    conn = Redis.from_url(RETENTION_REDIS_URL)
    conn.flushdb()
    yield RETENTION_REDIS_URL
    conn.flushdb()
    conn.close()


@pytest.fixture(scope="session")
def estate_app(base_config: dict[str, str], estate_env: dict[str, str]) -> Iterator[Flask]:
    app = create_app({**base_config, **estate_env})
    app.config["TESTING"] = True
    yield app
    app.extensions["stores"].close()
    app.extensions["db"].dispose()


@pytest.fixture
def ret_app(estate_app: Flask, redis_url: str) -> Iterator[Flask]:
    """The app with in-process jobs (the embedded default); tables emptied after each test."""
    yield estate_app
    _truncate(estate_app)
    estate_app.extensions["key_cache"].clear()


@pytest.fixture
def ret_rq_app(worker_config: dict[str, str], estate_env: dict[str, str]) -> Iterator[Flask]:
    """The app in its production shape: runs go to the `retention` RQ queue for real worker processes."""
    app = create_app({**worker_config, **estate_env})
    app.config["TESTING"] = True
    yield app
    _truncate(app)
    app.extensions["stores"].close()
    app.extensions["db"].dispose()


@pytest.fixture
def worker(start_worker: Callable[..., Any], estate_env: dict[str, str]) -> Callable[..., Any]:
    """worker(RETENTION_BATCH_SIZE="50") starts a real `rq worker` on the retention queue."""

    def start(**env: str) -> Any:
        return start_worker("retention", config={**estate_env, **env})

    return start


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def seeded(estate_app: Flask, redis_url: str, now: datetime) -> demo.Seeded:
    """The estate filled with generated people, some records recent and some long past any retention."""
    return demo.seed(estate_app.extensions["stores"], PEOPLE, seed_value=SEED, now=now)


@pytest.fixture
def headers(make_key: Callable[..., dict[str, str]]) -> dict[str, str]:
    return make_key("ops", MANAGE)


@pytest.fixture
def policy(estate_app: Flask, headers: dict[str, str]) -> Callable[..., dict[str, Any]]:
    """policy("cloud-photos", "device_log", "P90D") creates a policy through the API and returns it."""
    client = estate_app.test_client()

    def create(store: str, category: str, retain_for: str, **more: Any) -> dict[str, Any]:
        body = {"store": store, "category": category, "retain_for": retain_for,
                "basis": "purpose fulfilled; no legal duty to keep", **more}
        r = client.post("/v1/retention/policies", json=body, headers=headers)
        assert r.status_code == 201, r.json
        return r.json

    return create


def wait_run(client: Any, headers: dict[str, str], run_id: str, timeout: float = 30) -> dict[str, Any]:
    """Poll the run until it has finished; return its report."""
    from tests.conftest import wait_for

    def finished() -> dict[str, Any] | None:
        r = client.get(f"/v1/retention/runs/{run_id}", headers=headers)
        assert r.status_code == 200, r.json
        return r.json if r.json["state"] in ("succeeded", "failed") else None

    return wait_for(finished, timeout)
