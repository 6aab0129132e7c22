"""Intake, identity verification, deadlines, operator actions, holds and scopes of rights requests."""

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text, update

from dsar.deadlines import DEFAULTS, Period, deadlines
from dsar.models import DsarRequest
from service.audit import AuditEvent
from service.config import ConfigError
from service.mail.models import MailMessage
from service.mail.outbox import read


def new(client, headers, type_="access", **extra):
    body = {"type": type_, "subject": {"user_id": "1", "email": "ana@example.com"}, "jurisdiction": "GDPR",
            "contact_email": "ana@example.com", **extra}
    return client.post("/v1/requests", json=body, headers=headers)


def code_of(app, request_id):
    """The latest verification code emailed for the request (on a line of its own, in either language)."""
    with app.extensions["db"].sessions() as session:
        note = session.scalars(select(MailMessage).where(MailMessage.ref == request_id,
                                                         MailMessage.kind == "verification_code")
                               .order_by(MailMessage.created_at.desc())).first()
        content = read(app.extensions["keys"], note)
        to, body = content.recipient, content.text
    assert to == "ana@example.com"
    return re.search(r"^\s+(\d{6})$", body, re.MULTILINE).group(1)


def test_code_verification_starts_the_request(inline_app, key_for):
    client, headers = inline_app.test_client(), key_for(inline_app, "dsar:submit")
    r = new(client, headers)
    assert r.status_code == 202 and r.json["status"] == "pending_verification" and r.json["tasks"] == []
    code = code_of(inline_app, r.json["id"])
    v = client.post(f"/v1/requests/{r.json['id']}/verify", json={"code": code}, headers=headers)
    assert v.status_code == 200 and v.json["status"] == "completed"  # in-process: executed at once
    again = client.post(f"/v1/requests/{r.json['id']}/verify", json={"code": code}, headers=headers)
    assert again.status_code == 409


def test_code_is_stored_hashed_and_never_logged(inline_app, key_for, caplog):
    client, headers = inline_app.test_client(), key_for(inline_app, "dsar:submit")
    with caplog.at_level("INFO"):
        rid = new(client, headers).json["id"]
    code = code_of(inline_app, rid)
    assert code not in caplog.text and "ana@example.com" not in caplog.text
    with inline_app.extensions["db"].sessions() as session:
        row = session.get(DsarRequest, rid)
        assert row.code_hash and code not in row.code_hash
        dump = " ".join(str(v) for r in session.execute(text("SELECT * FROM dsar_requests")) for v in r)
        dump += " ".join(str(v) for r in session.execute(text("SELECT * FROM audit_events")) for v in r)
    assert "ana@example.com" not in dump


def test_five_wrong_codes_lock_the_request(inline_app, key_for):
    client, headers = inline_app.test_client(), key_for(inline_app, "dsar:submit")
    rid = new(client, headers).json["id"]
    code = code_of(inline_app, rid)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for attempt in range(1, 5):
        r = client.post(f"/v1/requests/{rid}/verify", json={"code": wrong}, headers=headers)
        assert r.status_code == 422 and f"{5 - attempt} attempts left" in r.json["errors"]["json"]["code"][0]
    assert client.post(f"/v1/requests/{rid}/verify", json={"code": wrong}, headers=headers).status_code == 423
    # even the right code no longer works
    assert client.post(f"/v1/requests/{rid}/verify", json={"code": code}, headers=headers).status_code == 423
    assert client.get(f"/v1/requests/{rid}", headers=headers).json["status"] == "locked"


def test_expired_code_is_refused_and_a_new_one_works(inline_app, key_for):
    client, headers = inline_app.test_client(), key_for(inline_app, "dsar:submit")
    rid = new(client, headers).json["id"]
    code = code_of(inline_app, rid)
    with inline_app.extensions["db"].session() as session:
        session.execute(update(DsarRequest).values(code_expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert client.post(f"/v1/requests/{rid}/verify", json={"code": code}, headers=headers).status_code == 410
    assert client.post(f"/v1/requests/{rid}/resend-code", headers=headers).status_code == 200
    fresh = code_of(inline_app, rid)
    assert client.post(f"/v1/requests/{rid}/verify", json={"code": fresh}, headers=headers).status_code == 200


def test_only_dsar_manage_may_mark_verified(inline_app, key_for):
    client = inline_app.test_client()
    r = new(client, key_for(inline_app, "dsar:submit"), verified=True)
    assert r.status_code == 403
    r = new(client, key_for(inline_app, "dsar:submit,dsar:manage"), verified=True)
    assert r.status_code == 202 and r.json["verified_at"]


def test_intake_validation(inline_app, key_for):
    client, headers = inline_app.test_client(), key_for(inline_app, "dsar:submit")
    r = client.post("/v1/requests", json={"type": "delete-everything", "subject": {"email": "not-an-email"},
                                          "jurisdiction": "GDPR", "extra": 1}, headers=headers)
    assert r.status_code == 422 and {"type", "subject", "extra"} <= set(r.json["errors"]["json"])
    r = client.post("/v1/requests", json={"type": "access", "subject": {}, "jurisdiction": "GDPR",
                                          "contact_email": "a@b.co"}, headers=headers)
    assert r.status_code == 422 and "subject" in r.json["errors"]["json"]
    r = new(client, headers, jurisdiction="MARS")
    assert r.status_code == 422 and "jurisdiction" in r.json["errors"]["json"]
    r = client.post("/v1/requests", json={"type": "access", "subject": {"user_id": "1"}, "jurisdiction": "GDPR"},
                    headers=headers)
    assert r.status_code == 422 and "contact_email" in r.json["errors"]["json"]


def test_deadline_rules():
    jan31 = datetime(2027, 1, 31, 10, tzinfo=UTC)
    assert DEFAULTS["GDPR"].period.after(jan31) == datetime(2027, 2, 28, 10, tzinfo=UTC)
    assert DEFAULTS["GDPR"].extension.after(datetime(2027, 2, 28, 10, tzinfo=UTC)) == datetime(2027, 4, 28, 10,
                                                                                                tzinfo=UTC)
    assert DEFAULTS["CCPA"].period.after(jan31) == jan31 + timedelta(days=45)
    assert DEFAULTS["LGPD"].period.after(jan31) == jan31 + timedelta(days=15)
    friday = datetime(2026, 11, 27, 9, tzinfo=UTC)
    assert DEFAULTS["PIPL"].period.after(friday) == datetime(2026, 12, 18, 9, tzinfo=UTC)  # 15 working days
    assert Period(1, "months").after(datetime(2028, 1, 31, tzinfo=UTC)).day == 29  # leap year


def test_deadlines_from_config():
    table = deadlines({"dsar": {"deadlines": {"quebec": {"period": {"amount": 30, "unit": "days"}}}}})
    assert table["QUEBEC"].period == Period(30, "days") and table["QUEBEC"].extension is None
    with pytest.raises(ConfigError, match=r"dsar.deadlines.x"):
        deadlines({"dsar": {"deadlines": {"x": {"period": {"amount": 1, "unit": "fortnights"}}}}})


def test_due_date_extension_and_overdue_listing(inline_app, key_for):
    client, manage = inline_app.test_client(), key_for(inline_app, "dsar:submit,dsar:manage")
    r = new(client, manage, jurisdiction="CCPA")
    rid, due = r.json["id"], datetime.fromisoformat(r.json["due_at"])
    received = datetime.fromisoformat(r.json["received_at"])
    assert due - received == timedelta(days=45)
    ext = client.post(f"/v1/requests/{rid}/extend", json={"reason": "complex request"}, headers=manage)
    assert ext.status_code == 200 and ext.json["extended"] and ext.json["extension_reason"] == "complex request"
    assert datetime.fromisoformat(ext.json["due_at"]) - due == timedelta(days=45)
    assert client.post(f"/v1/requests/{rid}/extend", json={"reason": "again"}, headers=manage).status_code == 409
    lgpd = new(client, manage, jurisdiction="LGPD").json["id"]
    assert client.post(f"/v1/requests/{lgpd}/extend", json={"reason": "x" * 5}, headers=manage).status_code == 409
    with inline_app.extensions["db"].session() as session:
        session.execute(update(DsarRequest).where(DsarRequest.id == lgpd)
                        .values(due_at=datetime.now(UTC) - timedelta(days=1)))
    late = client.get("/v1/requests?overdue=true", headers=manage).json
    assert [x["id"] for x in late] == [lgpd] and late[0]["overdue"] is True
    assert {x["id"] for x in client.get("/v1/requests?status=pending_verification", headers=manage).json} == {rid,
                                                                                                           lgpd}
    page = client.get("/v1/requests?page_size=1&page=2", headers=manage)
    assert len(page.json) == 1 and json.loads(page.headers["X-Pagination"])["total"] == 2
    assert all(x["due_at"] for x in client.get("/v1/requests", headers=manage).json)


def test_reject_cancel_and_audit(inline_app, key_for):
    client, manage = inline_app.test_client(), key_for(inline_app, "dsar:submit,dsar:manage")
    a, b = new(client, manage).json["id"], new(client, manage).json["id"]
    r = client.post(f"/v1/requests/{a}/reject", json={}, headers=manage)
    assert r.status_code == 422 and "reason" in r.json["errors"]["json"]
    assert client.post(f"/v1/requests/{a}/reject", json={"reason": "manifestly unfounded"},
                       headers=manage).json["status"] == "rejected"
    assert client.post(f"/v1/requests/{b}/cancel", json={}, headers=manage).json["status"] == "cancelled"
    assert client.post(f"/v1/requests/{b}/reject", json={"reason": "too late"}, headers=manage).status_code == 409
    with inline_app.extensions["db"].sessions() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.resource_id == a)).all()
    actions = [r.action for r in rows]
    assert actions[:1] == ["dsar.received"] and "dsar.rejected" in actions
    rejected = next(r for r in rows if r.action == "dsar.rejected")
    assert rejected.actor.startswith("key:") and rejected.details["reason"] == "manifestly unfounded"


def test_consent_withdrawal_request(inline_app, key_for):
    client, h = inline_app.test_client(), key_for(inline_app, "admin")
    client.post("/v1/policies", json={"key": "privacy", "title": "t", "purposes": [
        {"key": "core", "description": "d", "required": True}, {"key": "ads", "description": "a"}]}, headers=h)
    client.post("/v1/policies/privacy/versions", json={"version": "1", "text": "t", "material": True}, headers=h)
    client.post("/v1/consents", json={"subject_id": "1", "policy": "privacy", "version": "1", "purposes": {
        "core": True, "ads": True}, "channel": "web", "locale": "en"}, headers=h)
    r = new(client, h, type_="consent_withdrawal", verified=True)
    assert r.json["status"] == "completed" and r.json["tasks"][0]["counts"] == {"policies_withdrawn": 1}
    status = client.get("/v1/consents/status?subject_id=1&policy=privacy", headers=h).json
    assert status["reason"] == "withdrawn" and not any(status["purposes"].values())


def test_restriction_applies_a_hold_and_waits_for_an_operator(inline_app, key_for):
    client, h = inline_app.test_client(), key_for(inline_app, "dsar:submit,dsar:manage")
    r = new(client, h, type_="restriction", verified=True)
    assert r.json["status"] == "in_progress" and r.json["tasks"][0]["store"] == "_manual"
    holds = client.get("/v1/holds", headers=h).json
    assert len(holds) == 1 and holds[0]["subject"] is True and "restriction" in holds[0]["reason"]
    done = client.post(f"/v1/requests/{r.json['id']}/complete", json={"reason": "processing flagged"}, headers=h)
    assert done.json["status"] == "completed"


def test_holds_api(inline_app, key_for):
    client, h = inline_app.test_client(), key_for(inline_app, "dsar:manage")
    assert client.post("/v1/holds", json={"reason": "nothing named"}, headers=h).status_code == 422
    hold = client.post("/v1/holds", json={"store": "cloud-photos", "category": "orders", "reason": "litigation"},
                       headers=h).json
    released = client.post(f"/v1/holds/{hold['id']}/release", json={"reason": "case closed"}, headers=h)
    assert released.status_code == 200 and released.json["released_at"]
    assert client.post(f"/v1/holds/{hold['id']}/release", json={"reason": "again"}, headers=h).status_code == 409


def test_another_apps_request_is_404(inline_app, key_for, make_key):
    client, mine = inline_app.test_client(), key_for(inline_app, "dsar:submit,dsar:manage")
    rid = new(client, mine).json["id"]
    from service.tenancy import create_app_tenant, create_key

    with inline_app.extensions["db"].session() as session:
        create_app_tenant(session, "other-app")
        _, secret = create_key(session, "other-app", frozenset({"dsar:submit", "dsar:manage"}))
    theirs = {"Authorization": f"Bearer {secret}"}
    assert client.get(f"/v1/requests/{rid}", headers=theirs).status_code == 404
    assert client.post(f"/v1/requests/{rid}/verify", json={"code": "123456"}, headers=theirs).status_code == 404
    assert client.post(f"/v1/requests/{rid}/reject", json={"reason": "not yours"}, headers=theirs).status_code == 404
    assert client.post(f"/v1/requests/{rid}/lift", json={"reason": "not yours"}, headers=theirs).status_code == 404
    assert client.post(f"/v1/requests/{rid}/export-token", headers=theirs).status_code == 404
    assert client.get("/v1/requests", headers=theirs).json == []


@pytest.mark.parametrize(("method", "path", "scope"), [
    ("POST", "/v1/requests", "dsar:submit"), ("GET", "/v1/requests", "dsar:manage"),
    ("POST", "/v1/requests/x/extend", "dsar:manage"), ("POST", "/v1/requests/x/reject", "dsar:manage"),
    ("POST", "/v1/requests/x/cancel", "dsar:manage"), ("POST", "/v1/requests/x/retry", "dsar:manage"),
    ("POST", "/v1/requests/x/complete", "dsar:manage"), ("POST", "/v1/holds", "dsar:manage"),
    ("GET", "/v1/holds", "dsar:manage"), ("POST", "/v1/holds/x/release", "dsar:manage"),
    ("GET", "/v1/requests/x", "dsar:submit"), ("POST", "/v1/requests/x/verify", "dsar:submit"),
    ("POST", "/v1/requests/x/export-token", "dsar:submit"), ("GET", "/v1/requests/x/export", "dsar:submit"),
    ("POST", "/v1/requests/x/lift", "dsar:manage"), ("POST", "/v1/flags/lookup", "dsar:submit"),
    ("POST", "/v1/requests/x/resend-code", "dsar:submit"),
])
def test_scopes(inline_app, key_for, method, path, scope):
    client = inline_app.test_client()
    assert client.open(path, method=method, json={}).status_code == 401
    r = client.open(path, method=method, json={}, headers=key_for(inline_app, "consent:read,consent:write"))
    assert r.status_code == 403 and scope in r.json["message"]


def test_erasure_removes_the_consent_chain_and_the_ledger_still_verifies(inline_app, key_for):
    client, h = inline_app.test_client(), key_for(inline_app, "admin")
    client.post("/v1/policies", json={"key": "privacy", "title": "t", "purposes": [
        {"key": "core", "description": "d", "required": True}]}, headers=h)
    client.post("/v1/policies/privacy/versions", json={"version": "1", "text": "t", "material": True}, headers=h)
    for subject in ("1", "2"):
        client.post("/v1/consents", json={"subject_id": subject, "policy": "privacy", "version": "1",
                                          "purposes": {"core": True}, "channel": "web", "locale": "en"}, headers=h)
    r = new(client, h, type_="erasure", verified=True)
    assert r.json["status"] == "completed" and r.json["consent"]["consent_events_removed"] == 1
    assert client.get("/v1/subjects/1/consents", headers=h).status_code == 404
    assert client.get("/v1/subjects/2/consents", headers=h).status_code == 200
    result = inline_app.test_cli_runner().invoke(args=["ledger", "verify"])
    assert result.exit_code == 0, result.output


def test_maintenance_pass_destroys_exports_past_their_time(inline_app, key_for):
    from dsar.maintenance import maintain
    from service.runtime import use_runtime

    client, h = inline_app.test_client(), key_for(inline_app, "dsar:submit,dsar:manage")
    fresh, old = (new(client, h, verified=True).json["id"] for _ in range(2))
    with inline_app.extensions["db"].session() as session:
        session.execute(update(DsarRequest).where(DsarRequest.id == old)
                        .values(export_expires_at=datetime.now(UTC) - timedelta(minutes=1)))
    with use_runtime(inline_app.extensions["runtime"]):
        assert maintain() == {"dispatched": 0, "reconciled": 0, "exports_destroyed": 1, "idempotency_keys_expired": 0}
    assert client.get(f"/v1/requests/{old}", headers=h).json["export_ready"] is False
    assert client.get(f"/v1/requests/{fresh}", headers=h).json["export_ready"] is True


def test_every_transition_is_audited_with_actor_and_reason(inline_app, key_for):
    from dsar.models import STATES

    client, headers = inline_app.test_client(), key_for(inline_app, "dsar:submit")
    rid = new(client, headers).json["id"]
    client.post(f"/v1/requests/{rid}/verify", json={"code": code_of(inline_app, rid)}, headers=headers)
    with inline_app.extensions["db"].sessions() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.resource_id == rid)
                                 .order_by(AuditEvent.id)).all()
    moves = [e for e in events if e.action.removeprefix("dsar.") in STATES]
    assert [(e.action, e.details["from"]) for e in moves] == [
        ("dsar.verified", "pending_verification"), ("dsar.in_progress", "verified"),
        ("dsar.completed", "in_progress")]
    assert all(e.actor and e.details["reason"] for e in moves)
    assert moves[0].actor.startswith("key:") and moves[-1].actor == "system"
    assert "ana@example.com" not in " ".join(str(e.details) for e in events)
