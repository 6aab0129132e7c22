"""The autocommit connections of the hot paths: one per thread, kept between uses, dropped when broken."""

from __future__ import annotations

import gc
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
    try:
        conn.cursor().execute("SELECT 1")
    except Exception:  # noqa: BLE001 - each driver has its own "closed" error
        return True
    return False


def test_a_thread_per_request_server_leaves_no_connection_open(base_config):
    """`flask run` starts a thread per request: each thread's connection closes when the thread ends."""
    db = Database(base_config["DATABASE_URL"])
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
    assert len(conns) == 5 and all(_closed(c) for c in conns)
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
