"""Request and response schemas of the consent API (unknown fields are rejected)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from service.fields import Text, Url

KEY = validate.Regexp(r"^[a-z0-9][a-z0-9_.-]{0,99}$", error="use 1-100 lowercase letters, digits, '_', '.', '-'")
# BCP 47 language tag, loosely: language[-script][-region][-variants]
LOCALE = validate.Regexp(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$", error="expected a BCP 47 language tag")
DURATION = validate.Regexp(r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$",
                           error="expected an ISO 8601 duration such as P2Y or P180D")
CHANNEL = validate.Regexp(r"^[a-z0-9_-]{1,40}$", error="use 1-40 of a-z, 0-9, '_', '-'")
SHA256 = validate.Regexp(r"^[0-9a-f]{64}$", error="expected 64 lowercase hex digits")
LAWFUL_BASES = ("consent", "contract", "legal_obligation", "vital_interests", "public_task",
                "legitimate_interests")


def StrictBool(**kwargs: Any) -> fields.Boolean:  # noqa: N802 - reads like a field class
    """A boolean that accepts only JSON true/false: consent is never inferred from "yes" or 1."""
    return fields.Boolean(truthy={True}, falsy={False}, **kwargs)


class PurposeIn(Schema):
    key = Text(100, required=True, validate=KEY)
    description = Text(2000, required=True, multiline=True)
    required = StrictBool(load_default=False)
    honors_gpc = StrictBool(load_default=False)
    sale_or_sharing = StrictBool(load_default=False, metadata={
        "description": "the purpose sells or shares personal data (CCPA): an opt-out of sale withdraws it"})
    lawful_basis = Text(40, load_default="consent", validate=validate.OneOf(LAWFUL_BASES))
    retention = Text(40, load_default=None, validate=DURATION)  # the column's width
    pii_categories = fields.List(Text(100), load_default=list)
    third_party = Text(200, load_default=None)


class PolicyIn(Schema):
    key = Text(100, required=True, validate=KEY)
    title = Text(300, required=True)
    purposes = fields.List(fields.Nested(PurposeIn), required=True, validate=validate.Length(1, 100))


class PurposeOut(Schema):
    key = fields.String()
    description = fields.String()
    required = fields.Boolean()
    honors_gpc = fields.Boolean()
    sale_or_sharing = fields.Boolean()
    lawful_basis = fields.String()
    retention = fields.String(allow_none=True)
    pii_categories = fields.List(fields.String())
    third_party = fields.String(allow_none=True)


class VersionIn(Schema):
    version = Text(50, required=True)
    effective_at = fields.AwareDateTime(load_default=None, metadata={"description": "default: now"})
    text = Text(1_000_000, load_default=None, multiline=True)
    url = Url(2000, load_default=None, schemes={"https", "http"})
    sha256 = Text(64, load_default=None, validate=SHA256)
    material = StrictBool(required=True)

    @validates_schema
    def _text_or_url(self, data: dict[str, Any], **_: Any) -> None:
        if (data.get("text") is None) == (data.get("url") is None):
            raise ValidationError("give either text, or url with sha256", field_name="text")
        if data.get("url") is not None and data.get("sha256") is None:
            raise ValidationError("required with url", field_name="sha256")


class VersionOut(Schema):
    version = fields.String()
    effective_at = fields.DateTime()
    url = fields.String(allow_none=True)
    sha256 = fields.String()
    material = fields.Boolean()
    created_at = fields.DateTime()


class PolicyOut(Schema):
    key = fields.String()
    title = fields.String()
    purposes = fields.List(fields.Nested(PurposeOut))
    current_version = fields.String(allow_none=True)
    created_at = fields.DateTime()


class EvidenceIn(Schema):
    ip = fields.IP(load_default=None)
    user_agent = Text(1000, min_length=None, load_default=None)


class ConsentIn(Schema):
    subject_id = Text(255, required=True)
    policy = Text(100, required=True, validate=KEY)
    version = Text(50, required=True)
    purposes = fields.Dict(keys=Text(100), values=StrictBool(), required=True)
    channel = Text(40, required=True, validate=CHANNEL)
    locale = Text(35, required=True, validate=LOCALE)  # the column's width
    evidence = fields.Nested(EvidenceIn, load_default=None)
    gpc = StrictBool(load_default=False)


class ConsentOut(Schema):
    id = fields.String()
    kind = fields.String()
    policy = fields.String()
    version = fields.String()
    purposes = fields.Dict(keys=fields.String(), values=fields.Boolean())
    gpc = fields.Boolean()
    created_at = fields.DateTime()
    receipt = fields.String(metadata={"description": "compact JWS (EdDSA); verify with /.well-known/jwks.json"})


class StatusQuery(Schema):
    subject_id = Text(255, required=True)
    policy = Text(100, required=True, validate=KEY)


class StatusOut(Schema):
    consent_required = fields.Boolean()
    reason = fields.String(allow_none=True,
                           metadata={"enum": [None, "no_consent", "new_version", "withdrawn"]})
    current_version = fields.String()
    consented_version = fields.String(allow_none=True)
    purposes = fields.Dict(keys=fields.String(), values=fields.Boolean())


class WithdrawIn(Schema):
    subject_id = Text(255, required=True)
    policy = Text(100, required=True, validate=KEY)
    purposes = fields.List(Text(100), load_default=None, validate=validate.Length(min=1),
                           metadata={"description": "default: all"})
    channel = Text(40, load_default=None, validate=CHANNEL)


class WithdrawOut(StatusOut):
    id = fields.String()
    created_at = fields.DateTime()
    receipt = fields.String()


class HistoryQuery(Schema):
    policy = Text(100, load_default=None, validate=KEY)


class EvidenceOut(Schema):
    ip = fields.String(allow_none=True)
    user_agent = fields.String(allow_none=True)


class HistoryItem(ConsentOut):
    channel = fields.String()
    locale = fields.String(allow_none=True)
    evidence = fields.Nested(EvidenceOut, allow_none=True)


class BreakOut(Schema):
    event = fields.String(metadata={"description": "the event id, or the range of ids a checkpoint segment covers"})
    problem = fields.String()


class VerificationOut(Schema):
    id = fields.Integer()
    status = fields.String(metadata={"enum": ["running", "intact", "broken", "failed", "abandoned"]})
    mode = fields.String(metadata={"enum": ["full", "incremental"]})
    trigger = fields.String(metadata={"enum": ["cron", "cli"]})
    started_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)
    events_checked = fields.Integer(metadata={"description": "events whose hash was recomputed"})
    chains_checked = fields.Integer()
    events_covered = fields.Integer(allow_none=True,
                                    metadata={"description": "events the run's signed checkpoint covers"})
    breaks = fields.Integer()
    first_break = fields.Nested(BreakOut, allow_none=True, metadata={
        "description": "null when there is none, or when it is not in this app's records (a key with "
                       "platform:read sees every app's)"})
    compared_with = fields.Integer(allow_none=True,
                                   metadata={"description": "the verification whose checkpoint it started from"})
    checkpoint = fields.String(allow_none=True, metadata={
        "description": "compact JWS (EdDSA) over the checkpoint's digests; verify with /.well-known/jwks.json. "
                       "Shown to keys with platform:read (it names event ids of every app)"})
    error = fields.String(allow_none=True)
