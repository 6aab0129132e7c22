"""Runs with a real rq worker over the demo estate: exact destruction across sql, files and redis, anonymisation,
dry runs, legal holds, and the signed destruction certificate."""

from __future__ import annotations

import hashlib
import json

from joserfc import jws
from joserfc.jwk import KeySet
from sqlalchemy import select

from holds.service import create_hold
from retention.digest import digest_key, key_sum, to_hex
from service.audit import AuditEvent
from service.tenancy import App
from tests.retention import estate
from tests.retention.conftest import wait_run

RUNS = "/v1/retention/runs"


def _by_category(report):
    return {s["category"]: s for s in report["steps"]}


def _snapshot(app):
    return {"device_log": estate.sql_rows(app, "device_logs", "logged_at"),
            "photos": estate.files(app, "photos"), "sessions": estate.sessions(app)}


def _policies(policy):
    policy("cloud-photos", "device_log", "P90D")
    policy("uploads", "photos", "P365D")
    policy("sessions", "sessions", "P30D")


def test_a_run_destroys_exactly_the_old_records_and_its_certificate_verifies(ret_rq_app, seeded, policy, headers,
                                                                             worker):
    client = ret_rq_app.test_client()
    _policies(policy)
    before = _snapshot(ret_rq_app)
    r = client.post(RUNS, json={}, headers=headers)
    assert r.status_code == 202 and r.json["state"] == "queued"
    worker()
    report = wait_run(client, headers, r.json["id"])
    assert report["state"] == "succeeded", report
    after = _snapshot(ret_rq_app)
    steps = _by_category(report)
    for category, records in before.items():
        step = steps[category]
        old, new = estate.split(records, _parse(step["cutoff"]))
        assert old and new, f"the seed should give {category} both old and new records"
        assert step["state"] == "done" and step["count"] == len(old) == sum(step["batches"])
        assert set(after[category]) == new, category  # every old record gone, every newer one kept
    assert report["totals"] == {"cloud-photos": {"device_log": steps["device_log"]["count"]},
                                "uploads": {"photos": steps["photos"]["count"]},
                                "sessions": {"sessions": steps["sessions"]["count"]}}

    # The certificate: a JWS verifying against the published JWKS, with the digest of exactly those keys.
    cert = client.get(f"{RUNS}/{report['id']}/certificate", headers=headers)
    assert cert.status_code == 200 and cert.mimetype == "application/jose"
    keys = KeySet.import_key_set(client.get("/.well-known/jwks.json").json)
    claims = json.loads(jws.deserialize_compact(cert.text, keys, algorithms=["EdDSA", "Ed25519"]).payload)
    assert claims["jti"] == report["id"] and claims["type"] == "retention-destruction-certificate"
    signed = {s["category"]: s for s in claims["steps"]}
    secret = digest_key(ret_rq_app.extensions["keys"])
    destroyed = {
        "device_log": [f"device_logs/{k}" for k in set(before["device_log"]) - set(after["device_log"])],
        "photos": sorted(set(before["photos"]) - set(after["photos"])),
        "sessions": sorted(set(before["sessions"]) - set(after["sessions"])),
    }
    for category, step in signed.items():
        assert step["count"] == steps[category]["count"] and step["policyVersion"] == 1
        assert _parse(step["cutoff"]) == _parse(steps[category]["cutoff"])
        assert step["basis"] and step["retainFor"] == steps[category]["retain_for"]
        assert step["keyDigest"] == to_hex(key_sum(secret, step["store"], category, destroyed[category]))
    sha = hashlib.sha256(cert.text.encode()).hexdigest()
    assert report["certificate_sha256"] == sha == cert.headers["X-Certificate-SHA256"]
    with ret_rq_app.extensions["db"].sessions() as session:
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "retention.certificate_issued"))
    assert event.resource_id == report["id"] and event.details["sha256"] == sha


def _parse(text):
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_anonymize_replaces_the_personal_columns_and_keeps_the_rows(ret_rq_app, seeded, policy, headers, worker):
    client = ret_rq_app.test_client()
    policy("cloud-photos", "orders", "P1Y", action="anonymize")
    columns = ("user_id", "email", "shipping_address", "total_cents", "anonymized_at")
    before = estate.sql_rows(ret_rq_app, "orders", "ordered_at", columns)
    run_id = client.post(RUNS, json={"policy": "cloud-photos.orders"}, headers=headers).json["id"]
    worker()
    report = wait_run(client, headers, run_id)
    after = estate.sql_rows(ret_rq_app, "orders", "ordered_at", columns)
    old, new = estate.split(before, _parse(report["steps"][0]["cutoff"]))
    assert old and new and report["steps"][0]["count"] == len(old)
    assert set(after) == set(before)  # no row deleted
    for key in old:
        row = after[key]
        assert row["user_id"] is None and row["shipping_address"] == "[removed]"
        assert len(row["email"]) == 64 and row["email"] != before[key]["email"]  # keyed hash
        assert row["anonymized_at"] is not None and row["total_cents"] == before[key]["total_cents"]
    for key in new:
        assert after[key] == before[key]


def test_a_dry_run_counts_what_the_real_run_destroys_and_changes_nothing(ret_rq_app, seeded, policy, headers,
                                                                        worker):
    client = ret_rq_app.test_client()
    _policies(policy)
    policy("cloud-photos", "orders", "P1Y", action="anonymize")
    before = _snapshot(ret_rq_app)
    orders = estate.sql_rows(ret_rq_app, "orders", "ordered_at", ("email",))
    worker()
    dry = wait_run(client, headers, client.post(RUNS, json={"dry_run": True}, headers=headers).json["id"])
    assert dry["state"] == "succeeded" and dry["dry_run"] is True
    assert _snapshot(ret_rq_app) == before and estate.sql_rows(ret_rq_app, "orders", "ordered_at", ("email",)) \
        == orders
    assert client.get(f"{RUNS}/{dry['id']}/certificate", headers=headers).status_code == 404
    real = wait_run(client, headers, client.post(RUNS, json={"from_dry_run": dry["id"]}, headers=headers)
                    .json["id"])
    assert real["state"] == "succeeded" and real["from_dry_run"] == dry["id"]
    previewed, done = _by_category(dry), _by_category(real)
    for category in ("device_log", "photos", "sessions", "orders"):
        assert previewed[category]["cutoff"] == done[category]["cutoff"]
        assert previewed[category]["count"] == done[category]["count"] > 0, category
    for category, records in before.items():
        old, _ = estate.split(records, _parse(done[category]["cutoff"]))
        assert done[category]["count"] == len(old)


def test_legal_holds_keep_a_subjects_data_and_the_report_says_why(ret_rq_app, seeded, policy, headers, worker):
    client = ret_rq_app.test_client()
    _policies(policy)
    with ret_rq_app.extensions["db"].session() as session:
        app_id = session.scalar(select(App.id).where(App.slug == "ops"))
        subject = create_hold(session, ret_rq_app.extensions["keys"], app_id=app_id, actor="test",
                              subject={"user_id": "3"}, store=None, category=None, reason="litigation", until=None)
        whole = create_hold(session, ret_rq_app.extensions["keys"], app_id=app_id, actor="test", subject=None,
                            store="uploads", category="photos", reason="audit of the uploads", until=None)
    before = _snapshot(ret_rq_app)
    owner = estate.user_of_log(ret_rq_app)
    worker()
    report = wait_run(client, headers, client.post(RUNS, json={}, headers=headers).json["id"])
    steps = _by_category(report)
    after = _snapshot(ret_rq_app)

    logs = steps["device_log"]
    old, new = estate.split(before["device_log"], _parse(logs["cutoff"]))
    held = {k for k in old if owner[k] == 3}
    assert held, "the seed should give user 3 old device logs"
    assert set(after["device_log"]) == new | held
    assert logs["count"] == len(old - held)
    assert logs["skipped"] == {"holds": [subject.id], "records": len(held), "reason": "legal holds on subjects"}

    old_sessions, new_sessions = estate.split(before["sessions"], _parse(steps["sessions"]["cutoff"]))
    held_sessions = {k for k in old_sessions if k.startswith("cloudphotos:session:3:")}
    assert set(after["sessions"]) == new_sessions | held_sessions

    photos = steps["photos"]
    assert photos["state"] == "held" and photos["count"] == 0 and after["photos"] == before["photos"]
    old_photos, _ = estate.split(before["photos"], _parse(photos["cutoff"]))
    assert photos["skipped"]["holds"] == [whole.id] and photos["skipped"]["records"] == len(old_photos)
    assert report["state"] == "succeeded"
