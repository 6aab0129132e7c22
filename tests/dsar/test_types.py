"""Rectification through stores that support updates, restriction and objection flags, and erasure of consent
records with the proof kept (the ledger check still passing), on the embedded default."""

from sqlalchemy import select, text

from service.audit import AuditEvent
from tests.dsar.plugins import EditableStore

MANAGE = "dsar:submit,dsar:manage"


def store_toml(tmp_path, name="profile"):
    path = tmp_path / f"{name}.sqlite3"
    return path, f'[[stores]]\nname = "{name}"\nplugin = "tests.dsar.plugins:EditableStore"\npath = "{path}"\n'


def request(client, headers, type_, subject=None, **extra):
    body = {"type": type_, "subject": subject or {"user_id": "1"}, "jurisdiction": "GDPR", "verified": True,
            **extra}
    return client.post("/v1/requests", json=body, headers=headers)


def test_rectification_updates_stores_that_can_and_routes_the_rest_to_an_operator(inline_app_with, key_for,
                                                                                   tmp_path):
    path, toml = store_toml(tmp_path)
    profile = EditableStore("profile", {"path": str(path)})
    profile.seed([("1", "contact", "email", "old@example.com"), ("1", "contact", "name", "Ana"),
                  ("2", "contact", "email", "bo@example.com")])
    app = inline_app_with(toml)
    client, h = app.test_client(), key_for(app, MANAGE)
    assert request(client, h, "rectification").status_code == 422  # no corrections given
    r = request(client, h, "rectification", details={"corrections": {"contact": {"email": "new@example.com"}}})
    assert r.status_code == 202, r.json
    tasks = {t["store"]: t for t in r.json["tasks"]}
    assert tasks["profile"]["state"] == "done" and tasks["profile"]["counts"] == {"contact": 1}
    # cloud-photos holds contact data too but has no update operation: an operator does it by hand
    assert tasks["_manual"]["state"] == "pending" and "cloud-photos" in tasks["_manual"]["note"]
    assert r.json["status"] == "in_progress"
    assert profile.rows("1") == [("1", "contact", "email", "new@example.com"), ("1", "contact", "name", "Ana")]
    assert profile.rows("2") == [("2", "contact", "email", "bo@example.com")]
    done = client.post(f"/v1/requests/{r.json['id']}/complete", json={"reason": "CRM updated by hand"}, headers=h)
    assert done.status_code == 200 and done.json["status"] == "completed"
    with app.extensions["db"].sessions() as session:
        trail = " ".join(str(d) for d in session.scalars(select(AuditEvent.details)))
        rows = " ".join(str(v) for row in session.execute(text("SELECT * FROM dsar_requests")) for v in row)
    assert "new@example.com" not in trail and "new@example.com" not in rows  # corrections are personal data


def test_objection_is_a_flag_until_lifted(inline_app, key_for):
    client, h = inline_app.test_client(), key_for(inline_app, MANAGE)
    r = request(client, h, "objection", subject={"user_id": "1", "email": "ana@example.com"})
    assert r.json["status"] == "in_progress" and "objection" in r.json["tasks"][0]["note"]

    def flags(subject):
        return client.post("/v1/flags/lookup", json={"subject": subject}, headers=h).json

    # matched by any one of the identities given at submission
    assert flags({"email": "ana@example.com"})["objected"] is True
    assert flags({"user_id": "1"})["flags"][0]["request_id"] == r.json["id"]
    assert flags({"user_id": "2"}) == {"restricted": False, "objected": False, "flags": []}
    done = client.post(f"/v1/requests/{r.json['id']}/complete", json={"reason": "marketing stopped"}, headers=h)
    assert done.json["status"] == "completed" and flags({"user_id": "1"})["objected"] is True  # still in force
    lifted = client.post(f"/v1/requests/{r.json['id']}/lift", json={"reason": "compelling grounds"}, headers=h)
    assert lifted.status_code == 200 and lifted.json["lift_reason"] == "compelling grounds"
    assert flags({"user_id": "1"})["objected"] is False
    assert client.post(f"/v1/requests/{r.json['id']}/lift", json={"reason": "again"}, headers=h).status_code == 409
    assert client.post("/v1/flags/lookup", json={"subject": {}}, headers=h).status_code == 422


def test_restriction_holds_the_data_until_lifted(inline_app, key_for):
    client, h = inline_app.test_client(), key_for(inline_app, MANAGE)
    r = request(client, h, "restriction", subject={"user_id": "3"})
    flags = client.post("/v1/flags/lookup", json={"subject": {"user_id": "3"}}, headers=h).json
    assert flags["restricted"] is True and flags["objected"] is False
    hold = client.get("/v1/holds", headers=h).json[0]
    assert hold["subject"] is True and r.json["id"] in hold["reason"] and hold["released_at"] is None
    # while restricted, an erasure keeps everything of the subject and says why
    erasure = request(client, h, "erasure", subject={"user_id": "3"}).json
    assert erasure["status"] == "completed"
    assert all(t["counts"] == {} and "*" in t["kept"] for t in erasure["tasks"] if t["state"] == "done")
    client.post(f"/v1/requests/{r.json['id']}/lift", json={"reason": "accuracy confirmed"}, headers=h)
    assert client.get("/v1/holds", headers=h).json[0]["released_at"] is not None
    assert client.post("/v1/flags/lookup", json={"subject": {"user_id": "3"}}, headers=h).json["restricted"] is False


def _consent(client, h, subject, policy, **purposes):
    r = client.post("/v1/consents", json={"subject_id": subject, "policy": policy, "version": "1",
                                          "purposes": purposes, "channel": "web", "locale": "en"}, headers=h)
    assert r.status_code == 201, r.json
    return r.json["id"]


def _policy(client, h, key, purposes):
    client.post("/v1/policies", json={"key": key, "title": key, "purposes": [
        {"key": p, "description": p, "required": i == 0} for i, p in enumerate(purposes)]}, headers=h)
    client.post(f"/v1/policies/{key}/versions", json={"version": "1", "text": key, "material": True}, headers=h)


def _ledger(app):
    result = app.test_cli_runner().invoke(args=["ledger", "verify"])
    return result.exit_code, result.output


def test_erasure_keeps_consent_proof_of_configured_policies_and_the_ledger_still_verifies(inline_app_with, key_for):
    app = inline_app_with('keep_consent_proof = ["terms"]\n')
    client, h = app.test_client(), key_for(app, "admin")
    _policy(client, h, "terms", ["contract"])
    _policy(client, h, "marketing", ["newsletter", "ads"])
    # one chain, the two policies interleaved: erasing marketing leaves gaps between the kept terms events
    kept_first = _consent(client, h, "1", "terms", contract=True)
    _consent(client, h, "1", "marketing", newsletter=True, ads=True)
    kept_last = _consent(client, h, "1", "terms", contract=True)
    _consent(client, h, "1", "marketing", newsletter=True, ads=False)
    _consent(client, h, "2", "marketing", newsletter=True, ads=True)
    r = request(client, h, "erasure").json
    assert r["status"] == "completed"
    assert r["consent"] == {"consent_events_removed": 2, "kept_policies": ["terms"],
                            "note": "kept as proof of consent ([dsar] keep_consent_proof)"}
    history = client.get("/v1/subjects/1/consents", headers=h).json
    assert [e["id"] for e in history] == [kept_last, kept_first]  # newest first
    status = client.get("/v1/consents/status?subject_id=1&policy=marketing", headers=h).json
    assert status["reason"] == "no_consent"
    code, output = _ledger(app)
    assert code == 0, output
    _consent(client, h, "1", "marketing", newsletter=True, ads=True)  # the chain goes on after the erasure
    code, output = _ledger(app)
    assert code == 0, output
    # the gaps are explained only by the audited erasures: removing a kept event is still caught
    with app.extensions["db"].engine.begin() as conn:
        conn.execute(text("DELETE FROM consent_events WHERE id = :id"), {"id": kept_first})
    code, output = _ledger(app)
    assert code == 1 and "removed" in output


def test_forged_erasure_record_does_not_bridge_a_gap(inline_app_with, key_for):
    app = inline_app_with('keep_consent_proof = ["terms"]\n')
    client, h = app.test_client(), key_for(app, "admin")
    _policy(client, h, "terms", ["contract"])
    _policy(client, h, "marketing", ["newsletter"])
    _consent(client, h, "1", "terms", contract=True)
    _consent(client, h, "1", "marketing", newsletter=True)
    _consent(client, h, "1", "terms", contract=True)
    request(client, h, "erasure")
    assert _ledger(app)[0] == 0
    with app.extensions["db"].engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET details = :d WHERE action = 'consent.erased'"),
                     {"d": '{"seq": 2, "hash": "0000", "prev_hash": null}'})
    code, output = _ledger(app)
    assert code == 1 and "expected 2" in output
