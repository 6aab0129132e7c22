"""The plugins' `on_batch` hook retention relies on: each batch's record keys, reported before the batch is
durable, and a hook that raises leaves the batch undone (sql on SQLite, PostgreSQL and MariaDB; files; redis)."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from redis import Redis
from sqlalchemy.engine import make_url

from service.stores.files import FileStore
from service.stores.options import StoreContext
from service.stores.redis_keys import RedisStore
from service.stores.sql import SqlStore
from tests.conftest import MARIADB_ADMIN_URL, PG_ADMIN_URL, mariadb_reachable, scratch_database
from tests.retention.conftest import RETENTION_REDIS_URL

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
CUTOFF = NOW - timedelta(days=30)


class Boom(Exception):
    pass


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def sql_url(request, tmp_path):
    name = f"retention_keys_{os.getpid()}"
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'keys.sqlite3'}"
        return
    if request.param == "mariadb" and not mariadb_reachable():
        pytest.skip(f"MariaDB is not reachable at {make_url(MARIADB_ADMIN_URL).host}")
    with scratch_database(name, PG_ADMIN_URL if request.param == "postgresql" else MARIADB_ADMIN_URL) as url:
        yield url


def _sql_store(url: str, tmp_path, erase: str) -> SqlStore:
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    events = sa.Table("events", meta, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
                      sa.Column("user_id", sa.Integer), sa.Column("ip", sa.String(45)),
                      sa.Column("at", sa.DateTime, nullable=False))
    meta.drop_all(engine)
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(events.insert(), [{"id": i, "user_id": i % 3, "ip": f"192.0.2.{i}",
                                        "at": (NOW - timedelta(days=i * 3)).replace(tzinfo=None)}
                                       for i in range(1, 26)])
    engine.dispose()
    table = {"table": "events", "category": "events", "identity": {"user_id": "user_id"}, "timestamp_column": "at",
             "erase": erase}
    if erase == "anonymize":
        table["anonymize"] = {"user_id": "null", "ip": "null"}
    ctx = StoreContext(base_dir=tmp_path, instance_path=tmp_path, environ={})
    return SqlStore.from_config("db", {"url": url, "tables": [table]}, ctx)


@pytest.mark.parametrize("erase", ["delete", "anonymize"])
def test_sql_reports_each_batchs_keys_before_committing(sql_url, tmp_path, erase):
    store = _sql_store(sql_url, tmp_path, erase)
    old = {f"events/{i}" for i in range(1, 26) if NOW - timedelta(days=i * 3) < CUTOFF}
    try:
        with pytest.raises(Boom):
            for _ in store.expire("events", CUTOFF, batch_size=4, on_batch=_raise):
                pass
        assert sum(store.expire("events", CUTOFF, dry_run=True)) == len(old)  # the failed batch rolled back

        seen: list[list[str]] = []
        counts = list(store.expire("events", CUTOFF, batch_size=4, on_batch=seen.append))
        assert counts == [len(keys) for keys in seen] and all(len(k) <= 4 for k in seen)
        assert {k for keys in seen for k in keys} == old and sum(counts) == len(old)
        assert sum(store.expire("events", CUTOFF, dry_run=True)) == 0
        assert store.expire_actions("events") == {erase}
    finally:
        store.close()


def _raise(keys):
    raise Boom


def test_files_report_paths_before_deleting(tmp_path):
    root = tmp_path / "files"
    for i in range(1, 8):
        path = root / "logs" / str(i) / "a.txt"
        path.parent.mkdir(parents=True)
        path.write_text("x")
        stamp = (NOW - timedelta(days=i * 10)).timestamp()
        os.utime(path, (stamp, stamp))
    ctx = StoreContext(base_dir=tmp_path, instance_path=tmp_path, environ={})
    store = FileStore.from_config("files", {"root": str(root), "paths": [
        {"template": "logs/{user_id}/**", "category": "logs"}]}, ctx)
    with pytest.raises(Boom):
        list(store.expire("logs", CUTOFF, batch_size=2, on_batch=_raise))
    assert len(list(root.rglob("*.txt"))) == 7
    seen: list[list[str]] = []
    counts = list(store.expire("logs", CUTOFF, batch_size=2, on_batch=seen.append))
    assert sorted(k for keys in seen for k in keys) == [f"logs/{i}/a.txt" for i in range(4, 8)]  # 30 days: kept
    assert counts == [len(k) for k in seen] and len(list(root.rglob("*.txt"))) == 3


def test_redis_reports_keys_before_deleting(redis_url, tmp_path):
    client = Redis.from_url(RETENTION_REDIS_URL)
    for i in range(1, 8):
        client.hset(f"t:session:{i}:x", mapping={"created_at": int(time.time()) - i * 10 * 86400})
    store = RedisStore.from_config("kv", {"url": RETENTION_REDIS_URL, "prefix": "t:", "keys": [
        {"template": "session:{user_id}:*", "category": "sessions", "timestamp_field": "created_at"}]},
        StoreContext(base_dir=tmp_path, instance_path=tmp_path, environ={}))
    cutoff = datetime.now(UTC) - timedelta(days=25)
    try:
        with pytest.raises(Boom):
            list(store.expire("sessions", cutoff, batch_size=3, on_batch=_raise))
        assert len(list(client.scan_iter(match="t:session:*"))) == 7
        seen: list[list[str]] = []
        counts = list(store.expire("sessions", cutoff, batch_size=3, on_batch=seen.append))
        assert sorted(k for keys in seen for k in keys) == sorted(f"t:session:{i}:x" for i in range(3, 8))
        assert sum(counts) == 5 and len(list(client.scan_iter(match="t:session:*"))) == 2
    finally:
        store.close()
        client.close()
