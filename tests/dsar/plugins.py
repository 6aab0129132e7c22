"""Test-only store plugins, registered by `module:Class` path: one always fails, one is slow to erase."""

from __future__ import annotations

import time
from collections.abc import Collection, Iterator, Mapping
from datetime import datetime
from typing import Any

from service.stores.contract import Description, Identity, Record, StoreUnavailable


class _Base:
    plugin = "tests"

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        self.name, self.options = name, dict(options)

    @classmethod
    def from_config(cls, name: str, options: Mapping[str, Any], ctx: Any) -> Any:
        return cls(name, options)

    def describe(self) -> Description:
        return Description(self.name, self.plugin, ("misc",), ("user_id",))

    def expire(self, category: str, older_than: datetime, *, batch_size: int = 1000, dry_run: bool = False,
               exclude_subjects: Collection[Identity] = ()) -> Iterator[int]:
        return iter(())

    def health(self) -> None:
        return None

    def close(self) -> None:
        return None


class BrokenStore(_Base):
    """Every read and erase fails, as a store whose database is down."""

    def access(self, identity: Identity) -> Iterator[Record]:
        raise StoreUnavailable(f"store {self.name}: connection refused")

    def erase(self, identity: Identity, *, exclude_categories: Collection[str] = ()) -> dict[str, int]:
        raise StoreUnavailable(f"store {self.name}: connection refused")


class SlowStore(_Base):
    """Erasure takes `seconds`: long enough to kill the worker in the middle of it."""

    def access(self, identity: Identity) -> Iterator[Record]:
        return iter(())

    def erase(self, identity: Identity, *, exclude_categories: Collection[str] = ()) -> dict[str, int]:
        time.sleep(float(self.options.get("seconds", 3)))
        return {"misc": 0}
