"""Store fixtures: fresh SQL databases on every reachable backend, a Redis key prefix, the demo estate seeded."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy.engine import make_url

from service.stores.options import StoreContext
from tests.conftest import BACKENDS, MARIADB_ADMIN_URL, mariadb_reachable, scratch_database

STORES_REDIS_URL = os.environ.get("TEST_STORES_REDIS_URL", "redis://127.0.0.1:6379/13")
HASH_KEY = bytes(range(32))
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SQL_BACKENDS = [*BACKENDS, "mariadb"]


@pytest.fixture(scope="session", params=SQL_BACKENDS)
def sql_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An empty database for store tests on SQLite, PostgreSQL and (when reachable) MariaDB."""
    name = f"stores_test_{os.getpid()}"
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('stores') / 'estate.sqlite3'}"
    elif request.param == "postgresql":
        with scratch_database(name) as url:
            yield url
    else:
        if not mariadb_reachable():
            pytest.skip(f"MariaDB is not reachable at {make_url(MARIADB_ADMIN_URL).host}")
        with scratch_database(name, MARIADB_ADMIN_URL) as url:
            yield url


@pytest.fixture
def context(tmp_path: Path) -> StoreContext:
    return StoreContext(base_dir=tmp_path, instance_path=tmp_path, environ={}, hash_key=HASH_KEY)


@pytest.fixture(scope="session")
def redis_client() -> Iterator[Redis]:
    client = Redis.from_url(STORES_REDIS_URL)
    client.ping()
    yield client
    client.close()


@pytest.fixture
def redis_prefix(redis_client: Redis) -> Iterator[str]:
    """A key prefix of this test's own, removed afterwards (the database may be shared)."""
    prefix = f"storetest:{uuid.uuid4().hex[:12]}:"
    yield prefix
    keys = list(redis_client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        redis_client.unlink(*keys)
