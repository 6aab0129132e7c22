"""Request and response schemas of the governance API (unknown fields are rejected)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from governance.models import ASSESSMENT_STATES, NOTICE_STATES, REVIEW_RESULTS, ROLES, SECTIONS
from service.fields import Email, Text, Url

KEY = validate.Regexp(r"^[a-z0-9][a-z0-9_.-]{0,99}$", error="use 1-100 lowercase letters, digits, '_', '.', '-'")
COUNTRY = validate.Regexp(r"^[A-Z]{2}$", error="an ISO 3166-1 alpha-2 code such as NL or US")
FORMATS = ("json", "csv", "html")


class ProcessorFields(Schema):
    name = Text(200)
    role = Text(30, validate=validate.OneOf(ROLES))
    countries = fields.List(Text(2, validate=COUNTRY), validate=validate.Length(max=250))
    categories = fields.List(Text(100), validate=validate.Length(max=200))
    purposes = fields.List(Text(320), validate=validate.Length(max=200),
                           metadata={"description": "purpose keys, or app/policy/purpose for one activity"})
    dpa_date = fields.Date(allow_none=True, metadata={"description": "when the data processing agreement was signed"})
    contact = Text(300, allow_none=True)
    erasure_webhook = Url(2000, schemes={"https", "http"}, allow_none=True,
                          metadata={"description": "erasure notices are POSTed here, signed with an HMAC secret "
                                                   "that is generated and shown once"})
    erasure_email = Email(allow_none=True)


class ProcessorIn(ProcessorFields):
    key = Text(100, required=True, validate=KEY)
    name = Text(200, required=True)
    role = Text(30, required=True, validate=validate.OneOf(ROLES))
    countries = fields.List(Text(2, validate=COUNTRY), load_default=list, validate=validate.Length(max=250))
    categories = fields.List(Text(100), load_default=list, validate=validate.Length(max=200))
    purposes = fields.List(Text(320), load_default=list, validate=validate.Length(max=200))


class ProcessorUpdate(ProcessorFields):
    rotate_secret = fields.Boolean(load_default=False, metadata={"description": "make a new webhook secret"})


class ReviewIn(Schema):
    reviewed_on = fields.Date(required=True)
    result = Text(30, required=True, validate=validate.OneOf(REVIEW_RESULTS))
    reviewer = Text(200, required=True)
    next_due = fields.Date(required=True)
    notes = Text(5000, load_default=None, multiline=True)


class ReviewOut(Schema):
    id = fields.Integer()
    reviewed_on = fields.Date()
    result = fields.String()
    reviewer = fields.String()
    next_due = fields.Date()
    notes = fields.String(allow_none=True)


class ErasureOut(Schema):
    webhook = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    has_secret = fields.Boolean()
    secret = fields.String(metadata={"description": "only in the answer that made it: it is never shown again"})


class ProcessorOut(Schema):
    key = fields.String()
    name = fields.String()
    role = fields.String()
    countries = fields.List(fields.String())
    categories = fields.List(fields.String())
    purposes = fields.List(fields.String())
    dpa_date = fields.Date(allow_none=True)
    contact = fields.String(allow_none=True)
    erasure = fields.Nested(ErasureOut)
    reviews = fields.List(fields.Nested(ReviewOut))
    review_status = fields.String(metadata={"enum": ["current", "overdue", "failed", "missing"]})
    next_review_due = fields.Date(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class RopaQuery(Schema):
    format = Text(10, load_default="json", validate=validate.OneOf(FORMATS))
    app = Text(64, load_default=None)


class ActivityUpdate(Schema):
    description = Text(5000, allow_none=True, multiline=True)
    controller = Text(300, allow_none=True)
    joint_controller = Text(300, allow_none=True)
    security_measures = Text(5000, allow_none=True, multiline=True)


class ActivityOut(ActivityUpdate):
    key = fields.String()
    updated_at = fields.DateTime()
    updated_by = fields.String()


class SnapshotOut(Schema):
    id = fields.String()
    created_at = fields.DateTime()
    created_by = fields.String()
    activities = fields.Integer()
    sha256 = fields.String()
    jws = fields.String(metadata={"description": "the signed snapshot: a compact JWS (verify with the JWKS)"})
    ropa = fields.Dict()


class FindingOut(Schema):
    id = fields.String()
    kind = fields.String()
    subject = fields.String()
    message = fields.String()
    details = fields.Dict()


class NoticeOut(Schema):
    id = fields.String()
    processor = fields.String(metadata={"description": "the processor's key in the register"})
    channel = fields.String(validate=validate.OneOf(("webhook", "email")))
    categories = fields.List(fields.String(), metadata={"description": "the erased categories it receives"})
    state = fields.String(validate=validate.OneOf(NOTICE_STATES))
    attempts = fields.Integer(metadata={"description": "webhook deliveries tried (email: the outbox retries)"})
    last_error = fields.String(allow_none=True)
    mail_state = fields.String(allow_none=True, metadata={
        "description": "email only: the outbox row's state (queued, sending, sent, failed, unconfirmed)"})
    created_at = fields.DateTime()
    sent_at = fields.DateTime(allow_none=True)
    acknowledged_at = fields.DateTime(allow_none=True)


class AckOut(Schema):
    notice = fields.String()
    state = fields.String()
    acknowledged_at = fields.DateTime()


class FindingQuery(Schema):
    kind = Text(50, load_default=None)


class AssessmentIn(Schema):
    app = Text(64, required=True)
    activity = Text(320, load_default=None, metadata={"description": "app/policy/purpose; default: the whole app"})
    title = Text(300, required=True)


class RiskIn(Schema):
    id = Text(40, required=True)
    section = Text(20, required=True, validate=validate.OneOf(SECTIONS))
    description = Text(2000, required=True, multiline=True)
    likelihood = fields.Integer(required=True, strict=True, validate=validate.Range(1, 5))
    impact = fields.Integer(required=True, strict=True, validate=validate.Range(1, 5))


class MitigationIn(Schema):
    risk = Text(40, required=True)
    action = Text(2000, required=True, multiline=True)
    owner = Text(200, required=True)
    due = fields.Date(required=True)


class AnswersIn(Schema):
    collection = Text(20000, multiline=True)
    storage = Text(20000, multiline=True)
    use = Text(20000, multiline=True)
    destruction = Text(20000, multiline=True)


class AssessmentUpdate(Schema):
    title = Text(300)
    answers = fields.Nested(AnswersIn)
    risks = fields.List(fields.Nested(RiskIn), validate=validate.Length(max=200))
    mitigations = fields.List(fields.Nested(MitigationIn), validate=validate.Length(max=500))


class ApproveIn(Schema):
    approver = Text(200, required=True)
    review_due = fields.Date(load_default=None, metadata={"description": "default: a year from now"})


class ChangesIn(Schema):
    reviewer = Text(200, required=True)
    comment = Text(5000, required=True, multiline=True)


class AssessmentQuery(Schema):
    state = Text(20, load_default=None, validate=validate.OneOf(ASSESSMENT_STATES))
    app = Text(64, load_default=None)


class SectionOut(Schema):
    facts = fields.Dict(allow_none=True, metadata={"description": "prefilled from what the service knows now"})
    answer = fields.String(allow_none=True)


class AssessmentOut(Schema):
    id = fields.String()
    app = fields.String()
    activity = fields.String(allow_none=True)
    title = fields.String()
    state = fields.String(metadata={"enum": list(ASSESSMENT_STATES)})
    sections = fields.Dict(keys=fields.String(), values=fields.Nested(SectionOut))
    risks = fields.List(fields.Dict())
    mitigations = fields.List(fields.Dict())
    drift = fields.List(fields.Dict())
    reviewer_comment = fields.String(allow_none=True)
    approved_by = fields.String(allow_none=True)
    approved_at = fields.DateTime(allow_none=True)
    review_due = fields.Date(allow_none=True)
    facts_digest = fields.String(allow_none=True)
    jws = fields.String(allow_none=True, metadata={
        "description": "the latest approval, signed: a compact JWS (verify with the JWKS); null until approved once"})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
