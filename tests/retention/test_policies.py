"""Retention policies through the API: validation against the store registry, versions, disable, scopes."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from service.audit import AuditEvent

BASE = "/v1/retention/policies"


def body(**more):
    return {"store": "cloud-photos", "category": "device_log", "retain_for": "P90D",
            "basis": "security logs: 90 days (ISMS A.8.15)", **more}


def test_create_policy_with_defaults(ret_app, headers):
    r = ret_app.test_client().post(BASE, json=body(), headers=headers)
    assert r.status_code == 201, r.json
    p = r.json
    assert p["key"] == "cloud-photos.device_log" and p["origin"] == "api" and p["enabled"] is True
    assert (p["version"], p["action"], p["schedule"], p["retain_for"]) == (1, "delete", "@daily", "P90D")
    assert p["last_run"] is None


@pytest.mark.parametrize("duration", ["P180D", "P7Y", "P1Y6M", "PT12H", "P2W", "P1DT12H"])
def test_iso_8601_durations_are_accepted(ret_app, headers, duration):
    r = ret_app.test_client().post(BASE, json=body(retain_for=duration, key="k"), headers=headers)
    assert r.status_code == 201, r.json


@pytest.mark.parametrize(("field", "value"), [
    ("retain_for", "90 days"), ("retain_for", "P0D"), ("retain_for", "P"), ("retain_for", "PT"),
    ("schedule", "every day"), ("schedule", "0 25 * * *"), ("action", "shred"),
])
def test_invalid_values_are_422_naming_the_field(ret_app, headers, field, value):
    r = ret_app.test_client().post(BASE, json=body(**{field: value}), headers=headers)
    assert r.status_code == 422
    assert field in r.json["errors"]["json"]


@pytest.mark.parametrize(("field", "value"), [("store", "crm"), ("category", "biometrics")])
def test_unknown_store_or_category_is_422_naming_the_field(ret_app, headers, field, value):
    r = ret_app.test_client().post(BASE, json=body(**{field: value}), headers=headers)
    assert r.status_code == 422
    assert list(r.json["errors"]["json"]) == [field]


def test_action_must_be_what_the_store_does(ret_app, headers):
    client = ret_app.test_client()
    # The demo's orders are anonymised (bookkeeping law keeps the amounts), so "delete" would misstate it.
    r = client.post(BASE, json=body(category="orders", action="delete"), headers=headers)
    assert r.status_code == 422 and "action" in r.json["errors"]["json"]
    r = client.post(BASE, json=body(category="orders", action="anonymize", retain_for="P7Y"), headers=headers)
    assert r.status_code == 201
    r = client.post(BASE, json=body(store="uploads", category="photos", action="anonymize"), headers=headers)
    assert r.status_code == 422 and "action" in r.json["errors"]["json"]


def test_one_enabled_policy_per_store_and_category(ret_app, headers):
    client = ret_app.test_client()
    assert client.post(BASE, json=body(), headers=headers).status_code == 201
    r = client.post(BASE, json=body(key="other"), headers=headers)
    assert r.status_code == 409 and "category" in r.json["errors"]["json"]
    assert client.post(BASE, json=body(), headers=headers).status_code == 409  # same key


def test_update_makes_a_new_version_and_keeps_the_old(ret_app, headers):
    client = ret_app.test_client()
    client.post(BASE, json=body(), headers=headers)
    r = client.patch(f"{BASE}/cloud-photos.device_log", json={"retain_for": "P30D", "schedule": "0 3 * * *"},
                     headers=headers)
    assert r.status_code == 200 and r.json["version"] == 2 and r.json["retain_for"] == "P30D"
    r = client.patch(f"{BASE}/cloud-photos.device_log", json={"retain_for": "P30D"}, headers=headers)
    assert r.json["version"] == 2  # nothing changed: no new version
    versions = client.get(f"{BASE}/cloud-photos.device_log/versions", headers=headers).json
    assert [(v["version"], v["retain_for"], v["schedule"]) for v in versions] == [
        (2, "P30D", "0 3 * * *"), (1, "P90D", "@daily")]
    assert all(v["created_by"].startswith("key:") for v in versions)
    r = client.patch(f"{BASE}/cloud-photos.device_log", json={"store": "uploads"}, headers=headers)
    assert r.status_code == 422  # what a policy governs never changes; create another policy


def test_disable_and_enable(ret_app, headers):
    client = ret_app.test_client()
    client.post(BASE, json=body(), headers=headers)
    r = client.post(f"{BASE}/cloud-photos.device_log/disable", headers=headers)
    assert r.status_code == 200 and r.json["enabled"] is False
    assert client.get(f"{BASE}?enabled=false", headers=headers).json[0]["key"] == "cloud-photos.device_log"
    r = client.post("/v1/retention/runs", json={"policy": "cloud-photos.device_log"}, headers=headers)
    assert r.status_code == 409
    # A disabled policy frees its store and category for another.
    assert client.post(BASE, json=body(key="logs-v2"), headers=headers).status_code == 201
    assert client.post(f"{BASE}/cloud-photos.device_log/enable", headers=headers).status_code == 409


def test_changes_are_audited_with_the_key_id(ret_app, headers):
    client = ret_app.test_client()
    client.post(BASE, json=body(), headers=headers)
    client.patch(f"{BASE}/cloud-photos.device_log", json={"retain_for": "P30D"}, headers=headers)
    client.post(f"{BASE}/cloud-photos.device_log/disable", headers=headers)
    with ret_app.extensions["db"].sessions() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.resource_type == "retention_policy")
                                 .order_by(AuditEvent.id)).all()
    assert [e.action for e in events] == ["retention.policy_created", "retention.policy_updated",
                                          "retention.policy_disabled"]
    assert all(e.actor.startswith("key:") and e.app_id is not None for e in events)
    assert "basis" not in events[0].details  # free text stays out of the audit trail


def test_scope_is_required(ret_app, make_key):
    client = ret_app.test_client()
    other = make_key("ops", "consent:read,dsar:manage,admin")  # an app's admin does not reach company retention
    assert client.get(BASE, headers=other).status_code == 403
    assert client.post(BASE, json=body(), headers=other).status_code == 403
    assert client.get(BASE).status_code == 401
    assert client.get(BASE, headers=make_key("ops", "platform:retention")).status_code == 200


def test_not_found(ret_app, headers):
    client = ret_app.test_client()
    assert client.get(f"{BASE}/nope", headers=headers).status_code == 404
    assert client.patch(f"{BASE}/nope", json={"retain_for": "P1D"}, headers=headers).status_code == 404
