"""Schemas of the DRP endpoints (documentation of the protocol's objects) and of the agents' admin API."""

from __future__ import annotations

from typing import Any

from marshmallow import INCLUDE, Schema, fields, validate

from dsar.agents.service import AGENT_ID
from dsar.agents.status import DENIALS, REASONS, STATUSES
from service.fields import Text


class JsonBool(fields.Boolean):
    """JSON true or false only (a set of {True, False} would also take 0 and 1, which equal them)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class DrpStatusOut(Schema):
    """The Exercise Status object (DRP 1.0 section 3.03)."""

    request_id = fields.String(required=True)
    received_at = fields.String(metadata={"description": "ISO 8601"})
    expected_by = fields.String(metadata={"description": "ISO 8601: the legal deadline (extended: see "
                                                         "processing_details)"})
    agent_request_id = fields.String()
    processing_details = fields.String()
    status = fields.String(required=True, metadata={"enum": list(STATUSES)})
    reason = fields.String(metadata={"enum": list(REASONS)})
    user_verification_url = fields.String(metadata={"description": "the privacy centre's single-use link to "
                                                                   "confirm the request with the emailed code"})
    results_url = fields.String(metadata={"description": "single-use download of the access results (zip)"})
    expires_at = fields.String(metadata={"description": "ISO 8601: end of the verification window, or of "
                                                        "the results"})


class DrpTokenOut(Schema):
    agent_id = fields.String(data_key="agent-id", required=True)
    token = fields.String(required=True)


class DrpErrorOut(Schema):
    """An error (DRP 1.0 section 3.06). A URL that matches no route, or a method a path does not have, is answered
    before the DRP endpoints are reached, in the service's general shape (`code` a number, and `status`)."""

    class Meta:
        unknown = INCLUDE

    code = fields.Raw(required=True, metadata={"description": "the HTTP status, as a string",
                                               "oneOf": [{"type": "string"}, {"type": "integer"}]})
    message = fields.String(required=True)
    fatal = fields.Boolean(metadata={"description": "true: sending the same message again cannot succeed"})
    status = fields.String(metadata={"description": "only in the service's general shape"})


SIGNED_BODY = {
    "required": True,
    "description": "base64 of the 64-byte Ed25519 signature followed by the signed JSON (libsodium combined "
                   "mode), signed with the agent's directory key",
    "content": {"text/plain": {"schema": {
        "type": "string", "minLength": 92, "maxLength": 16384,  # 64 bytes of signature and a message
        "pattern": "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"}}},
}


class DrpAgentIn(Schema):
    agent_id = Text(90, required=True, validate=validate.Regexp(AGENT_ID, error="use 1-90 of A-Z a-z 0-9 _ . : -"))
    verify_key = Text(44, required=True, validate=validate.Regexp(r"^[A-Za-z0-9+/]{43}=$", error="expected the "
                                                                  "base64 of a 32-byte Ed25519 key"),
                      metadata={"description": "the directory entry's base64 Ed25519 key"})
    business_id = Text(100, required=True, validate=validate.Regexp(r"^[A-Za-z0-9_.:-]{1,100}$"), metadata={
        "description": "this app's id as a Covered Business in the DRP service directory"})
    name = Text(200, load_default=None)
    trust_verification = JsonBool(load_default=True, metadata={
        "description": "accept the agent's email_verified / phone_number_verified claims (else the person "
                       "confirms with an emailed code)"})


class DrpAgentOut(Schema):
    agent_id = fields.String()
    business_id = fields.String()
    verify_key = fields.String()
    name = fields.String(allow_none=True)
    trust_verification = fields.Boolean()
    created_at = fields.DateTime()
    revoked_at = fields.DateTime(allow_none=True)


class DrpDenyIn(Schema):
    reason = Text(40, required=True, validate=validate.OneOf(DENIALS))
    processing_details = Text(2000, required=True, multiline=True)
