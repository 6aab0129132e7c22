"""The register: open, change (versioned, audited without personal data), states, scopes, tenancy, bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from service.audit import AuditEvent
from tests.incidents.conftest import body

SECRET_TEXT = "Photos bucket was public for 3 days"


def test_open_read_and_audit_without_text(client, headers, inc_app, opened):
    made = opened(severity="high")
    assert made["state"] == "open" and made["version"] == 1 and made["severity"] == "high"
    assert made["jurisdictions"] == ["GDPR"] and made["scope"] == [{"store": "crm", "category": "contact"}]
    got = client.get(f"/v1/incidents/{made['id']}", headers=headers).json
    assert got["description"] == SECRET_TEXT
    assert [(o["jurisdiction"], o["obligation"]) for o in got["obligations"]] == [("GDPR", "authority"),
                                                                                  ("GDPR", "people")]
    with inc_app.extensions["db"].sessions() as session:
        events = session.query(AuditEvent).all()
    assert [e.action for e in events] == ["incident.opened"]
    assert SECRET_TEXT not in json.dumps(events[0].details) and "Misconfigured" not in json.dumps(events[0].details)


def test_bad_input_names_the_field(client, headers):
    now = datetime.now(UTC)
    cases = [
        (body(occurred_from=now.isoformat(), occurred_until=(now - timedelta(days=1)).isoformat()),
         ["occurred_until"]),
        (body(scope=[{"store": "nowhere", "category": "contact"}]), ["scope", "0", "store"]),
        (body(scope=[{"store": "crm", "category": "photos"}]), ["scope", "0", "category"]),
        (body(jurisdictions=["ATLANTIS"]), ["jurisdictions"]),
        (body(discovered_at="2026-11-01T10:00:00"), ["discovered_at"]),  # naive: no time zone
        (body(severity="apocalyptic"), ["severity"]),
    ]
    for data, path in cases:
        r = client.post("/v1/incidents", json=data, headers=headers)
        assert r.status_code == 422, (data, r.json)
        errors = r.json["errors"]["json"]
        for part in path:
            errors = errors[part]
        assert errors


def test_scopes_and_tenancy(client, key, opened, headers):
    made = opened()
    assert client.get("/v1/incidents", headers=key("app-a", "consent:read")).status_code == 403
    assert client.get(f"/v1/incidents/{made['id']}", headers=key("app-a", "admin")).status_code == 200
    other = key("app-b")
    for method, path, data in [("get", "", None), ("patch", "", {"reason": "learned more", "title": "x"}),
                               ("get", "/versions", None), ("get", "/timeline", None), ("get", "/report", None),
                               ("post", "/assessment-runs", None),
                               ("post", "/notifications", {"jurisdiction": "GDPR", "obligation": "authority",
                                                           "kind": "notified", "at": datetime.now(UTC).isoformat()})]:
        r = getattr(client, method)(f"/v1/incidents/{made['id']}{path}", json=data, headers=other)
        assert r.status_code == 404, (method, path, r.json)
    assert client.get("/v1/incidents", headers=other).json == []
    # a platform scope is not implied by incidents:manage, nor the reverse by platform keys
    assert client.get("/v1/incidents", headers=key("app-a", "platform:read")).status_code == 403


def test_changes_are_versioned_with_who_what_why(client, headers, opened, inc_app):
    made = opened()
    r = client.patch(f"/v1/incidents/{made['id']}", json={"reason": "the logs show more", "description": "wider",
                                                          "severity": "critical"}, headers=headers)
    assert r.status_code == 200, r.json
    assert r.json["version"] == 2 and r.json["description"] == "wider"
    versions = client.get(f"/v1/incidents/{made['id']}/versions", headers=headers).json
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[0]["changed"] == ["description", "severity"] and versions[0]["reason"] == "the logs show more"
    assert versions[0]["created_by"].startswith("key:") and versions[1]["facts"]["description"] == SECRET_TEXT
    # nothing changed: refused, no version
    r = client.patch(f"/v1/incidents/{made['id']}", json={"reason": "again", "severity": "critical"}, headers=headers)
    assert r.status_code == 422 and "reason" in r.json["errors"]["json"]
    assert client.patch(f"/v1/incidents/{made['id']}", json={"description": "no reason"},
                        headers=headers).status_code == 422
    with inc_app.extensions["db"].sessions() as session:
        updated = [e for e in session.query(AuditEvent).all() if e.action == "incident.updated"]
    assert len(updated) == 1 and updated[0].details["changed"] == ["description", "severity"]
    assert "wider" not in json.dumps(updated[0].details)


def test_states_need_their_facts_and_closing_signs_a_record(client, headers, opened, inc_app):
    made = opened()
    url = f"/v1/incidents/{made['id']}"

    def patch(**data):
        return client.patch(url, json={"reason": "progress", **data}, headers=headers)

    r = patch(state="contained")
    assert r.status_code == 422 and "state" in r.json["errors"]["json"]
    r = patch(state="assessed")
    assert r.status_code == 422 and set(r.json["errors"]["json"]) == {"risk", "risk_reasoning"}
    assert patch(state="assessed", risk="high_risk", risk_reasoning="passwords exposed").json["state"] == "assessed"
    assert patch(state="contained").json["contained_at"]
    r = patch(state="closed", root_cause="public ACL")
    assert r.status_code == 422 and set(r.json["errors"]["json"]) == {"measures"}
    assert client.get(f"{url}/record", headers=headers).status_code == 404
    closed = patch(state="closed", root_cause="public ACL", measures="ACL fixed; keys rotated").json
    assert closed["state"] == "closed" and closed["record"] is True
    rec = client.get(f"{url}/record", headers=headers)
    assert rec.status_code == 200 and rec.mimetype == "application/jose"
    claims = inc_app.extensions["keys"].signer.verify(rec.get_data(as_text=True))
    assert claims["type"] == "incident-record" and claims["incident"]["closedAt"]
    assert {(o["jurisdiction"], o["obligation"]) for o in claims["obligations"]} == {("GDPR", "authority"),
                                                                                     ("GDPR", "people")}
    assert rec.headers["X-Record-SHA256"] == closed["record_sha256"]
    assert patch(title="too late").status_code == 409
    actions = [e["action"] for e in client.get(f"{url}/timeline", headers=headers).json]
    assert actions == ["incident.opened", "incident.updated", "incident.updated", "incident.updated",
                       "incident.record_signed"]


def test_list_filters(client, headers, opened):
    a = opened(severity="low", jurisdictions=["GDPR"])
    b = opened(severity="high", jurisdictions=["LGPD", "UK_GDPR"])
    r = client.patch(f"/v1/incidents/{b['id']}", json={"reason": "decided", "state": "assessed", "risk": "risk",
                                                       "risk_reasoning": "some"}, headers=headers)
    assert r.status_code == 200, r.json

    def ids(query):
        r = client.get(f"/v1/incidents?{query}", headers=headers)
        assert r.status_code == 200, r.json
        return {i["id"] for i in r.json}

    assert ids("") == {a["id"], b["id"]}
    assert ids("severity=high") == {b["id"]}
    assert ids("state=assessed") == {b["id"]}
    assert ids("jurisdiction=lgpd") == {b["id"]}
    assert ids("overdue=false") == {a["id"], b["id"]}
    assert client.get("/v1/incidents?state=nope", headers=headers).status_code == 422


def test_patch_checks_what_it_changes(client, headers, opened):
    made = opened()
    url = f"/v1/incidents/{made['id']}"
    r = client.patch(url, headers=headers, json={"reason": "wider", "scope": [{"store": "crm", "category": "pets"}]})
    assert r.status_code == 422 and "category" in r.json["errors"]["json"]["scope"]["0"]
    r = client.patch(url, headers=headers, json={"reason": "earlier", "occurred_until": "2000-01-01T00:00:00Z"})
    assert r.status_code == 422 and "occurred_until" in r.json["errors"]["json"]
    r = client.patch(url, headers=headers, json={"reason": "typo", "colour": "red"})
    assert r.status_code == 422 and "colour" in r.json["errors"]["json"]
    assert client.get(url, headers=headers).json["version"] == 1  # nothing was saved
