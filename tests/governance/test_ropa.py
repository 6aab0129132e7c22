"""The records of processing of the demo estate, exactly as configured; its renderings; signed snapshots."""

from __future__ import annotations

import csv
import io

from sqlalchemy import select

from governance import ropa
from service.audit import AuditEvent
from tests.governance.conftest import Api, purpose, retention

CONTROLLER = {"name": "Example Electronics Ltd.", "contact": "Data Protection Officer",
              "email": "privacy@example.com", "country": "NL", "jurisdiction": "EU"}


def configure(api: Api, demo: dict[str, str]) -> None:
    """The demo app's policy, two processors, three retention policies and one activity's people-kept fields."""
    api.post("/v1/policies", {"key": "privacy", "title": "Cloud Photos privacy policy", "purposes": [
        purpose("account", ["contact", "orders"], "contract", required=True),
        purpose("photos", ["photos", "location", "avatars"]),
        purpose("analytics", ["device_log"], "legitimate_interests", retention="P90D",
                third_party="Insight Analytics"),
    ]}, headers=demo)
    api.post("/v1/governance/processors", {"key": "insight", "name": "Insight Analytics", "role": "processor",
                                           "countries": ["NL", "US"], "categories": ["device_log"],
                                           "purposes": ["analytics"], "dpa_date": "2026-02-01"})
    api.post("/v1/governance/processors", {"key": "parcels", "name": "Parcels & Co", "role": "independent controller",
                                           "countries": ["IE", "CH"], "categories": ["contact"],
                                           "purposes": ["demo/privacy/account"]})
    retention(api, "cloud-photos", "device_log", "P90D")
    retention(api, "uploads", "photos", "P5Y")
    retention(api, "cloud-photos", "contact", "P3Y")
    api.patch("/v1/governance/ropa/activities/demo/privacy/account",
              {"description": "Accounts and orders of Cloud Photos", "joint_controller": "Photo Prints BV",
               "security_measures": "TLS; encryption at rest; access by role"})


def policy(key: str, retain_for: str) -> dict[str, object]:
    return {"policy": key, "version": 1, "retain_for": retain_for, "action": "delete"}


def people(**kept: object) -> dict[str, object]:
    return {"description": None, "controller": CONTROLLER["name"], "joint_controller": None,
            "security_measures": None, **kept}


EXPECTED_ACTIVITIES = [
    {"key": "demo/privacy/account", "app": "demo", "app_name": "Demo product", "policy": "privacy",
     "purpose": "account", "purpose_description": "account of the product", "lawful_basis": "contract",
     "required": True, "purpose_retention": None,
     "categories": [
         {"category": "contact", "stores": [{"store": "cloud-photos",
                                             "retention": policy("cloud-photos.contact", "P3Y")}]},
         {"category": "orders", "stores": [{"store": "cloud-photos", "retention": None}]}],
     "recipients": [{"processor": "parcels", "name": "Parcels & Co", "role": "independent controller",
                     "countries": ["IE", "CH"], "categories": ["contact"]}],
     "third_party": None, "transfers": [{"processor": "parcels", "country": "CH"}],
     **people(description="Accounts and orders of Cloud Photos", joint_controller="Photo Prints BV",
              security_measures="TLS; encryption at rest; access by role")},
    {"key": "demo/privacy/photos", "app": "demo", "app_name": "Demo product", "policy": "privacy",
     "purpose": "photos", "purpose_description": "photos of the product", "lawful_basis": "consent",
     "required": False, "purpose_retention": None,
     "categories": [
         {"category": "photos", "stores": [{"store": "cloud-photos", "retention": None},
                                           {"store": "uploads", "retention": policy("uploads.photos", "P5Y")}]},
         {"category": "location", "stores": [{"store": "cloud-photos", "retention": None}]},
         {"category": "avatars", "stores": [{"store": "uploads", "retention": None}]}],
     "recipients": [], "third_party": None, "transfers": [], **people()},
    {"key": "demo/privacy/analytics", "app": "demo", "app_name": "Demo product", "policy": "privacy",
     "purpose": "analytics", "purpose_description": "analytics of the product",
     "lawful_basis": "legitimate_interests", "required": False, "purpose_retention": "P90D",
     "categories": [{"category": "device_log", "stores": [
         {"store": "cloud-photos", "retention": policy("cloud-photos.device_log", "P90D")}]}],
     "recipients": [{"processor": "insight", "name": "Insight Analytics", "role": "processor",
                     "countries": ["NL", "US"], "categories": ["device_log"]}],
     "third_party": "Insight Analytics", "transfers": [{"processor": "insight", "country": "US"}], **people()},
]
EXPECTED_PROCESSORS = [
    {"key": "insight", "name": "Insight Analytics", "role": "processor", "countries": ["NL", "US"],
     "categories": ["device_log"], "purposes": ["analytics"], "dpa_date": "2026-02-01", "review_status": "missing",
     "next_review_due": None},
    {"key": "parcels", "name": "Parcels & Co", "role": "independent controller", "countries": ["IE", "CH"],
     "categories": ["contact"], "purposes": ["demo/privacy/account"], "dpa_date": None,
     "review_status": "missing", "next_review_due": None},
]


def test_the_ropa_of_the_demo_estate_matches_its_configuration(api: Api, demo):
    configure(api, demo)
    record = api.get("/v1/governance/ropa")
    assert record.pop("generated_at")
    assert record == {"controller": CONTROLLER, "activities": EXPECTED_ACTIVITIES,
                      "processors": EXPECTED_PROCESSORS}
    # A reader sees the same; the demo key (every scope) too.
    assert {k: v for k, v in api.get("/v1/governance/ropa", headers=demo).items() if k != "generated_at"} == record
    assert api.get("/v1/governance/ropa?app=other")["activities"] == []


def test_people_kept_fields_only_for_activities_that_exist_and_audited(app, api: Api, demo):
    configure(api, demo)
    api.patch("/v1/governance/ropa/activities/demo/privacy/nothing", {"description": "x"}, status=404)
    r = api.patch("/v1/governance/ropa/activities/demo/privacy/photos", {"controller": "Cloud Photos BV"})
    assert r["controller"] == "Cloud Photos BV" and r["updated_by"].startswith("key:")
    assert api.get("/v1/governance/ropa")["activities"][1]["controller"] == "Cloud Photos BV"
    with app.extensions["db"].session() as session:
        actions = session.scalars(select(AuditEvent.details).where(
            AuditEvent.action == "governance.activity_updated")).all()
    assert {"changed": ["controller"]} in actions


def test_csv_and_html(api: Api, demo):
    configure(api, demo)
    rows = list(csv.DictReader(io.StringIO(api.get("/v1/governance/ropa?format=csv"))))
    assert [r["key"] for r in rows] == [a["key"] for a in EXPECTED_ACTIVITIES]
    assert rows[0]["stores"] == "cloud-photos:contact; cloud-photos:orders"
    assert rows[0]["retention"] == "cloud-photos:contact=P3Y delete; cloud-photos:orders=none"
    assert rows[0]["recipients"] == "Parcels & Co (independent controller)"
    assert rows[0]["transfers"] == "parcels:CH" and rows[2]["lawful_basis"] == "legitimate_interests"
    page = api.get("/v1/governance/ropa?format=html")
    assert page.startswith("<!doctype html>") and "Parcels &amp; Co" in page and "Parcels & Co" not in page
    assert "format" in api.get("/v1/governance/ropa?format=pdf", status=422)["errors"]["query"]


def test_snapshots_are_signed_dated_and_listed(app, api: Api, demo, client):
    configure(api, demo)
    first = api.post("/v1/governance/ropa/snapshots")
    claims = app.extensions["runtime"].keys.signer.verify(first["jws"])
    assert claims["type"] == ropa.SNAPSHOT_TYPE and claims["jti"] == first["id"]
    assert claims["ropa"] == {"controller": CONTROLLER, "activities": EXPECTED_ACTIVITIES,
                              "processors": EXPECTED_PROCESSORS}
    assert first["ropa"] == claims["ropa"] and first["activities"] == 3
    api.patch("/v1/governance/ropa/activities/demo/privacy/photos", {"description": "Albums"})
    second = api.post("/v1/governance/ropa/snapshots")
    listed = api.get("/v1/governance/ropa/snapshots")
    assert [s["id"] for s in listed] == [second["id"], first["id"]] and "jws" not in listed[0]
    assert api.get(f"/v1/governance/ropa/snapshots/{first['id']}")["ropa"] == claims["ropa"]  # frozen
    assert api.get(f"/v1/governance/ropa/snapshots/{second['id']}")["ropa"]["activities"][1]["description"] \
        == "Albums"
    api.get("/v1/governance/ropa/snapshots/nope", status=404)
    with app.extensions["db"].session() as session:
        assert ropa.current_snapshot(session).id == second["id"]
