"""The `sql` plugin's table declarations: options read and checked against the reflected schema."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from service.stores.options import Options, StoreContext

MODES = ("delete", "anonymize")


@dataclass(frozen=True)
class Replacement:
    """What an anonymised column becomes: NULL, a fixed value, or a keyed hash (HMAC-SHA256, hex) of itself."""

    kind: str  # "null" | "value" | "hash"
    value: Any = None


@dataclass
class TableSpec:
    """One declared table: how to find a subject's rows, their age, their categories and how to erase them."""

    table: sa.Table
    key: str
    category: str
    column_categories: dict[str, str]
    identity: dict[str, str]  # identity type -> column
    parent: tuple[str, str, str] | None  # (parent table name, this table's column, parent's column)
    timestamp: str
    mode: str
    replacements: dict[str, Replacement]  # the row's anonymisation (anonymize mode)
    column_replacements: dict[str, Replacement]  # columns of column categories
    marker: str | None
    dependents: list[tuple[TableSpec, str, str]] = field(default_factory=list)  # (child, child col, our col)
    parent_spec: TableSpec | None = None

    @property
    def name(self) -> str:
        return self.table.fullname

    def units(self) -> dict[str, tuple[str, ...]]:
        """Category -> its columns; the row's own category holds every column not given to another."""
        units: dict[str, tuple[str, ...]] = {}
        for column, category in self.column_categories.items():
            units[category] = (*units.get(category, ()), column)
        rest = tuple(c.name for c in self.table.columns if c.name not in self.column_categories)
        return {self.category: rest, **{k: v for k, v in units.items() if k != self.category}}

    def releases_parent(self, column: str) -> bool:
        """Whether acting on a row of this table stops it referring to its parent through `column`."""
        return self.mode == "delete" or self.replacements.get(column) == Replacement("null")


def hash_key(opts: Options, ctx: StoreContext) -> bytes | None:
    """The key for `hash` replacements: `hash_key_env` (base64url in that variable) or the service's key."""
    env_name = opts.str("hash_key_env")
    if env_name is None:
        return ctx.hash_key
    raw = ctx.environ.get(env_name)
    if not raw:
        raise opts.error("hash_key_env", f"{env_name} is not set")
    try:
        key = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        raise opts.error("hash_key_env", f"{env_name} is not base64url") from None
    if len(key) < 32:
        raise opts.error("hash_key_env", f"{env_name} must hold at least 32 bytes")
    return key


def _column(opts: Options, option: str, table: sa.Table, name: Any) -> str:
    if not isinstance(name, str) or name not in table.columns:
        raise opts.error(option, f"no column {name!r} in table {table.fullname}")
    return name


def _replacement(opts: Options, option: str, spec: Any) -> Replacement:
    if spec == "null":
        return Replacement("null")
    if spec == "hash":
        return Replacement("hash")
    if isinstance(spec, dict) and set(spec) == {"value"}:
        return Replacement("value", spec["value"])
    raise opts.error(option, f'expected "null", "hash" or {{ value = ... }}, got {spec!r}')


def read_table(opts: Options, metadata: sa.MetaData, engine: Engine) -> TableSpec:
    name = opts.str("table", required=True)
    assert name is not None
    schema = opts.str("schema")
    try:
        table = sa.Table(name, metadata, schema=schema, autoload_with=engine)
    except sa.exc.NoSuchTableError:
        raise opts.error("table", f"no table {name!r} in the database") from None
    pk = [c.name for c in table.primary_key.columns]
    key = opts.str("key_column") or (pk[0] if len(pk) == 1 else None)
    if key is None:
        raise opts.error("key_column", f"table {name} has no single-column primary key: name a unique column")
    _column(opts, "key_column", table, key)
    category = opts.str("category", required=True)
    assert category is not None
    column_categories = {
        _column(opts, "column_categories", table, col): cat
        for col, cat in opts.table("column_categories").items()
    }
    if any(not isinstance(c, str) or not c for c in column_categories.values()):
        raise opts.error("column_categories", "expected column = \"category\" pairs")
    identity = {str(t): _column(opts, f"identity.{t}", table, c) for t, c in opts.table("identity").items()}
    parent = None
    if opts.has("parent"):
        p = Options(opts.store, opts.table("parent"), f"{opts.where}.parent")
        parent_table = p.str("table", required=True)
        column = _column(p, "column", table, p.str("column", required=True))
        assert parent_table is not None
        parent = (parent_table, column, p.str("references") or "")
        p.done()
    if not identity and parent is None:
        raise opts.error("identity", "missing (required): map identity types to columns, or give a parent")
    timestamp = _column(opts, "timestamp_column", table, opts.str("timestamp_column", required=True))
    mode = opts.str("erase", "delete")
    if mode not in MODES:
        raise opts.error("erase", f"expected one of {MODES}, got {mode!r}")
    anonymize = {
        _column(opts, "anonymize", table, col): _replacement(opts, f"anonymize.{col}", spec)
        for col, spec in opts.table("anonymize").items()
    }
    column_replacements = {c: anonymize.pop(c, Replacement("null")) for c in column_categories}
    for col, rep in column_replacements.items():
        if rep.kind == "hash":
            raise opts.error(f"anonymize.{col}", "columns of a column category take null or a fixed value")
    marker = opts.str("anonymized_at_column")
    if marker is not None:
        _column(opts, "anonymized_at_column", table, marker)
    if mode == "anonymize":
        links = [*identity.values(), *([parent[1]] if parent else [])]
        missing = [c for c in links if c not in anonymize]
        if missing:
            # Rows that still carry an identifier are pseudonymised, not anonymised.
            raise opts.error("anonymize", f"must replace the identifying column(s) {missing}")
        if marker is None and any(r.kind == "hash" for r in anonymize.values()):
            raise opts.error("anonymized_at_column", "required when a column is hashed "
                             "(a hashed value cannot be told from an original, so re-runs would re-count)")
    elif anonymize:
        raise opts.error("anonymize", 'only with erase = "anonymize"')
    opts.done()
    return TableSpec(table=table, key=key, category=category, column_categories=column_categories,
                     identity=identity, parent=parent, timestamp=timestamp, mode=mode, replacements=anonymize,
                     column_replacements=column_replacements, marker=marker)


def link_tables(opts: Options, specs: list[TableSpec]) -> list[TableSpec]:
    """Resolve parents and foreign keys between declared tables; return them children first."""
    by_name = {s.table.name: s for s in specs} | {s.name: s for s in specs}
    for i, spec in enumerate(specs):
        where = f"tables[{i}].parent"
        edges: dict[tuple[str, str], str] = {}
        if spec.parent is not None:
            parent = by_name.get(spec.parent[0])
            if parent is None:
                raise opts.error(f"{where}.table", f"{spec.parent[0]!r} is not a declared table of this store")
            references = spec.parent[2] or parent.key
            if references not in parent.table.columns:
                raise opts.error(f"{where}.references", f"no column {references!r} in table {parent.name}")
            spec.parent = (parent.name, spec.parent[1], references)
            spec.parent_spec = parent
            edges[(parent.name, spec.parent[1])] = references
        for fk in spec.table.foreign_keys:
            parent = by_name.get(fk.column.table.fullname)
            if parent is not None and parent is not spec:  # self-references hold no other subject's data
                edges.setdefault((parent.name, fk.parent.name), fk.column.name)
        for (parent_name, column), references in edges.items():
            by_name[parent_name].dependents.append((spec, column, references))
    ordered: list[TableSpec] = []
    state: dict[str, str] = {}

    def visit(spec: TableSpec, path: tuple[str, ...]) -> None:
        if state.get(spec.name) == "done":
            return
        if state.get(spec.name) == "visiting":
            raise opts.error("tables", f"tables refer to each other in a cycle: {' -> '.join(path)}")
        state[spec.name] = "visiting"
        for child, _, _ in spec.dependents:
            visit(child, (*path, child.name))
        state[spec.name] = "done"
        ordered.append(spec)

    for spec in specs:
        visit(spec, (spec.name,))
    return ordered
