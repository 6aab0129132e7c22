"""Read the ledger as the check orders it, and change it behind the service's back as an attacker with database
access would."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask
from sqlalchemy import text

from consent.ledger import CONTENT_FIELDS, hash_content


@dataclass(frozen=True)
class Row:
    id: str
    subject: str
    seq: int


def rows(app: Flask) -> list[Row]:
    """Every event, in the order the check reads them: by subject, then seq."""
    with app.extensions["db"].engine.connect() as conn:
        found = [Row(*r) for r in conn.execute(text("SELECT id, subject, seq FROM consent_events"))]
    return sorted(found, key=lambda r: (r.subject, r.seq))


def execute(app: Flask, sql: str, **params: Any) -> None:
    with app.extensions["db"].engine.begin() as conn:
        conn.execute(text(sql), params)


def rewrite_chain(app: Flask, subject: str, channel: str) -> None:
    """Change the channel of every event of a chain and recompute each hash and link, as the write path would:
    a consistent forgery that a hash chain alone cannot tell from the original."""
    from consent.models import ConsentEvent

    db = app.extensions["db"]
    table = ConsentEvent.__table__
    with db.engine.begin() as conn:
        chain = conn.execute(table.select().where(table.c.subject == subject).order_by(table.c.seq)).all()
        prev_hash = None
        for row in chain:
            content = {**row._mapping, "channel": channel, "prev_hash": prev_hash}
            digest = hash_content([content[name] for name in CONTENT_FIELDS])
            conn.execute(table.update().where(table.c.id == row.id)
                         .values(channel=channel, prev_hash=prev_hash, hash=digest))
            prev_hash = digest
