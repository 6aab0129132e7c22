"""HTTP routes of the incidents API (thin: validation by schemas, logic in incidents.cases, .assessment and
.report). Scope `incidents:manage`, which an app's `admin` implies; an incident belongs to the key's app."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app
from flask_smorest.pagination import PaginationParameters
from sqlalchemy.orm import Session

from incidents import assessment, campaigns, cases, clocks, jobs, report, schemas
from service.api import ApiBlueprint, link, links
from service.auth import current_principal, require_scope
from service.errors import NotFound

blp = ApiBlueprint("incidents", __name__, url_prefix="/v1/incidents",
                   description="Breach and incident register, legal clocks, assessments and reports")
SCOPE = "incidents:manage"


# Where an incident's id is used next (from its creation or any answer about it).
_ID = {"path.incident_id": "$response.body#/id"}
INCIDENT_LINKS = {
    "get": link("get", "/v1/incidents/{incident_id}", "The incident and its clocks", parameters=_ID),
    "update": link("patch", "/v1/incidents/{incident_id}", "Change its facts or state", parameters=_ID),
    "versions": link("get", "/v1/incidents/{incident_id}/versions", "Its versions", parameters=_ID),
    "timeline": link("get", "/v1/incidents/{incident_id}/timeline", "Its timeline", parameters=_ID),
    "notify": link("post", "/v1/incidents/{incident_id}/notifications", "Record a notification", parameters=_ID),
    "assess": link("post", "/v1/incidents/{incident_id}/assessment-runs", "Assess who was affected",
                   parameters=_ID),
    "report": link("get", "/v1/incidents/{incident_id}/report", "The report to the authority", parameters=_ID),
    "record": link("get", "/v1/incidents/{incident_id}/record", "Its signed record", parameters=_ID),
}
# From a new assessment run (its incident's id from the request, its own from the answer) to its state and retry.
_RUN = {"path.incident_id": "$request.path.incident_id", "path.run_id": "$response.body#/id"}
RUN_LINKS = {
    "get": link("get", "/v1/incidents/{incident_id}/assessment-runs/{run_id}", "The run's state", parameters=_RUN),
    "retry": link("post", "/v1/incidents/{incident_id}/assessment-runs/{run_id}/retry", "Retry a failed run",
                  parameters=_RUN),
}


def _db() -> Any:
    return current_app.extensions["db"]


def _rt() -> Any:
    return current_app.extensions["runtime"]


def _table() -> clocks.Table:
    return clocks.current_table(_rt().settings)


def _actor() -> cases.Actor:
    principal = current_principal()
    return cases.Actor(f"key:{principal.key_id}", principal.app_id)


def readiness(session: Session) -> dict[str, Any]:
    """/readyz's `incidents` detail, with the app's clock table."""
    return clocks.readiness(session, _table())


@blp.post("")
@require_scope(SCOPE)
@blp.arguments(schemas.IncidentIn)
@blp.response(201, schemas.IncidentOut)
@blp.doc(**links(201, **INCIDENT_LINKS))
def create_incident(data: dict[str, Any]) -> Any:
    """Open an incident: what happened, when the organisation became aware (the clocks start there), the window,
    the stores and categories involved, the jurisdictions whose clocks apply."""
    with _db().session() as session:
        incident = cases.create(session, current_app.extensions["stores"], _table(), _actor(), data)
        session.flush()
        return cases.view(session, incident, _table())


@blp.get("")
@require_scope(SCOPE)
@blp.arguments(schemas.IncidentQuery, location="query")
@blp.response(200, schemas.IncidentOut(many=True))
@blp.paginate()
def list_incidents(args: dict[str, Any], pagination_parameters: PaginationParameters) -> Any:
    """The app's incidents, newest first; `overdue=true` lists those with an overdue obligation, oldest due first."""
    with _db().session() as session:
        items, pagination_parameters.item_count = cases.list_incidents(
            session, current_principal().app_id, _table(), **args, offset=pagination_parameters.first_item,
            limit=pagination_parameters.page_size)
        return items


@blp.get("/<incident_id>")
@require_scope(SCOPE)
@blp.response(200, schemas.IncidentOut)
@blp.doc(**links(200, **{k: v for k, v in INCIDENT_LINKS.items() if k != "get"}))
def get_incident(incident_id: str) -> Any:
    """The incident, each obligation with its due time (done or not) and the notifications recorded."""
    with _db().session() as session:
        return cases.view(session, cases.get(session, current_principal().app_id, incident_id), _table())


@blp.patch("/<incident_id>")
@require_scope(SCOPE)
@blp.arguments(schemas.IncidentPatch)
@blp.response(200, schemas.IncidentOut)
def update_incident(data: dict[str, Any], incident_id: str) -> Any:
    """Facts learned later and the next state (open → assessed → contained → closed), with the reason: a new
    version. Becoming assessed needs risk and risk_reasoning; closing needs root_cause and measures and signs
    the incident record."""
    with _db().session() as session:
        incident = cases.update(session, _rt(), current_app.extensions["stores"], _table(), _actor(),
                                   incident_id, data)
        return cases.view(session, incident, _table())


@blp.get("/<incident_id>/versions")
@require_scope(SCOPE)
@blp.response(200, schemas.IncidentVersionOut(many=True))
def list_versions(incident_id: str) -> Any:
    """Every version of the incident's facts, newest first: who, when, what changed and why."""
    with _db().session() as session:
        return cases.versions(session, cases.get(session, current_principal().app_id, incident_id))


@blp.post("/<incident_id>/notifications")
@require_scope(SCOPE)
@blp.arguments(schemas.IncidentNotificationIn)
@blp.response(201, schemas.IncidentNotificationOut)
def record_notification(data: dict[str, Any], incident_id: str) -> Any:
    """Record that the authority or the people were notified, a later supplement, or a reasoned decision not to
    notify: what meets an obligation's clock."""
    with _db().session() as session:
        return cases.notification_view(cases.record_notification(session, _actor(), incident_id, data))


@blp.get("/<incident_id>/timeline")
@require_scope(SCOPE)
@blp.response(200, schemas.IncidentTimelineOut(many=True))
def timeline(incident_id: str) -> Any:
    """Every step taken on the incident, oldest first, from the audit trail."""
    with _db().session() as session:
        return cases.timeline(session, cases.get(session, current_principal().app_id, incident_id))


@blp.post("/<incident_id>/assessment-runs")
@require_scope(SCOPE)
@blp.response(202, schemas.IncidentAssessmentOut)
@blp.doc(**links(202, **RUN_LINKS))
def request_assessment(incident_id: str) -> Any:
    """Compute the affected population over the incident's window and scope, as a job: counts per store and
    category, distinct people across stores, how many have a contact address."""
    with _db().session() as session:
        incident = cases.get(session, current_principal().app_id, incident_id)
        run_id = assessment.request_run(session, incident, _actor().name).id
    jobs.dispatch(current_app.extensions["queue"], run_id)
    return _run(incident_id, run_id)


def _run(incident_id: str, run_id: str) -> Any:
    with _db().session() as session:
        incident = cases.get(session, current_principal().app_id, incident_id)
        return assessment.run_view(session, assessment.get_run(session, incident, run_id))


@blp.get("/<incident_id>/assessment-runs")
@require_scope(SCOPE)
@blp.response(200, schemas.IncidentAssessmentOut(many=True))
def list_assessments(incident_id: str) -> Any:
    with _db().session() as session:
        incident = cases.get(session, current_principal().app_id, incident_id)
        return [assessment.run_view(session, r) for r in assessment.runs_of(session, incident.id)]


@blp.get("/<incident_id>/assessment-runs/<run_id>")
@require_scope(SCOPE)
@blp.response(200, schemas.IncidentAssessmentOut)
def get_assessment(incident_id: str, run_id: str) -> Any:
    """A run's counts so far (only counts: the people themselves are never shown)."""
    return _run(incident_id, run_id)


@blp.post("/<incident_id>/assessment-runs/<run_id>/retry")
@require_scope(SCOPE)
@blp.response(202, schemas.IncidentAssessmentOut)
def retry_assessment(incident_id: str, run_id: str) -> Any:
    """Continue a failed or interrupted run."""
    with _db().session() as session:
        incident = cases.get(session, current_principal().app_id, incident_id)
        assessment.retry_run(session, incident, run_id, _actor().name)
    jobs.dispatch(current_app.extensions["queue"], run_id)
    return _run(incident_id, run_id)


@blp.get("/<incident_id>/report")
@require_scope(SCOPE)
@blp.arguments(schemas.IncidentReportQuery, location="query")
@blp.response(200, description="The Art. 33(3) report to the authority, JSON or HTML, in English or Chinese")
def get_report(args: dict[str, Any], incident_id: str) -> Any:
    """The report to the supervisory authority (GDPR Art. 33(3)) from the incident's facts and latest assessment."""
    with _db().session() as session:
        incident = cases.get(session, current_principal().app_id, incident_id)
        content = report.content(session, _rt(), incident, _table(), args["lang"])
    if args["format"] == "html":
        return Response(report.html(content), mimetype="text/html")
    return content


@blp.get("/<incident_id>/record")
@require_scope(SCOPE)
@blp.response(200, description="The signed incident record: a compact JWS (application/jose)")
def get_record(incident_id: str) -> Any:
    """The signed incident record of a closed incident; verify it with /.well-known/jwks.json."""
    with _db().session() as session:
        incident = cases.get(session, current_principal().app_id, incident_id)
        if incident.record is None:
            raise NotFound("the incident is not closed; its record is signed when it closes")
        token, digest = incident.record, incident.record_sha256
    return Response(token, mimetype="application/jose", headers={
        "Content-Disposition": f'attachment; filename="incident-{incident_id}.jws"',
        "X-Record-SHA256": digest or ""})


@blp.post("/<incident_id>/campaigns")
@require_scope(SCOPE)
@blp.arguments(schemas.IncidentCampaignIn)
@blp.response(202, schemas.IncidentCampaignOut)
def create_campaign(data: dict[str, Any], incident_id: str) -> Any:
    """A notice campaign to the people of an assessment: a dry run (the default) counts who would be written to;
    a real one, after a dry run with the same messages, queues one email per person through the outbox."""
    with _db().session() as session:
        incident = cases.get(session, current_principal().app_id, incident_id)
        campaign_id = campaigns.create(session, incident, _actor().name, data).id
    jobs.dispatch_campaign(current_app.extensions["queue"], campaign_id)
    return _campaign(incident_id, campaign_id)


def _campaign(incident_id: str, campaign_id: str) -> Any:
    with _db().session() as session:
        incident = cases.get(session, current_principal().app_id, incident_id)
        return campaigns.report(session, campaigns.get(session, incident, campaign_id))


@blp.get("/<incident_id>/campaigns/<campaign_id>")
@require_scope(SCOPE)
@blp.response(200, schemas.IncidentCampaignOut)
def get_campaign(incident_id: str, campaign_id: str) -> Any:
    """A campaign's progress and counts (people, reachable, notices queued, the mail's states)."""
    return _campaign(incident_id, campaign_id)
