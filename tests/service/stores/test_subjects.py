"""`subjects` beyond the conformance suite: the capability as declared, every identity type, exact edges on
epoch seconds, one streamed statement using the time index, Redis's scratch set, files' symlinks."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from service.stores import build_registry
from service.stores.contract import Description, StoreError, can_list_subjects
from service.stores.demo import people
from tests.service.stores.conftest import NOW, STORES_REDIS_URL
from tests.service.stores.estate import PEOPLE, REDIS_ESTATE, SEED, estate

FOREVER = (NOW - timedelta(days=36500), NOW + timedelta(days=1))


def _flat(batches):
    return sorted((identity for batch in batches for identity in batch), key=lambda i: sorted(i.items()))


def test_the_demo_estate_declares_subjects_on_every_store(tmp_path, redis_prefix):
    with estate(f"sqlite:///{tmp_path / 'e.sqlite3'}", tmp_path, {"REDIS_URL": STORES_REDIS_URL},
                files=(REDIS_ESTATE,), redis_prefix=redis_prefix) as registry:
        names = [store.name for store in registry]
        assert names == ["cloud-photos", "uploads", "sessions"]
        for store in registry:
            assert can_list_subjects(store)
            assert store.describe().as_dict()["capabilities"] == ["subjects"]


def test_a_store_without_the_capability_cannot_list_subjects():
    class Plain:
        def describe(self):
            return Description("plain", "x", ("notes",), ("user_id",))

        def subjects(self, *args, **kwargs):  # present but not declared: callers must not rely on it
            raise AssertionError

    class Declared:
        def describe(self):
            return Description("declared", "x", ("notes",), ("user_id",), ("subjects",))

    assert Plain().describe().as_dict()["capabilities"] == []
    assert not can_list_subjects(Plain()) and not can_list_subjects(Declared())


def test_sql_contact_subjects_carry_every_identity_type_the_row_has(sql_url, tmp_path):
    with estate(sql_url, tmp_path) as registry:
        listed = _flat(registry.get("cloud-photos").subjects("contact", *FOREVER, batch_size=5))
    expected = [{"user_id": str(p.user["id"]), "email": p.user["email"], "phone": p.user["phone"]}
                for p in people(PEOPLE, SEED, NOW)]
    assert listed == sorted(expected, key=lambda i: sorted(i.items()))


def test_sql_subjects_leave_out_empty_identity_values(sql_url, tmp_path):
    with estate(sql_url, tmp_path) as registry:
        store = registry.get("cloud-photos")
        users = next(s.table for s in store.tables if s.name == "users")
        with store.engine.begin() as conn:
            conn.execute(users.update().where(users.c.id == 1).values(email="", phone=None))
        listed = {i["user_id"]: i for i in _flat(store.subjects("contact", *FOREVER))}
    assert listed["1"] == {"user_id": "1"} and set(listed["2"]) == {"user_id", "email", "phone"}


def test_sql_subjects_is_one_streamed_statement_using_the_time_index(sql_url, tmp_path):
    with estate(sql_url, tmp_path) as registry:
        store = registry.get("cloud-photos")
        seen: list[tuple[str, object]] = []

        def record(conn, cursor, statement, parameters, *args):
            seen.append((statement, parameters))

        sa.event.listen(store.engine, "before_cursor_execute", record)
        try:
            batches = list(store.subjects("device_log", NOW - timedelta(days=200), NOW, batch_size=2))
        finally:
            sa.event.remove(store.engine, "before_cursor_execute", record)
        assert len(batches) > 2 and all(len(b) <= 2 for b in batches)
        queries = [(s, p) for s, p in seen if "device_logs" in s]
        assert len(queries) == 1  # every batch comes from the one statement's cursor
        if store.engine.dialect.name == "postgresql":
            statement, parameters = queries[0]
            with store.engine.connect() as conn:
                conn.exec_driver_sql("SET enable_seqscan = off")  # a 12-person table is otherwise read whole
                plan = "\n".join(conn.exec_driver_sql("EXPLAIN " + statement, parameters).scalars())
            assert "ix_device_logs_logged_at" in plan  # the window predicate is on the bare, indexed column


def test_sql_epoch_seconds_windows_are_exact(sql_url, context):
    name = f"ev_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(sql_url.replace("postgresql://", "postgresql+psycopg://"))
    table = sa.Table(name, sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("who", sa.String(20)), sa.Column("at", sa.Integer, nullable=False))
    table.create(engine)
    try:
        with engine.begin() as conn:
            conn.execute(table.insert(), [{"id": 1, "who": "a", "at": 100}, {"id": 2, "who": "b", "at": 101},
                                          {"id": 3, "who": "b", "at": 102}, {"id": 4, "who": "c", "at": 103}])
        store = build_registry([{"name": "ev", "plugin": "sql", "url": sql_url, "tables": [
            {"table": name, "category": "events", "identity": {"who": "who"}, "timestamp_column": "at"}]}],
            context).get("ev")
        try:
            def window(since: float, until: float) -> list[str]:
                return sorted(i["who"] for i in _flat(store.subjects(
                    "events", datetime.fromtimestamp(since, UTC), datetime.fromtimestamp(until, UTC))))

            assert window(100, 103) == ["a", "b"]  # 103 is the exclusive end; b's two rows are one subject
            assert window(100.5, 103.5) == ["b", "c"]  # 100 < 100.5; 103 < 103.5
            assert window(101.5, 102.5) == ["b"]
        finally:
            store.close()
    finally:
        table.drop(engine)
        engine.dispose()


def _sessions(registry):
    return registry.get("sessions")


def test_redis_subjects_of_keys_without_a_timestamp_cannot_be_told(tmp_path, redis_prefix):
    with estate(f"sqlite:///{tmp_path / 'e.sqlite3'}", tmp_path, {"REDIS_URL": STORES_REDIS_URL},
                files=(REDIS_ESTATE,), redis_prefix=redis_prefix) as registry:
        with pytest.raises(StoreError, match="search_history"):
            _sessions(registry).subjects("search_history", *FOREVER)


def test_redis_subjects_leave_no_scratch_set_behind(tmp_path, redis_prefix, redis_client):
    with estate(f"sqlite:///{tmp_path / 'e.sqlite3'}", tmp_path, {"REDIS_URL": STORES_REDIS_URL},
                files=(REDIS_ESTATE,), redis_prefix=redis_prefix) as registry:
        store = _sessions(registry)
        keys_before = sorted(redis_client.scan_iter(match=redis_prefix + "*", count=1000))
        assert len(_flat(store.subjects("sessions", *FOREVER, batch_size=1))) > 3
        run = store.subjects("sessions", *FOREVER, batch_size=1)
        next(run)
        assert len(list(redis_client.scan_iter(match=redis_prefix + "privacy-service:*"))) == 1
        run.close()  # abandoned after one batch
        assert sorted(redis_client.scan_iter(match=redis_prefix + "*", count=1000)) == keys_before


def test_files_subjects_read_the_value_from_the_path_and_ignore_symlinks(context, tmp_path):
    root = tmp_path / "root"
    for rel in ("u/1/a.jpg", "u/1/deep/b.jpg", "u/22/c.jpg", "av/7.png", "av/8.txt", "secret.txt"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")
    (root / "u" / "30").mkdir()
    os.symlink(root / "secret.txt", root / "u" / "30" / "link.jpg")
    store = build_registry([{"name": "up", "plugin": "files", "root": str(root), "paths": [
        {"template": "u/{user_id}/**", "category": "photos"},
        {"template": "av/{user_id}.png", "category": "photos"}]}], context).get("up")
    old = (NOW - timedelta(days=10)).timestamp()
    os.utime(root / "u/22/c.jpg", (old, old))
    recent = _flat(store.subjects("photos", NOW - timedelta(days=1), datetime.now(UTC) + timedelta(days=1)))
    assert recent == [{"user_id": "1"}, {"user_id": "7"}]
    assert _flat(store.subjects("photos", NOW - timedelta(days=10), NOW - timedelta(days=9))) == [
        {"user_id": "22"}]
