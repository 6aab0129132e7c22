"""Rights requests' part of the audit evidence pack: the register of requests received in the period (no identity,
contact or details: ids, type, jurisdiction and dates), on-time statistics per type and jurisdiction, and every
erasure certificate issued."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dsar.models import DsarRequest
from service.evidence import Context, EvidenceSection, PackWriter, keyset


def _on_time(r: Any, end: Any) -> bool | None:
    """Closed by its due date; None while open and not yet due at the period's end."""
    if r.closed_at is not None and r.closed_at < end:
        return r.closed_at <= r.due_at
    return False if r.due_at < end else None


def write(session: Session, ctx: Context, pack: PackWriter) -> dict[str, Any]:
    p = ctx.period
    d = DsarRequest
    stmt = (select(d.id, d.app_id, d.type, d.status, d.jurisdiction, d.received_at, d.due_at, d.extended_at,
                   d.verified_at, d.closed_at)
            .where(d.received_at >= p.start, d.received_at < p.end))
    stats: dict[tuple[str, str], dict[str, int]] = {}

    def rows() -> Any:
        for r in keyset(session, stmt, d.id):
            on_time = _on_time(r, p.end)
            s = stats.setdefault((r.type, r.jurisdiction), {"received": 0, "closed": 0, "onTime": 0, "late": 0,
                                                             "open": 0, "extended": 0})
            s["received"] += 1
            s["closed" if r.closed_at is not None and r.closed_at < p.end else "open"] += 1
            s["extended"] += r.extended_at is not None
            if on_time is not None:
                s["onTime" if on_time else "late"] += 1
            yield {"id": r.id, "app": r.app_id, "type": r.type, "status": r.status, "jurisdiction": r.jurisdiction,
                   "receivedAt": r.received_at, "dueAt": r.due_at, "extendedAt": r.extended_at,
                   "verifiedAt": r.verified_at, "closedAt": r.closed_at, "onTime": on_time}

    n = pack.lines("dsar/register.jsonl", rows())
    table = [{"type": t, "jurisdiction": j, **s,
              "onTimeRate": round(s["onTime"] / (s["onTime"] + s["late"]), 4) if s["onTime"] + s["late"] else None}
             for (t, j), s in sorted(stats.items())]
    pack.document("dsar/on_time.json", table)
    certs = select(d.id, d.certificate).where(d.certificate.is_not(None), d.received_at >= p.start,
                                                d.received_at < p.end)
    n_certs = pack.lines("dsar/erasure_certificates.jsonl",
                         ({"request": r.id, "certificate": r.certificate} for r in keyset(session, certs, d.id)))
    return {"requests": n, "erasureCertificates": n_certs, "byTypeAndJurisdiction": len(table)}


SECTION = EvidenceSection("dsar", ("7.3.1", "7.3.6", "7.3.8", "7.3.9", "7.3.7"), write)
