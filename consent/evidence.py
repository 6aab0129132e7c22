"""A consent's evidence (what the app supplied: IP, user agent, form id...), encrypted and bound to its event."""

from __future__ import annotations

import json
from typing import Any

from service.crypto import KeyMaterial


def _context(event_id: str) -> str:
    """The associated data: a ciphertext copied onto another event does not decrypt there."""
    return f"consent_event:{event_id}:evidence"


def seal(keys: KeyMaterial, event_id: str, evidence: dict[str, Any]) -> bytes:
    return keys.fields.encrypt(json.dumps(evidence, sort_keys=True).encode(), _context(event_id))


def unseal(keys: KeyMaterial, event_id: str, blob: bytes | None) -> dict[str, Any] | None:
    return None if blob is None else json.loads(keys.fields.decrypt(blob, _context(event_id)))
