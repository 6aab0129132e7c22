"""JSON request bodies read within limits: nesting depth, integer length, finite numbers, each key once; a 400 names
the limit (or the repeated key).

The standard parser recurses once per nesting level (10,000 levels raise RecursionError) and refuses integers of
over 4,300 digits with a bare ValueError: both used to surface as 500s. The Flask app reads every JSON body through
`loads` (its JSON provider), and `service.api.Blueprint` hands webargs that parsed body, so a body is parsed once.
"""

from __future__ import annotations

import json
import math
from typing import Any

from flask import Request as FlaskRequest
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import BadRequest

# No request schema nests deeper than 4; 64 leaves room for free-form `details` and stays far below recursion limits.
MAX_DEPTH = 64
# 2**64 has 20 digits: a longer integer fits no column and no client's number type; 100 leaves room to spare.
MAX_INT_DIGITS = 100

TOO_DEEP = f"JSON body nested deeper than the limit of {MAX_DEPTH} levels"


class BodyError(ValueError):
    """A JSON body beyond one of the limits; the message names the limit."""


def loads(data: str | bytes | bytearray) -> Any:
    """Parse a JSON document within the limits above, raising BodyError (a ValueError) for one exceeded."""
    try:
        value = json.loads(data, parse_int=_int, parse_float=_float, parse_constant=_constant,
                           object_pairs_hook=_object)
    except RecursionError:
        raise BodyError(TOO_DEEP) from None
    # A document with no more brackets than the limit cannot nest deeper: count them (in C) before walking it.
    opening = data.count(b"[" if isinstance(data, bytes | bytearray) else "[") + \
        data.count(b"{" if isinstance(data, bytes | bytearray) else "{")
    if opening > MAX_DEPTH and _depth(value) > MAX_DEPTH:
        raise BodyError(TOO_DEEP)
    return value


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # The standard parser keeps the last of a repeated key, silently: which one a client meant is unknowable.
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise BodyError(f"JSON body has the key {json.dumps(key[:100])} more than once in an object")
            seen.add(key)
    return value


def _int(digits: str) -> int:
    if len(digits) - digits.startswith("-") > MAX_INT_DIGITS:
        raise BodyError(f"JSON body has an integer longer than the limit of {MAX_INT_DIGITS} digits")
    return int(digits)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BodyError("JSON body has a number out of range")
    return value


def _constant(name: str) -> Any:
    raise BodyError(f"JSON body has {name}, which is not JSON")


def _depth(value: Any) -> int:
    """How deep containers nest in `value` (a scalar is 0, [] is 1); iterative, so any depth is safe to measure."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


class JSONProvider(DefaultJSONProvider):
    """The app's JSON: reading goes through `loads` above; writing is Flask's."""

    sort_keys = False  # responses keep their schema's field order

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s)


class Request(FlaskRequest):
    """Flask's request, answering a body that cannot be read as JSON with a 400 saying why."""

    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        if isinstance(e, BodyError):
            raise BadRequest(str(e))
        if isinstance(e, UnicodeDecodeError):
            raise BadRequest("invalid JSON body: it is not UTF-8")
        if isinstance(e, json.JSONDecodeError):
            raise BadRequest(f"invalid JSON body: {e.msg} at line {e.lineno} column {e.colno}")
        return super().on_json_loading_failed(e)
