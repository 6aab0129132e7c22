"""Test-only store plugins, registered by `module:Class` path: one always fails, one erases slowly in batches,
one supports rectification (the optional `rectify` method)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from service.stores.contract import Description, Identity, NotApplicable, Record, StoreUnavailable


class _Base:
    plugin = "tests"
    categories: tuple[str, ...] = ("misc",)

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        self.name, self.options = name, dict(options)

    @classmethod
    def from_config(cls, name: str, options: Mapping[str, Any], ctx: Any) -> Any:
        return cls(name, options)

    def describe(self) -> Description:
        return Description(self.name, self.plugin, self.categories, ("user_id",))

    def expire(self, category: str, older_than: datetime, *, batch_size: int = 1000, dry_run: bool = False,
               exclude_subjects: Collection[Identity] = (), on_batch: Any = None) -> Iterator[int]:
        return iter(())

    def health(self) -> None:
        return None

    def close(self) -> None:
        return None


class BrokenStore(_Base):
    """Every read and erase fails, as a store whose database is down; with `down_while = <path>`, only while
    that file exists (then it holds one record of the subject)."""

    def _check(self) -> None:
        flag = self.options.get("down_while")
        if flag is None or Path(flag).exists():
            raise StoreUnavailable(f"store {self.name}: connection refused")

    def access(self, identity: Identity) -> Iterator[Record]:
        self._check()
        yield Record("misc", f"crm/{identity.get('user_id')}", {"note": "back online"})

    def erase(self, identity: Identity, *, exclude_categories: Collection[str] = ()) -> dict[str, int]:
        self._check()
        return {"misc": 1}


class _SqliteStore(_Base):
    """Rows (user_id, category, field, value) in an SQLite file every process opens (`path` option)."""

    def _db(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.options["path"], timeout=10)
        conn.execute("CREATE TABLE IF NOT EXISTS items (user_id TEXT, category TEXT, field TEXT, value TEXT)")
        return conn

    def seed(self, rows: list[tuple[str, str, str, str]]) -> None:
        with self._db() as conn:
            conn.executemany("INSERT INTO items VALUES (?, ?, ?, ?)", rows)

    def rows(self, user_id: str | None = None) -> list[tuple[str, str, str, str]]:
        with self._db() as conn:
            if user_id is None:
                return list(conn.execute("SELECT * FROM items ORDER BY user_id, field"))
            return list(conn.execute("SELECT * FROM items WHERE user_id = ? ORDER BY field", (user_id,)))

    def _user(self, identity: Identity) -> str:
        if not identity.get("user_id"):
            raise NotApplicable(f"store {self.name}: needs a user_id")
        return str(identity["user_id"])

    def access(self, identity: Identity) -> Iterator[Record]:
        user = self._user(identity)
        for _, category, field, value in self.rows(user):
            yield Record(category, f"items/{user}/{field}", {"field": field, "value": value})


class SlowStore(_SqliteStore):
    """Erases one row per batch and sleeps `seconds` between batches: a worker can die half-way through."""

    def erase(self, identity: Identity, *, exclude_categories: Collection[str] = ()) -> dict[str, int]:
        user, removed = self._user(identity), 0
        while True:
            with self._db() as conn:
                gone = conn.execute("DELETE FROM items WHERE rowid = (SELECT min(rowid) FROM items WHERE "
                                    "user_id = ?)", (user,)).rowcount
            if not gone:
                return {"misc": removed}
            removed += gone
            time.sleep(float(self.options.get("seconds", 1)))


class EditableStore(_SqliteStore):
    """Supports rectification: `rectify(identity, {category: {field: value}})` updates fields in place."""

    categories = ("contact", "misc")

    def erase(self, identity: Identity, *, exclude_categories: Collection[str] = ()) -> dict[str, int]:
        with self._db() as conn:
            return {"contact": conn.execute("DELETE FROM items WHERE user_id = ?", (self._user(identity),)).rowcount}

    def rectify(self, identity: Identity, corrections: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
        user, changed = self._user(identity), {}
        with self._db() as conn:
            for category, fields in corrections.items():
                for field, value in fields.items():
                    n = conn.execute("UPDATE items SET value = ? WHERE user_id = ? AND category = ? AND field = ?",
                                     (str(value), user, category, field)).rowcount
                    changed[category] = changed.get(category, 0) + n
        return changed


SENT: list[Any] = []


def collect(session: Any, keys: Any, message: Any) -> None:
    """A notifier (`[dsar] notifier = "tests.dsar.plugins:collect"`) that keeps what it is given."""
    SENT.append(message)


class UnrecordableStore(_SqliteStore):
    """Erases, then reports a count the service cannot store (not a number): recording the task's result fails
    after the store's work is done, as any unexpected error at that point would."""

    def erase(self, identity: Identity, *, exclude_categories: Collection[str] = ()) -> dict[str, Any]:
        with self._db() as conn:
            conn.execute("DELETE FROM items WHERE user_id = ?", (self._user(identity),))
        return {"misc": object()}
