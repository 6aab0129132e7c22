"""Job entry points (RQ workers, or in-process in the embedded default) and handing a run to the queue."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, or_, select

from incidents import assessment, campaigns
from incidents.models import AssessmentRun, Campaign, Incident
from service import audit
from service.db import utcnow
from service.runtime import runtime
from service.stores.registry import registry_for

log = logging.getLogger(__name__)
RETRIES = 3
RETRY_INTERVALS = (10, 60, 300)


def job_id(run_id: str) -> str:
    return f"incident-assessment-{run_id}"


def dispatch(queue: Any, run_id: str) -> bool:
    """Hand the run to the `default` queue after it is committed; never raises: a run the queue could not take
    stays `queued` and the scheduler's pass (`maintain`) dispatches it again."""
    try:
        queue.enqueue(execute_assessment, run_id, queue="default", job_id=job_id(run_id), retries=RETRIES,
                      retry_intervals=RETRY_INTERVALS, timeout=6 * 3600)
    except Exception as exc:  # noqa: BLE001 - the queue is down (or, in-process, the run failed: it says how)
        log.warning("assessment run %s: not dispatched (%s)", run_id, type(exc).__name__)
        return False
    return True


def dispatch_campaign(queue: Any, campaign_id: str) -> bool:
    """Hand a campaign to the `default` queue after it is committed; never raises (`maintain` re-dispatches)."""
    try:
        queue.enqueue(execute_campaign, campaign_id, queue="default", job_id=f"incident-campaign-{campaign_id}",
                      retries=RETRIES, retry_intervals=RETRY_INTERVALS, timeout=24 * 3600)
    except Exception as exc:  # noqa: BLE001 - as dispatch
        log.warning("campaign %s: not dispatched (%s)", campaign_id, type(exc).__name__)
        return False
    return True


def execute_campaign(campaign_id: str) -> str | None:
    """Execute or resume one campaign; a second delivery finds it taken or done."""
    return campaigns.execute(runtime(), campaign_id)


def execute_assessment(run_id: str) -> str | None:
    """Execute or resume one assessment run; a second delivery finds it taken or done."""
    rt = runtime()
    return assessment.execute(rt, registry_for(rt), run_id)


def _stranded(model: Any, now: Any) -> Any:
    """Left queued for a minute (its job lost, or never taken), or running with a lapsed lease (its worker died)."""
    return or_(and_(model.state == "queued", model.created_at < now - timedelta(minutes=1)),
               and_(model.state == "running", model.lease_expires_at < now))


def maintain() -> dict[str, int]:
    """The scheduler's pass: dispatch again the runs and campaigns left queued or whose attempt died, and
    destroy the subject lists of incidents past their retention. Both are idempotent."""
    rt = runtime()
    now = utcnow()
    with rt.db.sessions() as session:
        stranded = list(session.scalars(select(AssessmentRun.id).where(_stranded(AssessmentRun, now))))
        lost = list(session.scalars(select(Campaign.id).where(_stranded(Campaign, now))))
    for run_id in stranded:
        dispatch(rt.queue, run_id)
    for campaign_id in lost:
        dispatch_campaign(rt.queue, campaign_id)
    destroyed = 0
    with rt.db.session() as session:
        due = session.execute(select(AssessmentRun.id, Incident.id, Incident.app_id)
                              .join(Incident, Incident.id == AssessmentRun.incident_id)
                              .where(Incident.subjects_destroy_at < now,
                                     AssessmentRun.subjects_destroyed_at.is_(None))).all()
        for run_id, incident_id, app_id in due:
            gone = assessment.destroy_subjects(session, run_id)
            destroyed += gone
            audit.record(session, app_id=app_id, actor="system", action="incident.subjects_destroyed",
                         resource_type="incident", resource_id=incident_id, details={"run": run_id, "count": gone})
    return {"dispatched": len(stranded) + len(lost), "destroyed": destroyed}
