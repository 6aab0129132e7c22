"""Notice campaigns to the people an assessment found, callable without Flask.

A campaign takes the message per language and an assessment run. A dry run counts who would be written to (people
with an email) and who cannot be reached; a real campaign needs a succeeded dry run of the same run and messages,
and one per run at most (nobody gets the same incident's notice from two campaigns). The job walks the run's
people in id order, a batch per transaction: each person gets a delivery row, unique per (campaign, person), and
its outbox row (service.mail, encrypted) in the same transaction, so a worker killed anywhere, or a retry, never
queues a person twice, and a resumed attempt picks up the people without a delivery. Throttled to `per_minute`. Each
notice is in the language the person last gave consent in and links to the privacy centre's page about the incident
(incidents.notices). Delivery (SMTP or .eml files), bounces and failures are the outbox's: the report reads each
delivery's mail state.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from incidents import assessment, config, leases, notices
from incidents.models import AffectedSubject, AssessmentRun, Campaign, Delivery, Incident
from service import audit
from service.db import utcnow
from service.errors import Conflict, Invalid, NotFound
from service.mail import delivery, outbox
from service.mail.models import MailMessage
from service.tenancy import App

log = logging.getLogger(__name__)
BATCH = 100


def _audit(session: Session, app_id: int, actor: str, incident_id: str, action: str,
           details: dict[str, Any]) -> None:
    audit.record(session, app_id=app_id, actor=actor, action=action, resource_type="incident",
                 resource_id=incident_id, details=details)


def create(session: Session, incident: Incident, actor: str, data: dict[str, Any]) -> Campaign:
    """A campaign over `run` (default: the latest succeeded assessment), in the caller's transaction."""
    if incident.state == "closed":
        raise Conflict("the incident is closed")
    if data.get("run"):
        run = session.get(AssessmentRun, data["run"])
        if run is None or run.incident_id != incident.id or run.state != "succeeded":
            raise Invalid("not a succeeded assessment of this incident", errors={"run": ["not a succeeded run"]})
    else:
        run = assessment.latest(session, incident.id)
        if run is None:
            raise Invalid("a campaign needs an assessment of who was affected first",
                          errors={"run": ["no succeeded assessment run: POST .../assessment-runs first"]})
    if run.subjects_destroyed_at is not None:
        raise Conflict("the assessment's subject list has been destroyed")
    messages = data["messages"]
    if not data["dry_run"]:
        dry = session.scalars(select(Campaign.messages).where(Campaign.run_id == run.id, Campaign.dry_run.is_(True),
                                                              Campaign.state == "succeeded"))
        if not any(previewed == messages for previewed in dry):
            raise Invalid("preview the campaign first", errors={"dry_run": [
                "run a dry run of this assessment with the same messages first"]})
        sent = session.scalar(select(Campaign.id).where(Campaign.run_id == run.id, Campaign.dry_run.is_(False)))
        if sent is not None:
            raise Conflict(f"campaign {sent} already notifies the people of this assessment", detail={"campaign": sent})
    campaign = Campaign(id=str(uuid.uuid4()), incident_id=incident.id, run_id=run.id, dry_run=data["dry_run"],
                        state="queued", messages=messages, per_minute=data.get("per_minute"), requested_by=actor)
    session.add(campaign)
    session.flush()
    _audit(session, incident.app_id, actor, incident.id, "incident.campaign_requested",
           {"campaign": campaign.id, "run": run.id, "dry_run": campaign.dry_run, "per_minute": campaign.per_minute,
            "languages": sorted(messages)})
    return campaign


def get(session: Session, incident: Incident, campaign_id: str) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or campaign.incident_id != incident.id:
        raise NotFound(f"no campaign {campaign_id!r}")
    return campaign


def of(session: Session, incident_id: str) -> list[Campaign]:
    """The incident's campaigns, newest first."""
    return list(session.scalars(select(Campaign).where(Campaign.incident_id == incident_id)
                                .order_by(Campaign.created_at.desc(), Campaign.id)))


def report(session: Session, campaign: Campaign) -> dict[str, Any]:
    """Progress and final counts: people reachable and not, notices queued, and the outbox's states (sent,
    failed with the server's reply kept in the outbox, unconfirmed after a crash mid-send)."""
    people = session.scalar(select(func.count()).where(AffectedSubject.run_id == campaign.run_id)) or 0
    reachable = session.scalar(select(func.count()).where(AffectedSubject.run_id == campaign.run_id,
                                                          AffectedSubject.has_contact.is_(True))) or 0
    states = {state: n for state, n in session.execute(
        select(MailMessage.state, func.count()).join(Delivery, Delivery.mail_id == MailMessage.id)
        .where(Delivery.campaign_id == campaign.id).group_by(MailMessage.state))}
    queued = session.scalar(select(func.count()).where(Delivery.campaign_id == campaign.id)) or 0
    return {"id": campaign.id, "run": campaign.run_id, "dry_run": campaign.dry_run, "state": campaign.state,
            "per_minute": campaign.per_minute, "languages": sorted(campaign.messages),
            "requested_by": campaign.requested_by, "created_at": campaign.created_at,
            "started_at": campaign.started_at, "finished_at": campaign.finished_at, "attempts": campaign.attempts,
            "error": campaign.error,
            "counts": {"people": people, "reachable": reachable, "unreachable": people - reachable,
                       "notices": queued, "mail": states, **(campaign.counts or {})}}


def execute(rt: Any, campaign_id: str) -> str | None:
    """Execute or resume a campaign; None when another attempt holds it or it has finished. Commits per batch."""
    ttl = config.options(rt.settings).lease_seconds
    token = leases.claim(rt.db, Campaign, campaign_id, ttl)
    if token is None:
        return None
    with rt.db.sessions() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        incident = session.get(Incident, campaign.incident_id)
        assert incident is not None
        run_id, dry_run, per_minute = campaign.run_id, campaign.dry_run, campaign.per_minute
        messages, app_id, incident_id = dict(campaign.messages), incident.app_id, incident.id
    try:
        if not dry_run:
            _send(rt, campaign_id, token, ttl, run_id, app_id, incident_id, messages, per_minute)
    except leases.LeaseLost:
        log.warning("campaign %s: lease lost; another attempt carries on", campaign_id)
        return None
    with rt.db.session() as session:
        leases.renew(session, Campaign, campaign_id, token, ttl)
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        campaign.state, campaign.finished_at = "succeeded", utcnow()
        campaign.lease_token = campaign.lease_expires_at = None
        summary = report(session, campaign)["counts"]
        _audit(session, app_id, "system", incident_id, "incident.campaign_finished",
               {"campaign": campaign_id, "dry_run": dry_run, "people": summary["people"],
                "reachable": summary["reachable"], "notices": summary["notices"]})
    return "succeeded"


def _send(rt: Any, campaign_id: str, token: str, ttl: int, run_id: str, app_id: int, incident_id: str,
          messages: dict[str, Any], per_minute: int | None) -> None:
    size = min(BATCH, per_minute) if per_minute else BATCH
    with rt.db.sessions() as session:
        slug = session.scalar(select(App.slug).where(App.id == app_id))
    links = {key: notices.page_url(rt.settings.public_url, slug, rt.keys, app_id, campaign_id, key)
             for key in messages}
    while True:
        started = time.monotonic()
        with rt.db.session() as session:
            leases.renew(session, Campaign, campaign_id, token, ttl)
            done = select(Delivery.subject_id).where(Delivery.campaign_id == campaign_id,
                                                     Delivery.subject_id.is_not(None))
            batch = list(session.scalars(select(AffectedSubject).where(
                AffectedSubject.run_id == run_id, AffectedSubject.has_contact.is_(True),
                AffectedSubject.id.not_in(done)).order_by(AffectedSubject.id).limit(size)))
            if not batch:
                return
            queued: list[str] = []
            identities = {person.id: assessment.identity_of(rt.keys, person) for person in batch}
            language = notices.languages(session, rt.keys, app_id,
                                         {p: i.get("user_id", []) for p, i in identities.items()}, messages)
            for person in batch:
                key = language[person.id]
                text = messages[key]
                row = outbox.queue(session, rt, kind="notice", recipient=identities[person.id]["email"][0],
                                   locale=notices.PAGE_LOCALE[key], app_id=app_id, ref=campaign_id,
                                   context={"request_id": incident_id, "link": None, "notice_link": links[key],
                                            "notice_subject": text["subject"], "notice_text": text["text"]},
                                   dispatch=False)
                session.add(Delivery(campaign_id=campaign_id, subject_id=person.id, state="queued", mail_id=row.id))
                queued.append(row.id)
        try:  # committed: the batch goes out over one SMTP connection
            delivery.enqueue_batch(rt, queued)
        except Exception:  # the rows are committed: the mail sweep enqueues them
            log.warning("campaign %s: a delivery batch not enqueued; the sweep will pick it up", campaign_id,
                        exc_info=True)
        if per_minute:  # the throttle: this batch's share of a minute
            time.sleep(max(0.0, len(batch) * 60 / per_minute - (time.monotonic() - started)))
