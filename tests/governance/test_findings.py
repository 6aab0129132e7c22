"""Each kind of finding appears when its cause is introduced and disappears when it is fixed."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import update

from consent.models import Purpose
from tests.governance.conftest import ESTATE, Api, purpose, retention

ANONYMIZED = {("cloud-photos", "orders"), ("cloud-photos", "location")}


def review(api: Api, key: str, next_due: date) -> None:
    api.post(f"/v1/governance/processors/{key}/reviews", {
        "reviewed_on": (next_due - timedelta(days=365)).isoformat(), "result": "passed", "reviewer": "A. Auditor",
        "next_due": next_due.isoformat()})


def clean_estate(api: Api, demo: dict[str, str], account: tuple[str, ...] = ("contact", "orders", "avatars")) -> None:
    """Every category covered by a purpose and a retention policy, every third party registered and reviewed."""
    api.post("/v1/policies", {"key": "privacy", "title": "Privacy policy", "purposes": [
        purpose("account", list(account), "contract"),
        purpose("photos", ["photos", "location"]),
        purpose("analytics", ["device_log"], "legitimate_interests", third_party="Insight Analytics"),
    ]}, headers=demo)
    for store, categories in ESTATE.items():
        for category in categories:
            retention(api, store, category, action="anonymize" if (store, category) in ANONYMIZED else "delete")
    api.post("/v1/governance/processors", {"key": "insight", "name": "Insight Analytics", "role": "processor"})
    review(api, "insight", date.today() + timedelta(days=200))


def kinds(api: Api) -> list[tuple[str, str]]:
    return [(f["kind"], f["subject"]) for f in api.get("/v1/governance/findings")]


def test_the_bare_estate_has_every_store_category_as_a_finding(api: Api):
    found = kinds(api)
    every = [(store, c) for store, cs in ESTATE.items() for c in cs]
    assert sorted(found) == sorted([("category_without_retention", f"{s}/{c}") for s, c in every]
                                   + [("category_not_covered", f"{s}/{c}") for s, c in every])


def test_a_clean_estate_has_none(api: Api, demo):
    clean_estate(api, demo)
    assert kinds(api) == []


def test_purpose_without_lawful_basis(app, api: Api, demo):
    # The API always records one (consent unless told); rows written around it (an import, an old schema) may not.
    clean_estate(api, demo)
    db = app.extensions["db"]
    with db.session() as session:
        session.execute(update(Purpose).where(Purpose.key == "photos").values(lawful_basis=""))
    found = api.get("/v1/governance/findings")
    assert [(f["kind"], f["subject"]) for f in found] == [("purpose_without_lawful_basis", "demo/privacy/photos")]
    assert found[0]["id"] == "purpose_without_lawful_basis:demo/privacy/photos"
    with db.session() as session:
        session.execute(update(Purpose).where(Purpose.key == "photos").values(lawful_basis="consent"))
    assert kinds(api) == []


def test_category_without_retention(api: Api, demo):
    clean_estate(api, demo)
    api.post("/v1/retention/policies/uploads.avatars/disable", status=200)
    assert kinds(api) == [("category_without_retention", "uploads/avatars")]
    api.post("/v1/retention/policies/uploads.avatars/enable", status=200)
    assert kinds(api) == []


def test_category_not_covered(api: Api, demo):
    clean_estate(api, demo, account=("contact", "orders"))  # no purpose names avatars
    found = api.get("/v1/governance/findings")
    assert [(f["kind"], f["subject"]) for f in found] == [("category_not_covered", "uploads/avatars")]
    assert found[0]["message"] == "uploads holds avatars, which no purpose names"
    api.post("/v1/policies", {"key": "profile", "title": "Profile", "purposes": [purpose("avatar", ["avatars"])]},
             headers=demo)
    assert kinds(api) == []


def test_processor_without_current_review(api: Api, demo):
    clean_estate(api, demo)
    api.post("/v1/governance/processors", {"key": "mailer", "name": "Mailer", "role": "sub-processor"})
    found = api.get("/v1/governance/findings")
    assert [(f["kind"], f["subject"], f["details"]["status"]) for f in found] == [
        ("processor_review_not_current", "mailer", "missing")]
    review(api, "mailer", date.today() - timedelta(days=1))
    assert [f["details"]["status"] for f in api.get("/v1/governance/findings")] == ["overdue"]
    review(api, "mailer", date.today() + timedelta(days=1))
    assert kinds(api) == []


def test_third_party_not_in_the_register(api: Api, demo):
    clean_estate(api, demo)
    api.post("/v1/policies", {"key": "ads", "title": "Ads", "purposes": [
        purpose("ads", ["device_log"], third_party="AdNet GmbH")]}, headers=demo)
    found = api.get("/v1/governance/findings")
    assert [(f["kind"], f["subject"]) for f in found] == [("third_party_not_registered", "demo/ads/ads")]
    assert found[0]["details"] == {"third_party": "AdNet GmbH"}
    api.post("/v1/governance/processors", {"key": "adnet", "name": "adnet gmbh", "role": "independent controller"})
    review(api, "adnet", date.today() + timedelta(days=90))
    assert kinds(api) == []


def test_filter_by_kind_and_read_scope(api: Api, make_key):
    reader = make_key("office", "platform:read")
    found = api.get("/v1/governance/findings?kind=category_not_covered", headers=reader)
    assert {f["kind"] for f in found} == {"category_not_covered"} and len(found) == 7
