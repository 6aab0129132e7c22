"""Request and response schemas of the rights-request API."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from dsar.models import STATES, TYPES
from service.fields import Email, Text
from service.schemas import IDENTIFIED, SubjectIn


class RequestIn(Schema):
    type = Text(30, required=True, validate=validate.OneOf(TYPES))
    subject = fields.Nested(SubjectIn, required=True, metadata=IDENTIFIED)
    jurisdiction = Text(20, min_length=2, required=True)
    contact_email = Email(load_default=None)
    details = fields.Dict(load_default=None, metadata={"description": "e.g. the corrections of a rectification"})
    verified = fields.Boolean(truthy={True}, falsy={False}, load_default=False,
                              metadata={"description": "only with dsar:manage: the app verified the subject"})
    locale = Text(35, load_default=None, metadata={
        "description": "the language of the emails about the request: en, zh_Hans, or a BCP 47 tag of those "
                       "(zh-CN, en-GB); default MAIL_DEFAULT_LOCALE"})


class TaskOut(Schema):
    store = fields.String()
    state = fields.String()
    attempts = fields.Integer()
    counts = fields.Dict()
    kept = fields.Dict()
    note = fields.String(allow_none=True, metadata={"description": "what a manual task asks of an operator"})
    last_error = fields.String(allow_none=True)


class RequestOut(Schema):
    id = fields.String()
    type = fields.String()
    status = fields.String(metadata={"enum": list(STATES)})
    jurisdiction = fields.String()
    received_at = fields.DateTime()
    due_at = fields.DateTime()
    overdue = fields.Boolean()
    extended = fields.Boolean()
    extension_reason = fields.String(allow_none=True)
    verified_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    reason = fields.String(allow_none=True)
    certificate = fields.String(allow_none=True, metadata={"description": "erasure certificate (JWS)"})
    export_ready = fields.Boolean()
    export_expires_at = fields.DateTime(allow_none=True)
    consent = fields.Dict(allow_none=True, metadata={"description": "erasure: consent records removed and kept"})
    lifted_at = fields.DateTime(allow_none=True)
    lift_reason = fields.String(allow_none=True)
    locale = fields.String(allow_none=True, metadata={
        "description": "the language of its emails (en or zh_Hans); null for a request made before locales were "
                       "kept (MAIL_DEFAULT_LOCALE)"})
    tasks = fields.List(fields.Nested(TaskOut))


class RequestQuery(Schema):
    status = Text(30, load_default=None, validate=validate.OneOf(STATES))
    type = Text(30, load_default=None, validate=validate.OneOf(TYPES))
    overdue = fields.Boolean(load_default=None)


class CodeIn(Schema):
    code = Text(6, required=True, validate=validate.Regexp(r"^[0-9]{6}$", error="expected 6 digits"))


class OptionalReasonIn(Schema):
    reason = Text(2000, min_length=None, load_default=None, multiline=True)


class FlagsIn(Schema):
    subject = fields.Nested(SubjectIn, required=True, metadata=IDENTIFIED)


class FlagOut(Schema):
    type = fields.String()
    request_id = fields.String()
    since = fields.DateTime()


class FlagsOut(Schema):
    restricted = fields.Boolean()
    objected = fields.Boolean()
    flags = fields.List(fields.Nested(FlagOut))


class TokenOut(Schema):
    token = fields.String()
    expires_at = fields.DateTime()


class DownloadQuery(Schema):
    token = Text(100, min_length=20, required=True)

