"""Reading the demo estate back for assertions: every record of a category with its age, straight from each store."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import Flask

from service.stores import demo


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def sql_rows(app: Flask, table: str, ts_column: str, columns: tuple[str, ...] = ()) -> dict[Any, dict[str, Any]]:
    """{id: {"ts": aware timestamp, column: value...}} of a demo table."""
    engine = app.extensions["stores"].get(demo.SQL_STORE).engine
    t = demo.metadata.tables[table]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.c.id, t.c[ts_column], *(t.c[c] for c in columns))).all()
    return {r[0]: {"ts": _aware(r[1]), **dict(zip(columns, r[2:], strict=True))} for r in rows}


def files(app: Flask, folder: str) -> dict[str, datetime]:
    """{relative path: mtime} of the uploads store's regular files under `folder`."""
    root = app.extensions["stores"].get(demo.FILE_STORE).root
    return {str(p.relative_to(root)): datetime.fromtimestamp(p.stat().st_mtime, UTC)
            for p in (root / folder).rglob("*") if p.is_file()}


def sessions(app: Flask) -> dict[str, datetime]:
    """{key: created_at} of the sessions store's session keys."""
    store = app.extensions["stores"].get(demo.REDIS_STORE)
    out = {}
    for key in store.client.scan_iter(match=f"{store.prefix}session:*", count=1000):
        out[key.decode()] = datetime.fromtimestamp(int(store.client.hget(key, "created_at")), UTC)
    return out


def split(records: dict[Any, Any], cutoff: datetime, ts: Any = None) -> tuple[set[Any], set[Any]]:
    """(keys older than the cutoff, keys not older)."""
    when = ts or (lambda v: v["ts"] if isinstance(v, dict) else v)
    old = {k for k, v in records.items() if when(v) < cutoff}
    return old, set(records) - old


def user_of_log(app: Flask) -> dict[int, int]:
    engine = app.extensions["stores"].get(demo.SQL_STORE).engine
    with engine.connect() as conn:
        return dict(conn.execute(sa.text("SELECT id, user_id FROM device_logs")).all())
