"""The incident register's part of the audit evidence pack: each incident active in the period with its clocks,
notifications, notice campaigns' counts and timeline (ids, states, times and counts; no free text, no people)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from incidents import campaigns, cases, clocks
from incidents.models import Campaign, Incident
from service.db import utcnow
from service.evidence import Context, EvidenceSection, PackWriter, scrub


def write(session: Session, ctx: Context, pack: PackWriter) -> dict[str, Any]:
    p = ctx.period
    table = clocks.current_table(ctx.rt.settings)
    # Obligations as they stood at the period's end (or now, for a period not over yet).
    as_of = min(p.end, utcnow())
    stmt = (select(Incident).where(Incident.discovered_at < p.end,
                                   or_(Incident.closed_at.is_(None), Incident.closed_at >= p.start)))
    summary: dict[str, Any] = {"incidents": 0, "byState": {}, "byRisk": {}, "obligations": 0, "metOnTime": 0,
                               "metLate": 0, "overdueAtEnd": 0, "authorityNotifications": 0, "campaigns": 0,
                               "noticesSent": 0, "noticesFailed": 0, "signedRecords": 0}

    def rows() -> Any:
        # A register holds incidents, not events: a few per year, read at once.
        for incident in session.scalars(stmt.order_by(Incident.discovered_at, Incident.id)).all():
            yield scrub(ctx, _row(session, incident, table, as_of, summary))

    pack.lines("incidents/incidents.jsonl", rows())
    pack.document("incidents/summary.json", summary)
    return summary


def _row(session: Session, incident: Incident, table: clocks.Table, as_of: Any,
         summary: dict[str, Any]) -> dict[str, Any]:
    notices = cases.notifications(session, incident.id)
    obligations = clocks.obligations(incident, notices, table, as_of)
    found = session.scalars(select(Campaign).where(Campaign.incident_id == incident.id)
                            .order_by(Campaign.created_at)).all()
    sent = [campaigns.report(session, c) for c in found]
    summary["incidents"] += 1
    summary["byState"][incident.state] = summary["byState"].get(incident.state, 0) + 1
    risk = incident.risk or "undecided"
    summary["byRisk"][risk] = summary["byRisk"].get(risk, 0) + 1
    applying = [o for o in obligations if o["applies"]]
    summary["obligations"] += len(applying)
    summary["metOnTime"] += sum(1 for o in applying if o["on_time"] is True)
    summary["metLate"] += sum(1 for o in applying if o["on_time"] is False)
    summary["overdueAtEnd"] += sum(1 for o in applying if o["overdue"])
    summary["authorityNotifications"] += sum(1 for n in notices if n.kind in ("notified", "supplement"))
    summary["campaigns"] += sum(1 for c in found if not c.dry_run)
    for report in sent:
        if not report["dry_run"]:
            summary["noticesSent"] += report["counts"]["mail"].get("sent", 0)
            summary["noticesFailed"] += report["counts"]["mail"].get("failed", 0)
    summary["signedRecords"] += incident.record is not None
    return {
        "id": incident.id, "appId": incident.app_id, "state": incident.state, "severity": incident.severity,
        "risk": incident.risk, "version": incident.version, "discoveredAt": incident.discovered_at,
        "occurredFrom": incident.occurred_from, "occurredUntil": incident.occurred_until,
        "assessedAt": incident.assessed_at, "containedAt": incident.contained_at, "closedAt": incident.closed_at,
        "jurisdictions": incident.jurisdictions, "scope": incident.scope,
        "recordSha256": incident.record_sha256,
        "obligations": [{"jurisdiction": o["jurisdiction"], "obligation": o["obligation"], "applies": o["applies"],
                         "dueAt": o["due_at"], "source": o["source"], "metAt": o["met_at"], "metBy": o["met_by"],
                         "onTime": o["on_time"], "overdue": o["overdue"]} for o in obligations],
        # The authority's reference number is kept; reasons and who notified are free text or people: left out.
        "notifications": [{"jurisdiction": n.jurisdiction, "obligation": n.obligation, "kind": n.kind, "at": n.at,
                           "reference": n.reference, "reasoned": n.reasoning is not None} for n in notices],
        "campaigns": [{"id": r["id"], "dryRun": r["dry_run"], "state": r["state"], "languages": r["languages"],
                       "startedAt": r["started_at"], "finishedAt": r["finished_at"], "counts": r["counts"]}
                      for r in sent],
        "timeline": [{"at": e["at"], "actor": e["actor"], "action": e["action"]}
                     for e in cases.timeline(session, incident)],
    }


SECTION = EvidenceSection("incidents", ("6.13", "6.13.1.5"), write)
