"""News of revoked API keys for the per-process key caches: a generation number that changes as soon as a key is
revoked by any process, read on the hot path without a database round trip.

PostgreSQL: `revoke_key` sends NOTIFY in its transaction; in each process one thread per database LISTENs (started
on first use, after any fork) and advances the generation on every notification. While it is not listening the
generation is None and no cached key is used. SQLite (embedded, one machine): the count of revoked keys, read from
the local file on each check (a few microseconds, no network).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from typing import Protocol

from sqlalchemy import func, select

from service.db import Database
from service.tenancy import REVOCATION_CHANNEL, ApiKey

log = logging.getLogger(__name__)

IDLE_CHECK_SECONDS = 5.0  # a listener with nothing to hear proves its connection alive this often
RETRY_MAX_SECONDS = 10.0


class Revocations(Protocol):
    def generation(self) -> int | None:
        """Changes whenever a key is revoked; None while revocations cannot be followed (use no cached key)."""


def for_database(db: Database) -> Revocations:
    return Notified(db) if db.dialect == "postgresql" else Counted(db)


class Counted:
    """SQLite: the number of revoked keys, which only a revocation changes."""

    _COUNT = select(func.count(ApiKey.revoked_at))

    def __init__(self, db: Database) -> None:
        self.db = db

    def generation(self) -> int | None:
        try:
            with self.db.autocommit() as conn:
                row = conn.first(self._COUNT, {})
        except Exception:  # noqa: BLE001 - unknown means "use no cached key"; the full lookup reports the error
            return None
        return None if row is None else int(row[0])


class Notified:
    """PostgreSQL: the generation of this process's listener on the database."""

    def __init__(self, db: Database) -> None:
        self.conninfo = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._listener: _Listener | None = None
        _notified.add(self)

    def generation(self) -> int | None:
        listener = self._listener
        if listener is None:
            listener = self._listener = _Listener.shared(self.conninfo, self)
        return listener.generation


class _Listener:
    """One thread and one connection per database and process, LISTENing for revocations; it ends when no cache
    uses it any more."""

    _lock = threading.Lock()
    _running: dict[str, _Listener] = {}

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self.generation: int | None = None
        self._count = 0
        self.users: weakref.WeakSet[Notified] = weakref.WeakSet()

    @classmethod
    def shared(cls, conninfo: str, user: Notified) -> _Listener:
        with cls._lock:
            listener = cls._running.get(conninfo)
            if listener is None:
                listener = cls._running[conninfo] = cls(conninfo)
                listener.users.add(user)
                threading.Thread(target=listener._run, name="key-revocations", daemon=True).start()
            else:
                listener.users.add(user)
            return listener

    def _advance(self) -> None:
        self._count += 1
        self.generation = self._count

    def _run(self) -> None:
        import psycopg

        delay = 0.5
        while self.users:
            try:
                with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {REVOCATION_CHANNEL}")
                    # A new generation: whatever was revoked while nobody listened voids what was cached before.
                    self._advance()
                    delay = 0.5
                    while self.users:
                        for _ in conn.notifies(timeout=IDLE_CHECK_SECONDS):
                            self._advance()
                        conn.execute("SELECT 1")
            except Exception as exc:  # noqa: BLE001 - any failure: stop trusting the cache, reconnect
                self.generation = None
                log.warning("key revocations: not listening (%s); cached keys unused until it is back",
                            type(exc).__name__)
                time.sleep(delay)
                delay = min(2 * delay, RETRY_MAX_SECONDS)
        self.generation = None
        with self._lock:
            if self._running.get(self.conninfo) is self:
                del self._running[self.conninfo]


_notified: weakref.WeakSet[Notified] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # Threads do not survive a fork: a child (a gunicorn worker) starts its own listener on first use.
    _Listener._lock = threading.Lock()
    _Listener._running = {}
    for notified in list(_notified):
        notified._listener = None


os.register_at_fork(after_in_child=_after_fork_in_child)
