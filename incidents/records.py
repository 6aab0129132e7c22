"""The signed incident record issued when an incident closes: a JWS with the receipt keys (verify with
/.well-known/jwks.json) stating the clock, when each obligation was met, the assessment's and the campaigns'
counts."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from incidents import assessment, campaigns, clocks
from incidents.models import Campaign, Incident
from service.db import utcnow

RECORD_TYPE = "incident-record"


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def claims(rt: Any, session: Session, incident: Incident, table: clocks.Table) -> dict[str, Any]:
    obligations = [{
        "jurisdiction": o["jurisdiction"], "obligation": o["obligation"], "applies": o["applies"],
        "deadline": o["deadline"], "source": o["source"], "period": o["period"], "dueAt": _iso(o["due_at"]),
        "metAt": _iso(o["met_at"]), "metBy": o["met_by"], "onTime": o["on_time"],
    } for o in clocks.obligations(incident, clocks.notices_of(session, [incident.id])[incident.id], table)]
    latest = assessment.latest(session, incident.id)
    return {
        "iss": rt.settings.issuer,
        "sub": f"urn:incident:{incident.id}",
        "jti": f"{incident.id}:{incident.version}",
        "iat": int(utcnow().timestamp()),
        "type": RECORD_TYPE,
        "controller": rt.settings.controller.name,
        "incident": {"id": incident.id, "version": incident.version, "severity": incident.severity,
                     "risk": incident.risk, "discoveredAt": _iso(incident.discovered_at),
                     "occurredFrom": _iso(incident.occurred_from), "occurredUntil": _iso(incident.occurred_until),
                     "assessedAt": _iso(incident.assessed_at), "containedAt": _iso(incident.contained_at),
                     "closedAt": _iso(incident.closed_at), "jurisdictions": incident.jurisdictions,
                     "scope": incident.scope},
        "obligations": obligations,
        "assessment": None if latest is None else assessment.counts(session, latest),
        "campaigns": [{"id": c.id, "run": c.run_id, "finishedAt": _iso(c.finished_at), "state": c.state,
                       "counts": campaigns.report(session, c)["counts"]}
                      for c in session.scalars(select(Campaign).where(Campaign.incident_id == incident.id,
                                                                      Campaign.dry_run.is_(False))
                                               .order_by(Campaign.created_at))],
    }


def issue(rt: Any, session: Session, incident: Incident, table: clocks.Table) -> str:
    return rt.keys.signer.sign(claims(rt, session, incident, table), typ="JWT")


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()
