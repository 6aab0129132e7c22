"""Gaps in the governance records, derived on every read from the service's facts: what an auditor would ask
about first. Each finding has a stable id (kind:subject), so it can be tracked while it lasts."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy.orm import Session

from consent.schemas import LAWFUL_BASES
from governance import assessments, facts, fanout, processors
from service.db import utcnow

KINDS = ("purpose_without_lawful_basis", "category_without_retention", "category_not_covered",
         "processor_review_not_current", "third_party_not_registered", "assessment_review_needed",
         "assessment_review_due", "erasure_notice_unacknowledged")


def _finding(kind: str, subject: str, message: str, **details: Any) -> dict[str, Any]:
    return {"id": f"{kind}:{subject}", "kind": kind, "subject": subject, "message": message, "details": details}


def findings(session: Session, stores: Any, today: date | None = None, ack_days: int = 7) -> list[dict[str, Any]]:
    """Every open finding, by kind then subject. Refreshes assessments' drift first (the caller commits).
    `ack_days`: an erasure notice not acknowledged that many days after it was made is a finding."""
    today = today or utcnow().date()
    assessments.refresh(session, stores)
    out = []
    found = facts.purposes(session)
    for p in found:
        if p.lawful_basis not in LAWFUL_BASES:
            out.append(_finding("purpose_without_lawful_basis", p.key,
                                f"purpose {p.key} states no lawful basis", lawful_basis=p.lawful_basis))
    held = facts.store_categories(stores)
    kept = facts.retention(session)
    covered = {c for p in found for c in p.categories}
    for store, categories in held.items():
        for category in categories:
            if (store, category) not in kept:
                out.append(_finding("category_without_retention", f"{store}/{category}",
                                    f"{store} holds {category} under no enabled retention policy"))
            if category not in covered:
                out.append(_finding("category_not_covered", f"{store}/{category}",
                                    f"{store} holds {category}, which no purpose names"))
    register = processors.register_view(session, today)
    for proc in register:
        if proc["review_status"] != "current":
            out.append(_finding("processor_review_not_current", proc["key"],
                                f"processor {proc['name']}: due-diligence review {proc['review_status']}",
                                status=proc["review_status"], next_due=_iso(proc["next_review_due"])))
    for p in found:
        if p.third_party and not facts.names_processor(p.third_party, register):
            out.append(_finding("third_party_not_registered", p.key,
                                f"purpose {p.key} names a third party that is not in the processor register",
                                third_party=p.third_party))
    for a in assessments.list_assessments(session):
        if a.state == "review_needed":
            out.append(_finding("assessment_review_needed", a.id, f"assessment {a.title!r}: its facts changed",
                                changes=[{"kind": c["kind"], "subject": c["subject"]} for c in a.drift or []]))
        elif a.state == "approved" and a.review_due is not None and a.review_due < today:
            out.append(_finding("assessment_review_due", a.id, f"assessment {a.title!r}: review was due",
                                review_due=a.review_due.isoformat()))
    for n in fanout.unacknowledged(session, utcnow() - timedelta(days=ack_days)):
        out.append(_finding("erasure_notice_unacknowledged", n.id,
                            f"processor {n.processor_key} has not acknowledged erasure request {n.request_id}",
                            request=n.request_id, processor=n.processor_key, channel=n.channel, state=n.state,
                            created_at=n.created_at.isoformat()))
    return sorted(out, key=lambda f: (KINDS.index(f["kind"]), f["subject"]))


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def open_findings(session: Session, stores: Any, today: date | None = None,
                  ack_days: int = 7) -> list[dict[str, Any]]:
    """The findings open now (for the evidence pack); same as `findings`."""
    return findings(session, stores, today, ack_days)
