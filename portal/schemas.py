"""The links API's bodies."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from service.fields import Text, Url
from service.pages.i18n import LOCALES


class LinkIn(Schema):
    subject_id = Text(255, required=True, metadata={"description": "the app's own id of its signed-in user"})
    return_url = Url(2000, load_default=None, schemes={"https", "http"}, require_tld=False,
                     metadata={"description": "where the privacy centre's link back to the app goes"})
    # What service.pages.i18n.normalise takes (en, en-GB, zh, zh-CN, zh_Hans...), as a pattern the document shows.
    locale = Text(35, load_default=None,
                  validate=validate.Regexp(r"^([Zz][Hh][^\x00-\x1f\x7f]*|[Ee][Nn]([-_][^\x00-\x1f\x7f]*)?)$",
                                           error=f"choose from {list(LOCALES)}"),
                  metadata={"description": f"one of {list(LOCALES)}, or a BCP 47 tag of either language (en-GB, "
                                           "zh-CN)"})


class LinkOut(Schema):
    url = fields.String(metadata={"description": "open it once within 10 minutes; it signs the person in"})
    expires_at = fields.DateTime()
