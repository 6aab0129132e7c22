"""The `sql` plugin: tables in any SQLAlchemy database, erased and expired by batched set-based statements."""

from __future__ import annotations

import base64
import importlib
from collections.abc import Callable, Collection, Iterator, Mapping
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from service.stores import sql_build as build
from service.stores.contract import (
    SUBJECTS,
    BatchHook,
    BatchJournal,
    Description,
    Identity,
    PrefixedKeys,
    Record,
    StoreError,
    StoreUnavailable,
    check_expire_args,
    check_subjects_args,
    usable,
)
from service.stores.options import Options, StoreContext
from service.stores.sql_spec import TableSpec, hash_key, link_tables, read_table

_DRIVERS = {"postgres": "postgresql+psycopg", "postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql",
            "mariadb": "mariadb+pymysql"}


ACCESS_PAGE = 500  # rows of a table read at once for an access request; more are streamed


def normalise_url(url: str) -> str:
    """Give bare scheme names the drivers this service ships (psycopg 3, PyMySQL)."""
    scheme, sep, rest = url.partition("://")
    return f"{_DRIVERS.get(scheme, scheme)}{sep}{rest}"


def make_engine(url: str, key: bytes | None) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:" and "///" in url:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA foreign_keys=ON")
            dbapi_connection.execute("PRAGMA busy_timeout=5000")
            if key is not None:
                dbapi_connection.create_function(build.SQLITE_HMAC, 1, lambda v: build.python_hmac(key, v),
                                                 deterministic=True)

        return engine
    connect_args = {"connect_timeout": 5}
    return sa.create_engine(url, pool_pre_ping=True, hide_parameters=True, connect_args=connect_args)


def jsonable(value: Any) -> Any:
    """A column value as JSON can carry it (an export is JSON)."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    return value


def _rebase(url: str, ctx: StoreContext) -> str:
    """A relative SQLite path starts at the config file's folder, not at the working directory."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        path = url[len("sqlite:///"):]
        if path and not path.startswith(":memory:") and not path.startswith("file:"):
            return f"sqlite:///{ctx.path(path)}"
    return url


def _prepare(opts: Options, target: str) -> Any:
    module, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError):
        raise opts.error("prepare", f"cannot load {target!r} (expected module:function)") from None


def _key_text(column: sa.Column[Any]) -> Callable[[Any], str]:
    """How a key column's values become text for `on_batch`: integer and string keys take the fast path."""
    try:
        kind = column.type.python_type
    except NotImplementedError:
        kind = object
    return str if kind in (int, str) else (lambda value: str(jsonable(value)))


# How often a batch may be chosen again because other writers changed its rows before it is given up.
_RECHOICES = 10


class SqlStore:
    """Declared tables of one database (`[[stores.tables]]`); see docs/plugins.md for every option."""

    plugin = "sql"

    def __init__(self, name: str, engine: Engine, tables: list[TableSpec], batch_size: int,
                 key: bytes | None) -> None:
        self.name = name
        self.engine = engine
        self.tables = tables  # children before parents: the order erase and expire act in
        self.batch_size = batch_size
        self._key = key
        self._description: Description | None = None

    @classmethod
    def from_config(cls, name: str, options: Mapping[str, Any], ctx: StoreContext) -> SqlStore:
        opts = Options(name, options)
        url = _rebase(opts.url(ctx), ctx)
        batch_size = opts.int("batch_size", 1000)
        key = hash_key(opts, ctx)
        try:
            engine = make_engine(url, key)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise opts.error("url", f"not a usable SQLAlchemy URL: {type(exc).__name__}: {exc}") from None
        prepare = opts.str("prepare")
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            if prepare is not None:
                _prepare(opts, prepare)(engine)
            metadata = sa.MetaData()
            entries = opts.tables("tables")
            specs = [read_table(entry, metadata, engine) for entry in entries]
        except sa.exc.SQLAlchemyError as exc:
            engine.dispose()
            reason = str(getattr(exc, "orig", None) or type(exc).__name__).splitlines()[0]
            raise opts.error("url", f"unreachable: {type(exc).__name__}: {reason}") from None
        except Exception:
            engine.dispose()
            raise
        for i, spec in enumerate(specs):
            hashed = any(r.kind == "hash" for r in spec.replacements.values())
            if hashed and key is None:
                raise opts.error(f"tables[{i}].anonymize", "hash needs a key: set hash_key_env or PSEUDONYM_KEY")
        opts.done()
        return cls(name, engine, link_tables(opts, specs), batch_size, key)

    def describe(self) -> Description:
        if self._description is None:
            self._description = self._describe()
        return self._description

    def _describe(self) -> Description:
        categories: dict[str, None] = {}
        types: dict[str, None] = {}
        for spec in reversed(self.tables):
            categories.update(dict.fromkeys(spec.units()))
            types.update(dict.fromkeys(self._identity_types(spec)))
        return Description(self.name, self.plugin, tuple(categories), tuple(types), (SUBJECTS,))

    def _identity_types(self, spec: TableSpec) -> list[str]:
        types = list(spec.identity)
        if spec.parent_spec is not None:
            types.extend(self._identity_types(spec.parent_spec))
        return types

    def access(self, identity: Identity) -> Iterator[Record]:
        ids = usable(self.name, identity, self.describe().identity_types)
        return self._records(ids)

    def _records(self, ids: Mapping[str, str]) -> Iterator[Record]:
        # One connection for every table. Most subjects have a few rows per table: a plain query of one page
        # answers in one round trip, where a server-side cursor (declare, fetch, close) takes three; only a
        # subject with more rows than a page has the rest streamed, after the page's last key.
        with self.engine.connect() as conn:
            for spec in reversed(self.tables):  # parents first reads naturally in an export
                where = build.subject(spec, spec.table, ids)
                if where is None:
                    continue
                units, key = spec.units(), spec.table.c[spec.key]
                stmt = sa.select(spec.table).where(where).order_by(key)
                page = conn.execute(stmt.limit(ACCESS_PAGE + 1)).mappings().all()
                for row in page[:ACCESS_PAGE]:
                    yield from self._row_records(spec, units, row)
                if len(page) > ACCESS_PAGE:
                    rest = stmt.where(key > page[ACCESS_PAGE - 1][spec.key])
                    for row in conn.execution_options(stream_results=True, yield_per=500).execute(rest).mappings():
                        yield from self._row_records(spec, units, row)

    def _row_records(self, spec: TableSpec, units: dict[str, tuple[str, ...]],
                     row: Mapping[str, Any]) -> Iterator[Record]:
        source = f"{spec.name}/{jsonable(row[spec.key])}"
        for category, columns in units.items():
            if category != spec.category and all(
                    build.replaced(row[c], spec.column_replacements[c]) for c in columns):
                continue  # this category's columns were anonymised already: nothing of the subject left
            yield Record(category=category, source=source, fields={c: jsonable(row[c]) for c in columns})

    def subjects(self, category: str, since: datetime, until: datetime, *,
                 batch_size: int = 1000) -> Iterator[list[dict[str, str]]]:
        """See the contract: one statement over the category's tables (SELECT DISTINCT, or a UNION), its rows
        streamed by a server-side cursor `batch_size` at a time; children's subjects are read through their
        parents. Rows anonymised already are no one's."""
        check_subjects_args(self.name, self.describe().categories, category, since, until, batch_size)
        types = [t for t in self.describe().identity_types
                 if any(category in s.units() and t in self._identity_types(s) for s in self.tables)]
        stmt = build.subjects(self.tables, category, since, until, types)
        return self._subjects(stmt, types, batch_size) if stmt is not None else iter(())

    def _subjects(self, stmt: sa.Select | sa.CompoundSelect, types: list[str],
                  batch_size: int) -> Iterator[list[dict[str, str]]]:
        # One statement read once, not keyset pages (`WHERE identity > last ORDER BY identity LIMIT n`): see
        # docs/plugins.md and bench/store_subjects.py.
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=batch_size).execute(stmt)
            for rows in result.partitions():
                # Empty values come as NULL (sql_build.subjects); a row of NULLs identifies no one. Plain tuples,
                # as `None in row` on SQLAlchemy's Row is a loop in Python.
                batch = [dict(zip(types, map(str, row), strict=True)) if None not in row
                         else {k: str(v) for k, v in zip(types, row, strict=True) if v is not None}
                         for row in map(tuple, rows)]
                batch = [identity for identity in batch if identity]
                if batch:
                    yield batch

    def erase(self, identity: Identity, *, exclude_categories: Collection[str] = ()) -> dict[str, int]:
        op = build.Erase(usable(self.name, identity, self.describe().identity_types), frozenset(exclude_categories))
        counts = {c: 0 for c in self.describe().categories if c not in exclude_categories}
        with self.engine.connect() as conn:  # one for every table and category, each batch its own transaction
            for spec in self.tables:
                for category in self._acting_order(spec):
                    if category in counts:
                        counts[category] += sum(self._run(spec, category, op, self.batch_size, conn=conn))
        return counts

    @staticmethod
    def _acting_order(spec: TableSpec) -> list[str]:
        # Column categories first: their columns are scrubbed even where the row itself must stay.
        return [c for c in spec.units() if c != spec.category] + [spec.category]

    def expire(self, category: str, older_than: datetime, *, batch_size: int = 1000, dry_run: bool = False,
               exclude_subjects: Collection[Identity] = (), on_batch: BatchHook | None = None,
               journal: BatchJournal | None = None) -> Iterator[int]:
        """See the contract. On PostgreSQL a `journal` takes the batches (its tokens are transaction ids, which
        `batch_committed` resolves); on other databases `on_batch` does."""
        check_expire_args(self.name, self.describe().categories, category, older_than, batch_size)
        held = [{k: str(v) for k, v in ids.items() if v is not None} for ids in exclude_subjects]
        op = build.Expire(category, older_than, held)
        if journal is not None and self.engine.dialect.name == "postgresql" and not dry_run:
            return self._expire_journalled(op, batch_size, journal)
        return self._expire(op, batch_size, dry_run, on_batch)

    def batch_committed(self, token: str) -> bool | None:
        """Whether the transaction a journalled batch ran in committed (PostgreSQL's txid_status)."""
        with self.engine.connect() as conn:
            status = conn.execute(sa.select(sa.func.txid_status(int(token)))).scalar()
        if status is None:
            # Too old: its commit record is gone. Only a batch left unresolved for hundreds of millions of
            # transactions gets here, and guessing either way would count wrongly.
            raise StoreError(f"store {self.name}: cannot tell any more whether transaction {token} committed")
        return {"committed": True, "aborted": False}.get(status)

    def expire_actions(self, category: str) -> set[str]:
        """What expiring `category` does: "delete" rows, or "anonymize" (rows, or the category's columns)."""
        return {"delete" if c == spec.category and spec.mode == "delete" else "anonymize"
                for spec in self.tables for c in spec.units() if c == category}

    def _expire(self, op: build.Expire, batch_size: int, dry_run: bool,
                on_batch: BatchHook | None = None) -> Iterator[int]:
        for spec in self.tables:
            if op.category not in spec.units():
                continue
            if dry_run:
                with self.engine.connect() as conn:
                    total = int(conn.execute(build.count(spec, op.category, op)).scalar_one())
                while total > 0:
                    yield min(total, batch_size)
                    total -= batch_size
            else:
                yield from self._run(spec, op.category, op, batch_size, on_batch)

    def _run(self, spec: TableSpec, category: str, op: build.Operation, batch_size: int,
             on_batch: BatchHook | None = None, conn: sa.Connection | None = None) -> Iterator[int]:
        """Batches until none is left, each committed before its count is yielded (so a crash loses nothing).

        With `on_batch`, each batch's row keys are reported inside its transaction, before the commit. `conn`: a
        connection of the caller's to run them on (none open: one is checked out for them).
        """
        if conn is None:
            with self.engine.connect() as own:
                yield from self._run(spec, category, op, batch_size, on_batch, own)
            return
        dialect = self.engine.dialect
        stmt = build.statement(spec, category, op, batch_size, dialect.name, self._key)
        returning = dialect.delete_returning if isinstance(stmt, sa.Delete) else dialect.update_returning
        if on_batch is not None and returning:
            stmt = stmt.returning(spec.table.c[spec.key])
        prefix = f"{spec.name}/"
        as_text = _key_text(spec.table.c[spec.key])
        # One connection for every batch (each in its own transaction): no pool checkout and ping per batch.
        while True:
            with conn.begin():
                if on_batch is None:
                    done = conn.execute(stmt).rowcount
                else:
                    if returning:
                        # The DBAPI rows as they come: SQLAlchemy's row objects cost more than the DELETE.
                        result = conn.execute(stmt)
                        keys = [row[0] for row in result.cursor.fetchall()]
                        result.close()
                    else:
                        keys = self._locked_batch(conn, spec, category, op, batch_size)
                    done = len(keys)
                    if keys:
                        on_batch(list(map(prefix.__add__, map(as_text, keys))))
            if done > 0:
                yield done
            if done < batch_size:
                return

    def _expire_journalled(self, op: build.Expire, batch_size: int, journal: BatchJournal) -> Iterator[int]:
        for spec in self.tables:
            if op.category in spec.units():
                yield from self._run_journalled(spec, op, batch_size, journal)

    def _run_journalled(self, spec: TableSpec, op: build.Expire, batch_size: int,
                        journal: BatchJournal) -> Iterator[int]:
        """Batches whose keys are chosen first and acted on second, each in its own transaction.

        The journal gets the keys and the transaction's id as soon as they are chosen, and records them (a
        digest) while the database acts on them; the batch commits once it acted on exactly those rows and
        the journal has sealed it. Other writers that change a chosen row in between shrink the batch: it then
        rolls back and is chosen again with its rows locked.
        """
        dialect = self.engine.dialect.name
        act = build.statement_for_key_array(spec, op.category, op, dialect, self._key)
        choose = {locked: build.batch_choice(spec, op.category, op, batch_size, locked) for locked in (False, True)}
        prefix, as_text = f"{spec.name}/", _key_text(spec.table.c[spec.key])
        rechoices = 0
        with self.engine.connect() as conn:
            while True:
                with conn.begin() as tx:
                    keys, literal, token = conn.execute(choose[rechoices > 0]).one()
                    keys = keys or []
                    if keys:
                        journal.begin(PrefixedKeys(prefix, keys, as_text), str(token))
                        if conn.execute(act, {"batch_keys": literal}).rowcount != len(keys):
                            tx.rollback()  # never sealed: the journal learns from the store that it rolled back
                            rechoices += 1
                            if rechoices > _RECHOICES:
                                raise StoreError(f"store {self.name}: rows of {spec.name} kept changing under "
                                                 "the expiry; try again later")
                            continue
                        journal.seal()
                rechoices = 0
                if keys:
                    yield len(keys)
                if len(keys) < batch_size:
                    return

    def _locked_batch(self, conn: sa.Connection, spec: TableSpec, category: str, op: build.Operation,
                      batch_size: int) -> list[Any]:
        """Without RETURNING (MySQL; MariaDB's UPDATE): lock the batch's rows, then act on exactly those."""
        keys = list(conn.execute(build.batch_keys(spec, category, op, batch_size)).scalars())
        if keys:
            conn.execute(build.statement_for_keys(spec, category, op, keys, self.engine.dialect.name, self._key))
        return keys

    def health(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as exc:
            raise StoreUnavailable(type(exc).__name__) from None

    def close(self) -> None:
        self.engine.dispose()
