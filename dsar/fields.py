"""A request's personal data (identity, contact address, details) sealed with the field key ring, each value
bound to its request and field so a sealed value cannot be moved to another row."""

from __future__ import annotations

import json
from typing import Any

from dsar.models import DsarRequest
from service.runtime import Runtime


def seal(rt: Runtime, request_id: str, field: str, value: Any) -> bytes:
    return rt.keys.fields.encrypt(json.dumps(value, sort_keys=True).encode(), f"dsar_request:{request_id}:{field}")


def _open(rt: Runtime, req: DsarRequest, field: str, blob: bytes | None) -> Any:
    if blob is None:
        return None
    return json.loads(rt.keys.fields.decrypt(blob, f"dsar_request:{req.id}:{field}"))


def subject_of(rt: Runtime, req: DsarRequest) -> dict[str, str]:
    return _open(rt, req, "subject", req.subject)


def contact_of(rt: Runtime, req: DsarRequest) -> str | None:
    return _open(rt, req, "contact", req.contact)


def details_of(rt: Runtime, req: DsarRequest) -> dict[str, Any] | None:
    return _open(rt, req, "details", req.details)
