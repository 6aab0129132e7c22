"""Governance forms in Chromium: an impact assessment from draft to approval (answers, a risk, a mitigation,
submitted and approved by the signed-in admin) and an evidence export started, downloaded and verified; each page
light, local and without serious axe violations, and the README's screenshots of both."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import network_of
from tests.browser.console.conftest import make_operator, sign_in


def test_assessment_flow_and_evidence_export(live_server, new_page, check_page, screenshot, make_key):
    client = live_server.app.test_client()
    assert client.post("/v1/policies", headers=make_key("shop", "admin"), json={
        "key": "privacy", "title": "Shop privacy", "purposes": [
            {"key": "analytics", "description": "Product analytics", "pii_categories": ["device_log"]}]}
    ).status_code == 201
    admin = make_operator(live_server.app, "privacy-lead@example.com", "admin")
    page = new_page()
    assert sign_in(page, admin).status == 200
    network = network_of(page)
    network.load(page, "/console/governance/assessments")
    check_page(page)
    page.get_by_label("App", exact=True).select_option("shop")
    page.get_by_label("Title", exact=True).fill("Shop analytics PIA")
    page.get_by_role("button", name="Start the assessment").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Shop analytics PIA")
    for section, text in (("Collection", "Device logs only, no identifiers."), ("Storage", "Events store, EU."),
                          ("Use", "Aggregate product analytics."), ("Destruction", "Deleted after 90 days.")):
        page.get_by_role("textbox", name=section, exact=True).fill(text)
    page.get_by_role("button", name="Save the answers").click()
    page.get_by_label("Risk id").fill("R1")
    page.get_by_label("Section", exact=True).select_option("use")
    page.get_by_label("What could happen").fill("Logs re-used for advertising.")
    page.get_by_label("Likelihood (1 rare").select_option("3")
    page.get_by_label("Impact (1 minimal").select_option("4")
    page.get_by_role("button", name="Add the risk").click()
    expect(page.get_by_role("cell", name="12", exact=True)).to_be_visible()
    page.get_by_label("Action", exact=True).fill("Purpose limitation in the processor contract.")
    page.get_by_label("Owner", exact=True).fill("Privacy office")
    page.get_by_label("Due date", exact=True).fill("2027-03-01")
    page.get_by_role("button", name="Add the mitigation").click()
    network.load(page, page.url)
    check_page(page)  # the page with every form on it
    page.get_by_role("button", name="Submit for review").click()
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_text("The assessment is approved and signed.")).to_be_visible()
    expect(page.locator("dl.facts")).to_contain_text("privacy-lead@example.com")
    network.load(page, page.url)
    check_page(page)
    screenshot(page, "console-assessment")

    network.load(page, "/console/governance/evidence")
    check_page(page)
    page.get_by_label("From (first day, UTC)").fill("2026-01-01")
    page.get_by_label("To (last day, UTC, inclusive)").fill("2026-12-31")
    page.get_by_role("button", name="Start the export").click()
    expect(page.get_by_role("link", name="Download the zip")).to_be_visible(timeout=60_000)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the zip").click()
    assert download.value.suggested_filename.endswith(".zip")
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("status").filter(has_text="Verified:")).to_be_visible()
    screenshot(page, "console-evidence")
