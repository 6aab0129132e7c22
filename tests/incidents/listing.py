"""A test-only store plugin (registered by `module:Class` path, as docs/plugins.md allows) implementing the
optional `subjects` operation exactly as the contract is to declare it: `Description.capabilities` holding
"subjects", and batches of identities with a record of a category in [since, until), deduplicated in the store.

Its records are a JSON file (`data` option: {category: [[ISO time, {type: value}], ...]}) so a worker process
reads what the test wrote. `listing = false` makes a store that cannot list subjects. `crash_flag = <path>`: while
that file exists, the listing dies after `crash_after` batches (and removes the file), as a crashing worker does.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from service.stores.contract import Description, Identity, Record, StoreError


def description(name: str, categories: tuple[str, ...], types: tuple[str, ...],
                capabilities: tuple[str, ...]) -> Description:
    """A Description with `capabilities`, whether or not the contract has the field yet."""
    if "capabilities" in {f.name for f in dataclasses.fields(Description)}:
        return Description(name, "tests-listing", categories, types, capabilities=capabilities)  # type: ignore[call-arg]
    return _WithCapabilities(name, "tests-listing", categories, types, capabilities)


@dataclasses.dataclass(frozen=True)
class _WithCapabilities(Description):
    capabilities: tuple[str, ...] = ()


class Crash(Exception):
    """Not a StoreError: the attempt dies as a killed worker's would."""


class ListingStore:
    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        self.name = name
        self.data = Path(options["data"])
        self.categories = tuple(options.get("categories", ("contact", "orders")))
        self.types = tuple(options.get("identity_types", ("user_id", "email")))
        self.listing = bool(options.get("listing", True))
        self.crash_flag = Path(options["crash_flag"]) if "crash_flag" in options else None
        self.crash_after = int(options.get("crash_after", 1))

    @classmethod
    def from_config(cls, name: str, options: Mapping[str, Any], ctx: Any) -> ListingStore:
        return cls(name, options)

    def describe(self) -> Description:
        return description(self.name, self.categories, self.types, ("subjects",) if self.listing else ())

    def _records(self) -> dict[str, list[Any]]:
        return json.loads(self.data.read_text()) if self.data.exists() else {}

    def subjects(self, category: str, since: datetime, until: datetime, *,
                 batch_size: int = 1000) -> Iterator[list[dict[str, str]]]:
        if not self.listing:
            raise StoreError(f"store {self.name}: cannot list subjects")
        if category not in self.categories:
            raise StoreError(f"store {self.name}: no category {category!r}")
        seen, found = set(), []
        for when, identity in self._records().get(category, []):
            key = json.dumps(identity, sort_keys=True)
            if since <= datetime.fromisoformat(when) < until and key not in seen:
                seen.add(key)
                found.append(identity)
        for n, start in enumerate(range(0, len(found), batch_size)):
            if self.crash_flag is not None and self.crash_flag.exists() and n == self.crash_after:
                self.crash_flag.unlink()
                raise Crash(f"store {self.name}: the worker died")
            yield found[start:start + batch_size]

    def access(self, identity: Identity) -> Iterator[Record]:
        return iter(())

    def erase(self, identity: Identity, *, exclude_categories: Collection[str] = ()) -> dict[str, int]:
        return {}

    def expire(self, category: str, older_than: datetime, *, batch_size: int = 1000, dry_run: bool = False,
               exclude_subjects: Collection[Identity] = (), on_batch: Any = None) -> Iterator[int]:
        return iter(())

    def health(self) -> None:
        return None

    def close(self) -> None:
        return None
