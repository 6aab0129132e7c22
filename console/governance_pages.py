"""Governance in the console (read-only here; the API and `flask governance` change it): the open findings, the
records of processing with a CSV download, the privacy impact assessments with their facts and drift, and the
processor register with each review's status. Company-wide records: operators limited to some apps get 403."""

from __future__ import annotations

from typing import Any

from flask import Response, abort, current_app

from console.auth import READ, app_filter, require
from console.web import blp, page
from governance import assessments, fanout, findings, processors, ropa
from governance.models import SECTIONS


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


@blp.get("/governance/assessments")
@require(READ)
def assessments_page() -> Any:
    _company_wide()
    with current_app.extensions["db"].session() as session:
        assessments.refresh(session, _stores())
        rows = [assessments.view(session, _stores(), a, with_prefill=False)
                for a in assessments.list_assessments(session)]
    return page("console/assessments.html", rows=rows)


@blp.get("/governance/assessments/<assessment_id>")
@require(READ)
def assessment_page(assessment_id: str) -> Any:
    _company_wide()
    with current_app.extensions["db"].sessions() as session:
        shown = assessments.view(session, _stores(), assessments.get(session, assessment_id[:64]))
    return page("console/assessment.html", a=shown, sections=SECTIONS)


@blp.get("/governance/processors")
@require(READ)
def processors_page() -> Any:
    _company_wide()
    with current_app.extensions["db"].sessions() as session:
        register = processors.register_view(session)
    return page("console/processors.html", register=register)
