"""Governance in the console: the open findings, the records of processing (CSV too), the processor register (add,
record a due-diligence review) and the privacy impact assessments (create, answer, risks, mitigations, submit,
approve or send back), all through governance.processors/assessments as the API does, checked by its schemas.
Company-wide records: operators limited to some apps get 403."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Response, abort, current_app, flash, redirect, request, send_file, url_for
from flask_babel import gettext
from marshmallow import ValidationError

from console.auth import APPROVE, GOVERNANCE, READ, app_filter, require
from console.incident_pages import _refusal
from console.operators import actor as operator_actor
from console.web import blp, page, signed_in
from governance import assessments, evidence, evidence_jobs, fanout, findings, processors, ropa, schemas
from governance.models import REVIEW_RESULTS, ROLES, SECTIONS
from governance.processors import Actor
from service.errors import DomainError, NotFound
from service.evidence import Mismatch
from service.evidence import verify as verify_pack


def _company_wide() -> None:
    if app_filter() is not None:
        abort(403)  # the records span every app: an operator limited to some apps does not see them whole


def _stores() -> Any:
    return current_app.extensions["stores"]


@blp.get("/governance")
@require(READ)
def governance_page() -> Any:
    _company_wide()
    with current_app.extensions["db"].session() as session:  # reading refreshes assessments' drift: committed
        found = findings.findings(session, _stores(),
                                  ack_days=fanout.ack_days(current_app.config['SETTINGS'].env))
    return page("console/governance.html", findings=found)


def _ropa() -> dict[str, Any]:
    _company_wide()
    with current_app.extensions["db"].sessions() as session:
        return ropa.build(session, _stores(), current_app.config["SETTINGS"])


@blp.get("/governance/ropa")
@require(READ)
def ropa_page() -> Any:
    return page("console/ropa.html", record=_ropa())


@blp.get("/governance/ropa.csv")
@require(READ)
def ropa_csv() -> Any:
    return Response(ropa.to_csv(_ropa()), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="ropa.csv"'})


def _db() -> Any:
    return current_app.extensions["db"]


def _actor() -> Actor:
    who = signed_in()
    assert who is not None
    return Actor(operator_actor(who.id))


def _form(*names: str) -> dict[str, str]:
    return {k: request.form.get(k, "").replace("\r\n", "\n").strip() for k in names}


def _listed(text: str) -> list[str]:
    """A comma-separated field as a list (countries, categories, purposes)."""
    return [part.strip() for part in text.split(",") if part.strip()]


def _present(values: dict[str, str]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v}


# --- assessments ---------------------------------------------------------------------------------------------

def _assessments_page(*, status: int = 200, errors: dict[str, str] | None = None,
                      values: dict[str, Any] | None = None) -> Any:
    _company_wide()
    with _db().session() as session:  # reading refreshes assessments' drift: committed
        assessments.refresh(session, _stores())
        rows = [assessments.view(session, _stores(), a, with_prefill=False)
                for a in assessments.list_assessments(session)]
        from sqlalchemy import select

        from service.tenancy import App
        apps = list(session.scalars(select(App.slug).order_by(App.slug)))
    return page("console/assessments.html", status=status, rows=rows, apps=apps, errors=errors or {},
                values=values or {})


@blp.get("/governance/assessments")
@require(READ)
def assessments_page() -> Any:
    return _assessments_page()


@blp.post("/governance/assessments")
@require(GOVERNANCE)
def assessment_create() -> Any:
    _company_wide()
    values = _form("app", "activity", "title")
    try:
        data = schemas.AssessmentIn().load(_present(values))
        with _db().session() as session:
            assessment_id = assessments.create(session, _actor(), data).id
    except (ValidationError, DomainError) as exc:
        status, errors = _refusal(exc)
        return _assessments_page(status=status, errors=errors, values=values)
    flash(gettext("The assessment is a draft; its sections show what the service knows."), "console")
    return redirect(url_for("console.assessment_page", assessment_id=assessment_id), code=303)


def _assessment_page(assessment_id: str, *, status: int = 200, errors: dict[str, str] | None = None,
                     values: dict[str, Any] | None = None, form: str | None = None) -> Any:
    _company_wide()
    with _db().session() as session:
        assessments.refresh(session, _stores())
        shown = assessments.view(session, _stores(), assessments.get(session, assessment_id[:64]))
    return page("console/assessment.html", status=status, a=shown, sections=SECTIONS, errors=errors or {},
                values=values or {}, form=form, editable=shown["state"] in assessments.EDITABLE)


@blp.get("/governance/assessments/<assessment_id>")
@require(READ)
def assessment_page(assessment_id: str) -> Any:
    return _assessment_page(assessment_id)


def _change(assessment_id: str, form: str, values: dict[str, Any], act: Any, done: str) -> Any:
    """Run `act(session)` (a governance.assessments call); a refusal shows the page again with the form's errors."""
    _company_wide()
    try:
        with _db().session() as session:
            act(session)
    except (ValidationError, DomainError) as exc:
        status, errors = _refusal(exc)
        if form == "submit" and isinstance(exc, DomainError) and "answers" in (exc.errors or {}):
            errors = {s: gettext("Answer this section before review.") for s in exc.errors["answers"]}
        return _assessment_page(assessment_id, status=status, errors=errors, values=values, form=form)
    flash(done, "console")
    return redirect(url_for("console.assessment_page", assessment_id=assessment_id), code=303)


@blp.post("/governance/assessments/<assessment_id>/answers")
@require(GOVERNANCE)
def assessment_answers(assessment_id: str) -> Any:
    values = _form(*SECTIONS)

    def act(session: Any) -> None:
        data = schemas.AssessmentUpdate().load({"answers": values})
        assessments.update(session, _actor(), assessment_id[:64], data)

    return _change(assessment_id, "answers", values, act, gettext("The answers are saved."))


@blp.post("/governance/assessments/<assessment_id>/risks")
@require(GOVERNANCE)
def assessment_risk(assessment_id: str) -> Any:
    """Add a risk (likelihood and impact 1-5; the page shows their product and level)."""
    values = _form("id", "section", "description", "likelihood", "impact")

    def act(session: Any) -> None:
        raw: dict[str, Any] = _present(values)
        for k in ("likelihood", "impact"):
            if k in raw:
                raw[k] = int(raw[k]) if raw[k].isdigit() else raw[k]
        risk = schemas.RiskIn().load(raw)
        current = assessments.get(session, assessment_id[:64])
        assessments.update(session, _actor(), current.id, {"risks": [*current.risks, risk]})

    return _change(assessment_id, "risk", values, act, gettext("The risk is added."))


@blp.post("/governance/assessments/<assessment_id>/mitigations")
@require(GOVERNANCE)
def assessment_mitigation(assessment_id: str) -> Any:
    values = _form("risk", "action", "owner", "due")

    def act(session: Any) -> None:
        mitigation = schemas.MitigationIn().load(_present(values))
        current = assessments.get(session, assessment_id[:64])
        assessments.update(session, _actor(), current.id, {"mitigations": [*current.mitigations, mitigation]})

    return _change(assessment_id, "mitigation", values, act, gettext("The mitigation is added."))


@blp.post("/governance/assessments/<assessment_id>/submit")
@require(GOVERNANCE)
def assessment_submit(assessment_id: str) -> Any:
    return _change(assessment_id, "submit", {}, lambda s: assessments.submit(s, _actor(), assessment_id[:64]),
                   gettext("The assessment is submitted for review."))


@blp.post("/governance/assessments/<assessment_id>/approve")
@require(APPROVE)
def assessment_approve(assessment_id: str) -> Any:
    """Approve as the signed-in operator (the approver named in the signed assessment is their address)."""
    values = _form("review_due")
    who = signed_in()
    assert who is not None

    def act(session: Any) -> None:
        data = schemas.ApproveIn().load({"approver": who.email, **_present(values)})
        assessments.approve(session, current_app.extensions["runtime"], _stores(), _actor(), assessment_id[:64],
                            data["approver"], data["review_due"])

    return _change(assessment_id, "review", values, act, gettext("The assessment is approved and signed."))


@blp.post("/governance/assessments/<assessment_id>/request-changes")
@require(APPROVE)
def assessment_request_changes(assessment_id: str) -> Any:
    values = _form("comment")
    who = signed_in()
    assert who is not None

    def act(session: Any) -> None:
        data = schemas.ChangesIn().load({"reviewer": who.email, **_present(values)})
        assessments.request_changes(session, _actor(), assessment_id[:64], data["reviewer"], data["comment"])

    return _change(assessment_id, "review", values, act, gettext("Changes are requested."))


# --- processors ----------------------------------------------------------------------------------------------

PROCESSOR_FIELDS = ("key", "name", "role", "countries", "categories", "purposes", "dpa_date", "contact",
                    "erasure_webhook", "erasure_email")


def _processors_page(*, status: int = 200, errors: dict[str, str] | None = None,
                     values: dict[str, Any] | None = None, form: str | None = None,
                     secret: str | None = None) -> Any:
    _company_wide()
    with _db().sessions() as session:
        register = processors.register_view(session)
    return page("console/processors.html", status=status, register=register, errors=errors or {},
                values=values or {}, form=form, roles=ROLES, results=REVIEW_RESULTS, secret=secret)


@blp.get("/governance/processors")
@require(READ)
def processors_page() -> Any:
    return _processors_page()


def _processor_data(values: dict[str, str]) -> dict[str, Any]:
    raw: dict[str, Any] = _present(values)
    for k in ("countries", "categories", "purposes"):
        if k in raw:
            raw[k] = _listed(raw[k])
    return raw


@blp.post("/governance/processors")
@require(GOVERNANCE)
def processor_create() -> Any:
    """Register a processor; with a webhook, its HMAC secret is shown on the answer once (never again)."""
    _company_wide()
    values = _form(*PROCESSOR_FIELDS)
    try:
        data = schemas.ProcessorIn().load(_processor_data(values))
        with _db().session() as session:
            _, secret = processors.create_processor(session, current_app.extensions["runtime"], _actor(), data)
    except (ValidationError, DomainError) as exc:
        status, errors = _refusal(exc)
        return _processors_page(status=status, errors=errors, values=values, form="create")
    if secret is not None:  # shown in this answer only: a redirect would have to keep it somewhere
        return _processors_page(status=201, secret=secret)
    flash(gettext("The processor is registered."), "console")
    return redirect(url_for("console.processors_page"), code=303)


@blp.post("/governance/processors/reviews")
@require(GOVERNANCE)
def processor_review() -> Any:
    """Record a due-diligence review of the processor chosen in the form."""
    _company_wide()
    values = _form("processor", "reviewed_on", "result", "reviewer", "next_due", "notes")
    key = values.pop("processor")
    try:
        data = schemas.ReviewIn().load(_present(values))
        with _db().session() as session:
            processors.add_review(session, _actor(), key[:100], data)
    except NotFound:
        return _processors_page(status=422, errors={"processor": gettext("Choose a registered processor.")},
                                values={**values, "processor": key}, form="review")
    except (ValidationError, DomainError) as exc:
        status, errors = _refusal(exc)
        return _processors_page(status=status, errors=errors, values={**values, "processor": key}, form="review")
    flash(gettext("The review is recorded."), "console")
    return redirect(url_for("console.processors_page"), code=303)


# --- evidence packs ------------------------------------------------------------------------------------------

def _evidence_page(*, status: int = 200, errors: dict[str, str] | None = None,
                   values: dict[str, Any] | None = None, verified: dict[str, str] | None = None) -> Any:
    _company_wide()
    from sqlalchemy import select

    from governance.evidence_models import EvidenceExport
    with _db().sessions() as session:
        rows = list(session.scalars(select(EvidenceExport).order_by(EvidenceExport.created_at.desc()).limit(20)))
        session.expunge_all()
    running = any(r.state in evidence_jobs.LIVE for r in rows)
    # The period is stored as [start, end); the page shows its last day, as the form asked for it.
    last_days = {r.id: (r.period_end - timedelta(days=1)).date() for r in rows}
    return page("console/evidence.html", status=status, rows=rows, last_days=last_days, errors=errors or {},
                values=values or {}, running=running, verified=verified or {})


@blp.get("/governance/evidence")
@require(READ)
def evidence_page() -> Any:
    return _evidence_page()


@blp.post("/governance/evidence")
@require(GOVERNANCE)
def evidence_start() -> Any:
    """Queue an export of the period, as POST /v1/governance/evidence does; this page follows it."""
    _company_wide()
    from governance.evidence_routes import ExportIn
    values = _form("from", "to")
    try:
        data = ExportIn().load(_present(values))
        with _db().session() as session:
            export_id = evidence_jobs.request(session, _actor().name,
                                              evidence.period_of(data["start"], data["end"])).id
    except ValidationError as exc:
        status, errors = _refusal(exc)
        return _evidence_page(status=status, errors=errors, values=values)
    evidence_jobs.dispatch(current_app.extensions["runtime"].queue, export_id)
    flash(gettext("The export has started; this page shows its progress."), "console")
    return redirect(url_for("console.evidence_page"), code=303)


def _done_pack(export_id: str) -> str:
    with _db().sessions() as session:
        try:
            row = evidence_jobs.get(session, export_id[:36])
        except NotFound:
            abort(404)
        if row.state != "done" or row.path is None:
            abort(404)
        return row.path


@blp.get("/governance/evidence/<export_id>/pack.zip")
@require(READ)
def evidence_download(export_id: str) -> Any:
    _company_wide()
    return send_file(_done_pack(export_id), mimetype="application/zip", as_attachment=True,
                     download_name=f"evidence-{export_id[:36]}.zip")


@blp.post("/governance/evidence/<export_id>/verify")
@require(READ)
def evidence_verify(export_id: str) -> Any:
    """Check the stored pack's signed manifest and every file's SHA-256 (what `flask evidence verify` does)."""
    _company_wide()
    path, export_id = _done_pack(export_id), export_id[:36]
    try:
        claims = verify_pack(path, current_app.extensions["runtime"].keys.signer)
        ok, result = True, gettext("Verified: %(n)s files, signature and digests match.", n=len(claims["files"]))
    except Mismatch as exc:
        ok, result = False, gettext("Does not verify: %(why)s", why=str(exc))
    from service import audit
    with _db().session() as session:
        audit.record(session, app_id=None, actor=_actor().name, action="evidence.verified", resource_type="evidence",
                     resource_id=export_id, details={"ok": ok})
    return _evidence_page(verified={export_id: result})
