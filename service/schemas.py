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


# "Give user_id, email or phone", as the rights requests check it: a field holding a subject that must be
# identified carries this in the document (a schema's own metadata cannot say "at least one of"), so clients and
# generators know an empty subject is refused.
IDENTIFIED = {"anyOf": [{"required": [name], "properties": {name: {"type": "string"}}}
                        for name in ("user_id", "email", "phone")]}


class ReasonIn(Schema):
    reason = Text(2000, min_length=3, required=True, multiline=True)
