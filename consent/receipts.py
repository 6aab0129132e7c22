"""Consent receipts: Kantara Consent Receipt v1.1 claims plus the ISO/IEC TS 27560 record fields it lacks."""

from __future__ import annotations

from typing import Any

from consent.models import ConsentEvent
from consent.views import PolicyView, VersionRow
from service.config import Settings

KANTARA_VERSION = "KI-CR-v1.1.0"


def _purpose_state(kind: str, granted: bool) -> str:
    if granted:
        return "granted"
    return "withdrawn" if kind == "withdrawal" else "denied"


def receipt_claims(*, event: ConsentEvent, record_hash: str, policy: PolicyView, version: VersionRow,
                   app_slug: str, settings: Settings, gpc_denied: list[str]) -> dict[str, Any]:
    """The signed payload. The subject appears only as its pseudonym (`piiPrincipalId`/`sub`)."""
    controller = settings.controller
    issued = int(event.created_at.timestamp())
    purposes = []
    for p in policy.purposes:
        entry: dict[str, Any] = {
            "purpose": p.description,
            "purposeKey": p.key,
            "consentType": "EXPLICIT",
            "purposeCategory": [p.key],
            "piiCategory": list(p.pii_categories),
            "primaryPurpose": p.required,
            "termination": f"retained for {p.retention} or until withdrawn" if p.retention else "until withdrawn",
            "thirdPartyDisclosure": p.third_party is not None,
        }
        if p.third_party is not None:
            entry["thirdPartyName"] = p.third_party
        purposes.append(entry)
    return {
        # Kantara Consent Receipt v1.1
        "version": KANTARA_VERSION,
        "jurisdiction": controller.jurisdiction,
        "consentTimestamp": issued,
        "collectionMethod": event.channel,
        "consentReceiptID": event.id,
        "language": event.locale or "und",
        "piiPrincipalId": event.subject,
        "piiControllers": [{
            "piiController": controller.name,
            "onBehalf": False,
            "contact": controller.contact,
            "address": dict(controller.address),
            "email": controller.email,
            "phone": controller.phone,
            "piiControllerUrl": controller.url,
        }],
        "policyUrl": version.url or f"urn:policy:{app_slug}:{policy.key}:{version.version}",
        "services": [{"service": app_slug, "purposes": purposes}],
        "sensitive": False,
        "spiCat": [],
        # JWT registered claims, for JOSE tooling
        "iss": settings.issuer,
        "sub": event.subject,
        "iat": issued,
        "jti": event.id,
        # ISO/IEC TS 27560 record fields that Kantara v1.1 lacks
        "recordType": event.kind,
        "policy": {"key": policy.key, "version": version.version, "sha256": version.sha256,
                   "effectiveAt": version.effective_at.isoformat()},
        "purposeStates": {key: _purpose_state(event.kind, granted) for key, granted in event.purposes.items()},
        "lawfulBasis": {p.key: p.lawful_basis for p in policy.purposes},
        "retention": {p.key: p.retention for p in policy.purposes if p.retention},
        "gpc": {"signal": event.gpc, "deniedPurposes": gpc_denied},
        "recordHash": record_hash,
        "prevHash": event.prev_hash,
    }
