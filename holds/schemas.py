"""Request and response schemas of the legal-hold API."""

from __future__ import annotations

from marshmallow import Schema, fields

from service.fields import Text
from service.schemas import SubjectIn


class HoldIn(Schema):
    subject = fields.Nested(SubjectIn, load_default=None)
    store = Text(100, load_default=None)
    category = Text(100, load_default=None)
    reason = Text(2000, min_length=3, required=True, multiline=True)
    until = fields.AwareDateTime(load_default=None)


class HoldOut(Schema):
    id = fields.String()
    subject = fields.Boolean(metadata={"description": "whether the hold names a subject (never shown)"})
    store = fields.String(allow_none=True)
    category = fields.String(allow_none=True)
    reason = fields.String()
    until = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    released_at = fields.DateTime(allow_none=True)
    release_reason = fields.String(allow_none=True)
