"""Marshmallow fields for text that a request stores or looks up: bounded, and free of what the databases refuse.

PostgreSQL rejects NUL in text and a lone surrogate cannot be encoded as UTF-8 (both used to surface as 500s);
a string longer than its column fails on PostgreSQL and is silently kept on SQLite. Every request schema takes
its strings from here, so each is refused with a 422 naming the field before it reaches a query.
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import fields
from marshmallow.validate import Length, Regexp

# C0 controls, DEL and the surrogate range; line breaks and tabs are allowed where a field is `multiline`.
_SINGLE_LINE = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
_MULTILINE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
PATTERN_UP_TO = 20_000  # a long text's (an incident's description) control characters are documented too
# The same rules as documented in the OpenAPI document (JSON Schema has no way to say "no lone surrogate").
_SINGLE_LINE_PATTERN = "^[^\\u0000-\\u001f\\u007f]*$"
_MULTILINE_PATTERN = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f]*$"


class _Checked(fields.String):
    """A string field that refuses control characters and lone surrogates and carries its length bound."""

    default_error_messages = {
        "control": "must not contain NUL or other control characters",
        "surrogate": "must be valid Unicode: it contains a lone surrogate",
    }

    def __init__(self, max_length: int, *, min_length: int | None = 1, multiline: bool = False,
                 validate: Any = None, **kwargs: Any) -> None:
        extra = [] if validate is None else list(validate) if isinstance(validate, list | tuple) else [validate]
        # The length bound first: it also documents maxLength in the OpenAPI document.
        super().__init__(validate=[Length(min=min_length, max=max_length), *extra], **kwargs)
        self.max_length = max_length
        self._forbidden = _MULTILINE if multiline else _SINGLE_LINE
        # A field's own pattern already says what it allows. Documents (a policy's text) go without: generators
        # such as schemathesis cannot build a megabyte that matches a pattern in reasonable time.
        if not any(isinstance(v, Regexp) for v in extra) and max_length <= PATTERN_UP_TO:
            self.metadata.setdefault("pattern", _MULTILINE_PATTERN if multiline else _SINGLE_LINE_PATTERN)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        bad = self._forbidden.search(text)
        if bad is not None:
            raise self.make_error("surrogate" if "\ud800" <= bad.group() <= "\udfff" else "control")
        return text


class Text(_Checked):
    """Text of at most `max_length` characters (at least `min_length`, 1 unless told): a name, an id, a reason.
    Tabs and line breaks only when `multiline`."""


class Email(_Checked, fields.Email):
    """An email address, at most 254 characters (RFC 5321's path limit)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(254, **kwargs)


class Url(_Checked, fields.Url):
    """An absolute URL of at most `max_length` characters."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # apispec documents marshmallow's Url as format "url", which JSON Schema does not define (so generators
        # send any string); "uri" is the format it means.
        self.metadata.setdefault("format", "uri")
