"""Policies and versions: creation, validation, listing and which version is current."""

from datetime import UTC, datetime, timedelta

from tests.consent.conftest import POLICY


def test_create_and_read_policy(client, headers, policy):
    r = client.get("/v1/policies/privacy", headers=headers)
    assert r.status_code == 200
    assert r.json["current_version"] == "1.0"
    assert [p["key"] for p in r.json["purposes"]] == ["core", "analytics", "ads"]
    assert r.json["purposes"][2]["honors_gpc"] is True
    listed = client.get("/v1/policies", headers=headers)
    assert [p["key"] for p in listed.json] == ["privacy"]


def test_duplicate_policy_is_409(client, headers, policy):
    r = client.post("/v1/policies", json=POLICY, headers=headers)
    assert r.status_code == 409
    assert "key" in r.json["errors"]["json"]


def test_policy_validation_names_fields(client, headers):
    r = client.post("/v1/policies", json={"key": "Bad Key", "title": "", "purposes": [], "extra": 1},
                    headers=headers)
    assert r.status_code == 422
    errors = r.json["errors"]["json"]
    assert set(errors) == {"key", "title", "purposes", "extra"}
    assert "key" in r.json["message"]


def test_required_purpose_cannot_honour_gpc(client, headers):
    body = {"key": "p", "title": "t", "purposes": [{"key": "core", "description": "d", "required": True,
                                                    "honors_gpc": True}]}
    r = client.post("/v1/policies", json=body, headers=headers)
    assert r.status_code == 422
    assert r.json["errors"]["json"]["purposes"]["0"]["honors_gpc"]


def test_duplicate_purpose_keys_rejected(client, headers):
    body = {"key": "p", "title": "t", "purposes": [{"key": "a", "description": "d"}, {"key": "a", "description": "e"}]}
    assert client.post("/v1/policies", json=body, headers=headers).status_code == 422


def test_unknown_policy_is_404(client, headers):
    assert client.get("/v1/policies/nope", headers=headers).status_code == 404
    assert client.get("/v1/policies/nope/versions", headers=headers).status_code == 404
    r = client.post("/v1/policies/nope/versions", json={"version": "1", "text": "x", "material": True},
                    headers=headers)
    assert r.status_code == 404


def test_version_needs_text_or_url_with_sha256(client, headers, policy):
    url = "/v1/policies/privacy/versions"
    r = client.post(url, json={"version": "2", "material": True}, headers=headers)
    assert r.status_code == 422 and "text" in r.json["errors"]["json"]
    r = client.post(url, json={"version": "2", "url": "https://example.com/p", "material": True}, headers=headers)
    assert r.status_code == 422 and "sha256" in r.json["errors"]["json"]
    r = client.post(url, json={"version": "2", "text": "t", "url": "https://example.com/p", "sha256": "a" * 64,
                               "material": True}, headers=headers)
    assert r.status_code == 422
    r = client.post(url, json={"version": "2", "url": "https://example.com/p", "sha256": "a" * 64,
                               "material": "yes"}, headers=headers)
    assert r.status_code == 422 and "material" in r.json["errors"]["json"]
    r = client.post(url, json={"version": "2", "url": "https://example.com/p", "sha256": "a" * 64,
                               "material": False}, headers=headers)
    assert r.status_code == 201 and r.json["sha256"] == "a" * 64


def test_text_version_hash_is_computed_and_checked(client, headers, policy):
    import hashlib

    url = "/v1/policies/privacy/versions"
    r = client.post(url, json={"version": "2", "text": "hello", "sha256": "0" * 64, "material": True},
                    headers=headers)
    assert r.status_code == 422 and "sha256" in r.json["errors"]["json"]
    r = client.post(url, json={"version": "2", "text": "hello", "material": True}, headers=headers)
    assert r.json["sha256"] == hashlib.sha256(b"hello").hexdigest()


def test_duplicate_version_is_409(client, headers, policy):
    r = client.post("/v1/policies/privacy/versions", json={"version": "1.0", "text": "x", "material": True},
                    headers=headers)
    assert r.status_code == 409


def test_versions_take_effect_in_order(client, headers, policy):
    past = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    r = client.post("/v1/policies/privacy/versions", json={"version": "0.9", "text": "x", "material": True,
                                                          "effective_at": past}, headers=headers)
    assert r.status_code == 422 and "effective_at" in r.json["errors"]["json"]


def test_naive_effective_at_rejected(client, headers, policy):
    r = client.post("/v1/policies/privacy/versions", json={"version": "2", "text": "x", "material": True,
                                                          "effective_at": "2030-01-01T00:00:00"}, headers=headers)
    assert r.status_code == 422 and "effective_at" in r.json["errors"]["json"]


def test_future_version_is_not_current_until_effective(client, headers, policy):
    future = (datetime.now(UTC) + timedelta(days=7)).isoformat()
    r = client.post("/v1/policies/privacy/versions", json={"version": "2.0", "text": "v2", "material": True,
                                                          "effective_at": future}, headers=headers)
    assert r.status_code == 201
    assert client.get("/v1/policies/privacy", headers=headers).json["current_version"] == "1.0"
    versions = client.get("/v1/policies/privacy/versions", headers=headers).json
    assert [v["version"] for v in versions] == ["2.0", "1.0"]


def test_policy_without_version_has_no_current(client, headers):
    client.post("/v1/policies", json=POLICY, headers=headers)
    assert client.get("/v1/policies/privacy", headers=headers).json["current_version"] is None
    r = client.get("/v1/consents/status?subject_id=u&policy=privacy", headers=headers)
    assert r.status_code == 409
