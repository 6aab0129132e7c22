"""Database engine, declarative base and session handling shared by every domain."""

from __future__ import annotations

import json
import os
import select
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Engine, Executable, Integer, MetaData, create_engine, event
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit key for large tables.
BigIntPK = BigInteger().with_variant(Integer, "sqlite")


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON}


def utcnow() -> datetime:
    return datetime.now(UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


# Connections are replaced after this long, before firewalls or server idle timeouts cut them under a request.
RECYCLE_SECONDS = 1800


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, json_serializer=compact_json, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # No pre-ping, which costs a round trip per checkout: a connection the server has closed is found by looking
    # at its socket instead (`_check_alive`, a system call), so a database restart fails no request.
    engine = create_engine(url, pool_size=5, max_overflow=10, pool_recycle=RECYCLE_SECONDS,
                           json_serializer=compact_json, hide_parameters=True)
    event.listen(engine, "checkout", _check_alive)
    return engine


def closed_by_server(dbapi_connection: Any) -> bool:
    """Whether the server has closed this idle connection (a restart, an administrator, an idle timeout).

    An idle connection's socket has nothing to read until the server sends something, and a server that ends a
    session sends its reason and closes: readable means gone (or, rarely, an asynchronous notice, for which
    replacing the connection is harmless). Costs one poll(2), no round trip. A connection cut without the
    server closing it (a network partition) is not seen here: its next statement fails, and the request 503s.
    """
    fileno = getattr(dbapi_connection, "fileno", None)
    if fileno is None:  # sqlite3: no server
        return False
    try:
        poller = select.poll()
        poller.register(fileno(), select.POLLIN)
        return bool(poller.poll(0))
    except Exception:  # noqa: BLE001 - closed already, or no socket: as good as gone
        return True


def _check_alive(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    if closed_by_server(dbapi_connection):
        raise DisconnectionError("the server closed this pooled connection")  # the pool connects afresh


# Seconds a client is asked to wait (Retry-After) when the database cannot be reached: a restart takes a few.
RETRY_AFTER_SECONDS = 5


def unavailable(exc: BaseException) -> bool:
    """Whether `exc` (SQLAlchemy's, or a DBAPI error from an autocommit connection) means the database cannot be
    reached or is refusing work for now: a lost or refused connection, a server shutting down or starting up,
    too many connections, SQLite busy. A request meeting it is worth retrying (503), unlike a bad statement."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate is not None:  # the server's answer: connection exception, shutting down or starting up, too many
        return sqlstate.startswith(("08", "57P")) or sqlstate == "53300"
    psycopg = sys.modules.get("psycopg")  # not imported: not a PostgreSQL error
    if psycopg is not None and isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return True  # psycopg's own, with no SQLSTATE: connecting failed or the connection broke
    return getattr(exc, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_LOCKED")


def compact_json(value: Any) -> str:
    """JSON as the JSON columns store it."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


# The shared layer's modules that declare tables. The domains declare theirs through their `register`, and the
# composition root's `load_models` imports them all (every process does, before it builds its runtime).
MODEL_MODULES = ("service.tenancy", "service.audit", "service.idempotency", "service.mail.models",
                 "service.weblinks")


@dataclass(frozen=True)
class _Prepared:
    """A Core statement compiled for one dialect: its SQL, the values of its literal binds, its bind order."""

    sql: str
    defaults: dict[str, Any]
    order: tuple[str, ...] | None


class RawConnection:
    """A DBAPI connection in autocommit that runs Core statements compiled once per database.

    Values reach the driver as they are, without SQLAlchemy's bind processing: callers pass what the column
    stores (JSON as text from `compact_json`, timezone-aware datetimes). One cursor serves every statement.
    """

    def __init__(self, dbapi: Any, dialect: Dialect, compiled: dict[Executable, _Prepared], cursor: Any) -> None:
        self.dbapi = dbapi
        self.dialect = dialect
        self._compiled = compiled
        self._cursor = cursor

    def _run(self, stmt: Executable, params: dict[str, Any]) -> Any:
        prepared = self._compiled.get(stmt)
        if prepared is None:
            compiled = stmt.compile(dialect=self.dialect)
            order = tuple(compiled.positiontup) if compiled.positiontup else None  # qmark dialects (SQLite)
            prepared = self._compiled[stmt] = _Prepared(str(compiled), compiled.params, order)
        bound: Any = {**prepared.defaults, **params}
        if prepared.order is not None:
            bound = [bound[name] for name in prepared.order]
        self._cursor.execute(prepared.sql, bound)
        return self._cursor

    def first(self, stmt: Executable, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """The first row; any others are drained, so SQLite holds no read snapshot open between requests."""
        cursor = self._run(stmt, params)
        row = cursor.fetchone()
        if row is not None:
            cursor.fetchall()
        return row

    def execute(self, stmt: Executable, params: dict[str, Any]) -> None:
        self._run(stmt, params)


def _close_quietly(conn: Any) -> None:
    with suppress(Exception):  # closing what may already be broken
        conn.close()


class _Owned:
    """A thread's autocommit connection and cursor. Closed when the thread ends (its thread-local entry goes, and
    with it this object), on `Database.dispose`, or when found broken, so thread-per-request servers leak none."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.cursor = conn.cursor()
        self.pid = os.getpid()
        self.expires = time.monotonic() + RECYCLE_SECONDS
        self.close = weakref.finalize(self, _close_quietly, conn)

    def usable(self) -> bool:
        return (self.pid == os.getpid() and self.close.alive and self.expires >= time.monotonic()
                and not getattr(self.conn, "closed", False) and not closed_by_server(self.conn))

    def release(self) -> None:
        """Close it; in a forked child only let go: closing would end the parent's session on the shared socket."""
        if self.pid == os.getpid():
            self.close()
        else:
            self.close.detach()


class Database:
    """One engine and session factory per application (or job, or CLI run)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._raw: Engine | None = None
        self._compiled: dict[Executable, _Prepared] = {}
        self._local = threading.local()
        self._owned: weakref.WeakSet[_Owned] = weakref.WeakSet()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on any error."""
        with self.sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def autocommit(self) -> Iterator[RawConnection]:
        """This thread's DBAPI connection in autocommit, for the single-statement reads and writes of hot paths.

        No transaction (saves the BEGIN and COMMIT/ROLLBACK round trips: one statement is atomic on its own), no
        SQLAlchemy execution layer (statements are compiled once and bound directly) and no pool checkout: each
        thread keeps its connection, dropped when a statement finds it disconnected or the block is interrupted.
        """
        owned: _Owned | None = getattr(self._local, "owned", None)
        if owned is not None and not owned.usable():
            owned.release()
            owned = None
        if owned is None:
            fairy = self._raw_engine().raw_connection()
            fairy.detach()  # owned by this thread from now on, not by a pool
            owned = self._local.owned = _Owned(fairy.dbapi_connection)
            self._owned.add(owned)
        try:
            yield RawConnection(owned.conn, self.engine.dialect, self._compiled, owned.cursor)
        except Exception as exc:
            if isinstance(exc, self.engine.dialect.loaded_dbapi.Error) and \
                    self.engine.dialect.is_disconnect(exc, owned.conn, None):
                owned.close()
            raise
        except BaseException:
            owned.close()  # interrupted mid-statement: its protocol state is unknown
            raise

    def _raw_engine(self) -> Engine:
        """A connection factory only (connect arguments, autocommit, SQLite pragmas): threads keep what it makes."""
        if self._raw is None:
            self._raw = create_engine(self.url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
            if self.url.startswith("sqlite"):
                event.listen(self._raw, "connect", _sqlite_pragmas)
        return self._raw

    def dispose(self) -> None:
        """Close every connection: the engines' pools and every thread's autocommit connection."""
        for owned in list(self._owned):
            owned.close()
        self.engine.dispose()
        if self._raw is not None:
            self._raw.dispose()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name
