"""GET /v1/ledger/verifications: every app's admin sees every run of the one ledger's check, paginated; which event
broke only the app whose record it is (or a platform:read key); the signed checkpoint only a platform:read key."""

from __future__ import annotations

import json

import pytest

from tests.consent.conftest import ALL, POLICY
from tests.consent.tamper import execute

URL = "/v1/ledger/verifications"


def verify(app) -> int:
    return app.test_cli_runner().invoke(args=["ledger", "verify"]).exit_code


@pytest.fixture
def other_app_event(client, make_key) -> tuple[dict[str, str], str]:
    """App B's admin headers and the id of a consent recorded for app B."""
    headers_b = make_key("app-b", ALL)
    assert client.post("/v1/policies", json=POLICY, headers=headers_b).status_code == 201
    assert client.post("/v1/policies/privacy/versions", json={"version": "1.0", "text": "b", "material": True},
                       headers=headers_b).status_code == 201
    r = client.post("/v1/consents", headers=headers_b, json={
        "subject_id": "b-user", "policy": "privacy", "version": "1.0", "purposes": {"core": True},
        "channel": "web", "locale": "en"})
    assert r.status_code == 201, r.json
    return headers_b, r.json["id"]


def test_runs_are_listed_newest_first_and_paginated(app, client, headers, long_ledger):
    for _ in range(3):
        assert verify(app) == 0
    r = client.get(f"{URL}?page_size=2", headers=headers)
    assert r.status_code == 200, r.json
    assert json.loads(r.headers["X-Pagination"])["total"] == 3
    ids = [v["id"] for v in r.json]
    assert len(ids) == 2 and ids[0] > ids[1]
    newest = r.json[0]
    assert (newest["status"], newest["mode"], newest["trigger"], newest["breaks"]) == ("intact", "full", "cli", 0)
    assert newest["events_checked"] > 200 and newest["events_covered"] is not None
    assert newest["first_break"] is None and newest["checkpoint"] is None  # the JWS: platform keys only
    assert client.get(f"{URL}?page=2&page_size=2", headers=headers).json[0]["id"] < newest["id"]
    assert client.get(f"{URL}?page={2**63}", headers=headers).status_code == 422


def test_only_admin_keys_list_them(client, make_key, long_ledger):
    assert client.get(URL).status_code == 401
    assert client.get(URL, headers=make_key("app-a", "consent:read,consent:write,dsar:manage")).status_code == 403


def test_a_break_is_named_to_its_own_app_and_to_platform_keys_only(app, client, headers, make_key, long_ledger,
                                                                    other_app_event):
    headers_b, event_b = other_app_event
    execute(app, "UPDATE consent_events SET locale = 'de' WHERE id = :id", id=event_b)
    assert verify(app) == 1
    seen_by_a = client.get(URL, headers=headers).json[0]
    assert (seen_by_a["status"], seen_by_a["breaks"], seen_by_a["first_break"]) == ("broken", 1, None)
    seen_by_b = client.get(URL, headers=headers_b).json[0]
    assert seen_by_b["first_break"]["event"] == event_b and "altered" in seen_by_b["first_break"]["problem"]
    platform = make_key("ops", "admin,platform:read")
    assert client.get(URL, headers=platform).json[0]["first_break"]["event"] == event_b


def test_a_platform_key_sees_the_signed_checkpoint(app, client, make_key, long_ledger):
    assert verify(app) == 0
    shown = client.get(URL, headers=make_key("ops", "admin,platform:read")).json[0]
    claims = app.extensions["keys"].signer.verify(shown["checkpoint"])
    assert claims["verification"] == shown["id"] and claims["events"] == shown["events_covered"]
