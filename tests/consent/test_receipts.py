"""Receipts verify with the published JWKS in independent JOSE libraries and follow Kantara CR v1.1."""

import json
import re
from pathlib import Path

import jsonschema
import jwt
from joserfc import jws
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet

from service.tenancy import create_app_tenant, create_key

SCHEMA_FILE = Path(__file__).parent / "fixtures" / "kantara-consent-receipt-v1_1-schema.json"


def kantara_schema() -> dict:
    # The official file carries `//` comment lines; strip them before parsing, as its authors intend.
    text = "\n".join(line for line in SCHEMA_FILE.read_text().splitlines() if not re.match(r"\s*//", line))
    return json.loads(text)


def verify_with_joserfc(client, token: str) -> dict:
    keys = KeySet.import_key_set(client.get("/.well-known/jwks.json").json)
    result = jws.deserialize_compact(token, keys, algorithms=["EdDSA", "Ed25519"])
    return json.loads(result.payload)


def test_receipt_verifies_with_joserfc_and_pyjwt(client, consent):
    token = consent("user-1", analytics=True).json["receipt"]
    claims = verify_with_joserfc(client, token)
    header = jwt.get_unverified_header(token)
    jwk = next(k for k in client.get("/.well-known/jwks.json").json["keys"] if k["kid"] == header["kid"])
    pyjwt_claims = jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=["EdDSA"])
    assert claims == pyjwt_claims
    assert header["alg"] == "EdDSA"


def test_tampered_receipt_fails_verification(client, consent):
    import pytest

    token = consent("user-1").json["receipt"]
    head, body, sig = token.split(".")
    claims = json.loads(jwt.utils.base64url_decode(body))
    claims["purposeStates"]["analytics"] = "granted"
    forged = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    with pytest.raises(BadSignatureError):
        verify_with_joserfc(client, f"{head}.{forged}.{sig}")


def test_receipt_validates_against_kantara_v1_1(client, consent):
    claims = verify_with_joserfc(client, consent("user-1", analytics=True).json["receipt"])
    jsonschema.validate(claims, kantara_schema())
    assert claims["version"] == "KI-CR-v1.1.0"
    purposes = {p["purposeKey"]: p for p in claims["services"][0]["purposes"]}
    assert purposes["ads"]["thirdPartyDisclosure"] is True and purposes["ads"]["thirdPartyName"] == "AdPartner Ltd."
    assert purposes["core"]["piiCategory"] == ["contact", "device"]


def test_schema_rejects_a_broken_receipt(client, consent):
    import pytest

    claims = verify_with_joserfc(client, consent("user-1").json["receipt"])
    del claims["piiControllers"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(claims, kantara_schema())


def test_receipt_carries_27560_fields_and_only_the_pseudonym(client, consent):
    r = consent("alice@example.com", analytics=True)
    token = r.json["receipt"]
    claims = verify_with_joserfc(client, token)
    assert "alice@example.com" not in json.dumps(claims)
    assert claims["piiPrincipalId"] == claims["sub"] and len(claims["sub"]) == 64
    assert claims["consentReceiptID"] == r.json["id"]
    assert claims["policy"]["key"] == "privacy" and claims["policy"]["version"] == "1.0"
    assert claims["purposeStates"] == {"core": "granted", "analytics": "granted", "ads": "denied"}
    assert claims["lawfulBasis"] == {"core": "contract", "analytics": "consent", "ads": "consent"}
    assert claims["retention"] == {"core": "until withdrawn", "analytics": "P2Y", "ads": "until withdrawn"}
    assert claims["recordType"] == "consent" and re.fullmatch(r"[0-9a-f]{64}", claims["recordHash"])
    # 27560 through DPV: lawful bases, consent states, parties, who acted, how to withdraw, for how long.
    assert claims["lawfulBasisIri"] == {"core": "dpv:Contract", "analytics": "dpv:Consent", "ads": "dpv:Consent"}
    assert claims["consentStates"] == {"core": "dpv:ConsentGiven", "analytics": "dpv:ConsentGiven",
                                       "ads": "dpv:ConsentRefused"}
    kinds = {p["purposeKey"]: p["consentType"] for p in claims["services"][0]["purposes"]}
    assert kinds == {"core": "NOT_CONSENT", "analytics": "EXPLICIT", "ads": "EXPLICIT"}  # core is a contract
    assert claims["parties"] == {"controller": "dpv:DataController", "principal": "dpv:DataSubject",
                                 "thirdParties": {"AdPartner Ltd.": "dpv:ThirdParty"}}
    assert claims["actingEntity"]["partyType"] == "dpv:DataSubject"
    assert claims["actingEntity"]["recordedBy"].startswith("key:")
    assert claims["actingEntity"]["channel"] == "android"
    assert claims["withdrawalMethod"]["privacyCentre"].endswith("/privacy/app-a/consents")
    assert claims["validity"]["type"] == "dpv:UntilEventDuration"
    assert claims["storageLocations"] == {"core": ["cloud-photos"], "analytics": [], "ads": []}  # the demo estate
    assert claims["sensitive"] is False and claims["spiCat"] == []
    # One record per app, policy and subject: its id stays across events, unlike the receipt's.
    again = verify_with_joserfc(client, consent("alice@example.com").json["receipt"])
    other = verify_with_joserfc(client, consent("bob@example.com").json["receipt"])
    assert again["recordId"] == claims["recordId"] != other["recordId"]
    assert claims["recordId"].startswith("urn:uuid:") and again["consentReceiptID"] != claims["consentReceiptID"]


def test_receipt_names_the_stores_and_the_sensitive_categories(inline_app_with):
    """On the demo estate: each purpose's categories are found in the stores that hold them; a configured
    special category makes the receipt sensitive."""
    app = inline_app_with('[consent]\nsensitive_categories = ["location"]\n')
    client = app.test_client()
    with app.extensions["db"].session() as session:
        create_app_tenant(session, "photos")
        _, secret = create_key(session, "photos", frozenset({"admin"}))
    headers = {"Authorization": f"Bearer {secret}"}
    policy = {"key": "privacy", "title": "Cloud Photos", "purposes": [
        {"key": "backup", "description": "Back up photos", "lawful_basis": "contract", "required": True,
         "pii_categories": ["photos", "contact"]},
        {"key": "map", "description": "Photos on a map", "pii_categories": ["location"]}]}
    assert client.post("/v1/policies", json=policy, headers=headers).status_code == 201
    assert client.post("/v1/policies/privacy/versions", json={"version": "1", "text": "t", "material": True},
                       headers=headers).status_code == 201
    made = client.post("/v1/consents", json={"subject_id": "u1", "policy": "privacy", "version": "1",
                                             "purposes": {"backup": True, "map": True}, "channel": "ios",
                                             "locale": "zh-CN"}, headers=headers)
    assert made.status_code == 201, made.json
    claims = verify_with_joserfc(client, made.json["receipt"])
    assert claims["storageLocations"] == {"backup": ["cloud-photos", "uploads"], "map": ["cloud-photos"]}
    assert claims["sensitive"] is True and claims["spiCat"] == ["location"]
    jsonschema.validate(claims, kantara_schema())


def test_gpc_receipt_says_so(client, headers, consent):
    token = consent("user-1", hdrs={**headers, "Sec-GPC": "1"}, ads=True).json["receipt"]
    claims = verify_with_joserfc(client, token)
    assert claims["gpc"] == {"signal": True, "deniedPurposes": ["ads"]}
    assert claims["purposeStates"]["ads"] == "denied"


def test_withdrawal_receipt(client, headers, consent):
    consent("user-1", analytics=True)
    token = client.post("/v1/consents/withdraw", json={"subject_id": "user-1", "policy": "privacy",
                                                       "purposes": ["analytics"]}, headers=headers).json["receipt"]
    claims = verify_with_joserfc(client, token)
    assert claims["recordType"] == "withdrawal"
    assert claims["purposeStates"]["analytics"] == "withdrawn" and claims["purposeStates"]["core"] == "granted"
    assert claims["consentStates"]["analytics"] == "dpv:ConsentWithdrawn"
    jsonschema.validate(claims, kantara_schema())


def test_gpc_well_known(client):
    r = client.get("/.well-known/gpc.json")
    assert r.status_code == 200
    assert r.json["gpc"] is True and re.fullmatch(r"\d{4}-\d{2}-\d{2}", r.json["lastUpdate"])
