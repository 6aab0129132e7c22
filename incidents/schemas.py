"""Request and response schemas of the incidents API (unknown fields are rejected: marshmallow's default)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from incidents.models import NOTIFICATION_KINDS, OBLIGATIONS, RISKS, SEVERITIES, STATES
from service.fields import Text


class IncidentScopeIn(Schema):
    store = Text(100, required=True)
    category = Text(100, required=True)


class IncidentIn(Schema):
    title = Text(200, required=True)
    description = Text(20000, required=True, multiline=True)
    discovered_at = fields.AwareDateTime(required=True, metadata={"description": "awareness: the clocks start here"})
    occurred_from = fields.AwareDateTime(load_default=None)
    occurred_until = fields.AwareDateTime(load_default=None)
    scope = fields.List(fields.Nested(IncidentScopeIn), required=True, validate=validate.Length(max=100))
    jurisdictions = fields.List(Text(40), required=True, validate=validate.Length(min=1, max=30))
    severity = Text(20, load_default=None, validate=validate.OneOf(SEVERITIES))


class IncidentPatch(Schema):
    reason = Text(2000, min_length=3, required=True, multiline=True,
                  metadata={"description": "why the facts changed: kept with the new version"})
    state = Text(20, validate=validate.OneOf(STATES), metadata={"description": "the next state"})
    title = Text(200)
    description = Text(20000, multiline=True)
    discovered_at = fields.AwareDateTime()
    occurred_from = fields.AwareDateTime(allow_none=True)
    occurred_until = fields.AwareDateTime(allow_none=True)
    scope = fields.List(fields.Nested(IncidentScopeIn), validate=validate.Length(max=100))
    jurisdictions = fields.List(Text(40), validate=validate.Length(min=1, max=30))
    severity = Text(20, allow_none=True, validate=validate.OneOf(SEVERITIES))
    risk = Text(20, validate=validate.OneOf(RISKS))
    risk_reasoning = Text(20000, multiline=True)
    consequences = Text(20000, multiline=True, metadata={"description": "likely consequences (Art. 33(3)(c))"})
    root_cause = Text(20000, multiline=True)
    measures = Text(20000, multiline=True, metadata={"description": "measures taken or proposed (Art. 33(3)(d))"})


class IncidentQuery(Schema):
    state = Text(20, load_default=None, validate=validate.OneOf(STATES))
    severity = Text(20, load_default=None, validate=validate.OneOf(SEVERITIES))
    jurisdiction = Text(40, load_default=None)
    overdue = fields.Boolean(load_default=None, metadata={"description": "true: overdue obligations, oldest first"})


class IncidentNotificationIn(Schema):
    jurisdiction = Text(40, required=True)
    obligation = Text(20, required=True, validate=validate.OneOf(OBLIGATIONS))
    kind = Text(20, required=True, validate=validate.OneOf(NOTIFICATION_KINDS),
                metadata={"description": "notified, supplement (Art. 33(4)), or not_notified (with reasoning)"})
    at = fields.AwareDateTime(required=True)
    reference = Text(200, load_default=None)
    notified_by = Text(200, load_default=None)
    reasoning = Text(20000, load_default=None, multiline=True)


class IncidentObligationOut(Schema):
    jurisdiction = fields.String()
    obligation = fields.String()
    applies = fields.Boolean()
    due_at = fields.DateTime(allow_none=True)
    deadline = fields.String()
    source = fields.String()
    period = fields.String(allow_none=True)
    done = fields.Boolean()
    met_at = fields.DateTime(allow_none=True)
    met_by = fields.String(allow_none=True)
    on_time = fields.Boolean(allow_none=True)
    overdue = fields.Boolean()


class IncidentNotificationOut(Schema):
    id = fields.Integer()
    jurisdiction = fields.String()
    obligation = fields.String()
    kind = fields.String()
    at = fields.DateTime()
    reference = fields.String(allow_none=True)
    notified_by = fields.String(allow_none=True)
    reasoning = fields.String(allow_none=True)
    created_at = fields.DateTime()
    created_by = fields.String()


class IncidentOut(Schema):
    id = fields.String()
    title = fields.String()
    description = fields.String()
    state = fields.String()
    severity = fields.String(allow_none=True)
    discovered_at = fields.DateTime()
    occurred_from = fields.DateTime(allow_none=True)
    occurred_until = fields.DateTime(allow_none=True)
    scope = fields.List(fields.Dict())
    jurisdictions = fields.List(fields.String())
    risk = fields.String(allow_none=True)
    risk_reasoning = fields.String(allow_none=True)
    consequences = fields.String(allow_none=True)
    root_cause = fields.String(allow_none=True)
    measures = fields.String(allow_none=True)
    version = fields.Integer()
    created_at = fields.DateTime()
    created_by = fields.String()
    updated_at = fields.DateTime()
    assessed_at = fields.DateTime(allow_none=True)
    contained_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    record = fields.Boolean(metadata={"description": "whether GET .../record has the signed incident record"})
    record_sha256 = fields.String(allow_none=True)
    overdue = fields.Boolean()
    obligations = fields.List(fields.Nested(IncidentObligationOut))
    notifications = fields.List(fields.Nested(IncidentNotificationOut))


class IncidentVersionOut(Schema):
    version = fields.Integer()
    facts = fields.Dict()
    changed = fields.List(fields.String())
    reason = fields.String()
    created_at = fields.DateTime()
    created_by = fields.String()


class IncidentTimelineOut(Schema):
    at = fields.DateTime()
    actor = fields.String()
    action = fields.String()
    details = fields.Dict()


class IncidentStepOut(Schema):
    store = fields.String()
    category = fields.String()
    state = fields.String()
    subjects = fields.Integer(allow_none=True)
    determinable = fields.Boolean()
    error = fields.String(allow_none=True)


class IncidentAssessmentOut(Schema):
    id = fields.String()
    state = fields.String()
    since = fields.String()
    until = fields.String()
    requested_by = fields.String()
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.String(allow_none=True)
    attempts = fields.Integer()
    error = fields.String(allow_none=True)
    stores = fields.List(fields.Nested(IncidentStepOut))
    distinct_subjects = fields.Integer(allow_none=True)
    with_contact = fields.Integer(allow_none=True)
    categories = fields.List(fields.String())
    not_determinable = fields.List(fields.String())
    subjects_destroyed_at = fields.String(allow_none=True)


class IncidentReportQuery(Schema):
    format = Text(10, load_default="json", validate=validate.OneOf(("json", "html")))
    lang = Text(10, load_default="en", validate=validate.OneOf(("en", "zh")))


class IncidentNoticeText(Schema):
    subject = Text(200, required=True)
    text = Text(20000, required=True, multiline=True)


class IncidentCampaignIn(Schema):
    messages = fields.Dict(keys=Text(10, validate=validate.OneOf(("en", "zh"))),
                           values=fields.Nested(IncidentNoticeText), required=True,
                           validate=validate.Length(min=1),
                           metadata={"description": "the notice per language (en, zh): each person gets the one "
                                                    "they last gave consent in, else en when given",
                                     "minProperties": 1})  # Length(min=1), which apispec does not document
    dry_run = fields.Boolean(load_default=True, metadata={"description": "count only; a real campaign needs one"})
    run = Text(36, load_default=None, metadata={"description": "default: the latest succeeded assessment run"})
    per_minute = fields.Integer(load_default=None, validate=validate.Range(min=1, max=100_000),
                                metadata={"description": "throttle: notices queued per minute (none: no limit)"})


class IncidentCampaignOut(Schema):
    id = fields.String()
    run = fields.String()
    dry_run = fields.Boolean()
    state = fields.String()
    per_minute = fields.Integer(allow_none=True)
    languages = fields.List(fields.String())
    requested_by = fields.String()
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    attempts = fields.Integer()
    error = fields.String(allow_none=True)
    counts = fields.Dict()
