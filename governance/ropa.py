"""The records of processing (GDPR Art. 30): one activity per app and purpose, derived from the service's facts
plus the fields people keep; rendered as JSON, CSV or HTML, and frozen as signed snapshots. The caller commits."""

from __future__ import annotations

import csv
import hashlib
import html
import io
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from governance import facts, processors
from governance.models import Activity, RopaSnapshot
from governance.processors import Actor
from service import audit
from service.db import utcnow
from service.errors import NotFound
from service.ids import uuid7

PEOPLE_FIELDS = ("description", "controller", "joint_controller", "security_measures")
SNAPSHOT_TYPE = "governance-ropa-snapshot"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def controller_of(settings: Any) -> dict[str, Any]:
    c = settings.controller
    return {"name": c.name, "contact": c.contact, "email": c.email, "country": c.address.get("addressCountry"),
            "jurisdiction": c.jurisdiction}


def _kept(session: Session) -> dict[str, Activity]:
    return {a.key: a for a in session.scalars(select(Activity))}


def build(session: Session, stores: Any, settings: Any, app_id: int | None = None) -> dict[str, Any]:
    """The ROPA as data (JSON-ready): the controller, every activity, and the processor register."""
    controller = controller_of(settings)
    held = facts.store_categories(stores)
    kept_retention = facts.retention(session)
    register = processors.register_view(session)
    kept = _kept(session)
    activities = []
    for fact in facts.purposes(session, app_id):
        people = kept.get(fact.key)
        recipients = [p for p in register if facts.receives(p, fact)]
        transfers = [{"processor": p["key"], "country": c}
                     for p in recipients
                     for c in facts.abroad(p["countries"], controller["country"] or "", controller["jurisdiction"])]
        activities.append({
            "key": fact.key, "app": fact.app_slug, "app_name": fact.app_name, "policy": fact.policy,
            "purpose": fact.purpose, "purpose_description": fact.description, "lawful_basis": fact.lawful_basis,
            "required": fact.required, "purpose_retention": fact.retention,
            "categories": [{"category": c, "stores": [
                {"store": s, "retention": kept_retention.get((s, c))} for s in facts.holders(held, c)]}
                for c in fact.categories],
            "recipients": [{"processor": p["key"], "name": p["name"], "role": p["role"],
                            "countries": p["countries"], "categories": p["categories"]} for p in recipients],
            "third_party": fact.third_party,
            "transfers": transfers,
            "description": people.description if people else None,
            "controller": (people.controller if people and people.controller else controller["name"]),
            "joint_controller": people.joint_controller if people else None,
            "security_measures": people.security_measures if people else None,
        })
    return _jsonable({"controller": controller, "activities": activities,
                      "processors": [{k: p[k] for k in ("key", "name", "role", "countries", "categories", "purposes",
                                                         "dpa_date", "review_status", "next_review_due")}
                                     for p in register]})


def activity_keys(session: Session) -> set[str]:
    return {f.key for f in facts.purposes(session)}


def update_activity(session: Session, actor: Actor, key: str, data: Mapping[str, Any]) -> Activity:
    """Set the people-kept fields of an activity that exists (app/policy/purpose)."""
    if key not in activity_keys(session):
        raise NotFound(f"no processing activity {key!r} (app/policy/purpose)")
    row = session.scalar(select(Activity).where(Activity.key == key))
    if row is None:
        row = Activity(key=key)
        session.add(row)
    changed = sorted(k for k in PEOPLE_FIELDS if k in data and getattr(row, k) != data[k])
    for k in changed:
        setattr(row, k, data[k])
    row.updated_at, row.updated_by = utcnow(), actor.name
    session.flush()
    audit.record(session, app_id=actor.app_id, actor=actor.name, action="governance.activity_updated",
                 resource_type="governance_activity", resource_id=key, details={"changed": changed})
    return row


# --- renderings -----------------------------------------------------------------------------------------------

CSV_COLUMNS = ("key", "app", "policy", "purpose", "purpose_description", "lawful_basis", "categories", "stores",
               "retention", "recipients", "transfers", "third_party", "description", "controller",
               "joint_controller", "security_measures")


def _flat(activity: dict[str, Any]) -> dict[str, str]:
    places = [(c["category"], s) for c in activity["categories"] for s in c["stores"]]
    return {
        **{k: "" if activity[k] is None else str(activity[k]) for k in CSV_COLUMNS if k in activity
           and k not in ("categories", "recipients", "transfers")},
        "categories": "; ".join(c["category"] for c in activity["categories"]),
        "stores": "; ".join(f"{s['store']}:{c}" for c, s in places),
        "retention": "; ".join(f"{s['store']}:{c}={s['retention']['retain_for']} {s['retention']['action']}"
                               if s["retention"] else f"{s['store']}:{c}=none" for c, s in places),
        "recipients": "; ".join(f"{r['name']} ({r['role']})" for r in activity["recipients"]),
        "transfers": "; ".join(f"{t['processor']}:{t['country']}" for t in activity["transfers"]),
    }


def to_csv(record: dict[str, Any]) -> str:
    """One row per activity; lists joined with "; "."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for activity in record["activities"]:
        writer.writerow(_flat(activity))
    return out.getvalue()


def to_html(record: dict[str, Any]) -> str:
    """A plain, printable page: the controller, one table row per activity, and the processors."""
    e = html.escape
    c = record["controller"]
    head = "".join(f"<th scope=\"col\">{e(col.replace('_', ' '))}</th>" for col in CSV_COLUMNS)
    rows = "".join("<tr>" + "".join(f"<td>{e(v)}</td>" for v in _flat(a).values()) + "</tr>"
                   for a in record["activities"])
    procs = "".join(f"<tr><td>{e(p['name'])}</td><td>{e(p['role'])}</td><td>{e(', '.join(p['countries']))}</td>"
                    f"<td>{e(', '.join(p['categories']))}</td><td>{e(p['review_status'])}</td></tr>"
                    for p in record["processors"])
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Records of processing</title>"
            "</head><body><main><h1>Records of processing</h1>"
            f"<p>Controller: {e(c['name'])} ({e(c['email'])}), {e(c['country'] or '')}</p>"
            f"<table><caption>Processing activities</caption><thead><tr>{head}</tr></thead><tbody>{rows}</tbody>"
            "</table><table><caption>Processors</caption><thead><tr><th scope=\"col\">name</th>"
            "<th scope=\"col\">role</th><th scope=\"col\">countries</th><th scope=\"col\">categories</th>"
            f"<th scope=\"col\">review</th></tr></thead><tbody>{procs}</tbody></table></main></body></html>")


# --- snapshots ------------------------------------------------------------------------------------------------

def take_snapshot(session: Session, rt: Any, stores: Any, actor: Actor) -> RopaSnapshot:
    """Freeze the ROPA as it is now: a JWS signed with the receipt keys, dated, kept."""
    record = build(session, stores, rt.settings)
    snapshot_id = uuid7()
    now = utcnow()
    token = rt.keys.signer.sign({"iss": rt.settings.issuer, "jti": snapshot_id, "iat": int(now.timestamp()),
                                 "type": SNAPSHOT_TYPE, "sub": f"urn:ropa-snapshot:{snapshot_id}",
                                 "takenAt": now.isoformat(), "ropa": record}, typ="JWT")
    snapshot = RopaSnapshot(id=snapshot_id, created_at=now, created_by=actor.name,
                            activities=len(record["activities"]), token=token,
                            sha256=hashlib.sha256(token.encode("ascii")).hexdigest())
    session.add(snapshot)
    session.flush()
    audit.record(session, app_id=actor.app_id, actor=actor.name, action="governance.ropa_snapshot",
                 resource_type="governance_ropa_snapshot", resource_id=snapshot_id,
                 details={"activities": snapshot.activities, "sha256": snapshot.sha256})
    return snapshot


def snapshots(session: Session) -> list[RopaSnapshot]:
    """Newest first."""
    return list(session.scalars(select(RopaSnapshot).order_by(RopaSnapshot.created_at.desc(),
                                                              RopaSnapshot.id.desc())))


def get_snapshot(session: Session, snapshot_id: str) -> RopaSnapshot:
    snapshot = session.get(RopaSnapshot, snapshot_id)
    if snapshot is None:
        raise NotFound(f"no ROPA snapshot {snapshot_id!r}")
    return snapshot


def current_snapshot(session: Session) -> RopaSnapshot | None:
    """The newest snapshot, or None."""
    found = snapshots(session)
    return found[0] if found else None


def snapshot_view(rt: Any, snapshot: RopaSnapshot, with_record: bool = True) -> dict[str, Any]:
    out = {"id": snapshot.id, "created_at": snapshot.created_at, "created_by": snapshot.created_by,
           "activities": snapshot.activities, "sha256": snapshot.sha256}
    if with_record:
        out["jws"] = snapshot.token
        out["ropa"] = rt.keys.signer.verify(snapshot.token)["ropa"]
    return out
