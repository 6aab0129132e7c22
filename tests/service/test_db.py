"""The autocommit connections of the hot paths: one per thread, kept between uses, dropped when broken."""

from __future__ import annotations

import gc
import os
import sqlite3
import threading

import pytest
from sqlalchemy import select, text

from service import db as db_module
from service.db import Database
from service.tenancy import App


def _ident(raw) -> object:
    """The DBAPI connection behind a RawConnection."""
    return raw.dbapi


def test_a_thread_keeps_its_connection_and_threads_do_not_share(base_config):
    db = Database(base_config["DATABASE_URL"])
    try:
        with db.autocommit() as raw:
            first = _ident(raw)
            assert raw.first(select(App.id).where(App.slug == "nobody"), {}) is None
        with db.autocommit() as raw:
            assert _ident(raw) is first
        seen = []

        def other_thread() -> None:
            with db.autocommit() as raw:
                seen.append(_ident(raw))

        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
        assert seen and seen[0] is not first
    finally:
        db.dispose()


def _closed(conn) -> bool:
    """Whether a DBAPI connection is closed: psycopg answers from any thread, sqlite3 only from its own."""
    if hasattr(conn, "closed"):
        return bool(conn.closed)
    try:
        conn.execute("SELECT 1")
    except sqlite3.ProgrammingError:
        return True
    return False


def _sqlite_handles(url: str) -> int:
    """Open file descriptors of this process on the SQLite database file."""
    path = os.path.realpath(url.split("///", 1)[1])
    return sum(1 for fd in os.listdir("/proc/self/fd") if _target(fd) == path)


def _target(fd: str) -> str | None:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def test_a_thread_per_request_server_leaves_no_connection_open(base_config):
    """`flask run` starts a thread per request: each thread's connection closes when the thread ends."""
    url = base_config["DATABASE_URL"]
    db = Database(url)
    before = _sqlite_handles(url) if url.startswith("sqlite") else 0
    conns = []

    def request() -> None:
        with db.autocommit() as raw:
            assert raw.first(select(text("1")), {}) == (1,)
            conns.append(raw.dbapi)

    for _ in range(5):
        thread = threading.Thread(target=request)
        thread.start()
        thread.join()
    gc.collect()
    assert len({id(c) for c in conns}) == 5
    if url.startswith("sqlite"):
        assert _sqlite_handles(url) == before
    else:
        assert all(_closed(c) for c in conns)
    db.dispose()


def test_dispose_closes_them_and_the_next_use_reconnects(base_config):
    db = Database(base_config["DATABASE_URL"])
    with db.autocommit() as raw:
        first = _ident(raw)
    db.dispose()
    assert _closed(first)
    with db.autocommit() as raw:
        assert _ident(raw) is not first
        assert raw.first(select(text("1")), {}) == (1,)
    db.dispose()


def test_an_error_in_the_block_keeps_a_healthy_connection(base_config):
    db = Database(base_config["DATABASE_URL"])
    with db.autocommit() as raw:
        first = _ident(raw)
    with pytest.raises(ValueError), db.autocommit():
        raise ValueError("a domain error, e.g. a 409")
    with pytest.raises(KeyboardInterrupt), db.autocommit():
        raise KeyboardInterrupt  # interrupted mid-statement: the protocol state is unknown, so it is dropped
    with db.autocommit() as raw:
        assert _ident(raw) is not first
        second = _ident(raw)
    with pytest.raises(ValueError), db.autocommit():
        raise ValueError
    with db.autocommit() as raw:
        assert _ident(raw) is second
    db.dispose()


def test_a_kept_connection_is_replaced_once_it_is_old(base_config, monkeypatch):
    monkeypatch.setattr(db_module, "RECYCLE_SECONDS", -1)  # every connection is already past its age
    db = Database(base_config["DATABASE_URL"])
    with db.autocommit() as raw:
        first = _ident(raw)
    with db.autocommit() as raw:
        assert _ident(raw) is not first
    assert _closed(first)
    db.dispose()


@pytest.mark.sqlite_only
def test_first_leaves_no_sqlite_read_snapshot_open(base_config):
    """A kept cursor whose statement was not stepped to its end would pin SQLite's WAL until the next request."""
    url = base_config["DATABASE_URL"]
    db = Database(url)
    other = sqlite3.connect(url.split("///", 1)[1], isolation_level=None)
    try:
        other.execute("CREATE TABLE wal_probe (x)")
        other.execute("INSERT INTO wal_probe VALUES (1), (2)")
        with db.autocommit() as raw:
            assert raw.first(select(text("x")).select_from(text("wal_probe")), {}) is not None
        other.execute("INSERT INTO wal_probe VALUES (3)")
        busy, _, _ = other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0
    finally:
        db.dispose()
        other.execute("DROP TABLE wal_probe")
        other.close()


@pytest.mark.postgres_only
def test_a_forked_child_leaves_its_parents_connection_alone(base_config):
    db = Database(base_config["DATABASE_URL"])
    with db.autocommit() as raw:
        first = _ident(raw)
    pid = os.fork()
    if pid == 0:  # the child: its own connection; the inherited one is let go, not closed
        code = 1
        try:
            with db.autocommit() as raw:
                code = 0 if _ident(raw) is not first and raw.first(select(text("1")), {}) == (1,) else 1
            gc.collect()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with db.autocommit() as raw:
        assert _ident(raw) is first and raw.first(select(text("1")), {}) == (1,)
    db.dispose()
