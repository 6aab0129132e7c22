"""Consent receipts: Kantara Consent Receipt v1.1 claims plus the ISO/IEC TS 27560 record fields it lacks, with
W3C DPV terms where the record names a lawful basis, a consent state or a party."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from consent.views import PolicyView, VersionRow
from service.config import Settings

KANTARA_VERSION = "KI-CR-v1.1.0"
# The lawful bases of consent/schemas.py as DPV concepts (https://w3id.org/dpv, GDPR Art. 6(1) a-f).
DPV_LAWFUL_BASIS = {"consent": "dpv:Consent", "contract": "dpv:Contract", "legal_obligation": "dpv:LegalObligation",
                    "vital_interests": "dpv:VitalInterest", "public_task": "dpv:PublicInterest",
                    "legitimate_interests": "dpv:LegitimateInterest"}
DPV_STATE = {"granted": "dpv:ConsentGiven", "withdrawn": "dpv:ConsentWithdrawn", "denied": "dpv:ConsentRefused"}
# Special categories (GDPR Art. 9 and 10, PIPL Art. 28) by the category names this service's stores use;
# `[consent] sensitive_categories` in the config file replaces the list.
SENSITIVE_CATEGORIES = frozenset({
    "health", "biometric", "genetic", "racial_or_ethnic_origin", "political_opinions", "religious_beliefs",
    "trade_union_membership", "sex_life", "sexual_orientation", "criminal_records", "financial_accounts",
    "precise_location", "children"})


def _purpose_state(kind: str, granted: bool) -> str:
    if granted:
        return "granted"
    return "withdrawn" if kind == "withdrawal" else "denied"


def sensitive_categories(settings: Settings) -> frozenset[str]:
    configured = settings.toml.get("consent", {}).get("sensitive_categories")
    return SENSITIVE_CATEGORIES if configured is None else frozenset(map(str, configured))


def record_id(settings: Settings, app_slug: str, policy_key: str, subject: str) -> str:
    """The consent record's id: one per app, policy and subject, the same on every receipt of that record (the
    receipt's own id is the event's). Derived, not stored: a UUIDv5 of names that never change."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"{settings.issuer}/consent-records/{app_slug}/{policy_key}/{subject}").urn


def _acting_entity(acting_as: str | None, channel: str) -> dict[str, Any]:
    """Who performed the event: the person (in the privacy centre, or in the app that recorded their choice
    with its key) or the controller's staff (an operator, a command)."""
    staff = acting_as is not None and acting_as.split(":", 1)[0] in {"operator", "cli"}
    return {"partyType": "dpv:DataController" if staff else "dpv:DataSubject",
            "recordedBy": acting_as or "key", "channel": channel}


def receipt_claims(*, event: Any, record_hash: str, policy: PolicyView, version: VersionRow,
                   app_slug: str, settings: Settings, gpc_denied: list[str], acting_as: str | None = None,
                   locations: Mapping[str, tuple[str, ...]] | None = None) -> dict[str, Any]:
    """The signed payload of `event` (a ConsentEvent, or the write path's plain consent.chain.NewEvent). The subject
    appears only as its pseudonym (`piiPrincipalId`/`sub`).

    `acting_as` is the audit trail's actor (`key:<id>`, `subject:<pseudonym>`, `operator:<id>`); `locations`
    maps a data category to the stores that hold it (the store registry's), for each purpose's storage
    locations."""
    controller = settings.controller
    issued = int(event.created_at.timestamp())
    special = sensitive_categories(settings)
    categories = {c for p in policy.purposes for c in p.pii_categories}
    where = locations or {}
    purposes = []
    for p in policy.purposes:
        entry: dict[str, Any] = {
            "purpose": p.description,
            "purposeKey": p.key,
            # Kantara's consentType names how consent was given; a purpose on another lawful basis was not
            # consented to at all, which the receipt must not claim.
            "consentType": "EXPLICIT" if p.lawful_basis == "consent" else "NOT_CONSENT",
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
        "sensitive": bool(categories & special),
        "spiCat": sorted(categories & special),
        # JWT registered claims, for JOSE tooling
        "iss": settings.issuer,
        "sub": event.subject,
        "iat": issued,
        "jti": event.id,
        # ISO/IEC TS 27560 record fields that Kantara v1.1 lacks
        "recordId": record_id(settings, app_slug, policy.key, event.subject),
        "recordType": event.kind,
        "policy": {"key": policy.key, "version": version.version, "sha256": version.sha256,
                   "effectiveAt": version.effective_at.isoformat()},
        "purposeStates": {key: _purpose_state(event.kind, granted) for key, granted in event.purposes.items()},
        "consentStates": {key: DPV_STATE[_purpose_state(event.kind, granted)]
                          for key, granted in event.purposes.items()},
        "lawfulBasis": {p.key: p.lawful_basis for p in policy.purposes},
        "lawfulBasisIri": {p.key: DPV_LAWFUL_BASIS.get(p.lawful_basis, p.lawful_basis) for p in policy.purposes},
        # Mandatory in 27560: a period where the policy sets one, else kept while the consent stands.
        "retention": {p.key: p.retention or "until withdrawn" for p in policy.purposes},
        "validity": {"type": "dpv:UntilEventDuration",
                     "until": "withdrawal, or a material new version of the policy"},
        "storageLocations": {p.key: sorted({s for c in p.pii_categories for s in where.get(c, ())})
                             for p in policy.purposes},
        "withdrawalMethod": {"privacyCentre": f"{settings.public_url}/privacy/{app_slug}/consents",
                             "api": "POST /v1/consents/withdraw"},
        "actingEntity": _acting_entity(acting_as, event.channel),
        "parties": {"controller": "dpv:DataController", "principal": "dpv:DataSubject",
                    "thirdParties": {p.third_party: "dpv:ThirdParty" for p in policy.purposes if p.third_party}},
        "gpc": {"signal": event.gpc, "deniedPurposes": gpc_denied},
        "recordHash": record_hash,
        "prevHash": event.prev_hash,
    }
