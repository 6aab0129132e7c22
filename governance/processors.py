"""The processor register, callable without Flask: create, change, record due-diligence reviews, and read the
register with each processor's review status. The caller commits."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from governance.models import Processor, ProcessorReview
from service import audit
from service.db import utcnow
from service.errors import Conflict, Invalid, NotFound

FIELDS = ("name", "role", "countries", "categories", "purposes", "dpa_date", "contact", "erasure_webhook",
          "erasure_email")


@dataclass(frozen=True)
class Actor:
    """Who changes governance records: "key:<key id>" (with the key's app) or "cli:<command>"."""

    name: str
    app_id: int | None = None


def _context(processor: Processor) -> str:
    return f"governance_processor:{processor.id}:erasure_secret"


def erasure_secret(rt: Any, processor: Processor) -> str | None:
    """The webhook's HMAC secret in clear, for whoever signs erasure notices (never shown by the API again)."""
    if processor.erasure_secret is None:
        return None
    return rt.keys.fields.decrypt(processor.erasure_secret, _context(processor)).decode()


def _new_secret(rt: Any, processor: Processor) -> str:
    secret = secrets.token_urlsafe(32)
    processor.erasure_secret = rt.keys.fields.encrypt(secret.encode(), _context(processor))
    return secret


def get_processor(session: Session, key: str) -> Processor:
    processor = session.scalar(select(Processor).where(Processor.key == key))
    if processor is None:
        raise NotFound(f"no processor {key!r}")
    return processor


def _check(fields: Mapping[str, Any]) -> None:
    if fields.get("erasure_webhook") and fields.get("erasure_email"):
        raise Invalid("give a webhook or an email address for erasure, not both",
                      errors={"erasure_email": ["not with erasure_webhook"]})


def _audited(fields: Mapping[str, Any]) -> dict[str, Any]:
    # Contacts may name people: the audit trail keeps which fields changed, not the contact itself.
    return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in fields.items()
            if k not in ("contact", "erasure_email", "erasure_webhook")}


def create_processor(session: Session, rt: Any, actor: Actor, data: Mapping[str, Any]) -> tuple[Processor,
                                                                                                 str | None]:
    """Register a processor; returns it and, when it is reached by webhook, the new HMAC secret (shown once)."""
    if session.scalar(select(Processor.id).where(Processor.key == data["key"])) is not None:
        raise Conflict(f"processor {data['key']!r} already exists", errors={"key": ["already exists"]})
    fields = {k: data[k] for k in FIELDS if k in data}
    _check(fields)
    processor = Processor(key=data["key"], **fields)
    session.add(processor)
    session.flush()
    secret = _new_secret(rt, processor) if processor.erasure_webhook else None
    session.flush()
    audit.record(session, app_id=actor.app_id, actor=actor.name, action="governance.processor_created",
                 resource_type="governance_processor", resource_id=processor.key, details=_audited(fields))
    return processor, secret


def update_processor(session: Session, rt: Any, actor: Actor, key: str, data: Mapping[str, Any],
                     rotate_secret: bool = False) -> tuple[Processor, str | None]:
    """Change fields; a new secret when asked, or when a webhook replaces an email address. Returns the new
    secret if one was made."""
    processor = get_processor(session, key)
    fields = {k: data[k] for k in FIELDS if k in data}
    # One way to reach them at a time: giving one of webhook and email clears the other.
    if fields.get("erasure_webhook") and "erasure_email" not in fields:
        fields["erasure_email"] = None
    if fields.get("erasure_email") and "erasure_webhook" not in fields:
        fields["erasure_webhook"] = None
    _check(fields)
    changed = sorted(k for k, v in fields.items() if getattr(processor, k) != v)
    for k in changed:
        setattr(processor, k, fields[k])
    secret = None
    if processor.erasure_webhook and (rotate_secret or processor.erasure_secret is None):
        secret = _new_secret(rt, processor)
    if not processor.erasure_webhook:
        processor.erasure_secret = None
    if changed or secret:
        processor.updated_at = utcnow()
        audit.record(session, app_id=actor.app_id, actor=actor.name, action="governance.processor_updated",
                     resource_type="governance_processor", resource_id=key,
                     details={"changed": changed, "secret_rotated": secret is not None})
    session.flush()
    return processor, secret


def delete_processor(session: Session, actor: Actor, key: str) -> None:
    processor = get_processor(session, key)
    # The reviews go in a statement of their own, before the processor: deleted one by one in the session, the
    # unit of work (which knows no relationship between the two) could flush the processor first (500).
    session.execute(delete(ProcessorReview).where(ProcessorReview.processor_id == processor.id))
    session.delete(processor)
    audit.record(session, app_id=actor.app_id, actor=actor.name, action="governance.processor_deleted",
                 resource_type="governance_processor", resource_id=key)
    session.flush()


def add_review(session: Session, actor: Actor, key: str, data: Mapping[str, Any]) -> ProcessorReview:
    processor = get_processor(session, key)
    if data["next_due"] <= data["reviewed_on"]:
        raise Invalid("the next review falls after this one", errors={"next_due": ["must be after reviewed_on"]})
    review = ProcessorReview(processor_id=processor.id, reviewed_on=data["reviewed_on"], result=data["result"],
                             reviewer=data["reviewer"], next_due=data["next_due"], notes=data.get("notes"))
    session.add(review)
    session.flush()
    audit.record(session, app_id=actor.app_id, actor=actor.name, action="governance.processor_reviewed",
                 resource_type="governance_processor", resource_id=key,
                 details={"review": review.id, "result": review.result, "reviewed_on": review.reviewed_on.isoformat(),
                          "next_due": review.next_due.isoformat()})
    return review


def reviews(session: Session, processor: Processor) -> list[ProcessorReview]:
    """Newest first."""
    return list(session.scalars(select(ProcessorReview).where(ProcessorReview.processor_id == processor.id)
                                .order_by(ProcessorReview.reviewed_on.desc(), ProcessorReview.id.desc())))


def review_status(latest: ProcessorReview | None, today: date) -> str:
    """`current`, `overdue` (next due passed), `failed` (the latest review failed) or `missing`."""
    if latest is None:
        return "missing"
    if latest.result == "failed":
        return "failed"
    return "overdue" if latest.next_due < today else "current"


def view(session: Session, processor: Processor, today: date | None = None,
         history: list[ProcessorReview] | None = None) -> dict[str, Any]:
    """The processor as the API, the ROPA and the evidence pack show it (never the secret)."""
    history = reviews(session, processor) if history is None else history
    latest = history[0] if history else None
    return {
        "key": processor.key, "name": processor.name, "role": processor.role,
        "countries": list(processor.countries), "categories": list(processor.categories),
        "purposes": list(processor.purposes), "dpa_date": processor.dpa_date, "contact": processor.contact,
        "erasure": {"webhook": processor.erasure_webhook, "email": processor.erasure_email,
                    "has_secret": processor.erasure_secret is not None},
        "reviews": [{"id": r.id, "reviewed_on": r.reviewed_on, "result": r.result, "reviewer": r.reviewer,
                     "next_due": r.next_due, "notes": r.notes} for r in history],
        "review_status": review_status(latest, today or utcnow().date()),
        "next_review_due": latest.next_due if latest else None,
        "created_at": processor.created_at, "updated_at": processor.updated_at,
    }


def list_processors(session: Session) -> list[Processor]:
    return list(session.scalars(select(Processor).order_by(Processor.key)))


def register_view(session: Session, today: date | None = None) -> list[dict[str, Any]]:
    """The whole register with each processor's review status (for the evidence pack and the ROPA)."""
    by_processor: dict[int, list[ProcessorReview]] = {}
    for review in session.scalars(select(ProcessorReview).order_by(ProcessorReview.reviewed_on.desc(),
                                                                   ProcessorReview.id.desc())):
        by_processor.setdefault(review.processor_id, []).append(review)  # one query for the whole register
    return [view(session, p, today, by_processor.get(p.id, [])) for p in list_processors(session)]
