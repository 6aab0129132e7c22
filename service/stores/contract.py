"""The store plugin contract: what every user-data store implements, and the values it hands back.

An optional operation lists the subjects of a category whose records fall in a time window, in batches (stores
that have it say so in `describe().capabilities`); callers check first and treat other stores as not determinable:

    if can_list_subjects(store):
        for batch in store.subjects("orders", since, until, batch_size=500):
            for identity in batch:  # e.g. {"user_id": "42", "email": "ada@example.com"}
                ...
    else:
        ...  # this store cannot tell who had records then
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import IO, Any, Protocol, runtime_checkable

# An identity maps an identity type (user_id, email, phone, ...) to the subject's value of it.
Identity = Mapping[str, str]
# The capability a store lists in `Description.capabilities` when it has `subjects`.
SUBJECTS = "subjects"
# Told the keys of the records a batch of `expire` destroys (e.g. "orders/42", a file path, a Redis key).
BatchHook = Callable[[list[str]], None]


class PrefixedKeys(Sequence[str]):
    """Record keys that share a prefix (`orders/` + each key column value), as text only when read: a plugin
    hands these over without building a string per record, and a consumer may use the prefix once."""

    def __init__(self, prefix: str, values: Sequence[Any], as_text: Callable[[Any], str] = str) -> None:
        self.prefix, self.values, self.as_text = prefix, values, as_text

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self.prefix + self.as_text(v) for v in self.values[index]]
        return self.prefix + self.as_text(self.values[index])

    def __iter__(self) -> Iterator[str]:
        return map(self.prefix.__add__, self.suffixes())

    def suffixes(self) -> Iterator[str]:
        """Each key without the prefix."""
        return map(self.as_text, self.values)


class BatchJournal(Protocol):
    """What `expire(..., journal=...)` reports each batch to, for a store that can tell afterwards whether one
    of its transactions committed (`batch_committed`). The caller then needs to keep a digest of the keys, not
    the keys: a batch is `begin`-ed once chosen and `seal`-ed before it commits.
    """

    def begin(self, keys: Sequence[str], token: str) -> None:
        """The keys of the records the next batch will destroy, chosen and not yet destroyed, and the store's token
        for the transaction that will destroy them. The caller may record them while the store works."""
        ...

    def seal(self) -> None:
        """The batch destroyed exactly the keys given to `begin` and is about to commit. When this returns, it may
        commit; if it raises, it must roll back. A batch begun and never sealed must roll back."""
        ...


class StoreError(Exception):
    """A store could not do what was asked; the message names the store and never holds personal data."""


class NotApplicable(StoreError):
    """The store cannot look the subject up by any identity type given: callers record "not applicable"."""


class StoreUnavailable(StoreError):
    """The store cannot be reached or is not in a usable state."""


@dataclass(frozen=True)
class Description:
    """What a store holds: its categories, the identity types it can find a subject by, and the optional
    operations it has (`capabilities`, e.g. "subjects")."""

    name: str
    plugin: str
    categories: tuple[str, ...]
    identity_types: tuple[str, ...]
    capabilities: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "plugin": self.plugin, "categories": list(self.categories),
                "identity_types": list(self.identity_types), "capabilities": list(self.capabilities)}


@dataclass(frozen=True)
class Record:
    """One item of a subject's data: its category, where it lives in the store, and JSON-ready fields.

    `content`, when set, opens the item's bytes (a file's contents) for an export to stream.
    """

    category: str
    source: str
    fields: dict[str, Any]
    content: Callable[[], IO[bytes]] | None = field(default=None, compare=False)


@runtime_checkable
class Store(Protocol):
    """A registered user-data store. Plugins are built by `from_config(name, options, context)`.

    Every method works without Flask (RQ jobs call them) and returns plain values.
    """

    name: str

    def describe(self) -> Description: ...

    def access(self, identity: Identity) -> Iterator[Record]:
        """The subject's records; raises NotApplicable at once when no identity type is usable."""
        ...

    def erase(self, identity: Identity, *, exclude_categories: Collection[str] = ()) -> dict[str, int]:
        """Delete or anonymise the subject's data except excluded categories; counts per category; idempotent."""
        ...

    def expire(self, category: str, older_than: datetime, *, batch_size: int = 1000, dry_run: bool = False,
               exclude_subjects: Collection[Identity] = (), on_batch: BatchHook | None = None) -> Iterator[int]:
        """Destroy a category's records older than the cutoff; yields each committed batch's count.

        `on_batch(keys)`, when given (and not `dry_run`), is called once per batch with the keys of the records
        the batch destroys, before the batch becomes durable (inside the transaction, before the files are
        deleted). If it raises, the batch is not committed. Retention journals each batch through it.

        A plugin with `batch_committed(token) -> bool | None` (True: that transaction committed, False: it rolled
        back, None: still open; StoreError when it can no longer tell) may also take
        `journal: BatchJournal | None = None` and report a batch there instead of to `on_batch` (see BatchJournal).
        """
        ...

    # Optional (capability "subjects"; check with `can_list_subjects`):
    # def subjects(self, category: str, since: datetime, until: datetime, *,
    #              batch_size: int = 1000) -> Iterator[list[dict[str, str]]]
    # Batches of at most batch_size identities of the subjects with a record of `category` whose record time t
    # (the time `expire` compares) is since <= t < until; each identity holds every identity type the store reads
    # from the record (values as text, empty ones left out), each subject once per call. Streamed. Arguments are
    # checked at the call (`check_subjects_args`), before the first batch.

    def health(self) -> None:
        """Raise StoreUnavailable (or any error) when the store is not usable."""
        ...

    def close(self) -> None:
        """Release connections and handles."""
        ...


def check_expire_args(store: str, categories: Collection[str], category: str, older_than: datetime,
                      batch_size: int) -> None:
    """The argument checks every plugin's expire shares."""
    if category not in categories:
        raise StoreError(f"store {store}: no category {category!r}")
    if older_than.tzinfo is None:
        raise StoreError(f"store {store}: older_than must be timezone-aware")
    if batch_size < 1:
        raise StoreError(f"store {store}: batch_size must be >= 1")


def check_subjects_args(store: str, categories: Collection[str], category: str, since: datetime, until: datetime,
                        batch_size: int) -> None:
    """The argument checks every plugin's `subjects` shares."""
    if category not in categories:
        raise StoreError(f"store {store}: no category {category!r}")
    if since.tzinfo is None or until.tzinfo is None:
        raise StoreError(f"store {store}: since and until must be timezone-aware")
    if until <= since:
        raise StoreError(f"store {store}: until must be later than since")
    if batch_size < 1:
        raise StoreError(f"store {store}: batch_size must be >= 1")


def can_list_subjects(store: Any) -> bool:
    """Whether the store declares the "subjects" capability and has the method; other stores cannot tell who had
    records in a window (callers report them as not determinable)."""
    return SUBJECTS in store.describe().capabilities and callable(getattr(store, "subjects", None))


def batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Lists of at most `size` items, in order, the last one possibly shorter."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


class ExpiresByTimestamp(ABC):
    """`expire` for plugins that compare each record's time, in epoch seconds, with the cutoff (files, redis): the
    shared argument checks, and no `on_batch` on a dry run. The plugin implements `_expire`."""

    name: str

    @abstractmethod
    def describe(self) -> Description: ...

    @abstractmethod
    def _expire(self, category: str, cutoff: float, batch_size: int, dry_run: bool,
                exclude_subjects: Collection[Identity], on_batch: BatchHook | None = None) -> Iterator[int]: ...

    def expire(self, category: str, older_than: datetime, *, batch_size: int = 1000, dry_run: bool = False,
               exclude_subjects: Collection[Identity] = (), on_batch: BatchHook | None = None) -> Iterator[int]:
        check_expire_args(self.name, self.describe().categories, category, older_than, batch_size)
        hook = None if dry_run else on_batch
        return self._expire(category, older_than.timestamp(), batch_size, dry_run, exclude_subjects, hook)


class ListsSubjectsByTimestamp(ABC):
    """`subjects` for plugins that compare each record's time, in epoch seconds, with the window (files, redis): the
    shared argument checks at the call, then `_subjects` yields identities (each subject once), batched here."""

    name: str

    @abstractmethod
    def describe(self) -> Description: ...

    @abstractmethod
    def _subjects(self, category: str, since: float, until: float) -> Iterator[dict[str, str]]: ...

    def subjects(self, category: str, since: datetime, until: datetime, *,
                 batch_size: int = 1000) -> Iterator[list[dict[str, str]]]:
        check_subjects_args(self.name, self.describe().categories, category, since, until, batch_size)
        return batches(self._subjects(category, since.timestamp(), until.timestamp()), batch_size)


def usable(store: str, identity: Identity, types: Collection[str]) -> dict[str, str]:
    """The part of `identity` the store can use; NotApplicable when there is none."""
    found = {k: str(v) for k, v in identity.items() if k in types and v is not None and str(v) != ""}
    if not found:
        raise NotApplicable(f"store {store}: cannot look up a subject by {sorted(identity)} "
                            f"(it knows {sorted(types)})")
    return found
