"""Legal holds' part of the audit evidence pack: every hold in force at some time in the period, without its
subject or reason (free text may name people)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from holds.models import LegalHold
from service.evidence import Context, EvidenceSection, PackWriter, keyset


def write(session: Session, ctx: Context, pack: PackWriter) -> dict[str, Any]:
    p = ctx.period
    h = LegalHold
    stmt = (select(h.id, h.app_id, h.store, h.category, h.subject_keys, h.until, h.created_at, h.released_at)
            .where(h.created_at < p.end, or_(h.released_at.is_(None), h.released_at >= p.start)))
    n = pack.lines("holds/holds.jsonl", (
        {"id": r.id, "app": r.app_id, "store": r.store, "category": r.category,
         "subjects": len(r.subject_keys or []), "until": r.until, "createdAt": r.created_at,
         "releasedAt": r.released_at, "inForceAtEnd": r.released_at is None or r.released_at >= p.end}
        for r in keyset(session, stmt, h.id)))
    return {"holds": n}


SECTION = EvidenceSection("holds", ("7.4.7", "6.15.1.1"), write)
