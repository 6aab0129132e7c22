"""Request schemas more than one domain reads: a data subject's identities, and a reason given for an action.

One class each, so the OpenAPI document names each shape once whichever blueprint uses it.
"""

from __future__ import annotations

from marshmallow import Schema, validate

from service.fields import Email, Text


class SubjectIn(Schema):
    user_id = Text(255, load_default=None)
    email = Email(load_default=None)
    phone = Text(30, load_default=None, validate=validate.Regexp(r"^\+?[0-9 ()-]{5,30}$",
                                                                 error="expected a phone number"))


class ReasonIn(Schema):
    reason = Text(2000, min_length=3, required=True, multiline=True)
