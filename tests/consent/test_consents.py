"""Recording, status, withdrawal and history of consent."""

import uuid

import pytest
from sqlalchemy import select, text

from consent.models import ConsentEvent
from service.audit import AuditEvent
from tests.consent.conftest import status


def test_first_use_requires_consent(client, headers, policy):
    s = status(client, headers, "user-1")
    assert s == {"consent_required": True, "reason": "no_consent", "current_version": "1.0",
                 "consented_version": None, "purposes": {}}


def test_record_consent_then_not_required(client, headers, consent):
    r = consent("user-1", analytics=True)
    assert r.status_code == 201, r.json
    assert r.json["purposes"] == {"core": True, "analytics": True, "ads": False}
    assert r.json["receipt"].count(".") == 2 and r.json["id"] and r.json["created_at"]
    s = status(client, headers, "user-1")
    assert s["consent_required"] is False and s["reason"] is None
    assert s["consented_version"] == "1.0"
    assert s["purposes"] == {"core": True, "analytics": True, "ads": False}


def test_material_version_requires_fresh_consent(client, headers, consent):
    consent("user-1")
    r = client.post("/v1/policies/privacy/versions", json={"version": "2.0", "text": "v2", "material": True},
                    headers=headers)
    assert r.status_code == 201
    s = status(client, headers, "user-1")
    assert s["consent_required"] is True and s["reason"] == "new_version"
    assert s["current_version"] == "2.0" and s["consented_version"] == "1.0"
    assert consent("user-1", version="2.0").status_code == 201
    assert status(client, headers, "user-1")["consent_required"] is False


def test_non_material_version_does_not(client, headers, consent):
    consent("user-1")
    client.post("/v1/policies/privacy/versions", json={"version": "1.1", "text": "typo fix", "material": False},
                headers=headers)
    s = status(client, headers, "user-1")
    assert s["consent_required"] is False and s["reason"] is None
    assert s["current_version"] == "1.1" and s["consented_version"] == "1.0"


def test_material_version_behind_a_non_material_one_still_counts(client, headers, consent):
    consent("user-1")
    for version, material in (("2.0", True), ("2.1", False)):
        client.post("/v1/policies/privacy/versions", json={"version": version, "text": version,
                                                          "material": material}, headers=headers)
    assert status(client, headers, "user-1")["reason"] == "new_version"


def test_stale_version_is_409_with_current(client, headers, consent):
    client.post("/v1/policies/privacy/versions", json={"version": "2.0", "text": "v2", "material": True},
                headers=headers)
    r = consent("user-1", version="1.0")
    assert r.status_code == 409
    assert r.json["detail"] == {"current_version": "2.0"}
    assert consent("user-1", version="9.9").status_code == 409


def test_required_purpose_refused_is_422(consent):
    r = consent("user-1", core=False)
    assert r.status_code == 422
    assert "core" in r.json["errors"]["json"]["purposes"]


def test_required_purpose_missing_is_422(client, headers, policy):
    body = {"subject_id": "u", "policy": "privacy", "version": "1.0", "purposes": {"analytics": True},
            "channel": "web", "locale": "en"}
    r = client.post("/v1/consents", json=body, headers=headers)
    assert r.status_code == 422 and "core" in r.json["errors"]["json"]["purposes"]


def test_unknown_purpose_is_422(consent):
    r = consent("user-1", marketing=True)
    assert r.status_code == 422
    assert "marketing" in r.json["errors"]["json"]["purposes"]


def test_non_boolean_answer_is_422(client, headers, policy):
    body = {"subject_id": "u", "policy": "privacy", "version": "1.0", "purposes": {"core": "yes"},
            "channel": "web", "locale": "en"}
    r = client.post("/v1/consents", json=body, headers=headers)
    assert r.status_code == 422 and "purposes" in r.json["errors"]["json"]


def test_consent_body_validation(client, headers, policy):
    r = client.post("/v1/consents", json={"policy": "privacy", "channel": "Web Site", "locale": "not a locale!",
                                          "evidence": {"ip": "999.1.1.1"}, "unknown": 1}, headers=headers)
    assert r.status_code == 422
    errors = r.json["errors"]["json"]
    for field in ("subject_id", "version", "purposes", "channel", "locale", "evidence", "unknown"):
        assert field in errors, field


def test_unknown_policy_consent_is_404(client, headers, policy):
    body = {"subject_id": "u", "policy": "other", "version": "1", "purposes": {}, "channel": "web", "locale": "en"}
    assert client.post("/v1/consents", json=body, headers=headers).status_code == 404
    assert client.get("/v1/consents/status?subject_id=u&policy=other", headers=headers).status_code == 404


def test_status_query_validation(client, headers, policy):
    r = client.get("/v1/consents/status?policy=privacy", headers=headers)
    assert r.status_code == 422 and "subject_id" in r.json["errors"]["query"]


def test_gpc_header_denies_gpc_purposes(client, headers, consent):
    r = consent("user-1", hdrs={**headers, "Sec-GPC": "1"}, analytics=True, ads=True)
    assert r.status_code == 201
    assert r.json["gpc"] is True
    assert r.json["purposes"] == {"core": True, "analytics": True, "ads": False}


def test_gpc_body_flag_denies_gpc_purposes(client, headers, policy):
    body = {"subject_id": "u", "policy": "privacy", "version": "1.0", "gpc": True,
            "purposes": {"core": True, "ads": True}, "channel": "web", "locale": "en"}
    r = client.post("/v1/consents", json=body, headers=headers)
    assert r.json["purposes"]["ads"] is False


def test_without_gpc_ads_can_be_granted(consent):
    assert consent("user-1", ads=True).json["purposes"]["ads"] is True


def test_withdraw_all(client, headers, consent):
    consent("user-1", analytics=True)
    r = client.post("/v1/consents/withdraw", json={"subject_id": "user-1", "policy": "privacy"}, headers=headers)
    assert r.status_code == 200, r.json
    assert r.json["consent_required"] is True and r.json["reason"] == "withdrawn"
    assert r.json["purposes"] == {"core": False, "analytics": False, "ads": False}
    assert r.json["receipt"]
    assert status(client, headers, "user-1")["reason"] == "withdrawn"


def test_withdraw_optional_purpose_keeps_consent(client, headers, consent):
    consent("user-1", analytics=True)
    r = client.post("/v1/consents/withdraw", json={"subject_id": "user-1", "policy": "privacy",
                                                   "purposes": ["analytics"]}, headers=headers)
    assert r.json["consent_required"] is False
    assert r.json["purposes"] == {"core": True, "analytics": False, "ads": False}


def test_withdraw_required_purpose_requires_consent(client, headers, consent):
    consent("user-1")
    r = client.post("/v1/consents/withdraw", json={"subject_id": "user-1", "policy": "privacy",
                                                   "purposes": ["core"]}, headers=headers)
    assert r.json["consent_required"] is True and r.json["reason"] == "withdrawn"


def test_withdraw_errors(client, headers, consent):
    url = "/v1/consents/withdraw"
    assert client.post(url, json={"subject_id": "nobody", "policy": "privacy"}, headers=headers).status_code == 404
    consent("user-1")
    r = client.post(url, json={"subject_id": "user-1", "policy": "privacy", "purposes": ["nope"]}, headers=headers)
    assert r.status_code == 422 and "nope" in r.json["errors"]["json"]["purposes"]
    r = client.post(url, json={"subject_id": "user-1", "policy": "privacy", "purposes": []}, headers=headers)
    assert r.status_code == 422


def test_history_newest_first_and_paginated(client, headers, consent):
    consent("user-1")
    consent("user-1", analytics=True)
    client.post("/v1/consents/withdraw", json={"subject_id": "user-1", "policy": "privacy"}, headers=headers)
    consent("someone-else")
    r = client.get("/v1/subjects/user-1/consents?page_size=2", headers=headers)
    assert r.status_code == 200
    assert [e["kind"] for e in r.json] == ["withdrawal", "consent"]
    assert r.json[1]["purposes"]["analytics"] is True
    assert '"total": 3' in r.headers["X-Pagination"]
    r = client.get("/v1/subjects/user-1/consents?page=2&page_size=2", headers=headers)
    assert [e["kind"] for e in r.json] == ["consent"] and r.json[0]["purposes"]["analytics"] is False
    r = client.get("/v1/subjects/user-1/consents?policy=privacy", headers=headers)
    assert len(r.json) == 3 and all(e["policy"] == "privacy" and e["version"] == "1.0" for e in r.json)


def test_history_of_unknown_subject_is_404(client, headers, policy):
    assert client.get("/v1/subjects/nobody/consents", headers=headers).status_code == 404


def test_history_returns_evidence(client, headers, policy):
    body = {"subject_id": "u", "policy": "privacy", "version": "1.0", "purposes": {"core": True},
            "channel": "web", "locale": "en", "evidence": {"ip": "203.0.113.9", "user_agent": "Browser/1"}}
    client.post("/v1/consents", json=body, headers=headers)
    r = client.get("/v1/subjects/u/consents", headers=headers)
    assert r.json[0]["evidence"] == {"ip": "203.0.113.9", "user_agent": "Browser/1"}


def test_personal_data_is_not_stored_in_clear(client, headers, policy, db_session):
    body = {"subject_id": "alice@example.com", "policy": "privacy", "version": "1.0", "purposes": {"core": True},
            "channel": "web", "locale": "en", "evidence": {"ip": "203.0.113.9", "user_agent": "SecretBrowser/7"}}
    assert client.post("/v1/consents", json=body, headers=headers).status_code == 201
    event = db_session.scalars(select(ConsentEvent)).one()
    assert event.subject != "alice@example.com" and len(event.subject) == 64
    assert b"203.0.113.9" not in event.evidence and b"SecretBrowser" not in event.evidence
    dump = " ".join(str(v) for row in db_session.execute(text("SELECT * FROM consent_events")) for v in row)
    dump += " ".join(str(v) for row in db_session.execute(text("SELECT * FROM audit_events")) for v in row)
    assert "alice@example.com" not in dump and "203.0.113.9" not in dump


def test_every_consent_and_withdrawal_is_audited(client, headers, consent, db_session):
    event_id = consent("user-1").json["id"]
    withdrawal_id = client.post("/v1/consents/withdraw", json={"subject_id": "user-1", "policy": "privacy"},
                                headers=headers).json["id"]
    rows = {(a.action, a.resource_id): a for a in db_session.scalars(select(AuditEvent))}
    recorded = rows[("consent.recorded", event_id)]
    assert recorded.actor.startswith("key:") and recorded.details["policy"] == "privacy"
    assert ("consent.withdrawn", withdrawal_id) in rows
    assert any(action == "policy.version_created" for action, _ in rows)


def test_same_subject_in_two_apps_is_two_pseudonyms(client, make_key, consent, db_session):
    other = make_key("app-b", "admin,consent:read,consent:write")
    from tests.consent.conftest import POLICY

    client.post("/v1/policies", json=POLICY, headers=other)
    client.post("/v1/policies/privacy/versions", json={"version": "1.0", "text": "b", "material": True},
                headers=other)
    consent("shared-user")
    consent("shared-user", hdrs=other)
    subjects = set(db_session.scalars(select(ConsentEvent.subject)))
    assert len(subjects) == 2


def test_status_and_withdrawal_are_per_policy_for_a_subject_under_two_policies(client, headers, consent):
    terms = {"key": "terms", "title": "Terms", "purposes": [{"key": "core", "description": "d", "required": True},
                                                            {"key": "news", "description": "Newsletter"}]}
    assert client.post("/v1/policies", json=terms, headers=headers).status_code == 201
    client.post("/v1/policies/terms/versions", json={"version": "7", "text": "t", "material": True},
                headers=headers)
    consent("user-1", analytics=True)
    body = {"subject_id": "user-1", "policy": "terms", "version": "7", "purposes": {"core": True, "news": True},
            "channel": "web", "locale": "en"}
    r = client.post("/v1/consents", json=body, headers=headers)
    assert r.status_code == 201, r.json
    r = client.post("/v1/consents/withdraw", json={"subject_id": "user-1", "policy": "privacy"}, headers=headers)
    assert r.status_code == 200, r.json
    # The subject's newest event is now the privacy withdrawal; terms must still answer from its own event.
    r = client.get("/v1/consents/status?subject_id=user-1&policy=terms", headers=headers)
    assert r.json["consent_required"] is False and r.json["purposes"] == {"core": True, "news": True}
    assert status(client, headers, "user-1")["reason"] == "withdrawn"


def test_event_ids_are_time_ordered(consent):
    first, second = consent("user-1").json["id"], consent("user-2").json["id"]
    assert uuid.UUID(first).version == 7 and first < second


@pytest.mark.postgres_only
def test_receipts_are_stored_without_compression(consent, db_session):
    """A signed receipt is mostly base64 and barely compresses: PostgreSQL is told not to try (migration 0005),
    which also holds for receipts compression would have shrunk enough to keep."""
    storage = db_session.scalar(text("SELECT attstorage FROM pg_attribute "
                                     "WHERE attrelid = 'consent_events'::regclass AND attname = 'receipt'"))
    assert storage == "e"  # EXTERNAL: out of line when large, never compressed
    event_id = consent("user-1").json["id"]
    assert db_session.scalar(text("SELECT pg_column_compression(receipt) FROM consent_events WHERE id = :id"),
                             {"id": event_id}) is None
