"""Request and response schemas of the consent API (unknown fields are rejected)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

KEY = validate.Regexp(r"^[a-z0-9][a-z0-9_.-]{0,99}$", error="use 1-100 lowercase letters, digits, '_', '.', '-'")
# BCP 47 language tag, loosely: language[-script][-region][-variants]
LOCALE = validate.Regexp(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$", error="expected a BCP 47 language tag")
DURATION = validate.Regexp(r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$",
                           error="expected an ISO 8601 duration such as P2Y or P180D")
SHA256 = validate.Regexp(r"^[0-9a-f]{64}$", error="expected 64 lowercase hex digits")
LAWFUL_BASES = ("consent", "contract", "legal_obligation", "vital_interests", "public_task",
                "legitimate_interests")


def StrictBool(**kwargs: Any) -> fields.Boolean:  # noqa: N802 - reads like a field class
    """A boolean that accepts only JSON true/false: consent is never inferred from "yes" or 1."""
    return fields.Boolean(truthy={True}, falsy={False}, **kwargs)


class PurposeIn(Schema):
    key = fields.String(required=True, validate=KEY)
    description = fields.String(required=True, validate=validate.Length(1, 2000))
    required = StrictBool(load_default=False)
    honors_gpc = StrictBool(load_default=False)
    lawful_basis = fields.String(load_default="consent", validate=validate.OneOf(LAWFUL_BASES))
    retention = fields.String(load_default=None, validate=DURATION)
    pii_categories = fields.List(fields.String(validate=validate.Length(1, 100)), load_default=list)
    third_party = fields.String(load_default=None, validate=validate.Length(1, 200))


class PolicyIn(Schema):
    key = fields.String(required=True, validate=KEY)
    title = fields.String(required=True, validate=validate.Length(1, 300))
    purposes = fields.List(fields.Nested(PurposeIn), required=True, validate=validate.Length(1, 100))


class PurposeOut(Schema):
    key = fields.String()
    description = fields.String()
    required = fields.Boolean()
    honors_gpc = fields.Boolean()
    lawful_basis = fields.String()
    retention = fields.String(allow_none=True)
    pii_categories = fields.List(fields.String())
    third_party = fields.String(allow_none=True)


class VersionIn(Schema):
    version = fields.String(required=True, validate=validate.Length(1, 50))
    effective_at = fields.AwareDateTime(load_default=None, metadata={"description": "default: now"})
    text = fields.String(load_default=None, validate=validate.Length(1, 1_000_000))
    url = fields.Url(load_default=None, schemes={"https", "http"})
    sha256 = fields.String(load_default=None, validate=SHA256)
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
    user_agent = fields.String(load_default=None, validate=validate.Length(max=1000))


class ConsentIn(Schema):
    subject_id = fields.String(required=True, validate=validate.Length(1, 255))
    policy = fields.String(required=True, validate=KEY)
    version = fields.String(required=True, validate=validate.Length(1, 50))
    purposes = fields.Dict(keys=fields.String(validate=validate.Length(1, 100)), values=StrictBool(),
                           required=True)
    channel = fields.String(required=True, validate=validate.Regexp(r"^[a-z0-9_-]{1,40}$",
                                                                    error="use 1-40 of a-z, 0-9, '_', '-'"))
    locale = fields.String(required=True, validate=LOCALE)
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
    subject_id = fields.String(required=True, validate=validate.Length(1, 255))
    policy = fields.String(required=True, validate=KEY)


class StatusOut(Schema):
    consent_required = fields.Boolean()
    reason = fields.String(allow_none=True,
                           metadata={"enum": [None, "no_consent", "new_version", "withdrawn"]})
    current_version = fields.String()
    consented_version = fields.String(allow_none=True)
    purposes = fields.Dict(keys=fields.String(), values=fields.Boolean())


class WithdrawIn(Schema):
    subject_id = fields.String(required=True, validate=validate.Length(1, 255))
    policy = fields.String(required=True, validate=KEY)
    purposes = fields.List(fields.String(validate=validate.Length(1, 100)), load_default=None,
                           validate=validate.Length(min=1), metadata={"description": "default: all"})
    channel = fields.String(load_default=None, validate=validate.Regexp(r"^[a-z0-9_-]{1,40}$"))


class WithdrawOut(StatusOut):
    id = fields.String()
    created_at = fields.DateTime()
    receipt = fields.String()


class HistoryQuery(Schema):
    policy = fields.String(load_default=None, validate=KEY)


class EvidenceOut(Schema):
    ip = fields.String(allow_none=True)
    user_agent = fields.String(allow_none=True)


class HistoryItem(ConsentOut):
    channel = fields.String()
    locale = fields.String(allow_none=True)
    evidence = fields.Nested(EvidenceOut, allow_none=True)
