"""`/v1/governance/evidence`: request an evidence pack (a job), follow it, download it. Company-wide scopes, like the
rest of governance: platform:governance requests, platform:read follows and downloads."""

from __future__ import annotations

from typing import Any

from flask import current_app, send_file
from marshmallow import Schema, ValidationError, fields, validates_schema

from governance import evidence, evidence_jobs
from service.api import ApiBlueprint
from service.auth import current_principal, require_scope
from service.errors import NotFound

blp = ApiBlueprint("evidence", __name__, url_prefix="/v1/governance/evidence",
                   description="The audit evidence pack, exported as a job")
WRITE, READ = "platform:governance", "platform:read"


class ExportIn(Schema):
    start = fields.Date(required=True, data_key="from", metadata={"description": "first day (UTC)"})
    end = fields.Date(required=True, data_key="to", metadata={"description": "last day (UTC), inclusive"})

    @validates_schema
    def _order(self, data: dict[str, Any], **_: Any) -> None:
        if data["end"] < data["start"]:
            raise ValidationError("before from", "to")


class ExportOut(Schema):
    id = fields.String()
    state = fields.String()
    period_start = fields.DateTime(data_key="from")
    period_end = fields.DateTime(data_key="to")
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    attempts = fields.Integer()
    sha256 = fields.String(allow_none=True)
    summary = fields.Dict(allow_none=True)
    error = fields.String(allow_none=True)


def _db() -> Any:
    return current_app.extensions["db"]


@blp.post("")
@require_scope(WRITE)
@blp.arguments(ExportIn)
@blp.response(202, ExportOut)
def request_export(data: dict[str, Any]) -> Any:
    """Queue an export of the period; follow it at GET /v1/governance/evidence/{id}."""
    with _db().session() as session:
        row = evidence_jobs.request(session, f"key:{current_principal().key_id}",
                                    evidence.period_of(data["start"], data["end"]))
        export_id = row.id
    evidence_jobs.dispatch(current_app.extensions["runtime"].queue, export_id)
    with _db().sessions() as session:
        return evidence_jobs.get(session, export_id)


@blp.get("/<export_id>")
@require_scope(READ, WRITE)
@blp.response(200, ExportOut)
def get_export(export_id: str) -> Any:
    with _db().sessions() as session:
        return evidence_jobs.get(session, export_id)


@blp.get("/<export_id>/pack.zip")
@require_scope(READ, WRITE)
@blp.response(200, content_type="application/zip")
def download(export_id: str) -> Any:
    """The pack, once done (verify it with `flask evidence verify`)."""
    with _db().sessions() as session:
        row = evidence_jobs.get(session, export_id)
        if row.state != "done" or row.path is None:
            raise NotFound("the pack is not ready")
        path = row.path
    return send_file(path, mimetype="application/zip", as_attachment=True, download_name=f"evidence-{export_id}.zip")
