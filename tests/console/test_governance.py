"""Governance in the console: the open findings, the records of processing (and their CSV), the assessments
with their changed facts, the processor register; company-wide, so an operator limited to some apps gets 403 and
no menu entry."""

from __future__ import annotations

import csv
import io

from tests.portal.conftest import csrf_token  # noqa: F401 - the console's forms read tokens the same way


def _governance_key(make_key) -> dict[str, str]:
    return make_key("privacy-office", "platform:governance,platform:read")


def test_findings_ropa_assessments_and_processors(app, client, make_key, make_operator):
    headers, shop = _governance_key(make_key), make_key("shop", "admin")
    assert client.post("/v1/policies", headers=shop, json={
        "key": "privacy", "title": "Shop privacy", "purposes": [
            {"key": "analytics", "description": "Product analytics", "pii_categories": ["device_log"],
             "third_party": "Metrics Ltd"}]}).status_code == 201
    made = client.post("/v1/governance/processors", headers=headers, json={
        "key": "metrics", "name": "Metrics Ltd", "role": "processor", "countries": ["US"],
        "categories": ["device_log"], "purposes": ["analytics"], "erasure_email": "erase@metrics.example"})
    assert made.status_code == 201, made.json
    viewer = make_operator("viewer")
    page = viewer.browser.get("/console/governance")
    assert page.status_code == 200 and 'href="/console/governance"' in page.text
    # No review yet: a finding about the processor; a store category without retention is one too.
    assert "processor_review_not_current" in page.text and "category_without_retention" in page.text
    ropa = viewer.browser.get("/console/governance/ropa").text
    assert "shop/privacy/analytics" in ropa and "Metrics Ltd" in ropa and "US" in ropa
    rows = list(csv.reader(io.StringIO(viewer.browser.get("/console/governance/ropa.csv").text)))
    assert any("shop/privacy/analytics" in ",".join(r) for r in rows[1:])
    processors = viewer.browser.get("/console/governance/processors").text
    assert "Metrics Ltd" in processors and "missing" in processors and "email" in processors
    assert viewer.browser.get("/console/governance/assessments").status_code == 200
    created = client.post("/v1/governance/assessments", headers=headers, json={
        "app": "shop", "title": "Shop PIA"})
    assert created.status_code == 201, created.json
    listed = viewer.browser.get("/console/governance/assessments").text
    assert "Shop PIA" in listed
    detail = viewer.browser.get(f"/console/governance/assessments/{created.json['id']}")
    assert detail.status_code == 200 and "What the service knows" in detail.text and "device_log" in detail.text
    assert viewer.browser.get("/console/governance/assessments/nope").status_code == 404


def test_limited_operators_do_not_see_company_wide_records(app, make_key, make_operator):
    make_key("shop", "consent:read")
    limited = make_operator("admin", apps=("shop",))
    assert limited.browser.get("/console/governance").status_code == 403
    assert limited.browser.get("/console/governance/ropa.csv").status_code == 403
    assert 'href="/console/governance"' not in limited.browser.get("/console/").text
