"""HTTP routes of the governance API (thin: validation by schemas, logic in governance.processors, .ropa,
.findings and .assessments). Governance records are company-wide: platform:governance writes, platform:read
(or platform:governance) reads."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app
from flask_smorest import abort

from governance import assessments, fanout, findings, processors, ropa, schemas
from governance.processors import Actor
from service.api import ApiBlueprint
from service.auth import current_principal, require_scope
from service.db import utcnow

blp = ApiBlueprint("governance", __name__, url_prefix="/v1/governance",
                   description="Processors, records of processing, findings and privacy impact assessments")
WRITE, READ = "platform:governance", "platform:read"
# The erasure notices of a rights request, beside the request's own routes (its app's key sees them).
requests_blp = ApiBlueprint("governance_requests", __name__, url_prefix="/v1/requests",
                            description="Which processors were told of an erasure, and whether they acknowledged")
# Outside /v1 (where every endpoint takes an API key): a processor acknowledges with its notice's token alone.
acks_blp = ApiBlueprint("governance_acks", __name__, url_prefix="/governance/erasure-acks",
                        description="Processors acknowledge erasure notices sent by email (the link's token)")


def _db() -> Any:
    return current_app.extensions["db"]


def _rt() -> Any:
    return current_app.extensions["runtime"]


def _stores() -> Any:
    return current_app.extensions["stores"]


def _actor() -> Actor:
    principal = current_principal()
    return Actor(f"key:{principal.key_id}", principal.app_id)


def _with_secret(view: dict[str, Any], secret: str | None) -> dict[str, Any]:
    if secret is not None:
        view["erasure"] = {**view["erasure"], "secret": secret}
    return view


# --- processors -----------------------------------------------------------------------------------------------

@blp.post("/processors")
@require_scope(WRITE)
@blp.arguments(schemas.ProcessorIn)
@blp.response(201, schemas.ProcessorOut)
def create_processor(data: dict[str, Any]) -> Any:
    """Register a processor, sub-processor or independent controller. With an erasure webhook, the answer carries
    its HMAC secret (erasure.secret): the one time it is shown."""
    with _db().session() as session:
        processor, secret = processors.create_processor(session, _rt(), _actor(), data)
        return _with_secret(processors.view(session, processor), secret)


@blp.get("/processors")
@require_scope(READ, WRITE)
@blp.response(200, schemas.ProcessorOut(many=True))
def list_processors() -> Any:
    """The register, by key, with each processor's reviews and review status."""
    with _db().session() as session:
        return processors.register_view(session)


@blp.get("/processors/<key>")
@require_scope(READ, WRITE)
@blp.response(200, schemas.ProcessorOut)
def get_processor(key: str) -> Any:
    with _db().session() as session:
        return processors.view(session, processors.get_processor(session, key))


@blp.patch("/processors/<key>")
@require_scope(WRITE)
@blp.arguments(schemas.ProcessorUpdate)
@blp.response(200, schemas.ProcessorOut)
def update_processor(data: dict[str, Any], key: str) -> Any:
    """Change a processor; `rotate_secret` (or a new webhook where there was none) answers a new secret once."""
    rotate = data.pop("rotate_secret")
    with _db().session() as session:
        processor, secret = processors.update_processor(session, _rt(), _actor(), key, data, rotate)
        return _with_secret(processors.view(session, processor), secret)


@blp.delete("/processors/<key>")
@require_scope(WRITE)
@blp.response(204)
def delete_processor(key: str) -> None:
    with _db().session() as session:
        processors.delete_processor(session, _actor(), key)


@blp.post("/processors/<key>/reviews")
@require_scope(WRITE)
@blp.arguments(schemas.ReviewIn)
@blp.response(201, schemas.ProcessorOut)
def add_review(data: dict[str, Any], key: str) -> Any:
    """Record a due-diligence review (date, result, reviewer, next due)."""
    with _db().session() as session:
        processors.add_review(session, _actor(), key, data)
        return processors.view(session, processors.get_processor(session, key))


# --- records of processing ------------------------------------------------------------------------------------

@blp.get("/ropa")
@require_scope(READ, WRITE)
@blp.arguments(schemas.RopaQuery, location="query")
@blp.response(200, description="The records of processing as JSON, CSV (one row per activity) or HTML")
def get_ropa(args: dict[str, Any]) -> Any:
    """Every processing activity (app/policy/purpose) derived from the service's facts, with the fields people
    keep; `format=csv|html` for a spreadsheet or a printable page."""
    with _db().session() as session:
        record = ropa.build(session, _stores(), _rt().settings)
    if args["app"] is not None:
        record["activities"] = [a for a in record["activities"] if a["app"] == args["app"]]
    if args["format"] == "csv":
        return Response(ropa.to_csv(record), mimetype="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="ropa.csv"'})
    if args["format"] == "html":
        return Response(ropa.to_html(record), mimetype="text/html")
    return {"generated_at": utcnow().isoformat(), **record}


@blp.patch("/ropa/activities/<path:key>")
@require_scope(WRITE)
@blp.arguments(schemas.ActivityUpdate)
@blp.response(200, schemas.ActivityOut)
def update_activity(data: dict[str, Any], key: str) -> Any:
    """Set what only people know about an activity: description, controller, joint controller, security."""
    with _db().session() as session:
        return ropa.update_activity(session, _actor(), key, data)


@blp.post("/ropa/snapshots")
@require_scope(WRITE)
@blp.response(201, schemas.SnapshotOut)
def take_snapshot() -> Any:
    """Freeze the ROPA as it is now: dated and signed (JWS with the receipt keys, see /.well-known/jwks.json)."""
    with _db().session() as session:
        return ropa.snapshot_view(_rt(), ropa.take_snapshot(session, _rt(), _stores(), _actor()))


@blp.get("/ropa/snapshots")
@require_scope(READ, WRITE)
@blp.response(200, schemas.SnapshotOut(many=True))
def list_snapshots() -> Any:
    """Snapshots, newest first (without their content)."""
    with _db().session() as session:
        return [ropa.snapshot_view(_rt(), s, with_record=False) for s in ropa.snapshots(session)]


@blp.get("/ropa/snapshots/<snapshot_id>")
@require_scope(READ, WRITE)
@blp.response(200, schemas.SnapshotOut)
def get_snapshot(snapshot_id: str) -> Any:
    with _db().session() as session:
        return ropa.snapshot_view(_rt(), ropa.get_snapshot(session, snapshot_id))


# --- findings -------------------------------------------------------------------------------------------------

@blp.get("/findings")
@require_scope(READ, WRITE)
@blp.arguments(schemas.FindingQuery, location="query")
@blp.response(200, schemas.FindingOut(many=True))
def list_findings(args: dict[str, Any]) -> Any:
    """Open gaps: purposes without lawful basis, categories without retention or purpose, processors without a
    current review, third parties not registered, assessments whose facts changed or whose review is due."""
    with _db().session() as session:
        found = findings.findings(session, _stores(), ack_days=fanout.ack_days(_rt().settings.env))
    return [f for f in found if args["kind"] in (None, f["kind"])]


# --- assessments ----------------------------------------------------------------------------------------------

def _view(session: Any, assessment: Any) -> dict[str, Any]:
    return assessments.view(session, _stores(), assessment)


@blp.post("/assessments")
@require_scope(WRITE)
@blp.arguments(schemas.AssessmentIn)
@blp.response(201, schemas.AssessmentOut)
def create_assessment(data: dict[str, Any]) -> Any:
    """Start a privacy impact assessment of an app, or of one activity (app/policy/purpose), as a draft."""
    with _db().session() as session:
        return _view(session, assessments.create(session, _actor(), data))


@blp.get("/assessments")
@require_scope(READ, WRITE)
@blp.arguments(schemas.AssessmentQuery, location="query")
@blp.response(200, schemas.AssessmentOut(many=True))
def list_assessments(args: dict[str, Any]) -> Any:
    """Assessments, newest first; drift is re-derived first, so a changed fact shows as review_needed."""
    with _db().session() as session:
        assessments.refresh(session, _stores())
        return [assessments.view(session, _stores(), a, with_prefill=False)
                for a in assessments.list_assessments(session, **args)]


@blp.get("/assessments/<assessment_id>")
@require_scope(READ, WRITE)
@blp.response(200, schemas.AssessmentOut)
def get_assessment(assessment_id: str) -> Any:
    """One assessment with its sections prefilled from the facts as they are now, and its drift."""
    with _db().session() as session:
        assessments.refresh(session, _stores())
        return _view(session, assessments.get(session, assessment_id))


@blp.patch("/assessments/<assessment_id>")
@require_scope(WRITE)
@blp.arguments(schemas.AssessmentUpdate)
@blp.response(200, schemas.AssessmentOut)
def update_assessment(data: dict[str, Any], assessment_id: str) -> Any:
    """Answers per section, risks (likelihood times impact, 1-5 each) and mitigations (owner, due date)."""
    with _db().session() as session:
        return _view(session, assessments.update(session, _actor(), assessment_id, data))


@blp.post("/assessments/<assessment_id>/submit")
@require_scope(WRITE)
@blp.response(200, schemas.AssessmentOut)
def submit_assessment(assessment_id: str) -> Any:
    with _db().session() as session:
        return _view(session, assessments.submit(session, _actor(), assessment_id))


@blp.post("/assessments/<assessment_id>/approve")
@require_scope(WRITE)
@blp.arguments(schemas.ApproveIn)
@blp.response(200, schemas.AssessmentOut)
def approve_assessment(data: dict[str, Any], assessment_id: str) -> Any:
    """Approve: names the approver, freezes the facts, signs the assessment (JWS) and sets its review date."""
    with _db().session() as session:
        return _view(session, assessments.approve(session, _rt(), _stores(), _actor(), assessment_id,
                                                  data["approver"], data["review_due"]))


@blp.post("/assessments/<assessment_id>/request-changes")
@require_scope(WRITE)
@blp.arguments(schemas.ChangesIn)
@blp.response(200, schemas.AssessmentOut)
def request_changes(data: dict[str, Any], assessment_id: str) -> Any:
    with _db().session() as session:
        return _view(session, assessments.request_changes(session, _actor(), assessment_id, data["reviewer"],
                                                          data["comment"]))


# --- erasure fan-out ------------------------------------------------------------------------------------------

# The link's token is 43 characters (secrets.token_urlsafe(32)); a longer one names nothing (404 from routing), and
# the document says so (maxLength), so no client or fuzzer fills it with some other, far longer, value.
@acks_blp.post("/<string(maxlength=64):token>")
@acks_blp.response(200, schemas.AckOut)
def acknowledge_erasure(token: str) -> Any:
    """A processor acknowledges an erasure notice sent by email: the link in the email, opened with POST. No API
    key: the single notice's random token is the credential. Idempotent (a second call answers the same)."""
    with _db().session() as session:
        notice = fanout.acknowledge(session, token)
        return {"notice": notice.id, "state": notice.state, "acknowledged_at": notice.acknowledged_at}


@requests_blp.get("/<request_id>/processors")
@require_scope("dsar:manage", "dsar:submit")
@requests_blp.response(200, schemas.NoticeOut(many=True))
def request_processors(request_id: str) -> Any:
    """Each processor told of this erasure request: channel, state (pending, sending, sent, acknowledged,
    failed), attempts, last error and times. Another app's request is 404."""
    from dsar.models import DsarRequest

    app_id = current_principal().app_id
    with _db().session() as session:
        req = session.get(DsarRequest, request_id)
        if req is None or req.app_id != app_id:
            abort(404, message=f"no request {request_id!r}")
        return fanout.notices_of(session, request_id)
