"""The incident register, callable without Flask: open, change (every change a new version, with who, when, what
and why), move through the states, record notifications, list with filters. Functions take the caller's session
and never commit; the audit trail gets ids, field names and states, never the incident's text."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from incidents import clocks, config, records
from incidents.models import Incident, IncidentNotification, IncidentVersion
from service import audit
from service.audit import AuditEvent
from service.db import utcnow
from service.errors import Conflict, Invalid, NotFound

# The facts a version records, in the order they are shown.
FACTS = ("title", "description", "severity", "discovered_at", "occurred_from", "occurred_until", "scope",
         "jurisdictions", "state", "risk", "risk_reasoning", "consequences", "root_cause", "measures")
NEXT = {"open": "assessed", "assessed": "contained", "contained": "closed"}
_STAMP = {"assessed": "assessed_at", "contained": "contained_at", "closed": "closed_at"}


@dataclass(frozen=True)
class Actor:
    name: str  # "key:<key id>", "cli:<command>"
    app_id: int


def check_scope(stores: Any, scope: Sequence[dict[str, str]]) -> None:
    """Each entry names a declared store and one of its categories; Invalid names the entry's field."""
    errors: dict[str, Any] = {}
    for i, entry in enumerate(scope):
        if entry["store"] not in stores:
            errors[str(i)] = {"store": [f"no store named {entry['store']!r} (known: {sorted(stores.names())})"]}
        elif entry["category"] not in stores.get(entry["store"]).describe().categories:
            errors[str(i)] = {"category": [f"store {entry['store']!r} has no category {entry['category']!r}"]}
    if errors:
        raise Invalid("unknown store or category in scope", errors={"scope": errors})


def check_window(occurred_from: datetime | None, occurred_until: datetime | None) -> None:
    if occurred_from is not None and occurred_until is not None and occurred_until <= occurred_from:
        raise Invalid("the window ends before it starts",
                      errors={"occurred_until": ["must be after occurred_from"]})


def check_jurisdictions(table: clocks.Table, jurisdictions: Sequence[str]) -> list[str]:
    known = set(table.jurisdictions())
    unknown = sorted({j.upper() for j in jurisdictions} - known)
    if unknown:
        raise Invalid("unknown jurisdiction", errors={"jurisdictions": [
            f"no clock for {unknown} (known: {sorted(known)}; add one under [incidents.clocks])"]})
    return list(dict.fromkeys(j.upper() for j in jurisdictions))


def _facts(incident: Incident) -> dict[str, Any]:
    return {name: (value.isoformat() if isinstance(value, datetime) else value)
            for name in FACTS for value in [getattr(incident, name)]}


def _version(session: Session, incident: Incident, actor: Actor, changed: list[str], reason: str) -> None:
    session.add(IncidentVersion(incident_id=incident.id, version=incident.version, facts=_facts(incident),
                                changed=changed, reason=reason, created_by=actor.name))


def _audit(session: Session, actor: Actor, incident_id: str, action: str, details: dict[str, Any]) -> None:
    audit.record(session, app_id=actor.app_id, actor=actor.name, action=action, resource_type="incident",
                 resource_id=incident_id, details=details)


def create(session: Session, stores: Any, table: clocks.Table, actor: Actor, data: dict[str, Any]) -> Incident:
    check_window(data.get("occurred_from"), data.get("occurred_until"))
    check_scope(stores, data["scope"])
    jurisdictions = check_jurisdictions(table, data["jurisdictions"])
    incident = Incident(id=str(uuid.uuid4()), app_id=actor.app_id, title=data["title"],
                        description=data["description"], state="open", severity=data.get("severity"),
                        discovered_at=data["discovered_at"], occurred_from=data.get("occurred_from"),
                        occurred_until=data.get("occurred_until"), scope=list(data["scope"]),
                        jurisdictions=jurisdictions, version=1, created_by=actor.name, updated_at=utcnow())
    session.add(incident)
    _version(session, incident, actor, [n for n in FACTS if getattr(incident, n) not in (None, [])],
             data.get("reason") or "opened")
    _audit(session, actor, incident.id, "incident.opened",
           {"version": 1, "state": "open", "severity": incident.severity, "jurisdictions": jurisdictions,
            "scope": len(incident.scope)})
    return incident


def get(session: Session, app_id: int, incident_id: str) -> Incident:
    incident = session.get(Incident, incident_id)
    if incident is None or incident.app_id != app_id:
        raise NotFound(f"no incident {incident_id!r}")
    return incident


def update(session: Session, rt: Any, stores: Any, table: clocks.Table, actor: Actor, incident_id: str,
           data: dict[str, Any]) -> Incident:
    """Apply facts learned later and, with `state`, the next state; a new version with the fields changed and
    the reason. Closing needs a root cause and the measures taken, and issues the signed incident record."""
    incident = get(session, actor.app_id, incident_id)
    if incident.state == "closed":
        raise Conflict("the incident is closed; its record is signed and final")
    reason = data.pop("reason")
    target = data.pop("state", None)
    if "scope" in data:
        check_scope(stores, data["scope"])
    if "jurisdictions" in data:
        data["jurisdictions"] = check_jurisdictions(table, data["jurisdictions"])
    check_window(data.get("occurred_from", incident.occurred_from), data.get("occurred_until",
                                                                              incident.occurred_until))
    changed = [name for name, value in data.items() if getattr(incident, name) != value]
    before = incident.state
    if target is not None and target != incident.state:
        if NEXT.get(incident.state) != target:
            raise Invalid(f"an {incident.state} incident cannot become {target}",
                          errors={"state": [f"next state from {incident.state} is {NEXT.get(incident.state)}"]})
        changed.append("state")
    for name, value in data.items():
        setattr(incident, name, value)
    if target is not None and target != before:
        _enter(incident, target)
    if not changed:
        raise Invalid("nothing changed", errors={"reason": ["the request changes no fact"]})
    incident.version += 1
    incident.updated_at = utcnow()
    _version(session, incident, actor, sorted(set(changed)), reason)
    _audit(session, actor, incident.id, "incident.updated",
           {"version": incident.version, "changed": sorted(set(changed)), "state": incident.state,
            "previous_state": before, "risk": incident.risk})
    if incident.state == "closed" and before != "closed":
        kept = config.options(rt.settings).subjects_kept_days
        incident.subjects_destroy_at = incident.closed_at + timedelta(days=kept)  # type: ignore[operator]
        session.flush()
        incident.record = records.issue(rt, session, incident, table)
        incident.record_sha256 = records.sha256(incident.record)
        _audit(session, actor, incident.id, "incident.record_signed", {"sha256": incident.record_sha256})
    return incident


def _enter(incident: Incident, target: str) -> None:
    needs = {"assessed": ("risk", "risk_reasoning"), "closed": ("root_cause", "measures")}.get(target, ())
    missing = [n for n in needs if not getattr(incident, n)]
    if missing:
        raise Invalid(f"{target} needs {', '.join(missing)}", errors={n: [f"required to become {target}"]
                                                                     for n in missing})
    incident.state = target
    setattr(incident, _STAMP[target], utcnow())


def record_notification(session: Session, actor: Actor, incident_id: str, data: dict[str, Any]) -> \
        IncidentNotification:
    """That the authority or the people were notified, a later supplement (Art. 33(4)), or a reasoned decision
    not to notify."""
    incident = get(session, actor.app_id, incident_id)
    if incident.state == "closed":
        raise Conflict("the incident is closed; its record is signed and final")
    jurisdiction = data["jurisdiction"].upper()
    if jurisdiction not in incident.jurisdictions:
        raise Invalid("not a jurisdiction of the incident", errors={"jurisdiction": [
            f"the incident's jurisdictions are {incident.jurisdictions}"]})
    kind = data["kind"]
    if kind == "not_notified" and not data.get("reasoning"):
        raise Invalid("a decision not to notify needs its reasoning", errors={"reasoning": ["required"]})
    if kind == "supplement" and session.scalar(select(IncidentNotification.id).where(
            IncidentNotification.incident_id == incident.id, IncidentNotification.jurisdiction == jurisdiction,
            IncidentNotification.obligation == data["obligation"], IncidentNotification.kind == "notified")) is None:
        raise Invalid("a supplement follows a notification", errors={"kind": [
            "record the first notification (kind notified) before supplements"]})
    if data["at"] > utcnow() + timedelta(minutes=5):
        raise Invalid("a notification cannot be recorded ahead of time", errors={"at": ["must not be in the future"]})
    notice = IncidentNotification(incident_id=incident.id, jurisdiction=jurisdiction, obligation=data["obligation"],
                                  kind=kind, at=data["at"], reference=data.get("reference"),
                                  notified_by=data.get("notified_by"), reasoning=data.get("reasoning"),
                                  created_by=actor.name)
    session.add(notice)
    session.flush()
    _audit(session, actor, incident.id, f"incident.{kind}",
           {"notification": notice.id, "jurisdiction": jurisdiction, "obligation": data["obligation"],
            "at": notice.at.isoformat()})
    return notice


def notifications(session: Session, incident_id: str) -> list[IncidentNotification]:
    return list(session.scalars(select(IncidentNotification).where(IncidentNotification.incident_id == incident_id)
                                .order_by(IncidentNotification.at, IncidentNotification.id)))


def versions(session: Session, incident: Incident) -> list[IncidentVersion]:
    return list(session.scalars(select(IncidentVersion).where(IncidentVersion.incident_id == incident.id)
                                .order_by(IncidentVersion.version.desc())))


def timeline(session: Session, incident: Incident) -> list[dict[str, Any]]:
    """Every step taken on the incident, oldest first, from the audit trail (ids and states, no personal data)."""
    rows = session.scalars(select(AuditEvent).where(AuditEvent.resource_type == "incident",
                                                    AuditEvent.resource_id == incident.id)
                           .order_by(AuditEvent.at, AuditEvent.id))
    return [{"at": e.at, "actor": e.actor, "action": e.action, "details": e.details} for e in rows]


def view(session: Session, incident: Incident, table: clocks.Table,
         notices: list[IncidentNotification] | None = None, now: datetime | None = None) -> dict[str, Any]:
    """The incident as the API shows it: its facts, each obligation with its clock, and the notifications."""
    notices = notifications(session, incident.id) if notices is None else notices
    obligations = clocks.obligations(incident, notices, table, now)
    return {**{name: getattr(incident, name) for name in FACTS},
            "id": incident.id, "version": incident.version, "created_at": incident.created_at,
            "created_by": incident.created_by, "updated_at": incident.updated_at,
            "assessed_at": incident.assessed_at, "contained_at": incident.contained_at,
            "closed_at": incident.closed_at, "record": incident.record is not None,
            "record_sha256": incident.record_sha256, "obligations": obligations,
            "overdue": any(o["overdue"] for o in obligations),
            "notifications": [notification_view(n) for n in notices]}


def notification_view(n: IncidentNotification) -> dict[str, Any]:
    return {"id": n.id, "jurisdiction": n.jurisdiction, "obligation": n.obligation, "kind": n.kind, "at": n.at,
            "reference": n.reference, "notified_by": n.notified_by, "reasoning": n.reasoning,
            "created_at": n.created_at, "created_by": n.created_by}


def list_incidents(session: Session, app_id: int, table: clocks.Table, *, state: str | None = None,
                   severity: str | None = None, jurisdiction: str | None = None, overdue: bool | None = None,
                   offset: int = 0,
                   limit: int = 50) -> tuple[list[dict[str, Any]], int]:
    """The app's incidents, newest first; `overdue=true`: only those with an overdue obligation, the longest
    overdue first. An app's register is small (incidents, not events), so the clocks are computed here."""
    now = utcnow()
    stmt = select(Incident).where(Incident.app_id == app_id)
    if state is not None:
        stmt = stmt.where(Incident.state == state)
    if severity is not None:
        stmt = stmt.where(Incident.severity == severity)
    rows = list(session.scalars(stmt.order_by(Incident.discovered_at.desc(), Incident.id)))
    if jurisdiction is not None:
        rows = [r for r in rows if jurisdiction.upper() in r.jurisdictions]
    notices = clocks.notices_of(session, [r.id for r in rows])
    views = [view(session, r, table, notices[r.id], now) for r in rows]
    if overdue is not None:
        views = [v for v in views if v["overdue"] == overdue]
    if overdue:
        views.sort(key=lambda v: min(o["due_at"] for o in v["obligations"] if o["overdue"]))
    return views[offset:offset + limit], len(views)
