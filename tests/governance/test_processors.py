"""The processor register: fields, the erasure secret (sealed, shown once), reviews and their status, scopes."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from governance import processors
from governance.models import Processor
from service.audit import AuditEvent
from tests.governance.conftest import Api

MAILER = {"key": "mailer", "name": "Mailer Ltd", "role": "processor", "countries": ["IE", "US"],
          "categories": ["contact"], "purposes": ["newsletter"], "dpa_date": "2026-01-15",
          "contact": "dpo@mailer.example", "erasure_webhook": "https://mailer.example/erase"}


def test_a_webhook_processor_gets_a_secret_shown_once_and_sealed(app, api: Api):
    created = api.post("/v1/governance/processors", MAILER)
    secret = created["erasure"]["secret"]
    assert len(secret) >= 40 and created["erasure"]["has_secret"] is True
    assert created["countries"] == ["IE", "US"] and created["dpa_date"] == "2026-01-15"
    assert created["review_status"] == "missing"
    shown = api.get("/v1/governance/processors/mailer")
    assert "secret" not in shown["erasure"] and shown["erasure"]["has_secret"] is True
    assert secret not in str(api.get("/v1/governance/processors"))
    with app.extensions["db"].session() as session:
        row = session.scalar(select(Processor).where(Processor.key == "mailer"))
        assert secret.encode() not in row.erasure_secret  # sealed with the field key
        assert processors.erasure_secret(app.extensions["runtime"], row) == secret
        trail = session.scalars(select(AuditEvent).where(AuditEvent.resource_type == "governance_processor")).all()
        assert [e.action for e in trail] == ["governance.processor_created"]
        assert "dpo@mailer.example" not in str(trail[0].details) and secret not in str(trail[0].details)
    rotated = api.patch("/v1/governance/processors/mailer", {"rotate_secret": True})
    assert rotated["erasure"]["secret"] != secret
    with app.extensions["db"].session() as session:
        row = session.scalar(select(Processor).where(Processor.key == "mailer"))
        assert processors.erasure_secret(app.extensions["runtime"], row) == rotated["erasure"]["secret"]


def test_switching_to_email_drops_the_webhook_and_its_secret(api: Api):
    api.post("/v1/governance/processors", MAILER)
    changed = api.patch("/v1/governance/processors/mailer", {"erasure_email": "erase@mailer.example"})
    assert changed["erasure"] == {"webhook": None, "email": "erase@mailer.example", "has_secret": False}
    back = api.patch("/v1/governance/processors/mailer", {"erasure_webhook": "https://mailer.example/v2"})
    assert back["erasure"]["email"] is None and back["erasure"]["secret"]


def test_reviews_set_the_status(api: Api):
    api.post("/v1/governance/processors", {**MAILER, "erasure_webhook": None})
    today = date.today()
    old = {"reviewed_on": (today - timedelta(days=400)).isoformat(), "result": "passed", "reviewer": "A. Auditor",
           "next_due": (today - timedelta(days=35)).isoformat()}
    assert api.post("/v1/governance/processors/mailer/reviews", old)["review_status"] == "overdue"
    failed = {**old, "reviewed_on": (today - timedelta(days=1)).isoformat(), "result": "failed",
              "next_due": (today + timedelta(days=30)).isoformat()}
    assert api.post("/v1/governance/processors/mailer/reviews", failed)["review_status"] == "failed"
    good = {**failed, "reviewed_on": today.isoformat(), "result": "passed_with_actions",
            "next_due": (today + timedelta(days=365)).isoformat(), "notes": "pen test report seen"}
    shown = api.post("/v1/governance/processors/mailer/reviews", good)
    assert shown["review_status"] == "current" and shown["next_review_due"] == good["next_due"]
    assert [r["result"] for r in shown["reviews"]] == ["passed_with_actions", "failed", "passed"]


def test_validation_names_the_field(api: Api):
    r = api.post("/v1/governance/processors", {**MAILER, "role": "friend"}, status=422)
    assert "role" in r["errors"]["json"]
    r = api.post("/v1/governance/processors", {**MAILER, "countries": ["usa"]}, status=422)
    assert "countries" in r["errors"]["json"]
    r = api.post("/v1/governance/processors", {**MAILER, "erasure_email": "a@b.example"}, status=422)
    assert "erasure_email" in r["errors"]["json"]
    api.post("/v1/governance/processors", MAILER)
    assert "key" in api.post("/v1/governance/processors", MAILER, status=409)["errors"]["json"]
    api.get("/v1/governance/processors/nobody", status=404)
    review = {"reviewed_on": "2026-05-01", "result": "passed", "reviewer": "A", "next_due": "2026-04-01"}
    assert "next_due" in api.post("/v1/governance/processors/mailer/reviews", review, status=422)["errors"]["json"]


def test_scopes_are_company_wide(api: Api, make_key):
    reader = make_key("office", "platform:read")
    app_admin = make_key("product", "admin,consent:read,consent:write,dsar:manage,dsar:submit")
    api.post("/v1/governance/processors", MAILER)
    assert api.get("/v1/governance/processors", headers=reader)[0]["key"] == "mailer"
    api.post("/v1/governance/processors", {**MAILER, "key": "other"}, status=403, headers=reader)
    api.get("/v1/governance/processors", status=403, headers=app_admin)
    api.get("/v1/governance/findings", status=403, headers=app_admin)
    api.call("DELETE", "/v1/governance/processors/mailer", 204)
    api.get("/v1/governance/processors/mailer", status=404)


def test_a_processor_with_reviews_is_deleted_with_them(api: Api):
    # Found by schemathesis: the reviews' rows were flushed after the processor's (a foreign key violation, 500).
    api.post("/v1/governance/processors", MAILER)
    review = {"reviewed_on": "2026-05-01", "result": "passed", "reviewer": "A", "next_due": "2027-05-01"}
    api.post("/v1/governance/processors/mailer/reviews", review)
    api.post("/v1/governance/processors/mailer/reviews", {**review, "reviewed_on": "2026-06-01"})
    api.call("DELETE", "/v1/governance/processors/mailer", 204)
    api.get("/v1/governance/processors/mailer", status=404)
    api.post("/v1/governance/processors", MAILER)  # the key is free again, with no review left behind
    assert api.get("/v1/governance/processors/mailer")["reviews"] == []
