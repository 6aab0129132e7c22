"""The links API's bodies."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validates

from service.fields import Text, Url
from service.pages.i18n import LOCALES, normalise


class LinkIn(Schema):
    subject_id = Text(255, required=True, metadata={"description": "the app's own id of its signed-in user"})
    return_url = Url(2000, load_default=None, schemes={"https", "http"}, require_tld=False,
                     metadata={"description": "where the privacy centre's link back to the app goes"})
    locale = Text(35, load_default=None, metadata={"description": f"one of {list(LOCALES)}, or a BCP 47 tag"})

    @validates("locale")
    def _locale(self, value: str | None, **_: object) -> None:
        if value is not None and normalise(value) is None:
            raise ValidationError(f"choose from {list(LOCALES)}")


class LinkOut(Schema):
    url = fields.String(metadata={"description": "open it once within 10 minutes; it signs the person in"})
    expires_at = fields.DateTime()
