"""The consent ledger's part of the audit evidence pack: every verification run in the period and the events it
holds (counts only)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from consent.models import ConsentEvent, LedgerVerification
from service.evidence import Context, EvidenceSection, PackWriter, keyset


def write(session: Session, ctx: Context, pack: PackWriter) -> dict[str, Any]:
    p = ctx.period
    v = LedgerVerification
    stmt = (select(v.id, v.started_at, v.finished_at, v.status, v.mode, v.trigger, v.events_checked,
                   v.chains_checked, v.events_covered, v.breaks, v.first_break, v.first_break_problem, v.base_id,
                   v.checkpoint)
            .where(v.started_at >= p.start, v.started_at < p.end))
    statuses: dict[str, int] = {}

    def rows() -> Any:
        for r in keyset(session, stmt, v.id):
            statuses[r.status] = statuses.get(r.status, 0) + 1
            yield {"id": r.id, "startedAt": r.started_at, "finishedAt": r.finished_at, "status": r.status,
                   "mode": r.mode, "trigger": r.trigger, "eventsChecked": r.events_checked,
                   "chainsChecked": r.chains_checked, "eventsCovered": r.events_covered, "breaks": r.breaks,
                   "firstBreak": r.first_break, "firstBreakProblem": r.first_break_problem, "base": r.base_id,
                   "checkpoint": r.checkpoint}

    n = pack.lines("consent/ledger_verifications.jsonl", rows())
    last = session.execute(select(v.status, v.finished_at, v.events_covered).where(v.started_at < p.end,
                                                                                 v.finished_at.is_not(None))
                           .order_by(v.id.desc()).limit(1)).first()
    events = session.scalar(select(func.count()).select_from(ConsentEvent)
                            .where(ConsentEvent.created_at >= p.start, ConsentEvent.created_at < p.end))
    summary = {"verifications": n, "byStatus": statuses, "eventsInPeriod": events,
               "lastAtEnd": dict(last._mapping) if last else None}
    pack.document("consent/summary.json", summary)
    return summary


SECTION = EvidenceSection("consent", ("7.2.3", "7.2.4", "7.3.4", "6.9.4", "6.15.1.3"), write)
