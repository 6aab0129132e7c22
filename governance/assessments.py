"""Privacy impact assessments, callable without Flask: four sections prefilled from the service's facts and
completed by people, a review workflow, a signed frozen approval, and drift when an approved assessment's facts
change. The caller commits."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from governance import facts, processors
from governance.models import SECTIONS, Assessment
from governance.processors import Actor
from retention.periods import parse_duration
from service import audit
from service.crypto.signing import canonical_json
from service.db import utcnow
from service.errors import Conflict, Invalid, NotFound
from service.ids import uuid7
from service.tenancy import App

ASSESSMENT_TYPE = "governance-privacy-impact-assessment"
EDITABLE = ("draft", "changes_requested", "review_needed")
DEFAULT_REVIEW = timedelta(days=365)


def _app(session: Session, slug: str) -> App:
    app = session.scalar(select(App).where(App.slug == slug))
    if app is None:
        raise Invalid(f"no app {slug!r}", errors={"app": [f"no app {slug!r}"]})
    return app


@dataclass(frozen=True)
class Known:
    """The facts of every app, read once so that checking many assessments costs three queries."""

    purposes: list[facts.PurposeFact]
    held: dict[str, list[str]]
    retention: dict[tuple[str, str], dict[str, Any]]

    @classmethod
    def read(cls, session: Session, stores: Any, app_id: int | None = None) -> Known:
        return cls(facts.purposes(session, app_id), facts.store_categories(stores), facts.retention(session))


def derive(session: Session, stores: Any, app_id: int, activity: str | None,
           known: Known | None = None) -> dict[str, Any]:
    """The facts an assessment relies on (what drift compares): purposes and lawful bases, categories, the stores
    holding them with every category they hold, and the retention applied to each assessed category there."""
    known = known or Known.read(session, stores, app_id)
    found = [p for p in known.purposes if p.app_id == app_id and (activity is None or p.key == activity)]
    categories = list(dict.fromkeys(c for p in found for c in p.categories))
    involved = {s: cats for s, cats in known.held.items() if any(c in cats for c in categories)}
    return {
        "purposes": {p.key: {"lawful_basis": p.lawful_basis, "categories": list(p.categories),
                             "third_party": p.third_party} for p in found},
        "categories": categories,
        "stores": involved,
        "retention": {f"{s}/{c}": known.retention.get((s, c)) for s, cats in involved.items() for c in cats
                      if c in categories},
    }


def digest(fact_set: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(dict(fact_set))).hexdigest()


def prefill(session: Session, stores: Any, assessment: Assessment) -> dict[str, dict[str, Any]]:
    """Each section's facts as they are now (not frozen): what is collected and why, where it is kept, how it is
    used and by whom, and how long it lives and whether that is enforced."""
    now = derive(session, stores, assessment.app_id, assessment.activity)
    register = processors.register_view(session)
    last = facts.last_destruction(session)
    found = [p for p in facts.purposes(session, assessment.app_id)
             if assessment.activity is None or p.key == assessment.activity]
    return {
        "collection": {"categories": now["categories"],
                       "purposes": [{"activity": k, "lawful_basis": v["lawful_basis"],
                                     "categories": v["categories"]} for k, v in now["purposes"].items()]},
        "storage": {"stores": [{"store": s, "categories": cats} for s, cats in now["stores"].items()]},
        "use": {"purposes": [{"activity": p.key, "description": p.description, "lawful_basis": p.lawful_basis,
                              "third_party": p.third_party} for p in found],
                "recipients": sorted({r["key"] for p in found for r in register if facts.receives(r, p)})},
        "destruction": {"retention": [
            {"store": k.split("/", 1)[0], "category": k.split("/", 1)[1],
             "retain_for": r["retain_for"] if r else None, "action": r["action"] if r else None,
             "enforced": r is not None,
             "last_destruction": _iso(last.get(tuple(k.split("/", 1))))}  # type: ignore[arg-type]
            for k, r in now["retention"].items()]},
    }


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def get(session: Session, assessment_id: str) -> Assessment:
    found = session.get(Assessment, assessment_id)
    if found is None:
        raise NotFound(f"no assessment {assessment_id!r}")
    return found


def create(session: Session, actor: Actor, data: Mapping[str, Any]) -> Assessment:
    """A draft assessment of an app, or of one of its processing activities (app/policy/purpose)."""
    app = _app(session, data["app"])
    activity = data.get("activity")
    if activity is not None and activity not in {p.key for p in facts.purposes(session, app.id)}:
        raise Invalid(f"no processing activity {activity!r} in app {app.slug!r}",
                      errors={"activity": ["not an activity (app/policy/purpose) of this app"]})
    assessment = Assessment(id=uuid7(), app_id=app.id, activity=activity, title=data["title"], state="draft",
                            answers={}, risks=[], mitigations=[])
    session.add(assessment)
    session.flush()
    _audit(session, actor, assessment, "governance.assessment_created", {"app": app.slug, "activity": activity})
    return assessment


def _audit(session: Session, actor: Actor, assessment: Assessment, action: str,
           details: dict[str, Any] | None = None) -> None:
    audit.record(session, app_id=assessment.app_id, actor=actor.name, action=action,
                 resource_type="governance_assessment", resource_id=assessment.id,
                 details={"state": assessment.state, **(details or {})})


def _need(assessment: Assessment, *states: str) -> None:
    if assessment.state not in states:
        raise Conflict(f"the assessment is {assessment.state}; this needs it {' or '.join(states)}",
                       errors={"state": [assessment.state]})


def update(session: Session, actor: Actor, assessment_id: str, data: Mapping[str, Any]) -> Assessment:
    """Change the people's part (answers per section, risks, mitigations, title) while it is editable."""
    assessment = get(session, assessment_id)
    _need(assessment, *EDITABLE)
    risks = data.get("risks", assessment.risks)
    ids = [r["id"] for r in risks]
    if len(set(ids)) != len(ids):
        raise Invalid("risk ids must be unique", errors={"risks": ["duplicate risk id"]})
    mitigations = data.get("mitigations", assessment.mitigations)
    for i, m in enumerate(mitigations):
        if m["risk"] not in ids:
            raise Invalid(f"mitigation {i} names no risk", errors={"mitigations": {str(i): {"risk": ["no such risk"]}}})
    if "answers" in data:
        assessment.answers = {**assessment.answers, **data["answers"]}
    assessment.risks = [_jsonable(r) for r in risks]
    assessment.mitigations = [_jsonable(m) for m in mitigations]
    if "title" in data:
        assessment.title = data["title"]
    assessment.updated_at = utcnow()
    session.flush()
    _audit(session, actor, assessment, "governance.assessment_updated",
           {"changed": sorted(k for k in ("answers", "risks", "mitigations", "title") if k in data)})
    return assessment


def _jsonable(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _iso(v) for k, v in item.items()}


def submit(session: Session, actor: Actor, assessment_id: str) -> Assessment:
    assessment = get(session, assessment_id)
    _need(assessment, *EDITABLE)
    missing = [s for s in SECTIONS if not (assessment.answers.get(s) or "").strip()]
    if missing:
        raise Conflict("every section needs an answer before review",
                       errors={"answers": {s: ["not answered"] for s in missing}})
    assessment.state, assessment.updated_at = "in_review", utcnow()
    _audit(session, actor, assessment, "governance.assessment_submitted")
    return assessment


def request_changes(session: Session, actor: Actor, assessment_id: str, reviewer: str, comment: str) -> Assessment:
    assessment = get(session, assessment_id)
    _need(assessment, "in_review")
    assessment.state, assessment.reviewer_comment, assessment.updated_at = "changes_requested", comment, utcnow()
    _audit(session, actor, assessment, "governance.assessment_changes_requested", {"reviewer": reviewer})
    return assessment


def approve(session: Session, rt: Any, stores: Any, actor: Actor, assessment_id: str, approver: str,
            review_due: date | None = None) -> Assessment:
    """Approve: freeze the facts it relied on (and their digest), sign the whole assessment, set the review date
    (default a year from now)."""
    assessment = get(session, assessment_id)
    _need(assessment, "in_review")
    now = utcnow()
    assessment.facts = derive(session, stores, assessment.app_id, assessment.activity)
    assessment.facts_digest = digest(assessment.facts)
    assessment.state, assessment.drift, assessment.reviewer_comment = "approved", None, None
    assessment.approved_by, assessment.approved_at = approver, now
    assessment.review_due = review_due or (now + DEFAULT_REVIEW).date()
    assessment.updated_at = now
    assessment.token = rt.keys.signer.sign({
        "iss": rt.settings.issuer, "jti": assessment.id, "iat": int(now.timestamp()), "type": ASSESSMENT_TYPE,
        "sub": f"urn:assessment:{assessment.id}", "assessment": _frozen(session, assessment)}, typ="JWT")
    session.flush()
    _audit(session, actor, assessment, "governance.assessment_approved",
           {"approver": approver, "review_due": assessment.review_due.isoformat(),
            "facts_digest": assessment.facts_digest})
    return assessment


def _frozen(session: Session, a: Assessment) -> dict[str, Any]:
    app = session.get(App, a.app_id)
    return {"id": a.id, "app": app.slug if app else None, "activity": a.activity, "title": a.title,
            "answers": a.answers, "risks": a.risks, "mitigations": a.mitigations, "facts": a.facts,
            "factsDigest": a.facts_digest, "approvedBy": a.approved_by, "approvedAt": _iso(a.approved_at),
            "reviewDue": _iso(a.review_due)}


# --- drift ----------------------------------------------------------------------------------------------------

def _length(retain_for: str) -> datetime:
    # Durations in months and years compare only against a date; any fixed one orders them.
    return datetime(2000, 1, 1, tzinfo=UTC) + parse_duration(retain_for)


def changes(then: Mapping[str, Any], now: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What changed since approval, among what drift watches: purposes added, categories a store gained (or a
    new store holding an assessed category), retention disabled or lengthened for an assessed category."""
    out: list[dict[str, Any]] = []
    for key in now["purposes"]:
        if key not in then["purposes"]:
            out.append({"kind": "purpose_added", "subject": key, "was": None, "now": now["purposes"][key]})
    for store, categories in now["stores"].items():
        gained = [c for c in categories if c not in then["stores"].get(store, [])]
        if gained:
            out.append({"kind": "store_category_added", "subject": store, "was": then["stores"].get(store),
                        "now": categories})
    for key, was in then["retention"].items():
        if was is None:
            continue
        current = now["retention"].get(key)
        if current is None:
            out.append({"kind": "retention_disabled", "subject": key, "was": was, "now": None})
        elif _length(current["retain_for"]) > _length(was["retain_for"]):
            out.append({"kind": "retention_lengthened", "subject": key, "was": was, "now": current})
    return out


def refresh(session: Session, stores: Any, actor: Actor | None = None) -> list[Assessment]:
    """Re-derive the facts of every approved (or already drifted) assessment; mark those whose facts changed
    `review_needed` with the list of changes. Returns the assessments newly marked."""
    actor = actor or Actor("system")
    marked = []
    known = Known.read(session, stores)
    for assessment in session.scalars(select(Assessment).where(Assessment.state.in_(("approved", "review_needed")))):
        if not assessment.facts:
            continue
        now = derive(session, stores, assessment.app_id, assessment.activity, known)
        if digest(now) == assessment.facts_digest:
            continue
        found = changes(assessment.facts or {}, now)
        if not found or found == assessment.drift:
            continue
        assessment.drift = found
        if assessment.state == "approved":
            assessment.state = "review_needed"
            marked.append(assessment)
        assessment.updated_at = utcnow()
        _audit(session, actor, assessment, "governance.assessment_drifted",
               {"changes": [{"kind": c["kind"], "subject": c["subject"]} for c in found]})
    session.flush()
    return marked


def list_assessments(session: Session, state: str | None = None, app: str | None = None) -> list[Assessment]:
    stmt = select(Assessment).order_by(Assessment.created_at.desc(), Assessment.id.desc())
    if state is not None:
        stmt = stmt.where(Assessment.state == state)
    if app is not None:
        stmt = stmt.join(App, App.id == Assessment.app_id).where(App.slug == app)
    return list(session.scalars(stmt))


def _score(risk: Mapping[str, Any]) -> dict[str, Any]:
    score = risk["likelihood"] * risk["impact"]
    return {**risk, "score": score, "level": "low" if score <= 4 else "medium" if score <= 12 else "high"}


def view(session: Session, stores: Any, assessment: Assessment, with_prefill: bool = True) -> dict[str, Any]:
    """The assessment as the API, the CLI and the evidence pack show it."""
    app = session.get(App, assessment.app_id)
    filled = prefill(session, stores, assessment) if with_prefill else None
    return {
        "id": assessment.id, "app": app.slug if app else None, "activity": assessment.activity,
        "title": assessment.title, "state": assessment.state,
        "sections": {s: {"facts": filled[s] if filled else None, "answer": assessment.answers.get(s)}
                     for s in SECTIONS},
        "risks": [_score(r) for r in assessment.risks], "mitigations": assessment.mitigations,
        "drift": assessment.drift or [], "reviewer_comment": assessment.reviewer_comment,
        "approved_by": assessment.approved_by, "approved_at": assessment.approved_at,
        "review_due": assessment.review_due, "facts_digest": assessment.facts_digest, "jws": assessment.token,
        "created_at": assessment.created_at, "updated_at": assessment.updated_at,
    }


def with_approvals(session: Session, stores: Any) -> list[dict[str, Any]]:
    """Every assessment with its approval (approver, date, review date, signed JWS) and drift, for the pack."""
    return [view(session, stores, a, with_prefill=False) for a in list_assessments(session)]
