"""SQL expressions for the `sql` plugin: subject, hold, age and pending predicates, and batched statements.

Everything here builds statements; nothing loads rows. Predicates take the table object (the table or an alias)
so that subqueries can alias freely and correlate only where meant to.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from service.stores.sql_spec import Replacement, TableSpec

FromClause = sa.Table | sa.Alias
SQLITE_HMAC = "privacy_hmac"


@dataclass(frozen=True)
class Erase:
    """An erasure of one subject: identity values the store can use, categories on hold."""

    ids: Mapping[str, str]
    exclude: Collection[str]


@dataclass(frozen=True)
class Expire:
    """An expiry of one category: the cutoff, and the subjects on hold."""

    category: str
    cutoff: datetime
    held: Collection[Mapping[str, str]]


Operation = Erase | Expire


def _coerce(column: sa.Column, value: str) -> Any | None:
    """An identity value in the column's Python type; None when it cannot be one (so it matches nothing)."""
    try:
        kind = column.type.python_type
    except NotImplementedError:
        return value
    if kind in (int, float, Decimal):
        try:
            return kind(value)
        except (ValueError, ArithmeticError):
            return None
    return value


def subject(spec: TableSpec, t: FromClause, ids: Mapping[str, str]) -> ColumnElement[bool] | None:
    """Rows of the subject, found by an identity column or through the parent; None when not applicable."""
    return holds(spec, t, [ids])


def holds(spec: TableSpec, t: FromClause, identities: Collection[Mapping[str, str]]) -> ColumnElement[bool] | None:
    """Rows of any of the given subjects, as a predicate that is never NULL; None when none applies."""
    terms: list[ColumnElement[bool]] = []
    for kind, column in spec.identity.items():
        values = {v for ids in identities if (v := ids.get(kind)) is not None}
        coerced = {c for v in values if (c := _coerce(spec.table.c[column], v)) is not None}
        if values:
            terms.append(sa.and_(t.c[column].is_not(None), t.c[column].in_(sorted(coerced, key=str)))
                         if coerced else sa.false())
    if spec.parent is not None and spec.parent_spec is not None:
        parent = spec.parent_spec
        p = parent.table.alias()
        inner = holds(parent, p, identities)
        if inner is not None:
            refs = sa.select(p.c[spec.parent[2]]).where(p.c[spec.parent[2]].is_not(None), inner)
            terms.append(sa.and_(t.c[spec.parent[1]].is_not(None), t.c[spec.parent[1]].in_(refs)))
    return sa.or_(*terms) if terms else None


def _stored(spec: TableSpec, moment: datetime, *, exact: bool = False) -> Any:
    """A moment as the timestamp column holds it: epoch seconds, a naive UTC datetime, or an aware datetime.

    Epoch seconds are whole seconds for `expire`'s cutoff; `exact` rounds up for integer columns instead (t >= 10.5
    is t >= 11) and keeps fractions for others, so window edges are exact.
    """
    try:
        kind = spec.table.c[spec.timestamp].type.python_type
    except NotImplementedError:
        kind = datetime
    if kind in (int, float, Decimal):  # epoch seconds
        seconds = moment.timestamp()
        if not exact:
            return int(seconds)
        return math.ceil(seconds) if kind is int else seconds
    if not getattr(spec.table.c[spec.timestamp].type, "timezone", False):
        # Naive timestamps in a store are taken to be UTC.
        return moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _older(spec: TableSpec, t: FromClause, cutoff: datetime) -> ColumnElement[bool]:
    return t.c[spec.timestamp] < _stored(spec, cutoff)


def within(spec: TableSpec, t: FromClause, since: datetime, until: datetime) -> ColumnElement[bool]:
    """Rows whose time t is since <= t < until, compared on the bare column so an index on it serves."""
    column = t.c[spec.timestamp]
    return sa.and_(column >= _stored(spec, since, exact=True), column < _stored(spec, until, exact=True))


def identity_columns(spec: TableSpec, t: FromClause) -> tuple[sa.FromClause, dict[str, ColumnElement[Any]]]:
    """The row's identity columns by type, its own first and then its parents' (joined, as `holds` reaches them),
    and the FROM clause that joins them."""
    columns: dict[str, ColumnElement[Any]] = {kind: t.c[c] for kind, c in spec.identity.items()}
    source: sa.FromClause = t
    node, alias = spec, t
    while node.parent is not None and node.parent_spec is not None:
        parent = node.parent_spec
        p = parent.table.alias()
        source = source.outerjoin(p, alias.c[node.parent[1]] == p.c[node.parent[2]])
        for kind, c in parent.identity.items():
            columns.setdefault(kind, p.c[c])
        node, alias = parent, p
    return source, columns


def _identity(column: ColumnElement[Any], as_text: bool) -> ColumnElement[Any]:
    """An identity column as `subjects` reads it: an empty string identifies nobody, so it becomes NULL and is left
    out like one; `as_text` casts other types to text (a UNION's tables must agree on each column's type)."""
    if isinstance(column.type, sa.String):
        return sa.func.nullif(column, "")
    return sa.cast(column, sa.String) if as_text else column


def subjects(specs: list[TableSpec], category: str, since: datetime, until: datetime,
             types: list[str]) -> sa.Select | sa.CompoundSelect | None:
    """Each subject's identity (a column per type in `types`, NULL where a table has none) once, over every table
    holding `category` whose rows of it are in the window and not yet erased; None when no table can say.

    One table: SELECT DISTINCT. Several: their UNION (which is distinct), every column as text so they align.
    """
    selects = []
    for spec in specs:
        if category not in spec.units():
            continue
        t = spec.table
        source, columns = identity_columns(spec, t)
        if not columns:
            continue
        terms = [within(spec, t, since, until), sa.or_(*(c.is_not(None) for c in columns.values()))]
        todo = pending(spec, t, category)
        if todo is not None:
            terms.append(todo)
        selects.append((source, columns, terms))
    if not selects:
        return None
    union = len(selects) > 1
    statements = [sa.select(*(_identity(columns[k], union).label(k) if k in columns
                              else sa.cast(sa.null(), sa.String).label(k) for k in types))
                  .select_from(source).where(*terms) for source, columns, terms in selects]
    return sa.union(*statements) if union else statements[0].distinct()


def _differs(t: FromClause, column: str, rep: Replacement) -> ColumnElement[bool]:
    if rep.kind == "null":
        return t.c[column].is_not(None)
    return t.c[column].is_distinct_from(sa.literal(rep.value, t.c[column].type))


def pending(spec: TableSpec, t: FromClause, category: str) -> ColumnElement[bool] | None:
    """Rows whose `category` columns are not yet replaced; None when acting on it deletes the row."""
    if category != spec.category:
        return sa.or_(*(_differs(t, c, spec.column_replacements[c])
                        for c, cat in spec.column_categories.items() if cat == category))
    if spec.mode == "delete":
        return None
    if spec.marker is not None:
        return t.c[spec.marker].is_(None)
    return sa.or_(*(_differs(t, c, r) for c, r in spec.replacements.items()))


def selected(spec: TableSpec, t: FromClause, category: str, op: Operation) -> ColumnElement[bool]:
    """The rows that `op` acts on for one of the table's categories."""
    if category not in spec.units():
        return sa.false()
    if isinstance(op, Erase):
        who = subject(spec, t, op.ids)
        if who is None or category in op.exclude:
            return sa.false()
        terms = [who]
        if category == spec.category and spec.mode == "delete" and set(spec.column_categories.values()) & set(
                op.exclude):
            return sa.false()  # deleting the row would take held columns with it
    else:
        if category != op.category:
            return sa.false()
        terms = [_older(spec, t, op.cutoff)]
        held = holds(spec, t, op.held) if op.held else None
        if held is not None:
            terms.append(sa.not_(held))
    todo = pending(spec, t, category)
    if todo is not None:
        terms.append(todo)
    if category == spec.category and spec.mode == "delete":
        terms.extend(sa.not_(_blocked_by(child, column, t.c[references], op))
                     for child, column, references in spec.dependents)
    return sa.and_(*terms)


def _blocked_by(child: TableSpec, column: str, ref: sa.ColumnElement[Any], op: Operation) -> ColumnElement[bool]:
    """Some row of `child` refers to this row and will still refer to it after `op`: it must stay."""
    c = child.table.alias()
    stays = sa.not_(selected(child, c, child.category, op)) if child.releases_parent(column) else sa.true()
    return sa.exists().where(c.c[column] == ref, stays)


def statement(spec: TableSpec, category: str, op: Operation, batch_size: int, dialect: str,
              hash_key: bytes | None) -> sa.Delete | sa.Update:
    """One batch: at most `batch_size` rows acted on by a single set-based statement."""
    t = spec.table
    if dialect in ("mysql", "mariadb"):
        # MySQL cannot LIMIT an IN-subquery on the table it changes; it has DELETE/UPDATE ... LIMIT instead.
        stmt = _acting_on(spec, category, selected(spec, t, category, op), dialect, hash_key)
        return stmt.with_dialect_options(mysql_limit=batch_size)
    b = t.alias("batch")
    keys = sa.select(b.c[spec.key]).where(selected(spec, b, category, op)).limit(batch_size).scalar_subquery()
    return _acting_on(spec, category, t.c[spec.key].in_(keys), dialect, hash_key)


def _acting_on(spec: TableSpec, category: str, where: ColumnElement[bool], dialect: str,
               hash_key: bytes | None) -> sa.Delete | sa.Update:
    """The DELETE, or the anonymising UPDATE, that expiring `category` does to the rows `where` selects."""
    t = spec.table
    if category == spec.category and spec.mode == "delete":
        return sa.delete(t).where(where)
    return sa.update(t).where(where).values(_values(spec, t, category, dialect, hash_key))


def batch_keys(spec: TableSpec, category: str, op: Operation, batch_size: int) -> sa.Select:
    """The keys of the next batch, locked until the transaction ends (for dialects without RETURNING)."""
    t = spec.table
    return sa.select(t.c[spec.key]).where(selected(spec, t, category, op)).limit(batch_size).with_for_update()


def statement_for_keys(spec: TableSpec, category: str, op: Operation, keys: list[Any], dialect: str,
                       hash_key: bytes | None) -> sa.Delete | sa.Update:
    """The batch statement restricted to rows locked by `batch_keys`."""
    t = spec.table
    return _acting_on(spec, category, sa.and_(t.c[spec.key].in_(keys), selected(spec, t, category, op)), dialect,
                      hash_key)


def batch_choice(spec: TableSpec, category: str, op: Operation, batch_size: int, locked: bool) -> sa.Select:
    """PostgreSQL: the keys of the next batch as one array, the same array as text (what `statement_for_key_array`
    takes back: the database's own literal costs the client nothing to pass on, where dumping a list of values
    element by element costs more than the statement), and the id of the transaction that will act on them.

    Calling txid_current() assigns the id now, before anything changes, so the caller can record it first and
    ask later (`txid_status`) whether that transaction committed. `locked` takes the rows' locks as well: for a
    batch chosen again after other writers changed rows under the first choice.
    """
    chosen = sa.select(spec.table.c[spec.key]).where(selected(spec, spec.table, category, op)).limit(batch_size)
    if locked:
        chosen = chosen.with_for_update()
    keys = sa.func.array_agg(chosen.subquery("chosen").c[spec.key])
    return sa.select(keys, sa.cast(keys, sa.Text), sa.func.txid_current())


def statement_for_key_array(spec: TableSpec, category: str, op: Operation, dialect: str,
                            hash_key: bytes | None) -> sa.Delete | sa.Update:
    """PostgreSQL: the batch statement for the keys chosen by `batch_choice`, bound as its array literal
    (`batch_keys`).

    The selection is checked again, so a row another writer changed since the choice is left alone: the
    statement then acts on fewer rows than chosen, and the caller knows the batch differs from its keys.
    """
    t = spec.table
    keys = sa.cast(sa.bindparam("batch_keys", type_=sa.Text), sa.ARRAY(t.c[spec.key].type))
    return _acting_on(spec, category, sa.and_(t.c[spec.key] == sa.any_(keys), selected(spec, t, category, op)),
                      dialect, hash_key)


def count(spec: TableSpec, category: str, op: Operation) -> sa.Select:
    b = spec.table.alias("batch")
    return sa.select(sa.func.count()).select_from(b).where(selected(spec, b, category, op))


def _values(spec: TableSpec, t: sa.Table, category: str, dialect: str, hash_key: bytes | None) -> dict[str, Any]:
    if category != spec.category:
        reps = {c: spec.column_replacements[c] for c, cat in spec.column_categories.items() if cat == category}
    else:
        reps = spec.replacements
    values: dict[str, Any] = {}
    for column, rep in reps.items():
        if rep.kind == "null":
            values[column] = None
        elif rep.kind == "value":
            values[column] = rep.value
        else:
            assert hash_key is not None
            values[column] = keyed_hash(t.c[column], dialect, hash_key)
    if category == spec.category and spec.marker is not None:
        values[spec.marker] = sa.func.current_timestamp()
    return values


def _hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\x00")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def keyed_hash(column: sa.ColumnElement[Any], dialect: str, key: bytes) -> ColumnElement[Any]:
    """HMAC-SHA256 of the column's text, as 64 hex digits, computed by the database itself."""
    inner_pad, outer_pad = _hmac_pads(key)
    if dialect == "postgresql":
        ipad, opad = sa.literal(inner_pad, sa.LargeBinary), sa.literal(outer_pad, sa.LargeBinary)
        text = sa.func.convert_to(sa.cast(column, sa.Text), "UTF8")
        return sa.func.encode(sa.func.sha256(opad.op("||")(sa.func.sha256(ipad.op("||")(text)))), "hex")
    if dialect in ("mysql", "mariadb"):
        ipad, opad = sa.literal(inner_pad, sa.LargeBinary), sa.literal(outer_pad, sa.LargeBinary)
        inner = sa.func.unhex(sa.func.sha2(sa.func.concat(ipad, sa.cast(column, sa.CHAR)), 256))
        return sa.func.sha2(sa.func.concat(opad, inner), 256)
    if dialect == "sqlite":
        return getattr(sa.func, SQLITE_HMAC)(column)
    raise ValueError(f"keyed hash is not available on {dialect}")


def python_hmac(key: bytes, value: Any) -> str | None:
    """The same keyed hash in Python (SQLite's registered function, and tests)."""
    if value is None:
        return None
    return hmac.new(key, str(value).encode(), hashlib.sha256).hexdigest()


def replaced(value: Any, rep: Replacement) -> bool:
    """Whether a value read back is already its replacement (for column categories: null or fixed)."""
    return value is None if rep.kind == "null" else value == rep.value
