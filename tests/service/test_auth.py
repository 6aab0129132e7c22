"""Authentication, scopes on every endpoint, revocation and tenant isolation."""

import pytest

from privacy import create_app
from service.tenancy import SCOPES
from tests.conftest import wait_for
from tests.consent.conftest import ALL, POLICY

CONSENT = {"subject_id": "u1", "policy": "privacy", "version": "1.0", "purposes": {"core": True},
           "channel": "web", "locale": "en"}

# (method, path, required scope, JSON body) for every /v1 endpoint
ENDPOINTS = [
    ("POST", "/v1/policies", "admin", {**POLICY, "key": "second"}),
    ("GET", "/v1/policies", "consent:read", None),
    ("GET", "/v1/policies/privacy", "consent:read", None),
    ("POST", "/v1/policies/privacy/versions", "admin", {"version": "2", "text": "t", "material": False}),
    ("GET", "/v1/policies/privacy/versions", "consent:read", None),
    ("POST", "/v1/consents", "consent:write", CONSENT),
    ("GET", "/v1/consents/status?subject_id=u1&policy=privacy", "consent:read", None),
    ("POST", "/v1/consents/withdraw", "consent:write", {"subject_id": "u1", "policy": "privacy"}),
    ("GET", "/v1/subjects/u1/consents", "consent:read", None),
]


def call(client, method, path, body, headers):
    return client.open(path, method=method, json=body, headers=headers)


def test_every_v1_endpoint_declares_a_scope(app):
    declared = {(m, p.split("?")[0]) for m, p, _, _ in ENDPOINTS}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/v1/"):
            continue
        view = app.view_functions[rule.endpoint]
        assert getattr(view, "required_scope", None) in SCOPES, rule.rule
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            path = rule.rule.replace("<key>", "privacy").replace("<subject_id>", "u1")
            if rule.rule.startswith(("/v1/policies", "/v1/consents", "/v1/subjects")):
                assert (method, path) in declared, f"{method} {rule.rule} missing from ENDPOINTS"


@pytest.mark.parametrize(("method", "path", "scope", "body"), ENDPOINTS)
def test_missing_or_bad_key_is_401(client, method, path, scope, body):
    r = call(client, method, path, body, {})
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    r = call(client, method, path, body, {"Authorization": "Bearer psk_0123456789abcdef_not-a-real-key"})
    assert r.status_code == 401
    assert call(client, method, path, body, {"Authorization": "Basic dXNlcjpwdw=="}).status_code == 401


@pytest.mark.parametrize(("method", "path", "scope", "body"), ENDPOINTS)
def test_scope_is_enforced(client, make_key, method, path, scope, body):
    admin = make_key("app-a", ALL)
    client.post("/v1/policies", json=POLICY, headers=admin)
    client.post("/v1/policies/privacy/versions", json={"version": "1.0", "text": "t", "material": True},
                headers=admin)
    client.post("/v1/consents", json=CONSENT, headers=admin)
    others = ",".join(sorted(SCOPES - {scope, "admin"}))
    r = call(client, method, path, body, make_key("app-a", others))
    assert r.status_code == 403 and scope in r.json["message"]
    r = call(client, method, path, body, make_key("app-a", scope))
    assert r.status_code in (200, 201), r.json


def test_revoked_key_is_rejected_at_once(app, client, make_key, base_config):
    admin = make_key("app-a", ALL)
    client.post("/v1/policies", json=POLICY, headers=admin)
    client.post("/v1/policies/privacy/versions", json={"version": "1.0", "text": "t", "material": True},
                headers=admin)
    headers = make_key("app-a", "consent:read")
    status = "/v1/consents/status?subject_id=u1&policy=privacy"
    for _ in range(2):  # the second answers come from the key cache (the status one beneath Flask)
        assert client.get("/v1/policies", headers=headers).status_code == 200
        assert client.get(status, headers=headers).status_code == 200
    key_id = headers["Authorization"].split("_")[1]
    # Another app instance stands for the operator's `flask keys revoke` process: this app's cache can hear of it
    # only through the database (a real second process: tests/service/test_web_process.py).
    other = create_app(base_config)
    result = other.test_cli_runner().invoke(args=["keys", "revoke", key_id])
    other.extensions["db"].dispose()
    assert result.exit_code == 0, result.output
    wait_for(lambda: client.get("/v1/policies", headers=headers).status_code == 401, timeout=0.5, interval=0.005)
    assert client.get("/v1/policies", headers=headers).status_code == 401
    assert client.get(status, headers=headers).status_code == 401


def test_key_with_wrong_secret_for_real_key_id_is_401(client, make_key):
    headers = make_key("app-a", "consent:read")
    tampered = headers["Authorization"][:-4] + "AAAA"
    assert client.get("/v1/policies", headers={"Authorization": tampered}).status_code == 401


@pytest.mark.parametrize("key_id", ["0123456789abc\x00ef", "0123456789abcdeé", "0123456789ABCDEF"])
def test_malformed_key_id_is_401_not_500(client, make_key, key_id):
    make_key("app-a", "consent:read")
    response = client.get("/v1/policies", headers={"Authorization": f"Bearer psk_{key_id}_{'x' * 43}"})
    assert response.status_code == 401


def test_other_apps_resources_are_404(client, make_key):
    a = make_key("app-a", ALL)
    b = make_key("app-b", ALL)
    client.post("/v1/policies", json=POLICY, headers=a)
    client.post("/v1/policies/privacy/versions", json={"version": "1.0", "text": "t", "material": True}, headers=a)
    assert client.post("/v1/consents", json=CONSENT, headers=a).status_code == 201

    assert client.get("/v1/policies/privacy", headers=b).status_code == 404
    assert client.get("/v1/policies/privacy/versions", headers=b).status_code == 404
    assert client.get("/v1/policies", headers=b).json == []
    assert client.post("/v1/policies/privacy/versions", json={"version": "2", "text": "t", "material": True},
                       headers=b).status_code == 404
    assert client.get("/v1/subjects/u1/consents", headers=b).status_code == 404
    assert client.get("/v1/consents/status?subject_id=u1&policy=privacy", headers=b).status_code == 404
    assert client.post("/v1/consents", json=CONSENT, headers=b).status_code == 404
    assert client.post("/v1/consents/withdraw", json={"subject_id": "u1", "policy": "privacy"},
                       headers=b).status_code == 404
    # and A still sees its own data, untouched
    assert client.get("/v1/consents/status?subject_id=u1&policy=privacy", headers=a).json["consent_required"] is False


def test_same_policy_key_in_two_apps_is_independent(client, make_key):
    a = make_key("app-a", ALL)
    b = make_key("app-b", ALL)
    for h in (a, b):
        assert client.post("/v1/policies", json=POLICY, headers=h).status_code == 201
        client.post("/v1/policies/privacy/versions", json={"version": "1.0", "text": "t", "material": True},
                    headers=h)
    client.post("/v1/consents", json=CONSENT, headers=a)
    assert client.get("/v1/consents/status?subject_id=u1&policy=privacy", headers=b).json["reason"] == "no_consent"
