"""Signed DRP messages: libsodium "combined mode" (64-byte Ed25519 signature, then the JSON), base64 in a
text/plain body, checked in the order DRP 1.0 section 3.07 gives."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

SIGNATURE_BYTES = 64
MAX_BODY = 16 * 1024  # a request is a few hundred bytes of claims


class Refused(Exception):
    """The message fails a check; `check` names which (signature, agent-id, business-id, issued-at,
    expires-at, body)."""

    def __init__(self, check: str, message: str) -> None:
        super().__init__(message)
        self.check, self.message = check, message


@dataclass(frozen=True)
class Verified:
    claims: dict[str, Any]
    key: str          # the verify key (base64) whose signature held
    digest: str       # SHA-256 of the signed bytes: the replay guard's key
    expires_at: datetime


def public_key(verify_key: str) -> Ed25519PublicKey:
    """The Ed25519 key of a directory entry's `verify_key` (standard base64 of 32 bytes); ValueError otherwise."""
    try:
        raw = base64.b64decode(verify_key, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("verify_key: not base64") from None
    if len(raw) != 32:
        raise ValueError(f"verify_key: expected 32 bytes, got {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A claim given twice would let a signer and a reader disagree on which one counts.
    if len({k for k, _ in pairs}) != len(pairs):
        raise ValueError("a key is repeated")
    return dict(pairs)


def timestamp(value: Any, name: str) -> datetime:
    """An ISO 8601 claim as an aware datetime (one without an offset is read as UTC)."""
    if not isinstance(value, str) or len(value) > 64:
        raise Refused(name, f"{name}: expected an ISO 8601 timestamp")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Refused(name, f"{name}: expected an ISO 8601 timestamp") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def verify(body: bytes, keys: Iterable[str], *, agent_id: str, business_ids: Iterable[str], now: datetime,
           skew: timedelta, max_window: timedelta) -> Verified:
    """Check a signed body: base64, the signature under one of `keys`, then `agent-id`, `business-id`,
    `issued-at` (not after now + skew), `expires-at` (after now; at most `max_window` after issued-at).
    Raises Refused at the first check that fails."""
    if len(body) > MAX_BODY:
        raise Refused("body", "the signed message is too large")
    try:
        signed = base64.b64decode(b"".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        raise Refused("body", "the body is not base64") from None
    if len(signed) <= SIGNATURE_BYTES:
        raise Refused("body", "the body is shorter than a signature")
    signature, message = signed[:SIGNATURE_BYTES], signed[SIGNATURE_BYTES:]
    good = None
    for key in keys:
        try:
            public_key(key).verify(signature, message)
        except (InvalidSignature, ValueError):
            continue
        good = key
        break
    if good is None:
        raise Refused("signature", "the signature does not verify with the agent's key")
    try:
        claims = json.loads(message, object_pairs_hook=_unique)
    except (ValueError, RecursionError):
        raise Refused("body", "the signed message is not JSON") from None
    if not isinstance(claims, dict):
        raise Refused("body", "the signed message is not a JSON object")
    if claims.get("agent-id") != agent_id:
        raise Refused("agent-id", "agent-id does not match the agent of this request")
    if claims.get("business-id") not in set(business_ids):
        raise Refused("business-id", "business-id does not name this Covered Business")
    issued = timestamp(claims.get("issued-at"), "issued-at")
    expires = timestamp(claims.get("expires-at"), "expires-at")
    if issued > now + skew:
        raise Refused("issued-at", "issued-at is in the future")
    if expires <= now:
        raise Refused("expires-at", "the message has expired")
    if expires - issued > max_window:
        raise Refused("expires-at", f"expires-at is more than {int(max_window.total_seconds())} s after issued-at")
    return Verified(claims, good, hashlib.sha256(signed).hexdigest(), expires)
