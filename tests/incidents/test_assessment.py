"""Assessment runs over test-only listing stores: exact counts per store and category, people deduplicated across
stores by the identities they share, contacts, "not determinable", several batches, resuming after a crash, and the
subject list sealed and destroyed with the incident's retention."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from incidents import assessment, jobs
from incidents.models import AffectedSubject, AffectedSubjectKey, AssessmentRun, Incident
from service.audit import AuditEvent


def _window():
    now = datetime.now(UTC).replace(microsecond=0)
    return now - timedelta(days=10), now


def _seed(records):
    since, until = _window()
    inside, before, after = since + timedelta(days=1), since - timedelta(seconds=1), until
    records("crm", {
        "contact": [(inside, {"user_id": "u1", "email": "Ada@Example.com"}),
                    (inside, {"user_id": "u2"}),
                    (inside, {"user_id": "u3", "email": "cy@example.com"}),
                    (since, {"user_id": "u4"}),            # at since: inside
                    (before, {"user_id": "u5"}),           # before the window
                    (after, {"user_id": "u6"})],           # at until: outside
        "orders": [(inside, {"user_id": "u2", "email": "bo@example.com"})],
    })
    records("billing", {
        "orders": [(inside, {"email": "ada@example.com"}),  # u1, by email (case differs)
                   (inside, {"email": "bo@example.com"}),   # u2, only linked through crm/orders
                   (inside, {"email": "dee@example.com"})],  # a new person
        "invoices": [(before, {"email": "cy@example.com"})],
    })
    records("legacy", {"contact": [(inside, {"user_id": "u1"})]})


SCOPE = [{"store": "crm", "category": "contact"}, {"store": "billing", "category": "orders"},
         {"store": "crm", "category": "orders"}, {"store": "billing", "category": "invoices"},
         {"store": "legacy", "category": "contact"}]


def _run(client, headers, incident_id):
    r = client.post(f"/v1/incidents/{incident_id}/assessment-runs", headers=headers)
    assert r.status_code == 202, r.json
    return client.get(f"/v1/incidents/{incident_id}/assessment-runs/{r.json['id']}", headers=headers).json


def _expected(report):
    counts = {(s["store"], s["category"]): (s["state"], s["subjects"]) for s in report["stores"]}
    assert counts == {("crm", "contact"): ("done", 4), ("billing", "orders"): ("done", 3),
                      ("crm", "orders"): ("done", 1), ("billing", "invoices"): ("done", 0),
                      ("legacy", "contact"): ("not_determinable", None)}
    # u1 (crm + billing by email), u2 (user_id in crm/contact; its email in crm/orders and billing), u3, u4, dee
    assert report["distinct_subjects"] == 5
    assert report["with_contact"] == 4  # u1, u2, u3, dee have an email; u4 has none
    assert report["categories"] == ["contact", "orders"]
    assert report["not_determinable"] == ["legacy/contact"]


def test_counts_dedup_contacts_and_not_determinable(client, headers, opened, records, inc_app):
    _seed(records)
    since, until = _window()
    made = opened(occurred_from=since.isoformat(), occurred_until=until.isoformat(), scope=SCOPE)
    report = _run(client, headers, made["id"])
    assert report["state"] == "succeeded", report
    _expected(report)
    text = json.dumps(report)
    assert "example.com" not in text and "u1" not in text
    with inc_app.extensions["db"].sessions() as session:
        run = session.get(AssessmentRun, report["id"])
        people = session.scalars(select(AffectedSubject).where(AffectedSubject.run_id == run.id)).all()
        identities = sorted(json.dumps(assessment.identity_of(inc_app.extensions["keys"], p), sort_keys=True)
                            for p in people)
        assert b"example.com" not in b"".join(p.identity for p in people)  # sealed at rest
        audit = json.dumps([e.details for e in session.scalars(select(AuditEvent))])
    assert json.loads(identities[0]) == {"email": ["ada@example.com"], "user_id": ["u1"]} or len(identities) == 5
    assert {"email": ["bo@example.com"], "user_id": ["u2"]} in [json.loads(i) for i in identities]
    assert "example.com" not in audit and "u1" not in audit
    # the report to the authority carries the counts
    r = client.get(f"/v1/incidents/{made['id']}/report", headers=headers).json
    assert r["affected"]["approximate_subjects"] == 5 and r["affected"]["not_determinable"] == ["legacy/contact"]


def test_assessment_needs_a_window(client, headers, opened):
    made = opened(occurred_from=None, occurred_until=None)
    r = client.post(f"/v1/incidents/{made['id']}/assessment-runs", headers=headers)
    assert r.status_code == 422 and set(r.json["errors"]["json"]) == {"occurred_from", "occurred_until"}
    since, _ = _window()
    client.patch(f"/v1/incidents/{made['id']}", headers=headers, json={"reason": "learned when",
                                                                      "occurred_from": since.isoformat()})
    r = client.post(f"/v1/incidents/{made['id']}/assessment-runs", headers=headers)
    assert r.status_code == 422 and set(r.json["errors"]["json"]) == {"occurred_until"}


def test_resumes_after_a_crash_with_exact_counts(client, headers, opened, records, inc_app, inc_folder):
    _seed(records)
    (inc_folder / "crash").write_text("die once")  # crm dies after its 1st batch (batch_size 2 in the TOML)
    since, until = _window()
    made = opened(occurred_from=since.isoformat(), occurred_until=until.isoformat(), scope=SCOPE)
    crashed = _run(client, headers, made["id"])
    assert crashed["state"] == "running" and crashed["stores"][0]["state"] == "running"
    db = inc_app.extensions["db"]
    with db.sessions() as session:
        assert session.scalar(select(AssessmentRun.attempts).where(AssessmentRun.id == crashed["id"])) == 1
    # a second delivery while the dead attempt's lease lives does nothing
    assert assessment.execute(inc_app.extensions["runtime"], inc_app.extensions["stores"], crashed["id"]) is None
    r = client.post(f"/v1/incidents/{made['id']}/assessment-runs/{crashed['id']}/retry", headers=headers)
    assert r.status_code == 409
    with db.session() as session:  # the lease runs out, as the dead worker's would
        session.execute(update(AssessmentRun).values(lease_expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    r = client.post(f"/v1/incidents/{made['id']}/assessment-runs/{crashed['id']}/retry", headers=headers)
    assert r.status_code == 202, r.json
    report = client.get(f"/v1/incidents/{made['id']}/assessment-runs/{crashed['id']}", headers=headers).json
    assert report["state"] == "succeeded" and report["attempts"] == 2
    _expected(report)


def test_subject_list_is_destroyed_with_the_incidents_retention(client, headers, opened, records, inc_app):
    _seed(records)
    since, until = _window()
    made = opened(occurred_from=since.isoformat(), occurred_until=until.isoformat(), scope=SCOPE)
    run = _run(client, headers, made["id"])
    for data in ({"state": "assessed", "risk": "high_risk", "risk_reasoning": "emails and orders exposed"},
                 {"state": "contained"}, {"state": "closed", "root_cause": "public bucket", "measures": "locked"}):
        r = client.patch(f"/v1/incidents/{made['id']}", headers=headers, json={"reason": "progress", **data})
        assert r.status_code == 200, r.json
    claims = inc_app.extensions["keys"].signer.verify(
        client.get(f"/v1/incidents/{made['id']}/record", headers=headers).get_data(as_text=True))
    assert claims["assessment"]["distinct_subjects"] == 5 and claims["assessment"]["with_contact"] == 4
    assert claims["campaigns"] == []
    rt = inc_app.extensions["runtime"]
    from service.runtime import use_runtime

    with use_runtime(rt):
        assert jobs.maintain()["destroyed"] == 0  # kept for subjects_kept_days after closing
        with rt.db.session() as session:
            session.execute(update(Incident).values(subjects_destroy_at=datetime.now(UTC) - timedelta(seconds=1)))
        assert jobs.maintain()["destroyed"] == 5
        assert jobs.maintain()["destroyed"] == 0
    with rt.db.sessions() as session:
        assert session.scalar(select(AffectedSubject.id).where(AffectedSubject.run_id == run["id"])) is None
        assert session.scalar(select(AffectedSubjectKey.id).where(AffectedSubjectKey.run_id == run["id"])) is None
    report = client.get(f"/v1/incidents/{made['id']}/assessment-runs/{run['id']}", headers=headers).json
    assert report["distinct_subjects"] == 5 and report["subjects_destroyed_at"]
    actions = [e["action"] for e in client.get(f"/v1/incidents/{made['id']}/timeline", headers=headers).json]
    assert "incident.assessment_succeeded" in actions and actions[-1] == "incident.subjects_destroyed"


def test_merge_joins_a_batch_and_later_batches_into_people(opened, inc_app):
    """Within one batch, identities sharing a `type:value` are one person; a later batch that links two known
    people folds them into one, and one that only repeats what is known changes nothing."""
    made = opened()
    db, keys = inc_app.extensions["db"], inc_app.extensions["keys"]
    with db.session() as session:
        app_id = session.scalar(select(Incident.app_id).where(Incident.id == made["id"]))
        now = datetime.now(UTC)
        session.add(AssessmentRun(id="r" * 36, incident_id=made["id"], since=now, until=now, requested_by="t"))

    def people():
        with db.sessions() as session:
            rows = session.scalars(select(AffectedSubject).where(AffectedSubject.run_id == "r" * 36)
                                   .order_by(AffectedSubject.id)).all()
            found = sorted(((assessment.identity_of(keys, r), r.has_contact) for r in rows), key=repr)
            return found, session.scalar(
                select(func.count()).where(AffectedSubjectKey.run_id == "r" * 36))

    with db.session() as session:
        assessment.merge(session, keys, app_id, "r" * 36, [
            {"user_id": "a", "email": "X@example.com"}, {"email": "x@example.com"}, {"user_id": "a", "phone": "1"},
            {"user_id": "b"}, {"user_id": " "}])
    assert people() == ([({"email": ["x@example.com"], "phone": ["1"], "user_id": ["a"]}, True),
                         ({"user_id": ["b"]}, False)], 4)
    with db.session() as session:  # b's email, then a link between a and b: one person
        assessment.merge(session, keys, app_id, "r" * 36, [{"user_id": "b", "email": "b@example.com"}])
        assessment.merge(session, keys, app_id, "r" * 36, [{"phone": "1", "email": "b@example.com"}, {"user_id": "c"}])
    assert people() == ([({"email": ["b@example.com", "x@example.com"], "phone": ["1"], "user_id": ["a", "b"]},
                          True), ({"user_id": ["c"]}, False)], 6)
    with db.session() as session:  # nothing new
        assessment.merge(session, keys, app_id, "r" * 36, [{"user_id": "a"}, {"email": "b@example.com"}])
    assert people()[1] == 6 and len(people()[0]) == 2
