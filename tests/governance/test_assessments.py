"""Privacy impact assessments: prefilled sections, the review workflow, the signed approval, and drift of each
kind (a purpose added, a store gaining a category, retention disabled or lengthened), in findings too."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from flask import Flask

from governance import assessments, findings, jobs
from service.runtime import use_runtime
from service.stores.options import StoreContext
from service.stores.registry import DEMO_ESTATE, Registry, anonymisation_key, build_registry
from tests.governance.conftest import Api, purpose, retention

BASE = "/v1/governance/assessments"
ANSWERS = {"collection": "Only what the account needs.", "storage": "EU data centres.",
           "use": "Service and billing.", "destruction": "Retention policies apply."}


def setup_app(api: Api, demo: dict[str, str]) -> None:
    api.post("/v1/policies", {"key": "privacy", "title": "Privacy", "purposes": [
        purpose("account", ["contact"], "contract"), purpose("analytics", ["device_log"], "legitimate_interests")]},
        headers=demo)
    retention(api, "cloud-photos", "contact", "P3Y")
    retention(api, "cloud-photos", "device_log", "P90D")


def approved(api: Api, activity: str | None = None) -> dict:
    created = api.post(BASE, {"app": "demo", "activity": activity, "title": "Cloud Photos PIA"})
    api.patch(f"{BASE}/{created['id']}", {"answers": ANSWERS})
    api.post(f"{BASE}/{created['id']}/submit", status=200)
    return api.post(f"{BASE}/{created['id']}/approve", {"approver": "C. Officer"}, status=200)


def test_sections_are_prefilled_from_the_facts(api: Api, demo):
    setup_app(api, demo)
    a = api.post(BASE, {"app": "demo", "title": "Cloud Photos PIA"})
    assert a["state"] == "draft" and a["app"] == "demo" and a["activity"] is None
    s = a["sections"]
    assert s["collection"]["facts"] == {"categories": ["contact", "device_log"], "purposes": [
        {"activity": "demo/privacy/account", "lawful_basis": "contract", "categories": ["contact"]},
        {"activity": "demo/privacy/analytics", "lawful_basis": "legitimate_interests", "categories": ["device_log"]}]}
    assert s["storage"]["facts"] == {"stores": [{"store": "cloud-photos", "categories": [
        "contact", "orders", "device_log", "photos", "location"]}]}
    assert [p["activity"] for p in s["use"]["facts"]["purposes"]] == ["demo/privacy/account", "demo/privacy/analytics"]
    assert s["destruction"]["facts"]["retention"] == [
        {"store": "cloud-photos", "category": "contact", "retain_for": "P3Y", "action": "delete", "enforced": True,
         "last_destruction": None},
        {"store": "cloud-photos", "category": "device_log", "retain_for": "P90D", "action": "delete",
         "enforced": True, "last_destruction": None}]
    one = api.post(BASE, {"app": "demo", "activity": "demo/privacy/analytics", "title": "Analytics"})
    assert one["sections"]["collection"]["facts"]["categories"] == ["device_log"]
    assert "activity" in api.post(BASE, {"app": "demo", "activity": "demo/privacy/x", "title": "t"},
                                  status=422)["errors"]["json"]
    assert "app" in api.post(BASE, {"app": "nope", "title": "t"}, status=422)["errors"]["json"]


def test_the_workflow_and_the_signed_approval(app, api: Api, demo):
    setup_app(api, demo)
    a = api.post(BASE, {"app": "demo", "title": "Cloud Photos PIA"})
    url = f"{BASE}/{a['id']}"
    missing = api.post(f"{url}/submit", status=409)
    assert set(missing["errors"]["json"]["answers"]) == {"collection", "storage", "use", "destruction"}
    risks = [{"id": "R1", "section": "use", "description": "profiling", "likelihood": 2, "impact": 4},
             {"id": "R2", "section": "storage", "description": "breach", "likelihood": 4, "impact": 5}]
    bad = api.patch(url, {"risks": risks, "mitigations": [{"risk": "R9", "action": "a", "owner": "o",
                                                            "due": "2027-01-01"}]}, status=422)
    assert "mitigations" in bad["errors"]["json"]
    assert "likelihood" in api.patch(url, {"risks": [{**risks[0], "likelihood": 6}]},
                                     status=422)["errors"]["json"]["risks"]["0"]
    edited = api.patch(url, {"answers": ANSWERS, "risks": risks, "mitigations": [
        {"risk": "R2", "action": "encrypt backups", "owner": "Ops lead", "due": "2027-03-01"}]})
    assert [(r["score"], r["level"]) for r in edited["risks"]] == [(8, "medium"), (20, "high")]
    assert edited["mitigations"] == [{"risk": "R2", "action": "encrypt backups", "owner": "Ops lead",
                                      "due": "2027-03-01"}]
    assert api.post(f"{url}/submit", status=200)["state"] == "in_review"
    api.patch(url, {"title": "no"}, status=409)
    changes = api.post(f"{url}/request-changes", {"reviewer": "C. Officer", "comment": "name the backups"},
                       status=200)
    assert changes["state"] == "changes_requested" and changes["reviewer_comment"] == "name the backups"
    api.post(f"{url}/approve", {"approver": "C. Officer"}, status=409)
    api.post(f"{url}/submit", status=200)
    done = api.post(f"{url}/approve", {"approver": "C. Officer"}, status=200)
    assert done["state"] == "approved" and done["approved_by"] == "C. Officer"
    assert done["review_due"] == (date.today() + timedelta(days=365)).isoformat()
    claims = app.extensions["runtime"].keys.signer.verify(done["jws"])
    assert claims["type"] == assessments.ASSESSMENT_TYPE and claims["assessment"]["approvedBy"] == "C. Officer"
    assert claims["assessment"]["answers"] == ANSWERS and claims["assessment"]["factsDigest"] == done["facts_digest"]
    assert claims["assessment"]["facts"]["retention"]["cloud-photos/contact"]["retain_for"] == "P3Y"
    api.patch(url, {"title": "frozen"}, status=409)
    later = api.post(BASE, {"app": "demo", "title": "t"})
    api.patch(f"{BASE}/{later['id']}", {"answers": ANSWERS})
    api.post(f"{BASE}/{later['id']}/submit", status=200)
    assert api.post(f"{BASE}/{later['id']}/approve", {"approver": "D", "review_due": "2027-06-30"},
                    status=200)["review_due"] == "2027-06-30"
    assert [a["state"] for a in api.get(f"{BASE}?state=approved")] == ["approved", "approved"]


def drifted(api: Api, assessment_id: str) -> list[tuple[str, str]]:
    a = api.get(f"{BASE}/{assessment_id}")
    assert a["state"] == "review_needed", a
    found = [(f["kind"], f["subject"]) for f in api.get("/v1/governance/findings?kind=assessment_review_needed")]
    assert ("assessment_review_needed", assessment_id) in found
    return [(d["kind"], d["subject"]) for d in a["drift"]]


def test_drift_a_purpose_added(api: Api, demo):
    setup_app(api, demo)
    a = approved(api)
    assert api.get(f"{BASE}/{a['id']}")["state"] == "approved"
    api.post("/v1/policies", {"key": "marketing", "title": "Marketing", "purposes": [
        purpose("newsletter", ["contact"])]}, headers=demo)
    api.post("/v1/policies/marketing/versions", {"version": "2", "text": "We now send a newsletter.",
                                                 "material": True}, headers=demo)
    assert drifted(api, a["id"]) == [("purpose_added", "demo/marketing/newsletter")]


def test_drift_retention_disabled_and_lengthened_not_shortened(api: Api, demo):
    setup_app(api, demo)
    a = approved(api)
    api.patch("/v1/retention/policies/cloud-photos.device_log", {"retain_for": "P30D"})
    assert api.get(f"{BASE}/{a['id']}")["state"] == "approved"  # shorter keeps less: no review needed
    b = approved(api)
    api.patch("/v1/retention/policies/cloud-photos.device_log", {"retain_for": "P1Y"})
    assert drifted(api, b["id"]) == [("retention_lengthened", "cloud-photos/device_log")]
    assert api.get(f"{BASE}/{a['id']}")["drift"][0]["now"]["retain_for"] == "P1Y"
    c = approved(api, "demo/privacy/account")
    api.post("/v1/retention/policies/cloud-photos.contact/disable", status=200)
    got = api.get(f"{BASE}/{c['id']}")
    assert got["state"] == "review_needed"
    assert [(d["kind"], d["subject"]) for d in got["drift"]] == [("retention_disabled", "cloud-photos/contact")]


@pytest.fixture
def grown_registry(app: Flask, tmp_path: Path) -> Iterator[Registry]:
    """The demo estate with the uploads store declaring one more category (documents)."""
    text = DEMO_ESTATE.read_text() + '\n  [[stores.paths]]\n  template = "documents/{user_id}/**"\n' \
                                     '  category = "documents"\n'
    rt = app.extensions["runtime"]
    ctx = StoreContext(base_dir=DEMO_ESTATE.parent, instance_path=rt.settings.instance_path,
                       hash_key=anonymisation_key(rt.keys))
    registry = build_registry(tomllib.loads(text)["stores"], ctx)
    yield registry
    registry.close()


def test_drift_a_store_gains_a_category(app, api: Api, demo, grown_registry: Registry):
    api.post("/v1/policies", {"key": "privacy", "title": "Privacy", "purposes": [
        purpose("photos", ["photos"])]}, headers=demo)
    a = approved(api)
    db = app.extensions["db"]
    with db.session() as session:
        assert assessments.refresh(session, app.extensions["stores"]) == []
        marked = assessments.refresh(session, grown_registry)
        assert [m.id for m in marked] == [a["id"]]
        assert [(d["kind"], d["subject"], d["now"]) for d in marked[0].drift] == [
            ("store_category_added", "uploads", ["photos", "avatars", "documents"])]
        assert ("assessment_review_needed", a["id"]) in [(f["kind"], f["subject"])
                                                         for f in findings.findings(session, grown_registry)]
    with db.session() as session:  # a second check marks nothing more
        assert assessments.refresh(session, grown_registry) == []


def test_the_scheduled_check_marks_drift_and_reapproval_clears_it(app, api: Api, demo):
    setup_app(api, demo)
    a = approved(api)
    api.post("/v1/retention/policies/cloud-photos.contact/disable", status=200)
    with use_runtime(app.extensions["runtime"]):
        assert jobs.check_drift() == [a["id"]]
        assert jobs.check_drift() == []
    url = f"{BASE}/{a['id']}"
    api.patch(url, {"answers": {"destruction": "Contacts are kept until the account closes."}})
    api.post(f"{url}/submit", status=200)
    again = api.post(f"{url}/approve", {"approver": "C. Officer"}, status=200)
    assert again["state"] == "approved" and again["drift"] == []
    assert api.get("/v1/governance/findings?kind=assessment_review_needed") == []


def test_review_due_is_a_finding(api: Api, demo):
    setup_app(api, demo)
    created = api.post(BASE, {"app": "demo", "title": "Old"})
    api.patch(f"{BASE}/{created['id']}", {"answers": ANSWERS})
    api.post(f"{BASE}/{created['id']}/submit", status=200)
    api.post(f"{BASE}/{created['id']}/approve", {"approver": "C", "review_due": "2020-01-01"}, status=200)
    assert [(f["kind"], f["subject"]) for f in api.get("/v1/governance/findings?kind=assessment_review_due")] == [
        ("assessment_review_due", created["id"])]


def test_lookups_and_filters(api: Api, demo, make_key):
    setup_app(api, demo)
    a = api.post(BASE, {"app": "demo", "title": "One"})
    api.get(f"{BASE}/01a22000-0000-7000-8000-000000000000", status=404)
    assert [x["id"] for x in api.get(f"{BASE}?app=demo")] == [a["id"]]
    assert api.get(f"{BASE}?app=other") == []
    assert "state" in api.get(f"{BASE}?state=done", status=422)["errors"]["query"]
    reader = make_key("office", "platform:read")
    assert api.get(f"{BASE}/{a['id']}", headers=reader)["title"] == "One"
    api.post(BASE, {"app": "demo", "title": "Two"}, status=403, headers=reader)
    api.post(f"{BASE}/{a['id']}/submit", status=401, headers={"Authorization": "Bearer nope"})


def test_destruction_shows_the_last_real_run(api: Api, demo):
    setup_app(api, demo)
    a = api.post(BASE, {"app": "demo", "activity": "demo/privacy/analytics", "title": "Analytics"})
    api.post("/v1/retention/runs", {"policy": "cloud-photos.device_log", "dry_run": True}, status=202)
    facts = api.get(f"{BASE}/{a['id']}")["sections"]["destruction"]["facts"]["retention"]
    assert facts[0]["last_destruction"] is None  # a dry run destroys nothing
    run = api.post("/v1/retention/runs", {"policy": "cloud-photos.device_log", "dry_run": False}, status=202)
    report = api.get(f"/v1/retention/runs/{run['id']}")
    assert report["state"] == "succeeded"  # in-process: the run is done when the request answers
    facts = api.get(f"{BASE}/{a['id']}")["sections"]["destruction"]["facts"]["retention"]
    assert facts == [{"store": "cloud-photos", "category": "device_log", "retain_for": "P90D", "action": "delete",
                      "enforced": True, "last_destruction": report["steps"][0]["finished_at"]}]
